"""LMNN with more features than rows: the data's coordinates against the span of the rows.

Run from the repository root (Olivetti faces need ``CONVEXMETRIC_DATA``):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/data_span.py > benchmarks/data_span.txt

With ``d >= n`` the estimator learns in the ``r <= n - 1`` coordinates of the span of the
centred rows (``convexmetric.span``), the same problem at ``r x r``. Table 1 times one of
each operation a solver repeats, on the problem in the data's coordinates and on the same
problem in the span's (same targets); table 2 times ``LMNN(...).fit`` both ways: a solver
name takes the span, a solver instance (same options) keeps the data's coordinates, so
both rows run the same factored path. Faces are Olivetti's 400 raw images, 64 x 64 and
average-pooled to 32 x 32; one process, each measurement once (they run for seconds to
minutes).
"""
from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

from against import header


def faces(pool: int):
    from convexmetric.repro import load_raw
    X, y = load_raw("ofaces", home=os.environ["CONVEXMETRIC_DATA"])
    if pool > 1:
        side = 64 // pool
        X = X.reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(X.shape[0], -1)
    return X, y


def wide_synthetic(n=300, d=3000, seed=0):
    """Gene-expression-like rows: 10 classes, a class signal in 20 features, noise in all."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    X = rng.standard_normal((n, d))
    X[:, :20] += 1.5 * rng.standard_normal((10, 20))[y]
    return X, y


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def operations(name, X, y, certify: bool):
    """Problem construction, one evaluation with gradient, one certificate without polishing."""
    from convexmetric import LMNNProblem
    from convexmetric.span import DataSpan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t_full, p = timed(lambda: LMNNProblem(X, y))
        t_span, (span, q) = timed(lambda: (lambda s: (s, LMNNProblem(s.coordinates(X), y, targets=p.targets)))(
            DataSpan.of(X)))
    rows = [(name, f"{X.shape[1]} -> {span.dim}", "construction (span: SVD included)", t_full, t_span)]
    Mf, Ms = p.identity_metric(), span.metric_to_span(p.identity_metric())
    tf, ef = timed(lambda: p.evaluate(Mf, gradient=True, gamma=1e-3))
    ts, es = timed(lambda: q.evaluate(Ms, gradient=True, gamma=1e-3))
    assert abs(ef.objective - es.objective) <= 1e-8 * ef.objective, (ef.objective, es.objective)
    rows.append((name, "", "one evaluation with gradient", tf, ts))
    if certify:
        tf, cf = timed(lambda: p.certificate(Mf, polish=False))
        ts, cs = timed(lambda: q.certificate(Ms, polish=False))
        rows.append((name, "", f"one certificate (bounds {cf.lower_bound:.4g} / {cs.lower_bound:.4g})", tf, ts))
    return rows


def fits(name, X, y, max_iter: int):
    from convexmetric import get_solver
    from convexmetric.estimator import LMNN
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts, span = timed(lambda: LMNN(solver="factored", max_iter=max_iter).fit(X, y))
        tf, full = timed(lambda: LMNN(solver=get_solver("factored", max_iter=max_iter)).fit(X, y))
    rel = abs(span.result_.fun - full.result_.fun) / full.result_.fun
    out.append((name, f"factored, max_iter={max_iter}", tf, ts, full.result_.relative_gap,
                span.result_.relative_gap, rel))
    return out


def default_fit(name, X, y):
    from convexmetric.estimator import LMNN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, est = timed(lambda: LMNN().fit(X, y))
    r = est.result_
    return f"| {name} | {t:.1f} | {r.solver} | {r.status} | {r.nit} | {r.relative_gap:.2g} |"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print(header("data_span.py", argv))
    print("\n## 1. One operation, in the data's coordinates and in the span's (s)\n")
    print("| data | d -> r | operation | data's coordinates | span | ratio |")
    print("|---|---|---|---|---|---|")
    small, large = faces(2), faces(1)
    rows = operations("faces 400 x 1024", *small, certify=True)
    rows += operations("wide synthetic 300 x 3000", *wide_synthetic(), certify=False)
    rows += operations("faces 400 x 4096", *large, certify=False)
    for name, dims, op, tf, ts in rows:
        print(f"| {name} | {dims} | {op} | {tf:.3g} | {ts:.3g} | {tf / ts:.0f}x |", flush=True)
    print("\n## 2. `LMNN(...).fit`, the same factored run both ways (s)\n")
    print("| data | solver | data's coordinates | span | ratio | rel. gap (data's / span) | objectives differ by |")
    print("|---|---|---|---|---|---|---|")
    for name, solver, tf, ts, gf, gs, rel in fits("faces 400 x 1024", *small, max_iter=50):
        print(f"| {name} | {solver} | {tf:.1f} | {ts:.1f} | {tf / ts:.0f}x | {gf:.2g} / {gs:.2g} | {rel:.1e} |",
              flush=True)
    print("\nBoth runs follow the same path in exact arithmetic; the faces' optimal objective is 0, and there "
          "L-BFGS amplifies round-off (benchmarks/factored_embed.txt), so the objectives differ.")
    print("\n## 3. `LMNN().fit` (defaults), in the span\n")
    print("| data | fit s | solver | status | iterations | certified rel. gap |")
    print("|---|---|---|---|---|---|")
    print(default_fit("faces 400 x 1024", *small), flush=True)
    print(default_fit("faces 400 x 4096", *large), flush=True)
    print(default_fit("wide synthetic 300 x 3000", *wide_synthetic()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
