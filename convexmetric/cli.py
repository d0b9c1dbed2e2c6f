"""Command line: learn a certified LMNN metric on a bundled data set.

``convexmetric`` (no arguments) standardises scikit-learn's Wine data, solves LMNN
(k = 3, mu = 0.5, all impostor triplets) with the automatically chosen solver and
prints the objective, the certified lower bound and gap, and 3-NN errors.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

BUNDLED = ("wine", "iris", "digits", "breast_cancer")


def _load(name: str):
    from sklearn import datasets
    loader = getattr(datasets, f"load_{name}")
    return loader(return_X_y=True)


def _knn_error(Z_train, y_train, Z_test, y_test, k=3):
    from sklearn.neighbors import KNeighborsClassifier
    clf = KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train)
    return float(np.mean(clf.predict(Z_test) != y_test))


def build_parser() -> argparse.ArgumentParser:
    from .solvers import REGISTRY
    p = argparse.ArgumentParser(prog="convexmetric", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=BUNDLED, default="wine",
                   help="bundled scikit-learn data set (default: wine)")
    p.add_argument("--solver", default="auto", choices=["auto", *REGISTRY],
                   help="solver name from the registry (default: auto)")
    p.add_argument("-k", type=int, default=3, help="target neighbours per point (default 3)")
    p.add_argument("--mu", type=float, default=0.5, help="push/pull trade-off in (0, 1) (default 0.5)")
    p.add_argument("--tol", type=float, default=None, help="target certified relative gap")
    p.add_argument("--time-limit", type=float, default=None, help="seconds for the solve phase")
    p.add_argument("--test-size", type=float, default=0.3,
                   help="held-out fraction for the 3-NN error report (default 0.3, stratified, seed 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    p.add_argument("--save", metavar="FILE.npy", help="save the learned metric M")
    p.add_argument("-v", "--verbose", action="store_true", help="log solver progress")
    p.add_argument("--progress", action="store_true", help="show a status line while solving")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from . import LMNNProblem, solve
    from .solvers import choose_solver

    X, y = _load(args.dataset)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=args.test_size, stratify=y,
                                          random_state=args.seed)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    t0 = time.perf_counter()
    problem = LMNNProblem(Xtr, ytr, k=args.k, mu=args.mu)
    solver = choose_solver(problem) if args.solver == "auto" else args.solver
    opts = {}
    if args.tol is not None:
        opts["tol"] = args.tol
    if args.time_limit is not None:
        opts["time_limit"] = args.time_limit
    print(f"data: {args.dataset}, {problem.n} training points x {problem.d} features, "
          f"{problem.classes.size} classes; {problem.triplet_form}")
    print(f"solver: {solver}" + (" (chosen by 'auto')" if args.solver == "auto" else ""))
    res = solve(problem, solver, verbose=args.verbose, progress=args.progress, **opts)
    wall = time.perf_counter() - t0
    L = res.L
    e_euc = _knn_error(Xtr, ytr, Xte, yte)
    e_lmnn = _knn_error(Xtr @ L.T, ytr, Xte @ L.T, yte)
    print(f"status: {res.status}")
    print(f"objective f(M)        = {res.fun:.10g}")
    print(f"certified lower bound = {res.lower_bound:.10g}")
    print(f"gap                   = {res.gap:.3g} (relative {res.relative_gap:.3g})")
    print(f"time: {wall:.2f} s (solve {res.solve_time:.2f} s, certify {res.certify_time:.2f} s)")
    print(f"3-NN test error: Euclidean {100 * e_euc:.2f} %, LMNN {100 * e_lmnn:.2f} % "
          f"({len(yte)} held-out points)")
    if args.save:
        np.save(args.save, res.M)
        print(f"metric saved to {args.save}")
    return 0 if res.status in ("optimal", "optimal_inaccurate") else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
