"""``fista``, ``subgradient`` and ``stochastic`` iterating on the pull-whitened twin, or on the
problem as given.

Run from the repository root:

    CONVEXMETRIC_DATA=../shared/data python benchmarks/first_order_whiten.py > benchmarks/first_order_whiten.txt

With ``whiten=True`` (the default) each of the three runs on ``problem.pull_whitened()``,
where the pull matrix is the identity: an exact change of variables ``M = W M' W^T``, so the
optimum and the certificate are those of the problem, and the run starts at the same metric.
``whiten=False`` is the behaviour before. Each (problem, solver) is run both ways,
alternately, ``--repeats`` times each in one process, from the solver's own start, with its
tolerance (fista 1e-4, subgradient 1e-4, stochastic 1e-3) and a time limit (``--budget``
seconds; Table 1's letters and Isolet problems ``--large-budget``). The table gives each
setting's best wall time, its status and certified relative gap; the ratio is the time
without whitening over the time with it where both reached the tolerance, and ``>= x`` where
only the whitened run did (the other ran out of time). "raw" is scikit-learn's data as
loaded; letters and Isolet are split 0 of Table 1's protocol (``paper_repro``), needing
``CONVEXMETRIC_DATA``. With one metric per class the twin whitens the summed pull matrix
and maps every class metric with the same ``W``.
"""
from __future__ import annotations

import sys

import numpy as np

from against import ab_parser, alternate, header

SOLVERS = {"fista": 1e-4, "subgradient": 1e-4, "stochastic": 1e-3}


def small_problems():
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    std = StandardScaler().fit_transform
    for name, load in (("iris", load_iris), ("wine", load_wine), ("breast cancer", load_breast_cancer)):
        X, y = load(return_X_y=True)
        yield f"{name}, raw", LMNNProblem(X, y)
        yield f"{name}, standardised", LMNNProblem(std(X), y)
    X, y = load_digits(return_X_y=True)
    yield "digits 600 x 64, raw", LMNNProblem(X[:600], y[:600])
    X, y = make_synthetic(n=300, d=10, n_classes=3, seed=0)
    yield "synthetic n 300, d 10", LMNNProblem(X, y)
    yield "synthetic n 300, d 10, features scaled 1e-2..1e2", LMNNProblem(X * 10.0 ** np.linspace(-2, 2, 10), y)


def multi_problems():
    """One metric per class (``fista`` is the solver ``auto`` picks for these with implicit triplets)."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric import MultiMetricProblem
    from convexmetric.datasets import make_synthetic
    X, y = load_wine(return_X_y=True)
    yield "wine, raw, one metric a class", MultiMetricProblem(X, y)
    yield "wine, standardised, one metric a class", MultiMetricProblem(StandardScaler().fit_transform(X), y)
    X, y = make_synthetic(n=300, d=10, n_classes=3, seed=0)
    yield ("synthetic n 300, d 10, features scaled 1e-2..1e2, one metric a class",
           MultiMetricProblem(X * 10.0 ** np.linspace(-2, 2, 10), y))


def table1_problem(name, multi=False):
    from convexmetric.repro import PROTOCOLS, SplitData, load_raw, make_split
    proto = PROTOCOLS[name]
    return SplitData(proto, *make_split(proto, load_raw(name), 0, 0, False)).problem(multi=multi)


def row(label, solver, p, tol, budget, repeats):
    from convexmetric import solve
    runs = {w: (lambda w=w: solve(p, solver, tol=tol, time_limit=budget, whiten=w)) for w in (True, False)}
    best, res = alternate(runs, repeats)
    a, b = res[True], res[False]
    if a.status == "optimal" and b.status == "optimal":
        ratio = f"{best[False] / best[True]:.2f}"
    elif a.status == "optimal":
        ratio = f">= {best[False] / best[True]:.1f}"
    else:
        ratio = "-"
    print(f"| {label} | {solver} | {best[True]:.2f} | {a.status} | {a.relative_gap:.1e} | {best[False]:.2f} "
          f"| {b.status} | {b.relative_gap:.1e} | {ratio} |", flush=True)
    return a, b, best


def _time_ratios(pairs) -> str:
    """Time before over time whitened, where both runs reached the tolerance."""
    both = [best[False] / best[True] for a, b, best in pairs if a.status == b.status == "optimal"]
    if not both:
        return ""
    return (f"Where both reached the tolerance ({len(both)} runs), time before over time whitened: "
            f"min {min(both):.2f}, median {np.median(both):.2f}, max {max(both):.2f}.")


def main(argv=None):
    ap = ab_parser(__doc__)
    ap.add_argument("--budget", type=float, default=10.0, help="time limit of each small run (s)")
    ap.add_argument("--large-budget", type=float, default=60.0, help="time limit of letters / Isolet runs (s)")
    args = ap.parse_args(argv)

    print(header("first_order_whiten.py", sys.argv[1:]))
    print("| problem | solver | whitened s | status | gap | before s | status | gap | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    pairs = [row(label, solver, p, tol, args.budget, args.repeats)
             for label, p in small_problems() for solver, tol in SOLVERS.items()]
    pairs += [row(label, "fista", p, SOLVERS["fista"], args.budget, args.repeats) for label, p in multi_problems()]
    pairs += [row(f"{name} split 0 (Table 1){', one metric a class' if multi else ''}", "fista",
                  table1_problem(name, multi), SOLVERS["fista"], args.large_budget, 1)
              for multi in (False, True) for name in ("letters", "isolet")]
    ratio = np.array([a.relative_gap / max(b.relative_gap, 1e-300) for a, b, _ in pairs])
    print(f"\nCertified gap at the end, whitened over before: {np.sum(ratio < 0.5)} runs below 0.5, "
          f"{np.sum((ratio >= 0.5) & (ratio <= 2))} within 0.5-2, {np.sum(ratio > 2)} above 2; median "
          f"{np.median(ratio):.2g}. {_time_ratios(pairs)} Time limit {args.budget:g} s "
          f"({args.large_budget:g} s for letters and Isolet, one run each); best of the repeats.")


if __name__ == "__main__":
    main()
