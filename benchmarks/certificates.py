"""Tight certificates where d or n is large: time to a certified relative gap.

Run from the repository root (the paper's data under $CONVEXMETRIC_DATA):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/certificates.py > benchmarks/certificates.txt

Each row is ``solve(problem, tol=..., time_limit=...)`` with the default choice of solver
(``"auto"``), timed from building the problem; the gap is the problem's own certificate.
Bars: digits <= 1e-4 in 5 s; Letters <= 1e-5 in 2 minutes; Letters with one metric per
class <= 1e-2 in 5 minutes; Isolet (PCA 172, fixed split) <= 1e-3 in 5 minutes. Full
MNIST (<= 1e-2 in its 10-minute budget) is measured by ``benchmarks/mnist.py``.
"""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np


def row(name, build, tol, limit, **opts):
    from convexmetric import solve
    from convexmetric.classify import knn_error
    t0 = time.perf_counter()
    p, data = build()
    r = solve(p, tol=tol, time_limit=limit, **opts)
    wall = time.perf_counter() - t0
    hit = next((h["time"] for h in r.history if h.get("relative_gap", np.inf) <= tol), None)
    err = ""
    if data is not None:
        Xtr, ytr, Xte, yte = data
        err = f"{100 * knn_error(Xtr, ytr, Xte, yte, r.M):.2f}"
    print(f"| {name} | {p.n} x {p.d}{' x ' + str(p.n_metrics) + ' metrics' if p.n_metrics > 1 else ''} "
          f"| {r.solver} | {tol:g} | {wall:.1f} | {r.relative_gap:.1e} | "
          f"{'-' if hit is None else format(hit, '.1f')} | {r.status} | {err} |", flush=True)
    return r


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, choices=["digits", "letters", "letters-multi", "isolet"],
                    help="run these rows only")
    only = ap.parse_args(argv).only
    want = (lambda name: only is None or name in only)  # noqa: E731
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from convexmetric import LMNNProblem, MultiMetricProblem
    from convexmetric.datasets import load_isolet, load_letter

    print(f"# certificates, {time.strftime('%Y-%m-%d %H:%M')}, {platform.platform()}, {os.cpu_count()} CPUs")
    print("# command: " + " ".join(["python"] + sys.argv))
    print("\n| problem | n x d | solver (auto) | tol | wall s | certified rel. gap | solve s to tol | status "
          "| 3-NN test % |")
    print("|---|---|---|---|---|---|---|---|---|")

    def digits():
        X, y = load_digits(return_X_y=True)
        Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        return LMNNProblem(StandardScaler().fit(Xtr).transform(Xtr), ytr), None

    if want("digits"):
        with threadpool_limits(1):
            row("digits (one BLAS thread)", digits, 1e-4, 60)

    letters = load_letter()

    def letters_single():
        Xtr, ytr, Xte, yte = letters
        return LMNNProblem(Xtr, ytr), letters

    def letters_multi():
        Xtr, ytr, Xte, yte = letters
        return MultiMetricProblem(Xtr, ytr), None

    if want("letters"):
        row("letters", letters_single, 1e-5, 120)
    if want("letters-multi"):
        row("letters, one metric per class", letters_multi, 1e-2, 300)

    def isolet():
        Xtr, ytr, Xte, yte = load_isolet()
        pca = PCA(172, random_state=0).fit(Xtr)
        Xtr, Xte = pca.transform(Xtr), pca.transform(Xte)
        return LMNNProblem(Xtr, ytr), (Xtr, ytr, Xte, yte)

    if want("isolet"):
        row("isolet (PCA 172)", isolet, 1e-3, 300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
