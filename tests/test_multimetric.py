"""Multi-metric LMNN: the loops, the single-metric special case, and exact agreement."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, solve
from convexmetric.multimetric import MultiMetricProblem

from conftest import random_problem_data, random_psd
from reference import ref_multimetric_objective_and_subgradient, ref_triplets


def _random_stack(rng, C, d):
    return np.stack([random_psd(rng, d, rank=rng.integers(1, d + 1)) for _ in range(C)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objective_and_subgradient_match_loops(seed):
    X, y = random_problem_data(seed, n=24, d=3, classes=3)
    p = MultiMetricProblem(X, y, k=2, mu=0.4, triplets="all")
    rng = np.random.default_rng(seed)
    Ms = _random_stack(rng, 3, 3)
    f, G = p.objective_and_subgradient(Ms)
    trip = ref_triplets(p.labels, p.targets)
    f_ref, G_ref = ref_multimetric_objective_and_subgradient(X, p.labels, p.targets, trip, Ms, 0.4)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(G, G_ref, rtol=1e-10, atol=1e-10)


def test_implicit_equals_enumerated():
    X, y = random_problem_data(3, n=40, d=4, classes=3)
    rng = np.random.default_rng(3)
    Ms = _random_stack(rng, 3, 4)
    pe = MultiMetricProblem(X, y, triplets="all")
    pi = MultiMetricProblem(X, y, triplets="implicit")
    ae, ai = pe.active_set(Ms, 0.3), pi.active_set(Ms, 0.3)
    np.testing.assert_array_equal(ae.triplets.keys, ai.triplets.keys)
    np.testing.assert_allclose(ae.margins, ai.margins, rtol=1e-12, atol=1e-12)
    assert pe.objective(Ms) == pytest.approx(pi.objective(Ms), rel=1e-13)
    np.testing.assert_allclose(pe.subgradient(Ms), pi.subgradient(Ms), rtol=1e-11, atol=1e-11)


def test_equal_metrics_reduce_to_single_metric():
    X, y = random_problem_data(4, n=30, d=3)
    M = random_psd(np.random.default_rng(4), 3)
    single, multi = LMNNProblem(X, y), MultiMetricProblem(X, y)
    assert multi.objective(M) == pytest.approx(single.objective(M), rel=1e-13)  # (d, d) is tiled
    G = multi.subgradient(np.tile(M, (3, 1, 1)))
    np.testing.assert_allclose(G.sum(0), single.subgradient(M), rtol=1e-10, atol=1e-10)


def test_certificate_bounds_the_sdp_optimum(iris_std):
    X, y = iris_std
    p = MultiMetricProblem(X, y, triplets="all")
    exact = solve(p, "sdp-clarabel")
    rng = np.random.default_rng(0)
    for _ in range(3):
        cert = p.certificate(_random_stack(rng, 3, 4))
        assert cert.lower_bound <= exact.fun * (1 + 1e-7)
        assert cert.lower_bound <= cert.objective


def test_exact_solvers_agree_and_beat_single_metric(iris_std):
    X, y = iris_std
    p = MultiMetricProblem(X, y, triplets="all")
    ref = solve(p, "sdp-clarabel")
    single = solve(LMNNProblem(X, y), "hybrid")
    for name in ("active-set", "hybrid"):
        r = solve(p, name, warm_start=single.M)
        assert r.M.shape == (3, 4, 4)
        assert r.fun == pytest.approx(ref.fun, rel=1e-6)
        assert r.relative_gap <= 1e-6
    fo = solve(p, "fista", tol=1e-3, warm_start=single.M)
    assert fo.fun - ref.fun <= fo.gap + 1e-7 * ref.fun        # the gap is a true bound
    assert ref.fun < single.fun                                 # C metrics do at least as well


def test_factored_solver_refuses_multimetric(iris_std):
    X, y = iris_std
    with pytest.raises(ValueError, match="one metric"):
        solve(MultiMetricProblem(X, y), "factored")


def test_bad_stack_shape_is_named(iris_std):
    X, y = iris_std
    p = MultiMetricProblem(X, y)
    with pytest.raises(ValueError, match=r"\(3, 4, 4\)"):
        p.objective(np.ones((2, 4, 4)))
