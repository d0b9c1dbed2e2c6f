"""FISTA's certificate checks: how many a run makes, and what they cost it.

Run from the repository root:

    python benchmarks/fista_checks.py [--against REF] > benchmarks/fista_checks.txt

Each row is ``solve(problem, solver, tol=..., time_limit=...)`` on one BLAS thread, run in
a fresh process; *checks* counts the iterations that computed a certificate. With
``--against REF`` every row is also run, alternately, on the package as of git revision
``REF`` (a temporary worktree), and the table gives the ratio of their wall times, so the
comparison is measured in one run on one (noisy) machine. Rows that stop at their time
limit compare by iteration rate and final gap rather than wall time.
"""
from __future__ import annotations

import argparse
import os
import platform

from against import ONE_THREAD, ROOT, head, run_case, worktree

#: problem, solver, tol, time limit (s)
CASES = [("iris", "fista", 1e-6, 120), ("wine", "fista", 1e-6, 120), ("digits", "fista", 1e-4, 120),
         ("synthetic", "fista", 1e-3, 120), ("wine", "hybrid", 1e-8, 120)]

CHILD = """
import json, sys, time, warnings
import numpy as np
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.preprocessing import StandardScaler
from convexmetric import LMNNProblem, solve
warnings.simplefilter("ignore")
name, solver, tol, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
if name == "synthetic":   # n = 2000, d = 50, 10 overlapping classes
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    X = rng.normal(size=(2000, 50)) + 0.5 * rng.normal(size=(10, 50))[y]
else:
    X, y = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name](return_X_y=True)
    X = StandardScaler().fit_transform(X[:, X.std(0) > 0])
p = LMNNProblem(X, y)
t = time.perf_counter()
r = solve(p, solver, tol=tol, time_limit=limit)
wall = time.perf_counter() - t
checks = sum(1 for rec in r.history if "lower_bound" in rec)
print(json.dumps(dict(n=p.n, d=p.d, solver=r.solver, status=r.status, wall=wall, nit=r.nit,
                      checks=checks, gap=r.relative_gap)))
"""


def cell(r: dict) -> str:
    return f"{r['wall']:.1f} | {r['nit']} | {r['checks']} | {r['gap']:.1e} | {r['status']}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="git revision to compare with (run alternately)")
    args = parser.parse_args()
    print(f"# fista_checks, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread; "
          f"this tree: {head()} (+ working changes)")
    print(f"# command: python benchmarks/fista_checks.py{' --against ' + args.against if args.against else ''}\n")
    with worktree(args.against) as other:
        cols = "wall s | iterations | checks | certified gap | status"
        if other is None:
            print(f"| problem | n x d | solver | tol | {cols} |")
            print("|---" * 9 + "|")
        else:
            print(f"| problem | n x d | solver | tol | {args.against}: {cols} | this tree: {cols} "
                  "| wall ratio | iterations / s ratio |")
            print("|---" * 16 + "|")
        for case in CASES:
            new = run_case(ROOT, CHILD, case, ONE_THREAD)
            lead = f"| {case[0]} | {new['n']} x {new['d']} | {case[1]} | {case[2]:g} |"
            if other is None:
                print(f"{lead} {cell(new)} |", flush=True)
                continue
            old = run_case(other, CHILD, case, ONE_THREAD)
            speed = (new["nit"] / new["wall"]) / (old["nit"] / old["wall"])
            print(f"{lead} {cell(old)} | {cell(new)} | {old['wall'] / new['wall']:.1f}x | {speed:.1f}x |",
                  flush=True)
        if other is not None:
            print("\n*wall ratio*: the old tree's wall time over this tree's (equal where both stop at the "
                  "time limit); *iterations / s ratio*: this tree's iteration rate over the old tree's.")

if __name__ == "__main__":
    main()
