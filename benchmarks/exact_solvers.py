"""Exact LMNN solvers side by side: wall time, iterations, objective, certified gap.

Run from the repository root:

    python benchmarks/exact_solvers.py > benchmarks/exact_solvers.txt

Problems: standardised full Iris and Wine (scikit-learn copies), and synthetic problems
(convexmetric.datasets.make_synthetic, n = 300, 3 classes, seed 0) with d in {5, 10, 20, 30};
k = 3, mu = 0.5, all impostor triplets. Each plain CVXPY SDP gets a backend time limit
(--sdp-time-limit); a run that hits it is reported with its backend status. Objectives and
gaps are always the problem's own (objective and certificate), never the backend's.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def problems(dims):
    from sklearn.datasets import load_iris, load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric.datasets import make_synthetic
    for name, loader in (("iris", load_iris), ("wine", load_wine)):
        X, y = loader(return_X_y=True)
        yield name, StandardScaler().fit_transform(X), y
    for d in dims:
        X, y = make_synthetic(n=300, d=d, n_classes=3, seed=0)
        yield f"synthetic d={d}", X, y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", type=int, nargs="*", default=[5, 10, 20, 30])
    ap.add_argument("--solvers", nargs="*", default=["hybrid", "active-set", "sdp-clarabel", "sdp-scs"])
    ap.add_argument("--sdp-time-limit", type=float, default=300.0,
                    help="backend time limit of the plain SDPs, seconds (default 300)")
    args = ap.parse_args(argv)

    import cvxpy

    import convexmetric
    from convexmetric import LMNNProblem, solve
    print(f"# convexmetric {convexmetric.__version__}, cvxpy {cvxpy.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# command: python benchmarks/exact_solvers.py {' '.join(sys.argv[1:])}".rstrip())
    hdr = f"| {'problem':<16} | {'T':>7} | {'solver':<12} | {'wall s':>7} | {'nit':>5} | {'objective':>16} " \
          f"| {'rel. gap':>8} | {'status':<18} | {'backend status':<18} |"
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for name, X, y in problems(args.dims):
        p = LMNNProblem(X, y, k=3, mu=0.5)
        best = {}
        for s in args.solvers:
            opts = {}
            if s == "sdp-scs":
                opts["backend_options"] = {"eps_abs": 1e-6, "eps_rel": 1e-6, "time_limit_secs": args.sdp_time_limit}
            elif s == "sdp-clarabel":
                opts["backend_options"] = {"time_limit": args.sdp_time_limit}
            t0 = time.perf_counter()
            try:
                r = solve(p, s, **opts)
            except MemoryError as exc:
                print(f"| {name:<16} | {p.n_triplets:>7} | {s:<12} | {'-':>7} | {'-':>5} | {'-':>16} | {'-':>8} "
                      f"| refused: memory     | {str(exc)[:18]:<18} |", flush=True)
                continue
            wall = time.perf_counter() - t0
            backend = r.info.get("backend_status") or (r.info.get("active_set") or {}).get("status") or ""
            if s == "active-set":
                backend = "/".join(str(x["backend_status"]) for x in r.info.get("rounds", []))[:18]
            best[s] = r.fun
            print(f"| {name:<16} | {p.n_triplets:>7} | {s:<12} | {wall:>7.2f} | {r.nit:>5} | {r.fun:>16.10f} "
                  f"| {r.relative_gap:>8.1e} | {r.status:<18} | {backend:<18} |", flush=True)
        if best:
            vals = np.array(list(best.values()))
            print(f"| {name:<16} | {'':>7} | {'max rel. diff':<12} | {'':>7} | {'':>5} "
                  f"| {np.ptp(vals) / vals.min():>16.1e} | {'':>8} | {'':<18} | {'':<18} |", flush=True)


if __name__ == "__main__":
    main()
