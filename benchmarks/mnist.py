"""Full MNIST end to end: the paper's preprocessing, LMNN with every impostor, 3-NN test error.

Run from the repository root (the paper's data under $CONVEXMETRIC_DATA):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/mnist.py > benchmarks/mnist.txt

What it measures, in one run:

1. setup: loading, deskewing, PCA to 164 dimensions, building the problem (targets);
2. ``solve(problem)`` with the default choice (``solver="auto"``) and the rest of a
   wall-clock budget: the metric at every full pass is kept (the snapshots cost no
   solver time), and afterwards the 3-NN test error of each is computed, giving the
   time to each error level (setup included); the final certified relative gap;
3. after the job: one exact full pass (objective and subgradient over every impostor
   triplet) at the best multiple of the identity, against the float64 distance
   products ``Z_B Z^T`` alone for every block of anchors (the floor of any exact pass),
   both timed here; the peak memory of the whole run.

The 3-NN error uses the paper's tie rule (:func:`convexmetric.classify.knn_error`).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import numpy as np

LEVELS = (1.59, 1.55, 1.50, 1.45, 1.40, 1.35)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=600.0, help="wall seconds from the start, setup included")
    ap.add_argument("--n-train", type=int, default=None, help="first N training images only (a quick look)")
    ap.add_argument("--solver", default="auto")
    args = ap.parse_args(argv)

    from convexmetric import LMNNProblem, datasets, solve
    from convexmetric.classify import knn_error
    from convexmetric.solvers import choose_solver_with_reason
    from convexmetric.solvers.first_order import best_multiple

    t_start = time.perf_counter()
    print(f"# MNIST, {time.strftime('%Y-%m-%d %H:%M')}, {platform.platform()}, {os.cpu_count()} CPUs, "
          f"budget {args.budget:.0f} s wall including setup")
    print("# command: " + " ".join(["python"] + sys.argv))
    t = time.perf_counter()
    tr, ytr, te, yte = datasets.load_mnist()
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    tr, te = datasets.deskew(tr), datasets.deskew(te)
    t_deskew = time.perf_counter() - t
    t = time.perf_counter()
    Xtr, Xte = datasets.pca_reduce(tr.reshape(len(tr), -1), te.reshape(len(te), -1), 164)
    t_pca = time.perf_counter() - t
    if args.n_train:
        Xtr, ytr = Xtr[:args.n_train], ytr[:args.n_train]
    t = time.perf_counter()
    problem = LMNNProblem(Xtr, ytr, k=3, mu=0.5)
    t_problem = time.perf_counter() - t
    setup = time.perf_counter() - t_start
    print("\n## 1. Setup\n")
    print("| step | s |\n|---|---|")
    for name, v in (("load", t_load), ("deskew (train + test)", t_deskew), ("PCA to 164", t_pca),
                    ("LMNNProblem (targets, pull matrix)", t_problem), ("total", setup)):
        print(f"| {name} | {v:.1f} |")
    # -- the job first: setup, then solve() with the rest of the budget ---------------------
    # -- 3. the default solve, with snapshots at every full pass --------------------------
    name, reason = choose_solver_with_reason(problem) if args.solver == "auto" else (args.solver, "asked for")
    snaps = []
    t_solve0 = time.perf_counter()

    def keep(info):
        if info.get("phase", "full pass") == "full pass" or "lower_bound" in info:
            snaps.append((time.perf_counter() - t_start, info["M"].copy(), info["objective"],
                          info.get("relative_gap")))

    left = args.budget - (time.perf_counter() - t_start)
    res = solve(problem, name, time_limit=max(left - 30.0, 10.0), callback=keep)
    t_solve = time.perf_counter() - t_solve0
    t_job = time.perf_counter() - t_start
    print(f"\n{problem!r}")
    e_euc = knn_error(Xtr, ytr, Xte, yte)
    print(f"3-NN test error, Euclidean (PCA 164): {100 * e_euc:.2f} %")
    print(f"\n## 2. solve(problem) -> {name!r} ({reason})\n")
    print(f"{res!r}")
    print(f"solve {res.solve_time:.1f} s + final certificate {res.certify_time:.1f} s; "
          f"ends {time.perf_counter() - t_start:.1f} s after the start")
    print("\n| wall s (from start) | objective | certified rel. gap | 3-NN test error % |")
    print("|---|---|---|---|")
    errors = []
    shown, last = [], -np.inf
    for i, snap in enumerate(snaps):  # one row at most every 20 s (each costs a 3-NN evaluation), and the last
        if snap[0] - last >= 20.0 or i == len(snaps) - 1:
            shown.append(snap)
            last = snap[0]
    for tw, M, f, gap in shown:
        e = knn_error(Xtr, ytr, Xte, yte, M)
        errors.append((tw, e))
        print(f"| {tw:.1f} | {f:.8g} | {'-' if gap is None else format(gap, '.2e')} | {100 * e:.2f} |", flush=True)
    e_final = knn_error(Xtr, ytr, Xte, yte, res.M)
    print(f"\nfinal: f = {res.fun:.8g}, certified relative gap {res.relative_gap:.2e}, "
          f"3-NN test error {100 * e_final:.2f} % (Euclidean {100 * e_euc:.2f} %), "
          f"{t_solve:.1f} s in solve(); the job (setup + solve) ended {t_job:.1f} s after the start")
    print("\n| 3-NN test error at most | first reached, wall s from start (setup included) |")
    print("|---|---|")
    for level in LEVELS:
        hit = next((tw for tw, e in errors if 100 * e <= level + 1e-9), None)
        print(f"| {level:.2f} % | {'not reached' if hit is None else format(hit, '.1f')} |")
    # -- 2. one exact pass against the distance products alone --------------------------
    work = problem.normalized()
    t = time.perf_counter()
    s0 = best_multiple(work, np.eye(work.d))
    t_best = time.perf_counter() - t
    M0 = s0 * np.eye(work.d)
    t = time.perf_counter()
    f0, _ = work.objective_and_subgradient(M0)
    t_pass = time.perf_counter() - t
    Z = work.embed(M0).Z
    t = time.perf_counter()
    rows = max(1, (64 << 20) // (8 * len(Z)))
    for lo in range(0, len(Z), rows):
        Z[lo:lo + rows] @ Z.T
    t_gemm = time.perf_counter() - t
    print("\n## 3. One exact pass at the best multiple of the identity (after the job)\n")
    print(f"best multiple: {s0:.4g} (f = {f0:.8g}), found in {t_best:.1f} s "
          "(a 1000-anchor sample, then one profiling pass)")
    print("| what | s |\n|---|---|")
    print(f"| exact pass: objective and subgradient over all {problem.n_candidate_triplets:.3g} triplets "
          f"| {t_pass:.2f} |")
    print(f"| float64 distance products Z_B Z^T alone, blocks of {rows} anchors | {t_gemm:.2f} |")
    print(f"\npass / products = {t_pass / t_gemm:.2f} (bar: at most 1.5)")

    print(f"\npeak memory (max RSS): {peak_rss_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
