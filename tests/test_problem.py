"""The problem spec against a plain-loop reference, and its input validation."""
import warnings

import numpy as np
import pytest

from convexmetric import LMNNProblem
from convexmetric.psd import project_psd

from conftest import random_problem_data, random_psd
from reference import ref_objective_and_subgradient, ref_margins, ref_targets, ref_triplets

CASES = [dict(seed=s, ties=t, duplicates=dup) for s, t, dup in
         [(0, False, False), (1, True, False), (2, False, True), (3, True, True), (4, True, True)]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c['seed']}-ties{c['ties']}-dup{c['duplicates']}")
def test_matches_loop_reference(case, rng):
    X, y = random_problem_data(case["seed"], ties=case["ties"], duplicates=case["duplicates"])
    mu, margin = 0.3, 1.5
    p = LMNNProblem(X, y, k=3, mu=mu, margin=margin)
    np.testing.assert_array_equal(p.targets, ref_targets(X, y, 3))
    trip = ref_triplets(y, p.targets)
    assert p.n_triplets == len(trip)
    # triplets are stored sorted by (i, j, l); sort the reference the same way
    order = np.lexsort(np.array(trip).T[::-1])
    trip = [trip[o] for o in order]
    np.testing.assert_array_equal(np.stack([p.triplets.anchor, p.triplets.target, p.triplets.impostor], 1),
                                  np.array(trip))
    for M in (np.eye(X.shape[1]), random_psd(rng, X.shape[1]), random_psd(rng, X.shape[1], rank=1)):
        np.testing.assert_allclose(p.margins(M), ref_margins(X, M, trip, margin), rtol=1e-12, atol=1e-12)
        f_ref, G_ref = ref_objective_and_subgradient(X, p.targets, trip, M, mu, margin)
        f, G = p.objective_and_subgradient(M)
        assert f == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(G, G_ref, rtol=1e-10, atol=1e-10 * np.abs(G_ref).max())
        np.testing.assert_allclose(p.subgradient(M), G)
        assert p.objective(M) == f


@pytest.mark.parametrize("seed", range(4))
def test_subgradient_inequality(seed):
    rng = np.random.default_rng(seed)
    X, y = random_problem_data(seed, n=40, d=4, ties=seed % 2 == 1)
    p = LMNNProblem(X, y)
    for _ in range(10):
        M, M2 = random_psd(rng, 4), random_psd(rng, 4, rank=2)
        f, G = p.objective_and_subgradient(M)
        assert p.objective(M2) >= f + np.sum(G * (M2 - M)) - 1e-9 * (1 + abs(f))


@pytest.mark.parametrize("seed", range(4))
def test_evaluating_a_factor_equals_evaluating_its_metric(seed):
    """``evaluate(embed_factor(L))`` (no eigendecomposition) is ``evaluate(L.T @ L)``: square,
    wide and rank-deficient factors, implicit and listed triplets, with ties, margin, mu, k
    and Huber width varied."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 6))
    X, y = random_problem_data(seed, n=int(rng.integers(20, 50)), d=d, ties=seed % 2 == 1)
    X = X * 10.0 ** rng.uniform(-1, 1)
    p = LMNNProblem(X, y, k=int(rng.integers(1, 4)), mu=float(rng.uniform(0.1, 0.9)),
                    margin=float(10 ** rng.uniform(-1, 1)), triplets=("all", "implicit")[seed % 2])
    for r in (d, 1, d + 2):
        L = rng.standard_normal((r, d)) / 10.0 ** rng.uniform(-1, 1)
        gamma = (0.0, 0.1 * p.margin)[r % 2]
        a = p.evaluate(p.embed_factor(L), gamma=gamma, gradient=True)
        b = p.evaluate(L.T @ L, gamma=gamma, gradient=True)
        assert a.objective == pytest.approx(b.objective, rel=1e-10)
        assert a.smoothed == pytest.approx(b.smoothed, rel=1e-10)
        np.testing.assert_allclose(a.gradient, b.gradient, rtol=1e-8, atol=1e-10 * np.abs(b.gradient).max())
    with pytest.raises(ValueError, match="shape"):
        p.embed_factor(np.ones((2, d + 1)))
    with pytest.raises(ValueError, match="NaN"):
        p.embed_factor(np.full((1, d), np.nan))


@pytest.mark.parametrize("seed", range(3))
def test_implicit_equals_enumerated(seed):
    rng = np.random.default_rng(seed)
    X, y = random_problem_data(seed, n=60, d=4, classes=4, ties=seed == 1, duplicates=seed == 2)
    enum = LMNNProblem(X, y, triplets="all")
    impl = LMNNProblem(X, y, triplets="implicit", block_bytes=2048)  # many small blocks
    assert enum.is_enumerated and not impl.is_enumerated
    assert impl.n_triplets == enum.n_triplets
    for M in (np.eye(4), random_psd(rng, 4), 0.05 * random_psd(rng, 4, rank=1)):
        for slack in (0.0, 0.3, 5.0):
            a, b = enum.active_set(M, slack), impl.active_set(M, slack)
            np.testing.assert_array_equal(a.triplets.keys, b.triplets.keys)
            np.testing.assert_array_equal(a.margins, b.margins)
        fe, Ge = enum.objective_and_subgradient(M)
        fi, Gi = impl.objective_and_subgradient(M)
        assert fe == pytest.approx(fi, rel=1e-13)  # the pass sums in another order
        np.testing.assert_allclose(Ge, Gi, rtol=1e-11, atol=1e-11 * np.abs(Ge).max())
        ce = enum.certificate(M, polish=False)
        ci = impl.certificate(M, polish=False)
        assert ce.lower_bound == pytest.approx(ci.lower_bound, rel=1e-12, abs=1e-12)
        assert ce.objective == pytest.approx(ci.objective, rel=1e-13)
    with pytest.raises(ValueError, match="implicit"):
        impl.margins(np.eye(4))


def test_float32_search_is_exact():
    rng = np.random.default_rng(7)
    X, y = random_problem_data(7, n=80, d=5, classes=3)
    p64 = LMNNProblem(X, y, triplets="implicit")
    p32 = LMNNProblem(X, y, triplets="implicit", search_dtype="float32")
    M = random_psd(rng, 5)
    a, b = p64.active_set(M, 0.2), p32.active_set(M, 0.2)
    np.testing.assert_array_equal(a.triplets.keys, b.triplets.keys)
    np.testing.assert_array_equal(a.margins, b.margins)


def test_target_ties_break_by_index():
    X = np.array([[0.0], [1.0], [-1.0], [1.0], [5.0], [6.0]])
    y = np.array([0, 0, 0, 0, 1, 1])
    p = LMNNProblem(X, y, k=2)
    # point 0 has three neighbours at distance 1 (indices 1, 2, 3): the two smallest indices win
    np.testing.assert_array_equal(p.targets[0], [1, 2])
    # duplicates (1 and 3) are each other's nearest target, at distance 0
    assert p.targets[1, 0] == 3 and p.targets[3, 0] == 1


def test_small_class_warns_and_uses_fewer_targets():
    X = np.arange(12, dtype=float)[:, None]
    y = np.array([0] * 8 + [1, 1] + [2, 2])
    with pytest.warns(UserWarning, match="fewer than k"):
        p = LMNNProblem(X, y, k=3)
    assert np.all(p.targets[8:] [:, 1:] == -1) and np.all(p.targets[8:, 0] >= 8)
    assert p.n_triplets == 8 * 3 * 4 + 4 * 1 * 10


def test_explicit_targets_and_triplets():
    X, y = random_problem_data(0, n=20, d=2)
    auto = LMNNProblem(X, y, k=2)
    same = LMNNProblem(X, y, targets=auto.targets)
    M = np.diag([1.0, 2.0])
    assert same.objective(M) == auto.objective(M)
    trip = np.stack([auto.triplets.anchor, auto.triplets.target, auto.triplets.impostor], 1)[::3]
    sub = LMNNProblem(X, y, k=2, triplets=trip)
    z_all = auto.margins(M)
    assert sub.margins(M) == pytest.approx(z_all[::3])
    with pytest.warns(UserWarning, match="duplicate"):
        LMNNProblem(X, y, k=2, triplets=np.vstack([trip, trip[:2]]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(X=[[np.nan, 1.0], [1.0, 2.0]], y=[0, 1]), "NaN or infinite"),
    (dict(X=[[np.inf, 1.0], [1.0, 2.0]], y=[0, 1]), "NaN or infinite"),
    (dict(X=[1.0, 2.0, 3.0], y=[0, 1, 1]), "2-D"),
    (dict(X=np.zeros((3, 2)), y=[0, 1]), "3 samples but y has 2"),
    (dict(X=np.zeros((3, 2)), y=[1, 1, 1]), "at least two classes"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], k=0), "positive integer"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], k=1.5), "positive integer"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], mu=1.0), "strictly between 0 and 1"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], mu=0.0), "strictly between 0 and 1"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], margin=-1.0), "margin"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], triplets="some"), "triplets must be"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], triplets=np.array([[0, 1, 9]])), "must lie in"),
    (dict(X=np.eye(4), y=[0, 0, 1, 1], targets=np.array([[1], [0], [3], [3]])), "own target"),
    (dict(X=[["a", "b"], ["c", "d"]], y=[0, 1]), "real numbers"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LMNNProblem(**kwargs)


def test_bad_metric_is_named(iris_std):
    p = LMNNProblem(*iris_std)
    with pytest.raises(ValueError, match="shape"):
        p.objective(np.eye(3))
    with pytest.raises(ValueError, match="not symmetric"):
        p.objective(np.triu(np.ones((4, 4))))
    with pytest.raises(ValueError, match="positive semidefinite"):
        p.objective(-np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        p.objective(np.full((4, 4), np.nan))
    # round-off negativity is accepted and evaluated as the PSD projection
    M = np.eye(4)
    M[0, 0] = -1e-12
    assert p.objective(M) == pytest.approx(p.objective(project_psd(M)), rel=1e-12)


def test_constant_feature_is_harmless_but_missing_direction_warns():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal((30, 2)), np.ones(30)]  # constant feature: no variance there
    y = np.arange(30) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = LMNNProblem(X, y)
    reduced = LMNNProblem(X[:, :2], y)
    M = np.diag([1.0, 2.0, 5.0])
    assert p.objective(M) == pytest.approx(reduced.objective(M[:2, :2]))
    a = np.ones(p.n_triplets) * 0.01
    assert p.certificate(M, alpha=a, polish=False).lower_bound == pytest.approx(
        reduced.certificate(M[:2, :2], alpha=a, polish=False).lower_bound, rel=1e-9)
    # classes offset along y while target differences only run along x: P misses y
    t = np.arange(10.0)
    X2 = np.r_[np.c_[t, np.zeros(10)], np.c_[t, np.ones(10)]]
    y2 = np.r_[np.zeros(10), np.ones(10)]
    with pytest.warns(UserWarning, match="singular"):
        q = LMNNProblem(X2, y2, k=2)
    c = q.certificate(np.eye(2), polish=False)
    assert 0 <= c.lower_bound <= c.objective


@pytest.mark.parametrize("name, value", [("margin", "1"), ("mu", "0.5"), ("k", "3"), ("block_bytes", "2048"),
                                         ("margin", True), ("mu", None), ("search_dtype", "float16")])
def test_string_and_wrongly_typed_parameters_name_the_parameter_and_type(name, value):
    X, y = random_problem_data(0, n=12, d=2)
    with pytest.raises((TypeError, ValueError), match=rf"^{name} must be .*, got {type(value).__name__} ") as err:
        LMNNProblem(X, y, **{name: value})
    # one class that both families of callers catch (as scikit-learn's InvalidParameterError)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_sparse_X_is_refused_with_advice_to_densify():
    import scipy.sparse as sp
    X, y = random_problem_data(0, n=12, d=3)
    with pytest.raises(TypeError, match=r"sparse input is not supported.*toarray\(\)"):
        LMNNProblem(sp.csr_matrix(X), y)


def test_continuous_labels_are_refused_not_warned_per_class():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no "class has 1 member" warning per label first
        with pytest.raises(ValueError, match="Unknown label type: continuous"):
            LMNNProblem(X, rng.normal(size=40))
    # float labels holding integers are classes, as in scikit-learn
    assert LMNNProblem(X, (np.arange(40) % 2).astype(float)).classes.tolist() == [0.0, 1.0]


def test_targets_in_metric_are_the_neighbours_in_the_learned_space():
    from convexmetric.neighbors import select_targets
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 4
    p = LMNNProblem(X, y, k=2)
    assert np.array_equal(p.targets_in_metric(np.eye(3)), p.targets)
    # a metric that only sees the first feature: the neighbours along it alone
    only_first = np.diag([4.0, 0.0, 0.0])
    assert np.array_equal(p.targets_in_metric(only_first), select_targets(X[:, :1], p.labels, 2))
    assert not np.array_equal(p.targets_in_metric(only_first), p.targets)
    with pytest.raises(ValueError):
        p.targets_in_metric(np.eye(4))
