"""The blockwise pass with one and two worker threads: speed, and whether the bits agree.

Run from the repository root:

    python benchmarks/pass_workers.py --against REF > benchmarks/pass_workers.txt

Each case is one problem (``make_synthetic``, the paper's k = 3 targets) at a multiple of
the identity that puts the median target distance at twice the margin, so that millions
of triplets are active, as early in a solve. A fresh process times the full pass with the
gradient (``sweep(X=...)``: the products, the radius test and the Laplacian sums) and the
pass over its working set of impostor pairs (``pairs=``), each with 1 and 2 workers (one
BLAS thread each), best of 3.
It reports whether 1 and 2 workers, and two runs with 2 workers, return the same bits
(loss and gradient), and the peak of the memory NumPy allocates (``tracemalloc``) in one
more full pass with 2 workers and Huber weights (``gamma = 0.5``), beyond what the process
held before. The two trees run alternately, ``--repeats`` times each; the table
keeps each tree's fastest run.
"""
from __future__ import annotations

import os
import platform

from against import against_parser, ONE_THREAD, best_of_trees, head, worktree

CASES = [(3000, 64), (6000, 64), (12000, 32)]

CHILD = """
import hashlib, json, sys, time
import numpy as np
from convexmetric import LMNNProblem
from convexmetric.datasets import make_synthetic
from convexmetric.sweep import sweep
n, d = int(sys.argv[1]), int(sys.argv[2])
X, y = make_synthetic(n=n, d=d, n_classes=10, seed=0)
p = LMNNProblem(X, y)
t = np.where(p.targets >= 0, p.target_sq_dists(np.eye(d)), -np.inf)
scale = 2.0 / np.median(t[np.isfinite(t)])   # median target distance twice the margin: many impostors
M = scale * np.eye(d)
Z, t = p.embed(M).Z, scale * t
pairs = sweep(Z, t, p.labels, p.margin, keep_pairs=0.5).pairs

def digest(r):
    return hashlib.sha1(np.float64(r.loss).tobytes() + r.impostor_matrix.tobytes()
                        + r.target_weights.tobytes()).hexdigest()

out, digests = {}, {}
for mode, kw in (("full", {}), ("pairs", {"pairs": pairs})):
    for w in (1, 2, 2):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            r = sweep(Z, t, p.labels, p.margin, X=p.X, workers=w, **kw)
            best = min(best, time.perf_counter() - t0)
            digests.setdefault(mode, set()).add(digest(r))
        out[f"{mode}{w}"] = min(best, out.get(f"{mode}{w}", float("inf")))
import tracemalloc
tracemalloc.start()
sweep(Z, t, p.labels, p.margin, X=p.X, workers=2, gamma=0.5)
out["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
out["wall"] = out["full2"] + out["pairs2"]
out["same_bits"] = all(len(v) == 1 for v in digests.values())
out["n_pairs"] = len(pairs)
print(json.dumps(out))
"""


def main():
    args = against_parser(__doc__, repeats=2).parse_args()
    print(f"# pass_workers, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread per worker; "
          f"this tree: {head()} (+ working changes)")
    print(f"# command: python benchmarks/pass_workers.py --against {args.against}\n")
    print("| n x d | pass | tree | 1 worker s | 2 workers s | 1 / 2 workers | same bits (1, 2, 2 workers) "
          "| peak MiB, full pass |")
    print("|---" * 8 + "|")
    with worktree(args.against) as other:
        for case in CASES:
            old, new = best_of_trees(other, CHILD, case, args.repeats, ONE_THREAD)
            for mode, label in (("full", "full, with gradient"), ("pairs", f"{new['n_pairs']} working-set pairs")):
                for tree, r in ((args.against, old), ("this tree", new)):
                    peak = f"{r['peak_mib']:.0f}" if mode == "full" else ""
                    print(f"| {case[0]} x {case[1]} | {label} | {tree} | {r[mode + '1']:.3f} | {r[mode + '2']:.3f} "
                          f"| {r[mode + '1'] / r[mode + '2']:.2f}x | {'yes' if r['same_bits'] else 'no'} | {peak} |",
                          flush=True)
                print(f"| | | *{args.against} / this tree, 2 workers* | | "
                      f"{old[mode + '2'] / new[mode + '2']:.2f}x | | | |", flush=True)
    print("\n*same bits*: the loss, gradient and target weights hash the same over every run of the pass in "
          "that process, with 1 worker and twice with 2 (full and working-set passes counted separately).")


if __name__ == "__main__":
    main()
