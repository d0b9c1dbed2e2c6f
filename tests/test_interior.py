"""The structured interior point on the margin band, and the band-ipm solver built on it."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, MultiMetricProblem, solve
from convexmetric.datasets import make_synthetic
from convexmetric.interior import _Band, solve_margin_band

from conftest import random_problem_data


@pytest.fixture(scope="module")
def synthetic_d8():
    X, y = make_synthetic(n=90, d=8, n_classes=3, seed=3)
    p = LMNNProblem(X, y)
    return p, solve(p, "hybrid", tol=1e-10)


def test_schur_complement_matches_its_definition():
    """tr(F_i X F_j Z^-1), F = (mu A_1, ..., mu A_m, P), built from dense matrices one by one."""
    X, y = random_problem_data(3, n=20, d=3, classes=2)
    p = LMNNProblem(X, y, triplets="all")
    act = p.active_set(0.3 * np.eye(3), 0.5)
    free = act.triplets.subset(np.abs(act.margins) <= 0.5)
    one = act.triplets.subset(act.margins > 0.5)
    bp = _Band(p, one, free, rho=10.0)
    assert bp.m > 5
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    Xm, Zinv = A @ A.T + np.eye(3), np.linalg.inv(A.T @ A + np.eye(3))
    V = p._pull_basis
    F = [p.mu * V.T @ p.weighted_sum(free.subset([t]), [1.0]) @ V for t in range(bp.m)] + [bp.P]
    dense = np.array([[np.trace(Fi @ Xm @ Fj @ Zinv) for Fj in F] for Fi in F])
    np.testing.assert_allclose(bp.schur(Xm, Zinv), dense, rtol=1e-10, atol=1e-10)
    # <F_i, B> for a symmetric B, and the combination sum_i v_i F_i
    B = A + A.T
    np.testing.assert_allclose(bp.on_triplets(B), [np.sum(Fi * B) for Fi in F], rtol=1e-10, atol=1e-10)
    v = rng.uniform(size=bp.m + 1)
    np.testing.assert_allclose(bp.combine(v[:-1], v[-1]), sum(vi * Fi for vi, Fi in zip(v, F)), atol=1e-10)


def test_band_solution_is_certified_at_the_optimum(synthetic_d8):
    p, exact = synthetic_d8
    # start a little off the optimum: the band problem finds it again and proves it
    start = exact.M + 0.02 * np.trace(exact.M) / p.d * np.eye(p.d)
    sol = solve_margin_band(p, start, 0.05, target_gap=1e-9 * exact.fun)
    cert = p.certificate(sol.M, alpha=sol.dual, polish=False)
    assert cert.objective == pytest.approx(exact.fun, rel=1e-7)
    assert cert.relative_gap <= 1e-7
    assert cert.lower_bound <= exact.fun * (1 + 1e-9)
    assert sol.info["rounds"] and sol.n_free > 0


def test_band_grows_until_no_fixing_is_contradicted(synthetic_d8):
    """From a start 3 % off the optimum, a narrow band fixes some triplets wrongly; the
    rounds back off or free them and end, with nothing contradicted, at the optimum."""
    p, exact = synthetic_d8
    start = 0.97 * exact.M + 0.03 * np.trace(exact.M) / p.d * np.eye(p.d)
    sol = solve_margin_band(p, start, 0.01, max_rounds=30, target_gap=1e-9 * exact.fun)
    rounds = sol.info["rounds"]
    assert len(rounds) > 1
    assert rounds[-1]["joined"] == 0 and rounds[-1]["left_active"] == 0
    assert rounds[-1]["free"] > rounds[0]["free"]
    objectives = [r["objective"] for r in rounds]
    assert objectives[-1] <= objectives[0]
    cert = p.certificate(sol.M, alpha=sol.dual, polish=False)
    assert cert.objective == pytest.approx(exact.fun, rel=1e-8)
    assert cert.relative_gap <= 1e-8


def test_backtracking_never_returns_a_worse_metric(synthetic_d8):
    """Far from the optimum the band problem's metric is worse than its start; the rounds
    back off along the segment, so the returned metric is never worse than the start."""
    p, exact = synthetic_d8
    start = 0.7 * exact.M + 0.3 * np.trace(exact.M) / p.d * np.eye(p.d)
    f0 = p.objective(start)
    sol = solve_margin_band(p, start, 0.01, max_rounds=4)
    assert any(r.get("backtracked") for r in sol.info["rounds"])
    assert p.objective(sol.M) < f0


def test_round_metrics_with_too_many_active_triplets_are_never_listed(synthetic_d8, monkeypatch):
    """A round's metric is counted before it is listed: one with more active triplets than
    ``max_listed`` is never listed, offered to ``accept`` or returned (at n = 13 192 such a
    listing once needed over 20 GiB). Here the rough start's first round has 3x its active
    triplets; the rounds back off towards the start instead."""
    p, exact = synthetic_d8
    start = 0.7 * exact.M + 0.3 * np.trace(exact.M) / p.d * np.eye(p.d)
    limit = 2 * p.evaluate(start).n_active
    listed, offered = [], []
    real = p.active_set

    def spy(M, slack=0.0, anchors=None):
        listed.append(p.evaluate(M).n_active)
        return real(M, slack, anchors)

    monkeypatch.setattr(p, "active_set", spy)
    sol = solve_margin_band(p, start, 0.01, max_rounds=4, max_listed=limit,
                            accept=lambda s: offered.append(p.evaluate(s.M).n_active) and False)
    rounds = sol.info["rounds"]
    assert any(r["active"] > limit for r in rounds)  # the guard was needed
    assert listed and max(listed) <= limit
    assert all(n <= limit for n in offered)
    assert p.evaluate(sol.M).n_active <= limit
    assert p.objective(sol.M) < p.objective(start)
    lb = p.certificate(sol.M, alpha=sol.dual, polish=False).lower_bound
    assert lb <= exact.fun * (1 + 1e-9)


def test_band_ipm_sends_a_rough_warm_start_through_the_first_phase(synthetic_d8):
    """A warm start whose ascent certifies no better than the handover gap goes to the
    first-order phase before the band (20news, multi-pass's second pass: gap 0.81); a good
    one goes straight to the band (next test)."""
    p, exact = synthetic_d8
    rough = 0.2 * exact.M
    seen = []
    r = solve(p, "band-ipm", tol=1e-8, warm_start=rough, handover_gap=1e-2,
              callback=lambda info: seen.append(info["time"]) and False)
    assert len(seen) > 2 and np.all(np.diff(seen) >= 0)  # the first phase's callbacks on band-ipm's clock
    phases = [h.get("phase") for h in r.history]
    assert phases[0] == "dual ascent" and r.history[0]["relative_gap"] > 1e-2
    assert "band" in phases and "factored" in phases[:phases.index("band")]
    assert r.status == "optimal" and r.fun == pytest.approx(exact.fun, rel=1e-8)
    assert r.fun - exact.fun <= r.gap + 1e-9 * exact.fun

def test_band_ipm_does_not_list_a_warm_start_with_too_many_active_triplets(synthetic_d8, monkeypatch):
    """Before its dual ascent lists anything, band-ipm counts the warm start's active
    triplets; past the listing limit the first-order phase runs first."""
    from convexmetric.solvers import band_ipm
    p, exact = synthetic_d8
    rough = 0.2 * exact.M
    monkeypatch.setattr(band_ipm, "BAND_MAX_LISTED", p.evaluate(rough).n_active - 1)
    r = solve(p, "band-ipm", tol=1e-8, warm_start=rough)
    assert r.history[0]["phase"] == "factored"
    assert r.status == "optimal" and r.fun == pytest.approx(exact.fun, rel=1e-8)

def test_band_ipm_solver_is_exact_and_reports_its_phases(synthetic_d8):
    p, exact = synthetic_d8
    r = solve(p, "band-ipm", tol=1e-8, first_iters=20)
    assert r.status == "optimal"
    assert r.fun == pytest.approx(exact.fun, rel=1e-8)
    assert r.fun - exact.fun <= r.gap + 1e-9 * exact.fun
    phases = {h.get("phase") for h in r.history}
    assert {"factored", "band"} <= phases
    warm = solve(p, "band-ipm", tol=1e-8, warm_start=exact.M)
    assert warm.status == "optimal" and not any(h.get("phase") == "factored" for h in warm.history)


def test_band_ipm_first_phase_does_not_polish_unless_asked(synthetic_d8, monkeypatch):
    """The first phase's certificates skip the polishing SDP (the band solve certifies more
    cheaply: breast cancer, d = 30, took 41 s with it and 12 s without); ``first_options``
    can ask for it, and the result is the same optimum either way."""
    from convexmetric import certificate as cm
    p, exact = synthetic_d8
    assert p.d <= cm.POLISH_MAX_DIM  # where "auto" would polish
    real, polished = cm.certify, []

    def certify(problem, M, *a, polish="auto", **kw):
        polished.append(polish is not False)
        return real(problem, M, *a, polish=polish, **kw)

    monkeypatch.setattr(cm, "certify", certify)
    runs = {}
    for first_options in (None, {"polish": "auto"}):
        polished.clear()
        r = solve(p, "band-ipm", tol=1e-8, first_iters=20, first_options=first_options)
        runs[str(first_options)] = (r, sum(polished))
        assert r.status == "optimal" and r.fun == pytest.approx(exact.fun, rel=1e-8)
    assert runs["None"][1] == 0
    assert runs["{'polish': 'auto'}"][1] > 0
    with pytest.raises(ValueError, match="polish"):
        solve(p, "factored", polish="yes")


@pytest.mark.parametrize("seed", range(5))
def test_pull_whitened_twin_is_the_same_problem(seed):
    """Random problems (feature scales 0.03 to 30, a constant feature on odd seeds, margin,
    mu, k, class sizes): the twin's pull matrix is the identity where P is not 0, and at
    every metric the twin's objective and margins and the bound from any triplet weights
    equal the problem's at the mapped metric. (Mapping a metric multiplies by W twice, so
    the comparison loses about cond(W)^2 ulps: wider scales need looser tolerances, though
    the twin itself stays exact for its own data.)"""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(25, 60)), int(rng.integers(2, 6))
    X, _ = random_problem_data(seed, n=n, d=d)
    X = X * 10.0 ** rng.uniform(-1.5, 1.5, d)
    if seed % 2:
        X[:, 0] = 7.0                                      # P vanishes along it
    y = rng.integers(0, int(rng.integers(2, 4)), n)
    p = LMNNProblem(X, y, k=int(rng.integers(1, 4)), mu=float(rng.uniform(0.05, 0.95)),
                    margin=float(10 ** rng.uniform(-2, 2)), triplets="all")
    twin, W = p.pull_whitened()
    assert twin.triplets is p.triplets and np.array_equal(twin.targets, p.targets)
    range_p = p._pull_basis
    c2 = p.margin * p._pull_a.size / range_p.shape[1]     # the twin's mean squared target distance is the margin
    # (up to the eigensolver's accuracy on P's small eigenvalues: the twin is exact for any invertible W)
    np.testing.assert_allclose(range_p.T @ W.T @ p.pull_matrix @ W @ range_p / c2, np.eye(range_p.shape[1]),
                               atol=1e-5)
    assert twin.data_scale == 1.0 and twin.normalized() is twin
    np.testing.assert_allclose(twin.pull_matrix, W.T @ p.pull_matrix @ W, atol=1e-8)
    for _ in range(3):
        B = rng.standard_normal((d, d))
        Mt = B @ B.T
        M = W @ Mt @ W.T
        assert twin.objective(Mt) == pytest.approx(p.objective(M), rel=1e-8)
        np.testing.assert_allclose(twin.margins(Mt), p.margins(M), rtol=1e-7, atol=1e-7 * p.margin)
        alpha = rng.uniform(size=len(p.triplets))
        lb_twin = twin.certificate(Mt, alpha=alpha, polish=False).lower_bound
        lb = p.certificate(M, alpha=alpha, polish=False).lower_bound
        assert lb_twin == pytest.approx(lb, rel=1e-6, abs=1e-9 * p.objective(M))
    # one metric per class: every class metric maps with the same W, built on the summed pull matrix
    mp = MultiMetricProblem(X, y, k=p.k, mu=p.mu, margin=p.margin, triplets="all")
    mtwin, mW = mp.pull_whitened()
    assert np.array_equal(mtwin.targets, mp.targets) and mtwin.triplets is mp.triplets
    np.testing.assert_allclose(mtwin.pull_matrix.sum(0), mW.T @ mp.pull_matrix.sum(0) @ mW, atol=1e-8)
    np.testing.assert_allclose(range_p.T @ mtwin.pull_matrix.sum(0) @ range_p / c2, np.eye(range_p.shape[1]),
                               atol=1e-5)
    assert mtwin.data_scale == 1.0
    for _ in range(2):
        B = rng.standard_normal((mp.n_metrics, d, d))
        Mt = B @ B.transpose(0, 2, 1)
        M = mW @ Mt @ mW.T
        assert mtwin.objective(Mt) == pytest.approx(mp.objective(M), rel=1e-8)
        alpha = rng.uniform(size=len(mp.triplets))
        lb_twin = mtwin.certificate(Mt, alpha=alpha, polish=False).lower_bound
        lb = mp.certificate(M, alpha=alpha, polish=False).lower_bound
        assert lb_twin == pytest.approx(lb, rel=1e-6, abs=1e-9 * mp.objective(M))


def test_band_ipm_whitened_phase_reports_metrics_in_its_own_coordinates_and_certifies_sooner():
    """The whitened first phase hands back (and shows the callback) metrics of the problem
    itself, not of its twin; on features scaled 1e-2 to 1e2 one burst and one band solve
    reach the optimum with it, and without it the same budget ends far from it (a valid
    bound either way)."""
    X, y = make_synthetic(n=200, d=20, n_classes=3, seed=5)
    scale = 10.0 ** np.linspace(-2, 2, 20)
    p = LMNNProblem(X * scale, y)
    exact = solve(LMNNProblem(X, y, targets=p.targets), "hybrid", tol=1e-9)  # the same optimum, unscaled
    seen, runs = [], {}
    for whiten in (True, False):
        cb = (lambda info: seen.append((info["M"], info["objective"])) and False) if whiten else None
        runs[whiten] = r = solve(p, "band-ipm", tol=1e-6, whiten=whiten, callback=cb, max_attempts=1)
        assert r.lower_bound <= exact.fun * (1 + 1e-9)
    assert runs[True].status == "optimal" and runs[True].fun == pytest.approx(exact.fun, rel=1e-5)
    assert runs[False].status != "optimal" and runs[False].relative_gap > 1e-2
    assert len(seen) > 10
    for M, f in seen:                     # callbacks see metrics of the problem they were given
        assert p.objective(M) == pytest.approx(f, rel=1e-8)


def test_band_ipm_callback_stops_the_first_phase(synthetic_d8):
    p, _ = synthetic_d8
    r = solve(p, "band-ipm", callback=lambda info: info["iteration"] >= 3)
    assert r.status == "user_limit"
    assert not any(h.get("phase") == "band" for h in r.history)


def test_band_interior_point_refuses_what_it_cannot_do():
    X, y = random_problem_data(4, n=30, d=3, classes=3)
    p = LMNNProblem(X, y)
    with pytest.raises(ValueError, match="band must be positive"):
        solve_margin_band(p, np.eye(3), 0.0)
    mm = MultiMetricProblem(X, y)
    with pytest.raises(ValueError, match="one metric"):
        solve_margin_band(mm, np.eye(3), 0.1)
    with pytest.raises(ValueError, match="one metric"):
        solve(mm, "band-ipm")
    # where the data vary outside range(P) the band problem has no strictly feasible point
    p._pull_definite = False  # (such data: see test_certificate; here the guard alone)
    with pytest.raises(ValueError, match="pull matrix"):
        solve_margin_band(p, np.eye(3), 0.1)
    with pytest.raises(ValueError, match="definite pull matrix"):
        solve(p, "band-ipm")


def test_band_ipm_hands_over_even_when_the_first_phase_never_reaches_the_handover_gap(synthetic_d8):
    """An unreachable handover gap must not loop forever: the band runs once the first-order
    run stops by itself or has had its bursts."""
    p, exact = synthetic_d8
    r = solve(p, "band-ipm", tol=1e-8, handover_gap=1e-15, first_iters=40, max_attempts=2)
    assert r.status == "optimal"
    assert r.fun == pytest.approx(exact.fun, rel=1e-8)
    assert any(h.get("phase") == "band" for h in r.history)


def test_band_solve_always_returns_a_round_even_with_no_time_left(synthetic_d8):
    p, exact = synthetic_d8
    sol = solve_margin_band(p, exact.M, 0.05, time_limit=1e-9)
    assert len(sol.info["rounds"]) == 1
    assert np.all(np.isfinite(sol.M))
    assert p.certificate(sol.M, alpha=sol.dual, polish=False).lower_bound <= exact.fun * (1 + 1e-9)


def test_ctrl_c_during_an_inner_certificate_stops_band_ipm(synthetic_d8, monkeypatch):
    """Ctrl-C landing in the first phase's final certificate (the first certificate of the run)
    must stop the whole solver, even though that phase then reports a certified, 'optimal' status."""
    from convexmetric import certificate as cm
    p, exact = synthetic_d8
    real = cm.certify
    hits = []

    def certify(problem, M, *a, polish="auto", **kw):
        if not hits:  # the first phase's final certificate: the user presses Ctrl-C
            hits.append(1)
            raise KeyboardInterrupt
        return real(problem, M, *a, polish=polish, **kw)

    monkeypatch.setattr(cm, "certify", certify)
    r = solve(p, "band-ipm", tol=1e-12, first_iters=300, handover_gap=0.5)  # the phase certifies its tol
    assert hits and r.info.get("stop_reason") == "KeyboardInterrupt"
    assert not any(h.get("phase") == "band" for h in r.history)  # it stopped, no band solve ran
    assert r.lower_bound <= exact.fun * (1 + 1e-9)


def test_band_widens_when_a_tight_triplet_sits_just_outside_it():
    """d = 2: three triplets are tight at the optimum. At a start just off it, whose three
    margins are 1.3 %, 0.3 % and 0.8 % of the margin, a 1 % band fixes the first as active;
    the band problem's metric is then far worse and nothing on the segment back to the start
    is better. The band must widen (it once gave up here, and band-ipm cycled at 5e-5)."""
    from test_properties import draw_problem
    X, y, params, _ = draw_problem(36)
    p = LMNNProblem(X, y, **params)
    exact = solve(p, "active-set", tol=1e-10)
    act = p.active_set(exact.M, 1e-6 * p.margin)
    tight = act.triplets.subset(np.abs(act.margins) <= 1e-6 * p.margin)
    assert p.d == 2 and len(tight) == 3
    # margins are linear in M: move the optimum so that the tight margins are where we want
    basis = [np.array([[1.0, 0], [0, 0]]), np.array([[0, 1.0], [1.0, 0]]), np.array([[0, 0], [0, 1.0]])]
    z0 = p._margins_of(p.embed(exact.M), tight)
    h = 0.1 * np.linalg.eigvalsh(exact.M)[0]                       # keeps every step PSD
    G = np.column_stack([(p._margins_of(p.embed(exact.M + h * B), tight) - z0) / h for B in basis])
    coef = np.linalg.solve(G, np.array([0.013, 0.003, 0.008]) * p.margin - z0)
    start = exact.M + sum(c * B for c, B in zip(coef, basis))
    assert np.linalg.eigvalsh(start)[0] > 0
    sol = solve_margin_band(p, start, 0.01, max_rounds=3, target_gap=1e-10 * exact.fun)
    rounds = sol.info["rounds"]
    assert rounds[0]["objective"] > p.objective(start) and rounds[0]["backtracked"] is False
    assert rounds[0]["widened"] == pytest.approx(0.04)
    cert = p.certificate(sol.M, alpha=sol.dual, polish=False)
    assert cert.relative_gap <= 1e-8 and cert.lower_bound <= exact.fun * (1 + 1e-9)
    # stopped after that first round, the band returns its start (with the round's dual), not the worse metric
    one = solve_margin_band(p, start, 0.01, max_rounds=1)
    assert p.objective(one.M) <= p.objective(start)
    assert p.certificate(one.M, alpha=one.dual, polish=False).lower_bound <= exact.fun * (1 + 1e-9)
