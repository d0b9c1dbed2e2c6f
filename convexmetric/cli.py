"""Command line: learn a certified LMNN metric on a bundled data set.

``convexmetric`` (no arguments) splits scikit-learn's Wine data 70/30 (stratified,
seed 0), standardises both parts with a scaler fitted on the training part, solves
LMNN on the training part (k = 3, mu = 0.5, margin 1, all impostor triplets) with the
automatically chosen solver, and prints the setting, the solver and why it was
chosen, the objective, the certified lower bound and gap, the held-out 3-NN errors
and what to try next.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

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
    p.add_argument("--margin", type=float, default=1.0, help="margin impostors must keep (default 1)")
    p.add_argument("--tol", type=float, default=None, help="target certified relative gap")
    p.add_argument("--time-limit", type=float, default=None, help="seconds for the solve phase")
    p.add_argument("--test-size", type=float, default=0.3,
                   help="held-out fraction for the 3-NN error report (default 0.3, stratified, seed 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    p.add_argument("--save", metavar="FILE",
                   help="save the learned metric M with numpy.save (.npy is appended if missing); "
                        "load it with numpy.load")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log convexmetric's progress (third-party solver output stays off)")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar while solving (plain lines when not on a terminal)")
    return p


def _configure_logging(verbose: bool) -> None:
    """Our logger at INFO with ``-v``; every other logger (CVXPY, ...) at WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("convexmetric").setLevel(logging.INFO if verbose else logging.WARNING)


NEXT_STEPS = """\
next steps:
  convexmetric --solver band-ipm          another exact solver (all of them: convexmetric --help)
  convexmetric --tol 1e-4 --time-limit 10 trade certified accuracy for time
  convexmetric --dataset digits -v        a larger data set, with the solver's log
  in Python, the scikit-learn estimator:
    make_pipeline(StandardScaler(), convexmetric.estimator.LMNN(), KNeighborsClassifier(3))
  convexmetric-repro                      the tables of Weinberger & Saul (JMLR 2009)"""


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 when the solve certified)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not 0 < args.test_size < 1:
        parser.error(f"--test-size must lie in (0, 1), got {args.test_size}")
    save = None
    if args.save:
        save = Path(args.save if args.save.endswith(".npy") else args.save + ".npy")
        if not save.parent.is_dir():  # fail before the solve, not after it
            parser.error(f"--save: directory {save.parent} does not exist")
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from . import LMNNProblem, solve
    from .solvers import choose_solver_with_reason

    X, y = _load(args.dataset)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=args.test_size, stratify=y,
                                          random_state=args.seed)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    t0 = time.perf_counter()
    problem = LMNNProblem(Xtr, ytr, k=args.k, mu=args.mu, margin=args.margin)
    if args.solver == "auto":
        solver, reason = choose_solver_with_reason(problem)
        how = f"chosen by 'auto'\n  because {reason}"
    else:
        solver, how = args.solver, "given by --solver"
    opts = {}
    if args.tol is not None:
        opts["tol"] = args.tol
    if args.time_limit is not None:
        opts["time_limit"] = args.time_limit
    print(f"data: {args.dataset} (scikit-learn), {problem.n} training points x {problem.d} features, "
          f"{problem.classes.size} classes; {problem.triplet_form}")
    print(f"split: stratified train/test, test fraction {args.test_size:g}, seed {args.seed}: "
          f"{len(ytr)} training, {len(yte)} held-out points")
    print("scaling: StandardScaler fitted on the training split (zero mean, unit variance "
          "per feature), applied to both splits")
    print(f"LMNN: k = {problem.k} target neighbours, mu = {problem.mu:g}, margin = {problem.margin:g}")
    print(f"solver: {solver}, {how}")
    sys.stdout.flush()  # before the solver's progress or log output on stderr
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
    if save is not None:
        try:
            np.save(save, res.M)
        except OSError as exc:
            print(f"could not save the metric to {save}: {exc}", file=sys.stderr)
            return 2
        print(f"metric M ({problem.d} x {problem.d}) saved to {save}; load it with numpy.load")
    print(NEXT_STEPS)
    return 0 if res.status in ("optimal", "optimal_inaccurate") else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
