"""Do solvers keep their word on ``time_limit`` and Ctrl-C?

For every registered solver, on two problems (standardised Wine, enumerated triplets;
synthetic n = 300, d = 20, 3 classes, 180 000 triplets), this measures

* the overshoot of ``time_limit``: wall time of ``solve`` minus the limit minus the
  final certification's time (the bar: at most 1 s);
* the latency of Ctrl-C: SIGINT is sent to the process after ``--signal-at`` seconds
  and the time until ``solve`` returns the best certified point is recorded (bar: 1 s).

Run from the repository root:

    python benchmarks/limits.py > benchmarks/limits.txt
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import threading
import time

import numpy as np


def problems():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    X, y = load_wine(return_X_y=True)
    yield "wine", LMNNProblem(StandardScaler().fit_transform(X), y)
    X, y = make_synthetic(n=300, d=20, n_classes=3, seed=0)
    yield "synthetic d=20", LMNNProblem(X, y)


def timed(problem, solver, **opts):
    from convexmetric import solve
    t = time.perf_counter()
    r = solve(problem, solver, tol=1e-12, **opts)
    return r, time.perf_counter() - t


def with_sigint(problem, solver, at):
    fired = {}

    def fire():
        fired["t"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(at, fire)
    timer.start()
    try:
        r, _ = timed(problem, solver)
    finally:
        timer.cancel()
    return r, (time.perf_counter() - fired["t"]) if "t" in fired else float("nan")


def main():
    from convexmetric import available_solvers
    # a job started in the background by a non-interactive shell inherits SIGINT ignored;
    # Ctrl-C's handler must be Python's for this benchmark to measure anything
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=float, default=2.0, help="time_limit in seconds (default 2)")
    ap.add_argument("--signal-at", type=float, default=2.0, help="seconds before SIGINT (default 2)")
    args = ap.parse_args()
    print(f"# time_limit and Ctrl-C, {time.strftime('%Y-%m-%d')}, {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"# time_limit = {args.limit} s, SIGINT after {args.signal_at} s, tol = 1e-12 (no early finish)\n")
    print("| problem | solver | limit: wall s | certify s | overshoot s | status | "
          "SIGINT: latency s | status | certified rel. gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst_over, worst_lat = 0.0, 0.0
    for name, p in problems():
        for s in available_solvers():
            r, wall = timed(p, s, time_limit=args.limit)
            over = wall - args.limit - r.certify_time
            ri, lat = with_sigint(p, s, args.signal_at)
            worst_over, worst_lat = max(worst_over, over), max(worst_lat, np.nan_to_num(lat))
            print(f"| {name} | {s} | {wall:.2f} | {r.certify_time:.2f} | {over:+.2f} | {r.status} | "
                  f"{lat:.2f} | {ri.status} | {ri.relative_gap:.1e} |", flush=True)
    print(f"\nworst overshoot beyond limit + certification: {worst_over:.2f} s; worst Ctrl-C latency: {worst_lat:.2f} s")
    print("(a negative overshoot: the solver finished, or proved optimality, before its limit; "
          "latency nan: it finished before the signal)")


if __name__ == "__main__":
    main()
