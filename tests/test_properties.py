"""Property suite: certificates are never wrong, exact solvers agree, nothing depends on scale.

Each of 50 seeded random problems draws every parameter that enters the certificate:
the margin (0.1 to 5, log-uniform), mu (0.05 to 0.95), k (1 to 4), the scale of X
(1e-8 to 1e8, log-uniform), the class sizes (unbalanced, sometimes a class with at most
k members) and the data's shape. On each, every bound any solver reports must lie below
every objective any solver reaches, the exact solvers must agree, and solving the same
data at scale 1 must give the same objective and bound. The default run draws the first
15 problems; the other 35 are marked ``slow`` (``pytest -m slow``), which keeps the default
suite within CI's budget on a busy two-core machine.
"""
import pickle
import warnings

import numpy as np
import pytest

from convexmetric import LMNNProblem, solve

EXACT = ("hybrid", "active-set", "band-ipm")


#: Seeds of the random problems: the first 15 in the default run, the rest with ``-m slow``.
SEEDS = [seed if seed < 15 else pytest.param(seed, marks=pytest.mark.slow) for seed in range(50)]


def draw_problem(seed):
    rng = np.random.default_rng(1000 + seed)
    n_classes = int(rng.integers(2, 5))
    sizes = rng.integers(2, 14, size=n_classes)
    if rng.uniform() < 0.3:
        sizes[0] = int(rng.integers(1, 4))          # a class with at most k members
    d = int(rng.integers(2, 6))
    y = np.repeat(np.arange(n_classes), sizes)
    centres = rng.normal(scale=rng.uniform(0.5, 2.0), size=(n_classes, d))
    X = centres[y] + rng.normal(size=(y.size, d)) * rng.uniform(0.3, 2.0, size=d)
    params = dict(k=int(rng.integers(1, 5)), mu=float(rng.uniform(0.05, 0.95)),
                  margin=float(np.exp(rng.uniform(np.log(0.1), np.log(5.0)))))
    scale = float(10.0 ** rng.uniform(-8, 8))
    return X, y, params, scale


@pytest.mark.parametrize("seed", SEEDS)
def test_bounds_below_objectives_exact_solvers_agree_scale_free(seed):
    X, y, params, scale = draw_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small classes and singular pull matrices warn
        p = LMNNProblem(scale * X, y, **params)
        p1 = LMNNProblem(X, y, **params)
    if p.n_triplets == 0:
        pytest.skip("no triplets")
    solvers = EXACT if p._pull_definite else EXACT[:2]
    res = {s: solve(p, s, tol=1e-8) for s in solvers}
    res["fista"] = solve(p, "fista", tol=1e-4, max_iter=400)
    funs = np.array([r.fun for r in res.values()])
    bounds = np.array([r.lower_bound for r in res.values()])
    f_star = min(r.fun for s, r in res.items() if s in EXACT)
    tiny = 1e-9 * max(f_star, p.mu * p.margin)
    # every bound below every objective: a certificate is never wrong
    assert bounds.max() <= funs.min() + tiny, {s: (r.fun, r.lower_bound) for s, r in res.items()}
    # the exact solvers reach the same optimum, certified
    for s in solvers:
        assert res[s].fun <= f_star + 1e-6 * max(f_star, p.mu * p.margin), (s, res[s])
        assert res[s].relative_gap <= 1e-6, (s, res[s])
    # a certificate of a worse metric bounds the optimum too, and its gap bounds the loss
    worse = res["hybrid"].M * 1.5 + np.eye(p.d) / scale ** 2
    c = p.certificate(worse)
    assert c.lower_bound <= f_star + tiny
    assert c.gap >= p.objective(worse) - f_star - tiny
    # the same data at scale 1: same optimum and bound, metric mapped by 1 / scale^2
    r1 = solve(p1, "hybrid", tol=1e-8)
    assert r1.fun == pytest.approx(res["hybrid"].fun, rel=1e-6, abs=tiny)
    assert r1.lower_bound == pytest.approx(res["hybrid"].lower_bound, rel=1e-6, abs=tiny)
    assert p1.objective(res["hybrid"].M * scale ** 2) == pytest.approx(res["hybrid"].fun, rel=1e-7, abs=tiny)


@pytest.mark.parametrize("seed", range(5))
def test_warm_start_in_user_coordinates_at_any_scale(seed):
    X, y, params, scale = draw_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LMNNProblem(scale * X, y, **params)
    opt = solve(p, "active-set", tol=1e-9)
    for s in ("hybrid", "fista", "factored"):
        r = solve(p, s, warm_start=opt.M, tol=1e-6, max_iter=50)
        assert r.fun <= opt.fun * (1 + 1e-6) + 1e-9, (s, r, opt)


def test_degenerate_data_give_the_right_answer():
    y = np.arange(30) % 3
    # every point equal: every margin is the full margin for every metric, f = mu * margin * T
    p = LMNNProblem(np.ones((30, 3)), y, margin=2.0)
    for s in ("hybrid", "fista", "stochastic", "band-ipm"):
        r = solve(p, s)
        assert r.fun == pytest.approx(p.mu * 2.0 * p.n_triplets) and r.status == "optimal", (s, r)
    # class indicators: targets coincide, impostors can be pushed away, the optimum is 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LMNNProblem(np.eye(3)[y], y)
    for s in ("hybrid", "fista", "stochastic", "subgradient", "active-set", "factored"):
        r = solve(p, s, time_limit=30)
        assert r.fun <= 1e-6 and r.lower_bound <= r.fun + 1e-12 and r.status == "optimal", (s, r)


def test_zero_optimum_stops_first_order_solvers():
    """Separable data (n < d): f* = 0, which a relative gap without a floor never certifies."""
    X = np.random.default_rng(0).normal(size=(12, 16))
    y = np.arange(12) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LMNNProblem(X, y)
    r = solve(p, "fista", tol=1e-3, time_limit=60)
    assert r.status == "optimal", r
    assert r.lower_bound <= r.fun
    assert r.gap <= 1e-3 * p.mu * p.margin


def draw_free_problem(seed, multi):
    """A random problem with more dimensions than within-class differences span (optimum 0)."""
    from convexmetric.multimetric import MultiMetricProblem
    rng = np.random.default_rng(2000 + seed)
    n_classes = int(rng.integers(2, 5))
    sizes = rng.integers(2, 9, size=n_classes)
    if rng.uniform() < 0.3:
        sizes[0] = int(rng.integers(1, 4))          # a class with at most k members
    y = np.repeat(np.arange(n_classes), sizes)
    d = int(y.size - n_classes + rng.integers(1, 8))
    X = rng.normal(size=(y.size, d)) * rng.uniform(0.3, 2.0, size=d) * 10.0 ** rng.uniform(-6, 6)
    params = dict(k=int(rng.integers(1, 5)), mu=float(rng.uniform(0.05, 0.95)),
                  margin=float(np.exp(rng.uniform(np.log(0.1), np.log(5.0)))),
                  triplets=str(rng.choice(["all", "implicit"])))
    with pytest.warns(UserWarning, match="optimal objective is 0"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="class .* member")
            return (MultiMetricProblem if multi else LMNNProblem)(X, y, **params)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_zero_objective_metric_is_optimal_and_no_bound_exceeds_it(seed, multi):
    p = draw_free_problem(seed, multi)
    M0 = p.zero_objective_metric()
    f_identity = p.objective(p.identity_metric())
    tiny = 1e-9 * f_identity
    assert M0 is not None and M0.shape == p.identity_metric().shape
    assert np.linalg.eigvalsh(M0).min() >= -1e-12 * np.abs(M0).max()
    # 0 up to round-off: the pull term <P, M0> of two PSD matrices, M0 on P's null space, sums
    # to about +-1e-16 (numpy 2.4.6 gave -3.3e-16 on seed 7, one metric a class)
    assert abs(p.objective(M0)) <= tiny < f_identity
    rng = np.random.default_rng(seed)
    B = rng.normal(size=M0.shape)
    candidates = [p.identity_metric(), M0, B @ np.swapaxes(B, -1, -2) / p.d]
    from convexmetric.certificate import _max_feasible_tau
    assert p._known_zero_optimum          # found at construction, so bounds skip their bisection
    for M in candidates:      # the optimum is 0: no certified lower bound may exceed it
        cert = p.certificate(M)
        assert cert.lower_bound == 0.0, (cert, p)
        w = cert.dual.clipped()           # nor could the bisection the bound skips have given more
        tau = _max_feasible_tau(p, p.weighted_sum(w.triplets, w.values))
        assert p.mu * tau * float(w.values.sum()) * p.margin <= tiny, (tau, p)
    r = solve(p, "fista", max_iter=30)
    assert r.lower_bound <= tiny and r.fun >= -tiny, r


def test_zero_objective_metric_only_where_free_directions_separate_the_classes():
    from convexmetric.multimetric import MultiMetricProblem
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), np.arange(90) % 3      # within-class differences span R^4
    assert LMNNProblem(X, y).zero_objective_metric() is None
    assert MultiMetricProblem(X, y).zero_objective_metric() is None
    assert pickle.loads(pickle.dumps(LMNNProblem(X, y))).zero_objective_metric() is None
    with pytest.raises(NotImplementedError):
        MultiMetricProblem(X, y).targets_in_metric(np.eye(4))
    # the targets (k = 1) differ along the first axis only, but class 1 lies at 0 and 5 on
    # the second: its points at 0 meet class 0 there, so no metric on it separates them
    X = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [10, 5], [11, 5]], float)
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    with pytest.warns(UserWarning, match="weaker bound"):
        p = LMNNProblem(X, y, k=1)
    assert p.zero_objective_metric() is None and not p._known_zero_optimum   # its bounds bisect
    # lift class 1's lower pair off the line: now the second axis separates every impostor
    X[3:5, 1] = 2.0
    with pytest.warns(UserWarning, match="optimal objective is 0"):
        p = LMNNProblem(X, y, k=1)
    assert p.objective(p.zero_objective_metric()) <= 1e-12 * p.objective(np.eye(2))


@pytest.mark.parametrize("multi", [False, True])
def test_zero_objective_metric_checks_explicit_triplets_scaling_and_pickling(multi):
    from convexmetric.multimetric import MultiMetricProblem
    cls = MultiMetricProblem if multi else LMNNProblem
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 15))         # each class: two tight pairs far apart
    X, y = np.repeat(centres, 2, axis=0) + 0.01 * rng.normal(size=(12, 15)), np.repeat(np.arange(3), 4)
    # explicit triplets whose j is any same-class point, not only the (k = 1) target in its own
    # pair: the free directions zero the targets' distances, not those j's, so the objective
    # of the construction is not 0
    i, j, l = np.array([(a, b, c) for a in range(12) for b in range(12) for c in range(12)
                        if a != b and y[a] == y[b] and y[c] != y[a]]).T
    with pytest.warns(UserWarning, match="weaker bound"):
        p = cls(X, y, k=1, triplets=np.column_stack([i, j, l]))
    assert p.zero_objective_metric() is None
    # the normalised twin (another scale of X) maps the metric to its own coordinates
    with pytest.warns(UserWarning, match="optimal objective is 0"):
        p = cls(1e3 * X, y, k=1)
    twin = p.normalized()
    assert twin is not p
    for q in (p, twin, pickle.loads(pickle.dumps(p))):
        assert q.objective(q.zero_objective_metric()) <= 1e-9 * q.objective(q.identity_metric())


@pytest.mark.parametrize("seed", SEEDS)
def test_band_ipm_from_any_warm_start_and_a_capped_band_bound_the_optimum(seed):
    """band-ipm warm-started at the optimum, at a rough metric (which takes the first-order
    phase first) and the band solve with a listing cap all give bounds below the optimum."""
    from convexmetric.interior import solve_margin_band
    X, y, params, scale = draw_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LMNNProblem(scale * X, y, **params)
        p1 = LMNNProblem(X, y, **params)
    if p.n_triplets == 0 or not p._pull_definite:
        pytest.skip("no triplets, or a singular pull matrix (band-ipm does not apply)")
    opt = solve(p, "active-set", tol=1e-9)
    tiny = 1e-9 * max(opt.fun, p.mu * p.margin)
    rough = 0.2 * opt.M + 0.05 * np.trace(opt.M) / p.d * np.eye(p.d)
    for warm in (opt.M, rough):
        r = solve(p, "band-ipm", warm_start=warm, tol=1e-8)
        assert r.lower_bound <= opt.fun + tiny and opt.lower_bound <= r.fun + tiny, (r, opt)
        assert r.fun <= opt.fun + 1e-6 * max(opt.fun, p.mu * p.margin) and r.relative_gap <= 1e-6, (r, opt)
    start1 = rough * scale ** 2                                  # the same metric for the unscaled data
    f1 = p1.objective(start1)
    sol = solve_margin_band(p1, start1, 0.05, max_rounds=4, max_listed=max(1, p1.evaluate(start1).n_active))
    assert p1.objective(sol.M) <= f1 * (1 + 1e-12)
    lb = p1.certificate(sol.M, alpha=sol.dual, polish=False).lower_bound
    assert lb <= opt.fun + tiny


@pytest.mark.parametrize("seed", SEEDS)
def test_the_zero_metric_is_evaluated_exactly_on_every_path(seed):
    """At M = 0 every triplet's hinge is the margin and nothing is pulled, whatever the data:
    the blockwise pass (NumPy and array API), the enumerated list and the certificate agree,
    and the certificate at M = 0 stays below the optimum (a rank-0 metric has an empty factor)."""
    xps = pytest.importorskip("array_api_strict")
    X, y, params, scale = draw_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small classes and singular pull matrices warn
        implicit = LMNNProblem(scale * X, y, triplets="implicit", **params)
        listed = LMNNProblem(scale * X, y, triplets="all", **params)
        dense = LMNNProblem(scale * X, y, triplets="implicit", backend=xps, **params)
    if implicit.n_triplets == 0:
        pytest.skip("no triplets")
    zero = np.zeros((implicit.d, implicit.d))
    f0 = implicit.mu * implicit.margin * implicit.n_triplets
    G = listed.subgradient(zero)
    for p in (implicit, listed, dense):
        assert p.objective(zero) == pytest.approx(f0, rel=1e-12)
        np.testing.assert_allclose(np.asarray(p.subgradient(zero)), G, rtol=1e-10, atol=1e-12 * np.abs(G).max())
        assert p.active_set(zero).triplets.keys.size == p.n_triplets
    np.testing.assert_allclose(listed.margins(zero), listed.margin)
    np.testing.assert_allclose(implicit.active_set(zero).margins, implicit.margin)
    bound = implicit.certificate(zero).lower_bound
    assert bound <= f0 * (1 + 1e-12)
    assert bound <= solve(implicit, "hybrid", tol=1e-8).fun * (1 + 1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_metric_threshold_is_where_the_zero_metric_stops_being_optimal(seed):
    """``zero_metric_threshold`` gives the largest mu at which M = 0 is optimal: below it an
    exact solver certifies M = 0 (and the certificate of M = 0 closes), just above it a PSD
    direction descends from 0, and halfway to 1 the solver's optimum lies below f(0). It
    depends neither on the margin, the scale of X nor the problem's own mu."""
    X, y, params, scale = draw_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small classes and singular pull matrices warn
        p = LMNNProblem(scale * X, y, **params)
        if p.n_triplets == 0:
            pytest.skip("no triplets")
        mu_star = p.zero_metric_threshold()
        other = LMNNProblem(X, y, k=params["k"], mu=0.5, margin=1.0).zero_metric_threshold()
        assert mu_star == pytest.approx(other, abs=1e-8)
        zero = np.zeros((p.d, p.d))

        def at(mu):
            return LMNNProblem(scale * X, y, **{**params, "mu": mu})
        if mu_star > 0:                                   # 0: optimal at no positive mu
            lo = at(0.98 * mu_star)
            f0 = lo.mu * lo.margin * lo.n_triplets
            assert lo.objective(zero) == pytest.approx(f0, rel=1e-12)
            assert lo.certificate(zero).lower_bound == pytest.approx(f0, rel=1e-7)
            r = solve(lo, "hybrid", tol=1e-9)
            assert r.fun >= f0 * (1 - 1e-9) and r.lower_bound >= f0 * (1 - 1e-7)
        if mu_star >= 1.0:
            return
        above = mu_star + max(0.02 * mu_star, 1e-3)
        hi = at(above if above < 1 else 0.5 * (1 + mu_star))
        w, V = np.linalg.eigh(hi.subgradient(zero))
        assert w[0] < 0                                   # the gradient at 0 is no longer PSD
        D = np.outer(V[:, 0], V[:, 0])
        f0 = hi.mu * hi.margin * hi.n_triplets
        assert min(hi.objective(t / scale ** 2 * D) for t in 10.0 ** np.arange(-12, 3)) < f0
        half = at(0.5 * (1 + mu_star))
        r = solve(half, "hybrid", tol=1e-8)
        assert r.fun < half.mu * half.margin * half.n_triplets * (1 - 1e-6) and np.abs(r.M).max() > 0
