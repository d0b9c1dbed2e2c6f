"""Peak memory of the plain CVXPY SDP solvers against ``estimate_sdp_bytes``.

Run from the repository root (one subprocess per solve, so every peak is clean):

    python benchmarks/sdp_memory.py

Each row builds ``LMNNProblem(X, y, k=3, mu=0.5, triplets="all")`` on
``make_synthetic(n, d, n_classes=3, seed=0)`` in a fresh interpreter, imports everything
the solve needs, reads the peak resident set ``VmHWM`` from ``/proc/self/status``, runs
``solve(problem, solver)`` with the backend in that process (not in the stoppable child
process it normally runs in) and reads ``VmHWM`` again. The difference is the memory
the SDP solve added (build, backend, certificate); the table prints it beside the
estimate and their ratio. Linux only (``/proc``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: The repository root: the child processes import the package found there.
ROOT = Path(__file__).resolve().parents[1]

#: (n, d) problem sizes; each solve takes under 30 s on a 2-core machine.
SIZES = [(60, 4), (150, 5), (120, 8), (150, 10), (100, 20), (80, 30)]

_CHILD = r"""
import json, sys, time
import numpy as np
import cvxpy, clarabel, scs  # noqa: F401  (imports are not part of the solve's peak)
from convexmetric import LMNNProblem, solve
from convexmetric.datasets import make_synthetic
from convexmetric.solvers.sdp import estimate_sdp_bytes
import convexmetric.interrupt
# measure the backend in this process: by default it runs in a forked child, whose pages a
# parent's VmHWM does not see (and whose own resident set counts inherited pages)
convexmetric.interrupt.run_stoppable = lambda fn, timeout=None: fn()

def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

n, d, solver = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
X, y = make_synthetic(n, d, n_classes=3, seed=0)
p = LMNNProblem(X, y, k=3, mu=0.5, triplets="all")
before = hwm()
t0 = time.perf_counter()
res = solve(p, solver)
wall = time.perf_counter() - t0
added = hwm() - before
print(json.dumps({"n": n, "d": d, "solver": solver, "T": len(p.triplets), "pairs": p.triplets.n_pairs,
                  "estimate": estimate_sdp_bytes(len(p.triplets), p.triplets.n_pairs, d, solver.split("-")[1]),
                  "baseline": before, "peak": hwm(), "added": added, "wall": wall,
                  "status": res.status}))
"""


def measure(n: int, d: int, solver: str) -> dict:
    """Run one solve in a fresh interpreter and return its measurements."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(d), solver], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--solvers", nargs="+", default=["sdp-scs", "sdp-clarabel"])
    ap.add_argument("--sizes", nargs="+", default=[f"{n}x{d}" for n, d in SIZES], help="n x d, e.g. 300x5")
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    print(f"{'solver':<13} {'n':>4} {'d':>3} {'T':>7} {'pairs':>6} {'added MB':>9} {'estimate MB':>11} "
          f"{'est/added':>9} {'wall s':>7}")
    for solver in args.solvers:
        for n, d in sizes:
            r = measure(n, d, solver)
            print(f"{solver:<13} {n:>4} {d:>3} {r['T']:>7} {r['pairs']:>6} {r['added'] / 1e6:>9.1f} "
                  f"{r['estimate'] / 1e6:>11.1f} {r['estimate'] / max(r['added'], 1):>9.2f} {r['wall']:>7.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
