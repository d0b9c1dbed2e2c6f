"""``hybrid`` and ``band-ipm`` on one BLAS thread or on the library's default.

Run from the repository root (Isolet needs ``CONVEXMETRIC_DATA``; ``--no-isolet`` skips it):

    python benchmarks/blas_threads.py > benchmarks/blas_threads.txt

Both solvers now run on one BLAS thread (``Solver.blas_threads = 1``); the other setting
lifts that (``None``: OpenBLAS's default, one thread a core). Each problem is solved by
``solve(p, time_limit=...)`` (``auto``), both settings alternately, ``--repeats`` times each
in one process; the table gives the best wall time of each, their ratio and the certified
gaps (Isolet stops at its time limit: compare its gaps).
"""
from __future__ import annotations

import os
import sys

from against import ab_parser, alternate, blas_threads_of, header


def problems(isolet: bool):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    std = StandardScaler().fit_transform
    Xw, yw = load_wine(return_X_y=True)
    yield "wine 178 x 13, standardised", LMNNProblem(std(Xw), yw), {}
    Xc, yc = load_breast_cancer(return_X_y=True)
    yield "breast cancer 569 x 30, standardised", LMNNProblem(std(Xc), yc), {}
    Xd, yd = load_digits(return_X_y=True)
    Xtr, _, ytr, _ = train_test_split(Xd, yd, test_size=0.3, stratify=yd, random_state=0)
    for tol in (1e-3, 1e-6):
        yield f"digits 1257 x 64, standardised, tol {tol:g}", LMNNProblem(std(Xtr), ytr), {"tol": tol}
    X, y = make_synthetic(n=2000, d=50, n_classes=10, seed=0)
    yield "synthetic 2000 x 50, 10 classes", LMNNProblem(X, y), {}
    if isolet:
        from convexmetric.datasets import load_isolet, pca_reduce
        Itr, iy, Ite = load_isolet()[:3]
        yield "isolet 6238 x 172 (PCA), 100 s", LMNNProblem(pca_reduce(Itr, Ite, n_components=172)[0], iy), \
            {"time_limit": 100}


def main(argv=None):
    ap = ab_parser(__doc__)
    ap.add_argument("--no-isolet", action="store_true", help="skip Isolet (3.5 minutes a run)")
    args = ap.parse_args(argv)

    from convexmetric import solve
    print(header("blas_threads.py", sys.argv[1:]))
    print("| problem | solver | one BLAS thread s | default s | ratio | gap one / default |")
    print("|---|---|---|---|---|---|")
    isolet = not args.no_isolet and os.environ.get("CONVEXMETRIC_DATA")
    for label, p, opts in problems(bool(isolet)):
        def run(threads, p=p, opts=opts):
            from convexmetric.solvers.band_ipm import BandInteriorSolver
            from convexmetric.solvers.hybrid import HybridSolver
            with blas_threads_of((HybridSolver, BandInteriorSolver), threads):
                return solve(p, **opts)
        best, res = alternate({1: (lambda: run(1)), None: (lambda: run(None))},
                              1 if "time_limit" in opts else args.repeats)
        a, b = res[1], res[None]
        print(f"| {label} | {a.solver} | {best[1]:.2f} | {best[None]:.2f} | {best[None] / best[1]:.2f} "
              f"| {a.relative_gap:.1e} / {b.relative_gap:.1e} |", flush=True)
    print("\nratio = default time / one-thread time.")


if __name__ == "__main__":
    main()
