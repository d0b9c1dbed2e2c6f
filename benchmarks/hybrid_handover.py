"""When ``hybrid`` hands over from FISTA to the exact active set: capped at 100 iterations or not.

Run from the repository root:

    python benchmarks/hybrid_handover.py > benchmarks/hybrid_handover.txt

Each problem is solved by ``hybrid`` with its default first-phase cap (``warm_iters=100``)
and with the cap lifted (``warm_iters=100_000``, the FISTA default and the behaviour before
the cap: the phase ran until its certified gap reached 1e-3 or it stalled). Every solve
starts from the identity: the cap does not apply to warm starts. The two alternate,
``--repeats`` times each, in one process; the table gives the best wall time of each, their
ratio, FISTA's iterations, the active set's rounds, and the relative difference of the two
certified objectives. Wine splits follow Table 1's protocol: stratified 70/30 split
``random_state = s``, target neighbours Euclidean in the raw features, the problem in
standardised coordinates.
"""
from __future__ import annotations

import sys

import numpy as np

from against import ab_parser, alternate, header, wine_table1_splits

CAPPED, UNCAPPED = 100, 100_000


def problems(n_splits):
    from sklearn.datasets import load_iris, load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.multimetric import MultiMetricProblem
    from convexmetric.datasets import make_synthetic
    Xi, yi = load_iris(return_X_y=True)
    Xw, yw = load_wine(return_X_y=True)
    std = StandardScaler().fit_transform
    yield "iris, standardised", LMNNProblem(std(Xi), yi)
    yield "wine, standardised", LMNNProblem(std(Xw), yw)
    yield "wine, raw", LMNNProblem(Xw, yw)
    yield "wine, raw, margin 10, mu 0.9", LMNNProblem(Xw, yw, margin=10.0, mu=0.9)
    yield "iris, one metric a class", MultiMetricProblem(std(Xi), yi)
    yield "wine, one metric a class", MultiMetricProblem(std(Xw), yw)
    for d in (10, 16):
        X, y = make_synthetic(n=300, d=d, n_classes=3, seed=0)
        yield f"synthetic n 300, d {d}", LMNNProblem(X, y)
    yield from wine_table1_splits(n_splits)


def main(argv=None):
    ap = ab_parser(__doc__, splits=True)
    args = ap.parse_args(argv)

    from convexmetric import solve
    print(header("hybrid_handover.py", sys.argv[1:]))
    print("| problem | capped s | uncapped s | uncapped / capped | FISTA its capped / uncapped "
          "| rounds capped / uncapped | gap capped / uncapped | objective rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, p in problems(args.splits):
        best, res = alternate({cap: (lambda cap=cap: solve(p, "hybrid", warm_iters=cap))
                               for cap in (CAPPED, UNCAPPED)}, args.repeats)
        a, b = res[CAPPED], res[UNCAPPED]
        ratio = best[UNCAPPED] / best[CAPPED]
        ratios.append(ratio)
        rounds = [len(x.info["active_set"]["rounds"] or []) for x in (a, b)]
        print(f"| {name} | {best[CAPPED]:.2f} | {best[UNCAPPED]:.2f} | {ratio:.2f} "
              f"| {a.info['fista']['nit']} / {b.info['fista']['nit']} | {rounds[0]} / {rounds[1]} "
              f"| {a.relative_gap:.0e} / {b.relative_gap:.0e} | {abs(a.fun - b.fun) / b.fun:.1e} |", flush=True)
    r = np.array(ratios)
    print(f"\nuncapped / capped wall time: min {r.min():.2f}, median {np.median(r):.2f}, max {r.max():.2f} "
          f"over {r.size} problems")


if __name__ == "__main__":
    main()
