"""Certificates are valid lower bounds, and tight at the optimum."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, TripletWeights, solve
from convexmetric.certificate import lower_bound

from conftest import random_problem_data, random_psd


@pytest.fixture(scope="module")
def small_solved():
    X, y = random_problem_data(11, n=36, d=3, classes=3)
    p = LMNNProblem(X, y)
    res = solve(p, "sdp-clarabel")
    return p, res


def test_bound_never_exceeds_objective_at_random_points(small_solved):
    p, res = small_solved
    rng = np.random.default_rng(0)
    for _ in range(25):
        M = random_psd(rng, p.d, rank=int(rng.integers(1, p.d + 1))) * rng.uniform(0.01, 3)
        alpha = rng.uniform(0, 1, p.n_triplets) * (rng.uniform() < 0.5)
        alpha[rng.uniform(size=alpha.size) < 0.9] = 0
        f = p.objective(M)
        c = p.certificate(M, alpha=alpha, polish=False)
        assert c.lower_bound <= f + 1e-9
        # any dual point bounds the optimum itself, not only f(M)
        assert c.lower_bound <= res.fun + 1e-9 * res.fun
        b = lower_bound(p, TripletWeights(p.triplets, alpha))  # scaling bound alone
        assert b.value <= res.fun + 1e-9 * res.fun
        # a dual point outside the box is clipped, never trusted
        wild = p.certificate(M, alpha=alpha * 5 - 1, polish=False)
        assert wild.lower_bound <= res.fun + 1e-9 * res.fun


def test_default_certificate_is_valid_and_tight_at_optimum(small_solved):
    p, res = small_solved
    c = p.certificate(res.M)
    assert c.lower_bound <= res.fun * (1 + 1e-9)
    assert c.relative_gap < 1e-6
    assert c.method.startswith("polished")
    # away from the optimum the gap is a true bound on the suboptimality
    M = res.M + 0.1 * np.eye(p.d)
    c2 = p.certificate(M)
    assert c2.gap >= p.objective(M) - res.fun - 1e-9


def test_dual_sdp_value_equals_primal(small_solved):
    import cvxpy as cp
    p, res = small_solved
    ts = p.triplets
    a, b = ts.pairs.T
    D = p.X[a] - p.X[b]
    C = np.einsum("pi,pj->pij", D, D).reshape(len(a), -1)
    A = (C[ts.target_pair] - C[ts.impostor_pair]).T
    alpha = cp.Variable(len(ts))
    S = (1 - p.mu) * p.pull_matrix + p.mu * cp.reshape(A @ alpha, (p.d, p.d), order="F")
    dual = cp.Problem(cp.Maximize(p.mu * cp.sum(alpha)), [alpha >= 0, alpha <= 1, 0.5 * (S + S.T) >> 0])
    dual.solve(solver="CLARABEL")
    assert dual.value == pytest.approx(res.fun, rel=1e-6)
    # and our certificate of the dual's own alpha agrees
    c = p.certificate(res.M, alpha=np.clip(alpha.value, 0, 1), polish=False)
    assert c.lower_bound == pytest.approx(res.fun, rel=1e-6)


def test_weak_duals_give_weak_but_valid_bounds(small_solved):
    p, res = small_solved
    c_ind = p.certificate(np.eye(p.d), alpha=(p.margins(np.eye(p.d)) > 0).astype(float), polish=False)
    assert 0 <= c_ind.lower_bound <= res.fun
    assert c_ind.relative_gap > 1e-3  # the indicator at the identity is far from optimal


def test_certificate_rejects_bad_alpha(small_solved):
    p, _ = small_solved
    with pytest.raises(ValueError, match="one entry per triplet"):
        p.certificate(np.eye(p.d), alpha=np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        p.certificate(np.eye(p.d), alpha=np.full(p.n_triplets, np.nan))


@pytest.mark.parametrize("margin", [0.1, 0.5, 3.0])
def test_certificate_accounts_for_the_margin(margin):
    """The dual objective is mu * margin * sum(alpha): with margin < 1 a bound without the
    margin exceeds the objective and calls any metric optimal (issue 11, item 1)."""
    from convexmetric.datasets import make_synthetic
    X, y = make_synthetic(n=30, d=3, n_classes=3, seed=0)
    base = solve(LMNNProblem(X, y), "active-set")
    p = LMNNProblem(X, y, margin=margin)
    res = solve(p, "active-set")
    # M -> margin * M maps the margin-1 problem onto this one: f* scales with the margin
    assert res.fun == pytest.approx(margin * base.fun, rel=1e-7)
    assert res.lower_bound <= res.fun * (1 + 1e-9)
    assert res.relative_gap < 1e-6
    worse = 1.3 * res.M
    c = p.certificate(worse)
    assert c.lower_bound <= res.fun * (1 + 1e-9)
    assert c.gap >= p.objective(worse) - res.fun - 1e-9 * res.fun
    assert c.gap > 0
