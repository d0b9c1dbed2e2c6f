"""The first-order solvers on one BLAS thread or on the library's default.

Run from the repository root (the faces and MNIST need ``CONVEXMETRIC_DATA``; ``--no-data``
skips them):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/blas_threads_first_order.py \\
        > benchmarks/blas_threads_first_order.txt

``factored`` now runs on one BLAS thread (``Solver.blas_threads = 1``), as ``hybrid`` and
``band-ipm`` do (``benchmarks/blas_threads.txt``); ``fista``, ``subgradient`` and
``stochastic`` keep the library's default, one thread a core. Each row solves one problem
with a fixed iteration budget, both settings alternately, ``--repeats`` times each in one
process; the table gives the best wall time of each, their ratio and the objectives reached.
"""
from __future__ import annotations

import os
import sys

from against import ab_parser, alternate, blas_threads_of, header


def cases(data: bool):
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem, MultiMetricProblem
    from convexmetric.datasets import make_synthetic
    X, y = load_digits(return_X_y=True)
    digits = LMNNProblem(StandardScaler().fit_transform(X), y)
    Xs, ys = make_synthetic(n=2000, d=50, n_classes=10, seed=0)
    synthetic = LMNNProblem(Xs, ys)
    if data:
        from convexmetric.repro import load_raw
        from convexmetric.span import DataSpan
        Xf, yf = load_raw("ofaces", home=os.environ["CONVEXMETRIC_DATA"])
        yield "faces 400 x 4096 in their 399-dim span", LMNNProblem(DataSpan.of(Xf).coordinates(Xf), yf), \
            "factored", {"max_iter": 100}
    yield "digits 1797 x 64, standardised", digits, "factored", {"max_iter": 100}
    yield "synthetic 2000 x 50", synthetic, "factored", {"max_iter": 60}
    if data:
        from convexmetric import datasets
        tr, ytr, te, _ = datasets.load_mnist()
        tr, te = datasets.deskew(tr), datasets.deskew(te)
        Xm = datasets.pca_reduce(tr.reshape(len(tr), -1), te.reshape(len(te), -1), 164)[0]
        yield "MNIST 60000 x 164 (working sets)", LMNNProblem(Xm, ytr), "factored", {"max_iter": 20}
    yield "digits 1797 x 64, standardised", digits, "fista", {"max_iter": 150}
    yield "digits 1797 x 64, standardised", digits, "subgradient", {"max_iter": 150}
    yield "digits 1797 x 64, standardised", digits, "stochastic", {"max_iter": 300}
    yield "synthetic 2000 x 50", synthetic, "fista", {"max_iter": 60}
    yield "digits, one metric a class", MultiMetricProblem(digits.X, y), "fista", {"max_iter": 60}


def main(argv=None):
    ap = ab_parser(__doc__)
    ap.add_argument("--no-data", action="store_true", help="skip the faces and MNIST")
    args = ap.parse_args(argv)

    from convexmetric import solve
    from convexmetric.solvers import REGISTRY
    print(header("blas_threads_first_order.py", sys.argv[1:]))
    print("| problem | solver | budget | one BLAS thread s | default s | ratio | objective one / default |")
    print("|---|---|---|---|---|---|---|")
    data = not args.no_data and bool(os.environ.get("CONVEXMETRIC_DATA"))
    for label, p, name, opts in cases(data):
        cls = REGISTRY[name].load()

        def run(threads, p=p, name=name, opts=opts, cls=cls):
            with blas_threads_of((cls,), threads):
                return solve(p, name, tol=1e-9, **opts)
        best, res = alternate({1: (lambda: run(1)), None: (lambda: run(None))}, args.repeats)
        a, b = res[1], res[None]
        print(f"| {label} | {name} | {opts['max_iter']} iterations | {best[1]:.2f} | {best[None]:.2f} "
              f"| {best[None] / best[1]:.2f} | {a.fun:.8g} / {b.fun:.8g} |", flush=True)
    print("\nratio = default time / one-thread time.")


if __name__ == "__main__":
    main()
