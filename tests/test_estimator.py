"""The scikit-learn estimator: estimator checks, pipelines, multi-pass."""
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from convexmetric import LMNNProblem, solve
from convexmetric.estimator import LMNN


@parametrize_with_checks([LMNN(solver="fista", solver_options={"tol": 1e-3, "max_iter": 300})])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_metric_matches_direct_solve(iris_std):
    X, y = iris_std
    est = LMNN(solver="hybrid").fit(X, y)
    direct = solve(LMNNProblem(X, y), "hybrid")
    assert est.result_.fun == pytest.approx(direct.fun, rel=1e-7)
    np.testing.assert_allclose(est.components_.T @ est.components_, est.metric_, atol=1e-9)
    np.testing.assert_allclose(est.transform(X), X @ est.components_.T)
    assert est.n_iter_ == est.result_.nit


def test_pipeline_in_grid_search(wine_std):
    X, y = wine_std
    pipe = Pipeline([("lmnn", LMNN(solver="hybrid")),
                     ("knn", KNeighborsClassifier(n_neighbors=3))])
    grid = GridSearchCV(pipe, {"lmnn__mu": [0.3, 0.7]}, cv=3).fit(X, y)
    assert set(grid.cv_results_["param_lmnn__mu"]) == {0.3, 0.7}
    assert grid.best_score_ > 0.9


def test_multipass_recomputes_targets_in_learned_space(wine_std):
    from convexmetric.neighbors import select_targets
    X, y = wine_std
    first = LMNN(solver="hybrid").fit(X, y)
    two = LMNN(solver="hybrid", n_passes=2).fit(X, y)
    expect = select_targets(X @ first.components_.T, np.unique(y, return_inverse=True)[1], 3)
    assert not np.array_equal(expect, first.targets_)      # Wine's targets do change in the learned space
    assert len(two.results_) == 2
    np.testing.assert_array_equal(two.targets_, expect)    # pass 2 used exactly those targets
    assert two.results_[0].fun == pytest.approx(first.result_.fun, rel=1e-9)


@pytest.mark.parametrize("bad", [dict(n_passes=0), dict(n_components=0), dict(k=0), dict(mu=1.5)])
def test_bad_parameters_raise(iris_std, bad):
    X, y = iris_std
    with pytest.raises(ValueError):
        LMNN(**bad).fit(X, y)
