"""The reduction to the span of the centred data (convexmetric.span) and the estimator's use of it."""
import warnings

import numpy as np
import pytest

from convexmetric import LMNNProblem, get_solver
from convexmetric.classify import knn_error
from convexmetric.estimator import LMNN
from convexmetric.span import DataSpan

from conftest import random_problem_data


def _wide_data(rng, n, d, rank, scale):
    """n rows in a random ``rank``-dimensional affine subspace of R^d, features on scales ``scale``."""
    X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + rng.standard_normal(d)
    return X * scale


@pytest.mark.parametrize("seed", range(6))
def test_problem_in_the_span_is_the_same_problem(seed):
    """Random problems (more features than rows or data of lower rank than its features;
    feature scales 1e-2 to 1e2, margin, mu, k and class sizes varied): in the span's
    coordinates the objective, the margins and the bound from any triplet weights equal
    the problem's at the mapped metric, both ways, and the basis is orthonormal of the
    data's rank."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(15, 40))
    d = int(rng.integers(n, 2 * n)) if seed % 2 else int(rng.integers(4, 9))
    rank = min(n - 1, d) if seed % 2 else d - int(rng.integers(1, 3))
    X = _wide_data(rng, n, d, rank, 10.0 ** rng.uniform(-2, 2, d))
    sizes = rng.integers(1, 4, size=int(rng.integers(2, 4)))
    y = rng.choice(sizes.size, size=n, p=sizes / sizes.sum())
    y[:sizes.size] = np.arange(sizes.size)
    kw = dict(k=int(rng.integers(1, 4)), mu=float(rng.uniform(0.05, 0.95)), margin=float(10 ** rng.uniform(-2, 2)),
              triplets="all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # weak pull matrix, small classes
        p = LMNNProblem(X, y, **kw)
        span = DataSpan.of(X)
        red = LMNNProblem(span.coordinates(X), y, targets=p.targets, **kw)
    U = span.basis
    assert span.dim == rank == np.linalg.matrix_rank(X - X.mean(0)) and span.n_features == d
    np.testing.assert_allclose(U.T @ U, np.eye(rank), atol=1e-12)
    assert len(red.triplets) == len(p.triplets)
    f_scale = p.objective(np.eye(d))
    for _ in range(3):
        B = rng.standard_normal((rank, rank))
        Mr = B @ B.T / rank
        M = span.metric_from_span(Mr)
        assert red.objective(Mr) == pytest.approx(p.objective(M), rel=1e-8, abs=1e-12 * f_scale)
        np.testing.assert_allclose(red.margins(Mr), p.margins(M), rtol=1e-7, atol=1e-7 * p.margin)
        B = rng.standard_normal((d, d))
        Md = B @ B.T / d                                  # any metric of the data's space, mapped the other way
        assert red.objective(span.metric_to_span(Md)) == pytest.approx(p.objective(Md), rel=1e-8)
        alpha = rng.uniform(size=len(p.triplets))
        lb_red = red.certificate(Mr, alpha=alpha, polish=False).lower_bound
        lb = p.certificate(M, alpha=alpha, polish=False).lower_bound
        assert lb_red == pytest.approx(lb, rel=1e-6, abs=1e-9 * max(p.objective(M), p.mu * p.margin))
    L = rng.standard_normal((2, rank))
    np.testing.assert_allclose(span.components_from_span(L).T @ span.components_from_span(L),
                               span.metric_from_span(L.T @ L), atol=1e-10)


def _faces_like(seed=0, n=36, d=80, classes=4):
    rng = np.random.default_rng(seed)
    X = _wide_data(rng, n, d, n, 10.0 ** rng.uniform(-1, 1, d))
    y = np.arange(n) % classes
    return X, y, rng


def test_estimator_with_more_features_than_rows_follows_the_same_path_in_the_span():
    """With d >= n the estimator learns in the span. A solver instance keeps the data's
    coordinates, so the same factored run both ways cross-checks it: the same objective
    (judged by the full problem), the same metric on the span, nothing across it, and the
    same k-NN predictions for new points, whose components outside the span shift every
    distance to the training rows alike."""
    X, y, rng = _faces_like()
    X_new = X[:12] + rng.standard_normal((12, X.shape[1]))   # components outside the span
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced = LMNN(solver="factored", max_iter=15).fit(X, y)
        full = LMNN(solver=get_solver("factored", max_iter=15)).fit(X, y)
        p = LMNNProblem(X, y)
    span = DataSpan.of(X)
    assert reduced.result_.info["data_span"] == {"dim": X.shape[0] - 1, "n_features": X.shape[1]}
    assert "data_span" not in full.result_.info
    assert reduced.metric_.shape == (X.shape[1],) * 2 and reduced.result_.M.shape == reduced.metric_.shape
    assert p.objective(reduced.metric_) == pytest.approx(reduced.result_.fun, rel=1e-9)
    assert reduced.result_.fun == pytest.approx(full.result_.fun, rel=1e-6)
    U = span.basis
    np.testing.assert_allclose(U.T @ reduced.metric_ @ U, U.T @ full.metric_ @ U, rtol=1e-5,
                               atol=1e-6 * np.abs(full.metric_).max())
    P_out = np.eye(X.shape[1]) - U @ U.T
    assert np.abs(reduced.metric_ @ P_out).max() <= 1e-10 * np.abs(reduced.metric_).max()
    Z_red, Z_full = reduced.transform(X), full.transform(X)
    assert Z_red.shape[1] <= X.shape[0] - 1
    assert knn_error(X, y, X_new, y[:12], reduced.metric_) == knn_error(X, y, X_new, y[:12], full.metric_)
    from convexmetric.classify import knn_predict
    np.testing.assert_array_equal(knn_predict(Z_red, y, reduced.transform(X_new)),
                                  knn_predict(Z_full, y, full.transform(X_new)))


def test_estimator_in_the_span_maps_warm_start_callback_rank_and_held_out_rows():
    """Options given in the data's coordinates reach the reduced solve restated: the
    callback sees d x d metrics of the problem, a warm start is mapped into the span (a run
    of 0 iterations returns it), a rank above the span's dimension is capped, and the
    held-out error of validation_fraction is the k-NN error of metric_ in the data's own
    coordinates."""
    X, y, rng = _faces_like(seed=1)
    d = X.shape[1]
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = LMNNProblem(X, y)
        est = LMNN(solver="factored", max_iter=5,
                   solver_options={"callback": lambda info: seen.append((info["M"], info["objective"])) and False,
                                   "rank": 3 * d}).fit(X, y)
    assert seen and all(M.shape == (d, d) for M, _ in seen)
    for M, f in seen:
        assert p.objective(M) == pytest.approx(f, rel=1e-8)
    assert est.result_.info["rank"] == X.shape[0] - 1
    B = rng.standard_normal((d, d))
    W = B @ B.T / d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = LMNN(solver="fista", max_iter=1, solver_options={"warm_start": W}).fit(X, y)
    U = DataSpan.of(X).basis
    assert p.objective(warm.result_.M) <= p.objective(U @ U.T @ W @ U @ U.T) * (1 + 1e-9)
    assert p.objective(U @ U.T @ W @ U @ U.T) == pytest.approx(p.objective(W), rel=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        val = LMNN(solver="factored", max_iter=20, validation_fraction=0.3, random_state=0).fit(X, y)
    held = val.validation_rows_
    rows = np.setdiff1d(np.arange(X.shape[0]), held)
    assert val.result_.info["data_span"]["dim"] == rows.size - 1
    assert val.validation_error_ == pytest.approx(knn_error(X[rows], y[rows], X[held], y[held], val.metric_))


def test_estimator_warns_for_small_classes_from_the_callers_line_in_the_span():
    """The reduced path chooses the first targets itself; a class too small for k still warns,
    at the caller's line, and its targets are those LMNNProblem picks in the data's coordinates."""
    X, y = random_problem_data(3, n=20, d=30, ties=True)
    y[:] = np.arange(20) % 3
    y[0], y[3] = 3, 3                                   # a class of 2: one target each
    with pytest.warns(UserWarning, match="class 3 has 2 member") as rec:
        est = LMNN(solver="factored", max_iter=3).fit(X, y)
    assert any(r.filename == __file__ for r in rec if "class 3" in str(r.message))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(est.targets_, LMNNProblem(X, y).targets)


def test_estimator_on_identical_rows_keeps_the_data_coordinates():
    """Rows that are all the same span nothing (r = 0): the fit stays in the data's
    coordinates, as before the reduction, and gives that problem's optimum."""
    X, y = np.ones((6, 8)), np.arange(6) % 2
    assert DataSpan.of(X).dim == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LMNN().fit(X, y)
        p = LMNNProblem(X, y)
    assert "data_span" not in est.result_.info and est.metric_.shape == (8, 8)
    assert est.result_.status == "optimal" and est.result_.fun == pytest.approx(p.objective(np.eye(8)))
