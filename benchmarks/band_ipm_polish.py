"""``band-ipm`` with and without dual polishing in its first-order phase's certificates.

Run from the repository root:

    python benchmarks/band_ipm_polish.py > benchmarks/band_ipm_polish.txt

``band-ipm`` runs the factored first-order phase in bursts and certifies each burst's
metric before the dual ascent and the margin-band interior point take over. At
``d <= certificate.POLISH_MAX_DIM`` (40) that certificate used to polish: a CVXPY SDP
over up to 2 000 triplets near the margin, three bands in turn. The default now skips it
(``first_options={"polish": False}``); the other setting restores it. Every problem has
16 < d <= 40, where ``solver="auto"`` picks ``band-ipm``; each is solved at ``auto``'s
tolerance (1e-3) from the identity. The two settings alternate, ``--repeats`` times each,
in one process; the table gives the best wall time of each, their ratio, the certified
gaps and the relative difference of the objectives.
"""
from __future__ import annotations

import sys

import numpy as np

from against import ab_parser, alternate, header

SETTINGS = {"no polish (default)": False, "polish (before)": "auto"}


def problems():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.datasets import make_synthetic
    Xc, yc = load_breast_cancer(return_X_y=True)
    yield "breast cancer 569 x 30, standardised", LMNNProblem(StandardScaler().fit_transform(Xc), yc)
    Xd, yd = load_digits(return_X_y=True)
    for r in (24, 40):
        yield f"digits 1797 x {r} (PCA)", LMNNProblem(PCA(r, random_state=0).fit_transform(Xd), yd)
    for n, d in ((600, 24), (1000, 40)):
        X, y = make_synthetic(n=n, d=d, n_classes=3, seed=0)
        yield f"synthetic {n} x {d}", LMNNProblem(X, y)


def main(argv=None):
    ap = ab_parser(__doc__)
    args = ap.parse_args(argv)

    from convexmetric import solve
    from convexmetric.solvers import AUTO_TOL, choose_solver_with_reason
    print(header("band_ipm_polish.py", sys.argv[1:]))
    names = list(SETTINGS)
    print(f"| problem | {names[0]} s | {names[1]} s | ratio | gap {names[0]} | gap {names[1]} "
          "| objective rel. diff |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for label, p in problems():
        assert choose_solver_with_reason(p)[0] == "band-ipm", label
        best, res = alternate({name: (lambda polish=polish: solve(p, "band-ipm", tol=AUTO_TOL,
                                                                  first_options={"gamma": 1e-2, "polish": polish}))
                               for name, polish in SETTINGS.items()}, args.repeats)
        a, b = (res[n] for n in names)
        ratio = best[names[1]] / best[names[0]]
        ratios.append(ratio)
        print(f"| {label} | {best[names[0]]:.2f} | {best[names[1]]:.2f} | {ratio:.1f} | {a.relative_gap:.1e} "
              f"| {b.relative_gap:.1e} | {(a.fun - b.fun) / b.fun:+.1e} |", flush=True)
    print(f"\nratio = time with polishing / time without; median {np.median(ratios):.1f}, "
          f"range {min(ratios):.1f}-{max(ratios):.1f}. A negative objective difference: the default's "
          "metric is the better one.")


if __name__ == "__main__":
    main()
