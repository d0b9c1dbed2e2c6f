"""The CVXPY SDPs with and without per-feature rescaling of their variables.

Run from the repository root:

    python benchmarks/sdp_scaling.py --against REF > benchmarks/sdp_scaling.txt

``SDPFormulation`` now solves for the metric of features rescaled to a unit root-mean-square
difference over the SDP's pairs, an exact change of variables (``REF`` is the revision
before it). Each case runs in a fresh process on one BLAS thread, on this tree and on
``REF`` alternately; the table gives wall times, their ratio, the certified gaps, the
statuses and the relative difference of the two objectives. "raw" is scikit-learn's data
as loaded (Wine's features span four orders of magnitude), "std" is standardised.
"""
from __future__ import annotations

import argparse
import os
import platform

from against import ONE_THREAD, ROOT, head, run_case, worktree

#: data, preprocessing, problem options (JSON), solver
CASES = [("wine", "raw", "{}", "hybrid"), ("wine", "raw", '{"margin": 10.0, "mu": 0.9}', "hybrid"),
         ("wine", "std", "{}", "hybrid"), ("iris", "raw", "{}", "hybrid"), ("iris", "std", "{}", "hybrid"),
         ("wine", "std", '{"multi": true}', "hybrid"), ("wine", "raw", '{"multi": true}', "hybrid"),
         ("iris", "raw", "{}", "sdp-clarabel"), ("iris", "std", "{}", "sdp-clarabel"),
         ("iris", "raw", "{}", "sdp-scs")]

CHILD = """
import json, sys, time, warnings
import numpy as np
from sklearn.datasets import load_iris, load_wine
from convexmetric import LMNNProblem, MultiMetricProblem, solve
warnings.simplefilter("ignore")
name, prep, opts, solver = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
X, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
if prep == "std":
    X = (X - X.mean(0)) / X.std(0)
p = (MultiMetricProblem if opts.pop("multi", False) else LMNNProblem)(X, y, **opts)
t = time.perf_counter()
r = solve(p, solver)
wall = time.perf_counter() - t
print(json.dumps(dict(wall=wall, status=r.status, gap=r.relative_gap, fun=r.fun)))
"""


def cell(r: dict) -> str:
    return f"{r['wall']:.2f} | {r['gap']:.1e} | {r['status']}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="git revision to compare with (run alternately)")
    args = parser.parse_args()
    print(f"# sdp_scaling, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread; "
          f"this tree: {head()} (+ working changes)")
    print(f"# command: python benchmarks/sdp_scaling.py --against {args.against}\n")
    cols = "wall s | certified gap | status"
    print(f"| data | options | solver | {args.against}: {cols} | this tree: {cols} | wall ratio "
          "| objective rel. diff |")
    print("|---" * 11 + "|")
    with worktree(args.against) as other:
        for case in CASES:
            old = run_case(other, CHILD, case, ONE_THREAD)
            new = run_case(ROOT, CHILD, case, ONE_THREAD)
            opts = case[2] if case[2] != "{}" else ""
            print(f"| {case[0]} {case[1]} | {opts} | {case[3]} | {cell(old)} | {cell(new)} "
                  f"| {old['wall'] / new['wall']:.2f}x | {(new['fun'] - old['fun']) / old['fun']:+.1e} |", flush=True)
    print("\n*wall ratio*: the old tree's wall time over this tree's; a negative objective difference: "
          "this tree's metric is the better one.")


if __name__ == "__main__":
    main()
