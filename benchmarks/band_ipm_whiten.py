"""``band-ipm`` with its first-order phase in pull-whitened coordinates or in the data's own.

Run from the repository root:

    python benchmarks/band_ipm_whiten.py > benchmarks/band_ipm_whiten.txt

``band-ipm`` runs L-BFGS on the factor ``L`` before its band interior point. With
``whiten=True`` (the default) that phase works on ``problem.pull_whitened()``, where the
pull matrix is the identity: an exact change of variables, so the optimum and the
certificate are the same, but the phase no longer crawls when the features' scales differ.
``whiten=False`` is the behaviour before. Each problem is solved at ``auto``'s tolerance
(1e-3) from the Euclidean metric, both settings alternately, ``--repeats`` times each in one
process; the table gives the best wall time of each, their ratio, the certified gaps and
statuses, and the relative difference of the objectives. "raw" is scikit-learn's data as
loaded (digits keeps its constant pixels), "std" is standardised (constant columns left at 0).
"""
from __future__ import annotations

import sys

import numpy as np

from against import ab_parser, alternate, header


def problems():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    std = StandardScaler().fit_transform
    Xc, yc = load_breast_cancer(return_X_y=True)
    yield "breast cancer 569 x 30, raw", LMNNProblem(Xc, yc)
    yield "breast cancer 569 x 30, std", LMNNProblem(std(Xc), yc)
    Xd, yd = load_digits(return_X_y=True)
    yield "digits 1797 x 64, raw", LMNNProblem(Xd, yd)
    yield "digits 1797 x 64, std", LMNNProblem(std(Xd), yd)
    yield "digits 1797 x 40 (PCA)", LMNNProblem(PCA(40, random_state=0).fit_transform(Xd), yd)
    for n, d, c in ((1000, 40, 3), (2000, 50, 10)):
        X, y = make_synthetic(n=n, d=d, n_classes=c, seed=0)
        yield f"synthetic {n} x {d}, {c} classes", LMNNProblem(X, y)


def main(argv=None):
    ap = ab_parser(__doc__, repeats=1)
    args = ap.parse_args(argv)

    from convexmetric import solve
    from convexmetric.solvers import AUTO_TOL, choose_solver_with_reason
    print(header("band_ipm_whiten.py", sys.argv[1:]))
    print("| problem | whitened s | before s | ratio | gap (status) whitened | gap (status) before "
          "| objective rel. diff |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for label, p in problems():
        assert choose_solver_with_reason(p)[0] == "band-ipm", label
        best, res = alternate({w: (lambda w=w: solve(p, "band-ipm", tol=AUTO_TOL, whiten=w)) for w in (True, False)},
                              args.repeats)
        a, b = res[True], res[False]
        ratio = best[False] / best[True]
        ratios.append(ratio)
        print(f"| {label} | {best[True]:.2f} | {best[False]:.2f} | {ratio:.1f} | {a.relative_gap:.1e} ({a.status}) "
              f"| {b.relative_gap:.1e} ({b.status}) | {(a.fun - b.fun) / b.fun:+.1e} |", flush=True)
    print(f"\nratio = time before / time whitened; median {np.median(ratios):.1f}, range "
          f"{min(ratios):.1f}-{max(ratios):.1f}. A negative objective difference: the whitened run's metric "
          "is the better one.")


if __name__ == "__main__":
    main()
