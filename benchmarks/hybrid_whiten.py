"""``hybrid`` with its FISTA phase in pull-whitened coordinates or in the data's own.

Run from the repository root:

    python benchmarks/hybrid_whiten.py > benchmarks/hybrid_whiten.txt

``hybrid`` warm-starts its exact active set with FISTA. With ``whiten=True`` (the default)
that phase works on ``problem.pull_whitened()``, where the pull matrix is the identity: an
exact change of variables, so the optimum and the certificate are the same. ``whiten=False``
is the behaviour before. Each problem is solved from the Euclidean metric at ``hybrid``'s
tolerance (1e-8), both settings alternately, ``--repeats`` times each in one process; the
table gives the best wall time of each, their ratio, FISTA's iterations, the active set's
rounds, the certified gaps and the relative difference of the objectives. "raw" is
scikit-learn's data as loaded; Wine splits follow Table 1's protocol (targets in the raw
features, the problem standardised).
"""
from __future__ import annotations

import sys

import numpy as np

from against import ab_parser, alternate, header, wine_table1_splits


def problems(n_splits):
    from sklearn.datasets import load_iris, load_wine
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    std = StandardScaler().fit_transform
    Xi, yi = load_iris(return_X_y=True)
    Xw, yw = load_wine(return_X_y=True)
    yield "iris, raw", LMNNProblem(Xi, yi)
    yield "iris, standardised", LMNNProblem(std(Xi), yi)
    yield "wine, raw", LMNNProblem(Xw, yw)
    yield "wine, raw, margin 10, mu 0.9", LMNNProblem(Xw, yw, margin=10.0, mu=0.9)
    yield "wine, standardised", LMNNProblem(std(Xw), yw)
    for d in (10, 16):
        X, y = make_synthetic(n=300, d=d, n_classes=3, seed=0)
        yield f"synthetic n 300, d {d}", LMNNProblem(X, y)
        yield f"synthetic n 300, d {d}, features scaled 1e-2..1e2", LMNNProblem(X * 10.0 ** np.linspace(-2, 2, d), y)
    yield from wine_table1_splits(n_splits)


def main(argv=None):
    ap = ab_parser(__doc__, splits=True)
    args = ap.parse_args(argv)

    from convexmetric import solve
    print(header("hybrid_whiten.py", sys.argv[1:]))
    print("| problem | whitened s | before s | ratio | FISTA its | rounds | gap whitened / before "
          "| objective rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for label, p in problems(args.splits):
        best, res = alternate({w: (lambda w=w: solve(p, "hybrid", whiten=w)) for w in (True, False)}, args.repeats)
        a, b = res[True], res[False]
        ratio = best[False] / best[True]
        ratios.append(ratio)
        rounds = [len(x.info["active_set"]["rounds"] or []) for x in (a, b)]
        print(f"| {label} | {best[True]:.2f} | {best[False]:.2f} | {ratio:.2f} "
              f"| {a.info['fista']['nit']} / {b.info['fista']['nit']} | {rounds[0]} / {rounds[1]} "
              f"| {a.relative_gap:.0e} / {b.relative_gap:.0e} | {(a.fun - b.fun) / b.fun:+.1e} |", flush=True)
    r = np.array(ratios)
    print(f"\nratio = time before / time whitened: min {r.min():.2f}, median {np.median(r):.2f}, "
          f"max {r.max():.2f} over {r.size} problems. A negative objective difference: the whitened run's "
          "metric is the better one.")


if __name__ == "__main__":
    main()
