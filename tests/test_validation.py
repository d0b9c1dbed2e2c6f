"""The validation split and the early-stopping callback, alone and inside the estimator."""
import warnings

import numpy as np
import pytest

from convexmetric import load_estimator, save_estimator
from convexmetric.classify import knn_error
from convexmetric.estimator import LMNN
from convexmetric.solvers import get_solver
from convexmetric.validation import ValidationStopper, validation_split


def test_validation_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(5), 10)
    fit, val = validation_split(y, 0.3, seed=3)
    assert np.intersect1d(fit, val).size == 0 and np.union1d(fit, val).tolist() == list(range(50))
    assert val.size == 15 and np.all(np.bincount(y[val]) == 3)
    again = validation_split(y, 0.3, seed=3)
    assert np.array_equal(again[1], val) and not np.array_equal(validation_split(y, 0.3, seed=4)[1], val)
    with pytest.raises(ValueError, match="strictly between"):
        validation_split(y, 0.0, seed=0)
    with pytest.raises(ValueError, match="between 4 and 4 held-out rows"):   # 4 classes of 2 rows
        validation_split(np.repeat(np.arange(4), 2), 0.3, seed=0)


def test_validation_stopper_keeps_the_lowest_error_and_the_later_of_ties():
    rng = np.random.default_rng(0)
    # one informative feature, one loud noise feature: the metric that ignores the noise wins
    y = np.arange(80) % 2
    X = np.column_stack([y * 3.0 + 0.3 * rng.standard_normal(80), 20 * rng.standard_normal(80)])
    stop = ValidationStopper(X[:50], y[:50], X[50:], y[50:], growth=2.0)
    noisy, clean, clean2 = np.diag([0.0, 1.0]), np.diag([1.0, 0.0]), np.diag([2.0, 0.0])
    for M in (noisy, noisy, clean, noisy, noisy, noisy, noisy, clean2):   # calls 1..8
        assert stop({"M": M}) is False
    assert [at for at, _ in stop.trace] == [1, 2, 4, 8]                   # a geometric schedule
    assert stop.best_error == 0.0 and stop.best_at == 8                   # the later of two ties
    assert np.array_equal(stop.best_M, clean2)
    stop.consider(noisy)                                                  # a worse final result is not kept
    assert stop.best_at == 8


def test_validation_stopper_with_patience_stops_the_solver_only_after_a_long_enough_stall():
    rng = np.random.default_rng(1)
    y = np.arange(80) % 2
    X = np.column_stack([y * 3.0 + 0.3 * rng.standard_normal(80), 20 * rng.standard_normal(80)])
    noisy, clean = np.diag([0.0, 1.0]), np.diag([1.0, 0.0])
    stop = ValidationStopper(X[:50], y[:50], X[50:], y[50:], growth=1.25, patience=2.0, min_calls=10)
    said = [stop({"M": clean if call in (5, 12) else noisy}) for call in range(1, 41)]
    first = said.index(True) + 1
    assert stop.best_at == 12 and stop.best_error == 0.0      # the later of the two clean metrics
    assert first >= max(10, 2 * 5)                           # the tie at 12 does not renew the patience
    assert first < 2 * 12
    assert first in [at for at, _ in stop.trace]              # only at an evaluated call
    assert not any(said[:first - 1])
    without = ValidationStopper(X[:50], y[:50], X[50:], y[50:], growth=1.25)
    assert not any(without({"M": noisy}) for _ in range(200))   # no patience: never stops
    with pytest.raises(ValueError, match="patience"):
        ValidationStopper(X[:50], y[:50], X[50:], y[50:], patience=1.0)


# -- the estimator's validation_fraction ----------------------------------------------------
def few_rows_many_features(seed):
    """60 rows of 4 classes in 80 dimensions: the convex optimum is 0 and overfits."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 15)
    return rng.normal(size=(4, 80))[y] * 0.6 + rng.normal(size=(60, 80)), y


def test_validation_fraction_keeps_the_iterate_of_lowest_held_out_error():
    X, y = few_rows_many_features(3)
    calls = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the target differences")
        est = LMNN(solver="fista", max_iter=300, validation_fraction=0.3, random_state=3,
                   solver_options={"callback": lambda info: calls.append(info["iteration"]) or False}).fit(X, y)
    held = est.validation_rows_
    fit = np.setdiff1d(np.arange(y.size), held)
    assert held.size == 18 and np.all(np.bincount(y[held]) >= 4)      # stratified 30 %
    assert est.targets_.shape == (fit.size, 3)                         # learned on the other rows
    kept = knn_error(X[fit], y[fit], X[held], y[held], est.metric_)
    final = knn_error(X[fit], y[fit], X[held], y[held], est.result_.M)
    assert est.validation_error_ == kept < final                       # an earlier iterate, better held out
    assert est.result_.status == "user_limit" and est.result_.nit < 300  # stopped by the patience
    recorded = [h["iteration"] for h in est.result_.history]
    assert len(calls) >= len(recorded) - 1 and calls == recorded[:len(calls)]   # the user's callback ran too
    # transform() maps with the kept metric, not the solver's last iterate
    np.testing.assert_allclose(est.transform(X) @ est.transform(X).T, X @ est.metric_ @ X.T, atol=1e-8)


def test_validation_fraction_is_seeded_saved_and_checked(tmp_path):
    X, y = few_rows_many_features(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the target differences")
        fits = [LMNN(solver="fista", max_iter=100, validation_fraction=0.3, random_state=s).fit(X, y)
                for s in (1, 1, 2)]
        plain = LMNN(solver="fista", max_iter=100).fit(X, y)
    assert np.array_equal(fits[0].validation_rows_, fits[1].validation_rows_)
    assert np.array_equal(fits[0].metric_, fits[1].metric_)
    assert not np.array_equal(fits[0].validation_rows_, fits[2].validation_rows_)
    assert plain.validation_rows_ is None and plain.validation_error_ is None
    loaded = load_estimator(save_estimator(tmp_path / "est.npz", fits[0]))
    assert np.array_equal(loaded.validation_rows_, fits[0].validation_rows_)
    assert loaded.validation_error_ == fits[0].validation_error_ and loaded.solver_ == "fista"
    with pytest.raises(ValueError, match="validation_fraction"):
        LMNN(solver=get_solver("fista"), validation_fraction=0.3).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        LMNN(validation_fraction=1.0).fit(X, y)
