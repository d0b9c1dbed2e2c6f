"""Backend solves in a forked child: what they cost the exact solvers on small problems.

Run from the repository root (the table-1 case needs ``CONVEXMETRIC_DATA``):

    python benchmarks/backend_child.py [--against REF] [--repeats N] > benchmarks/backend_child.txt

Every CVXPY backend call (the active-set SDP rounds, dual polishing) runs in a forked
child so that Ctrl-C and deadlines stop it (``convexmetric.interrupt``). Each case runs
in a fresh process on one BLAS thread, ``--repeats`` times, alternating with the package
as of git revision ``REF`` (a temporary worktree) when given; the table gives the median
wall times, their ratio, and a result that must agree between the trees. Cases:

* ``table1 small sets``: ``convexmetric.repro.run`` on iris, wine and bal, every method,
  one split; *result* is the mean of its test errors (%).
* ``wine hybrid`` / ``wine active-set``: ``solve`` on standardised Wine, tol 1e-8;
  *result* is the objective.
* ``wine hybrid after the user's Clarabel``: the same after the process solved an SDP of
  its own with Clarabel (which starts Clarabel's thread pool), with a 60 s time limit.
* ``wine hybrid beside a waiting thread``: the same while another thread of the process
  waits, so the children come from the fork server (started in the timed part).
* ``wine hybrid beside matrix products``: the same while another thread multiplies
  matrices, on OpenBLAS's default threads, where forking the process itself can hang in
  OpenBLAS; a run still going after :data:`HANG_SECONDS` is killed and reported ``hung``.
* ``100 small SDPs`` (alone, beside a waiting thread, beside matrix products): 100 calls
  of ``run_backend`` on a 3 x 3 SDP, the cost of each child (a fork server's start
  included); *result* is the sum of their optimal values.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess

from against import ONE_THREAD, ROOT, head, run_case, worktree

CASES = ["table1 small sets", "wine hybrid", "wine active-set", "wine hybrid after the user's Clarabel",
         "wine hybrid beside a waiting thread", "wine hybrid beside matrix products",
         "100 small SDPs", "100 small SDPs beside a waiting thread", "100 small SDPs beside matrix products"]

#: Seconds after which a case is reported ``hung`` (every case here takes a few seconds at most).
HANG_SECONDS = 120

CHILD = """
import functools, json, sys, tempfile, time, warnings
import numpy as np
warnings.simplefilter("ignore")
case = sys.argv[1]
if case == "table1 small sets":
    from pathlib import Path
    from convexmetric.repro import METHODS, run
    t = time.perf_counter()
    rows = run(["iris", "wine", "bal"], list(METHODS), Path(tempfile.mkdtemp()), n_splits=1, progress=False)
    wall = time.perf_counter() - t
    print(json.dumps(dict(wall=wall, status="done", result=float(np.mean([r["mean"] for r in rows])))))
    sys.exit(0)
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from convexmetric import LMNNProblem, solve
if case.endswith("after the user's Clarabel"):
    import cvxpy as cp
    a = cp.Variable(300)
    C = np.random.default_rng(0).normal(size=(169, 300))
    S = 300 * np.eye(13) + cp.reshape(C @ a, (13, 13), order="F")
    cp.Problem(cp.Maximize(cp.sum(a)), [a >= 0, a <= 1, 0.5 * (S + S.T) >> 0]).solve(solver="CLARABEL")
if case.endswith("beside a waiting thread") or case.endswith("beside matrix products"):
    import threading
    stop = threading.Event()
    def products():
        x = np.random.default_rng(0).standard_normal((300, 300))
        while not stop.is_set():
            x = x @ x
            x /= np.abs(x).max()
    threading.Thread(target=stop.wait if "waiting" in case else products, daemon=True).start()
if case.startswith("100 small SDPs"):
    import cvxpy as cp
    from convexmetric.solvers.sdp import run_backend
    try:
        from convexmetric.solvers.sdp import variable_values
    except ImportError:  # a tree from before the fork server: its children are forked here
        variable_values = lambda *v: tuple(x.value for x in v)
    total, t = 0.0, time.perf_counter()
    for i in range(100):
        S = cp.Variable((3, 3), symmetric=True)
        prob = cp.Problem(cp.Minimize(cp.trace(np.diag([1.0, 2.0, 3.0 + i]) @ S)), [S >> 0, S[0, 0] + S[1, 1] >= 1])
        status, (value,), _ = run_backend(prob, "clarabel", {}, functools.partial(variable_values, S))
        total += float(np.trace(np.diag([1.0, 2.0, 3.0 + i]) @ value))
    print(json.dumps(dict(wall=time.perf_counter() - t, status=status, result=total)))
    sys.exit(0)
X, y = load_wine(return_X_y=True)
p = LMNNProblem(StandardScaler().fit_transform(X), y)
t = time.perf_counter()
r = solve(p, case.split()[1], tol=1e-8, time_limit=60)
print(json.dumps(dict(wall=time.perf_counter() - t, status=r.status, result=r.fun)))
"""


def run_or_hang(tree, case: str, env: dict) -> dict:
    try:
        return run_case(tree, CHILD, [case], env, timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        return dict(wall=float(HANG_SECONDS), status="hung", result=float("nan"))


def cell(runs) -> str:
    return (f"{statistics.median(r['wall'] for r in runs):.2f} | {runs[0]['result']:.10g} | "
            f"{', '.join(sorted({r['status'] for r in runs}))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="git revision to compare with (run alternately)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case on each tree")
    args = parser.parse_args()
    print(f"# backend_child, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread (matrix products: "
          f"OpenBLAS's default); "
          f"this tree: {head()} (+ working changes)")
    print(f"# command: python benchmarks/backend_child.py"
          f"{' --against ' + args.against if args.against else ''} --repeats {args.repeats}\n")
    cols = "median wall s | result | status"
    with worktree(args.against) as other:
        if other is None:
            print(f"| case | {cols} |\n" + "|---" * 4 + "|")
        else:
            print(f"| case | {args.against}: {cols} | this tree: {cols} | wall ratio |\n" + "|---" * 8 + "|")
        for case in CASES:
            new, old = [], []
            env = {} if case.endswith("matrix products") else ONE_THREAD
            for _ in range(args.repeats):
                if other is not None:
                    old.append(run_or_hang(other, case, env))
                new.append(run_or_hang(ROOT, case, env))
            if other is None:
                print(f"| {case} | {cell(new)} |", flush=True)
                continue
            ratio = statistics.median(r["wall"] for r in old) / statistics.median(r["wall"] for r in new)
            print(f"| {case} | {cell(old)} | {cell(new)} | {ratio:.2f}x |", flush=True)
        if other is not None:
            print("\n*wall ratio*: the old tree's median wall time over this tree's; *result* is the "
                  "first run's, and must agree between the trees unless one stopped at its time limit; "
                  f"*hung*: killed after {HANG_SECONDS} s, which stands as its wall time.")


if __name__ == "__main__":
    main()
