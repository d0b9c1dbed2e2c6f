"""The scikit-learn estimator: estimator checks, pipelines, multi-pass."""
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from convexmetric import LMNNProblem, solve
from convexmetric.estimator import LMNN, _mean_sq_distance


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


def test_fit_warns_when_the_metric_learned_is_zero_and_says_which_mu_learns_one():
    """k-NN in the zero metric only breaks ties: the fit says so, from the caller's line, with
    the ``mu`` above which the optimum is not 0, or that none is (and stays quiet otherwise)."""
    import warnings
    cross = (np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]]), np.array([0, 0, 1, 1]))
    with pytest.warns(UserWarning, match="optimum at every mu") as caught:
        est = LMNN(k=1).fit(*cross)
    assert caught[0].filename == __file__ and np.all(est.metric_ == 0)
    rng = np.random.default_rng(3)
    six = np.array([[0.1, -1.4], [0.2, 1.2], [1.3, -1.2], [0.1, -1.3], [1.1, 0.4], [-1.1, -0.9]])
    for X, y, k, lo, hi in [(rng.normal(size=(30, 3)), np.repeat([0, 1, 2], 10), 2, 0.0, 0.5),
                            (six, np.repeat([0, 1], 3), 1, 0.5, 0.95)]:
        mu_star = LMNNProblem(X, y, k=k).zero_metric_threshold()
        assert lo < mu_star < hi
        with pytest.warns(UserWarning, match=f"whenever mu <= {mu_star:.3g}"):   # 0 up to round-off
            assert _mean_sq_distance(X, LMNN(k=k, mu=0.9 * mu_star).fit(X, y).metric_) <= 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            assert _mean_sq_distance(X, LMNN(k=k, mu=0.5 * (1 + mu_star)).fit(X, y).metric_) > 1e-3


def test_fit_warns_when_the_solver_stops_short_of_tol(iris_std):
    """An uncertified fit says so (scikit-learn's ConvergenceWarning, from the caller's line),
    with the proven gap and what to try; a certified one, an early-stopped one (validation)
    and one the user interrupted stay quiet."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    X, y = iris_std
    with pytest.warns(ConvergenceWarning, match="max_iter") as caught:
        short = LMNN(solver="fista", max_iter=3, tol=1e-9).fit(X, y)
    assert short.result_.status != "optimal"
    assert f"{short.result_.relative_gap:.2g}" in str(caught[0].message)
    assert "StandardScaler" not in str(caught[0].message)  # the features are standardised already
    assert caught[0].filename == __file__
    with pytest.warns(ConvergenceWarning, match=r"span a factor of 1e\+03, which slows every solver: put a StandardScaler"):
        LMNN(solver="fista", max_iter=3, tol=1e-9).fit(X * [1.0, 1.0, 1.0, 1e3], y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LMNN().fit(X, y).result_.status == "optimal"
        held = LMNN(solver="fista", max_iter=3, tol=1e-9, validation_fraction=0.3).fit(X, y)
        assert held.result_.status != "optimal"


def test_pipeline_in_grid_search(iris_std):
    X, y = iris_std
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


@pytest.mark.parametrize("bad", [dict(tol=-1.0), dict(tol=0), dict(max_iter=0), dict(max_iter=2.5),
                                 dict(time_limit=0), dict(verbose=-1), dict(solver=3),
                                 dict(triplets="some"), dict(margin=0), dict(random_state="x")])
def test_bad_new_parameters_give_sklearn_errors(iris_std, bad):
    from sklearn.utils._param_validation import InvalidParameterError
    X, y = iris_std
    with pytest.raises(InvalidParameterError, match=f"The '{next(iter(bad))}' parameter of LMNN"):
        LMNN(**bad).fit(X, y)


def test_unknown_solver_and_instance_conflicts_raise(iris_std):
    from convexmetric import get_solver
    X, y = iris_std
    with pytest.raises(ValueError, match="unknown solver 'nope'"):
        LMNN(solver="nope").fit(X, y)
    with pytest.raises(ValueError, match="tol, max_iter cannot be combined with a solver instance"):
        LMNN(solver=get_solver("fista"), tol=1e-3, max_iter=5).fit(X, y)


def test_n_components_is_validated_like_nca(iris_std):
    X, y = iris_std
    with pytest.raises(ValueError, match=r"n_components \(5\) cannot be greater than the number of features \(4\)"):
        LMNN(solver="fista", tol=1e-3, n_components=5).fit(X, y)
    est = LMNN(solver="fista", tol=1e-3, n_components=2).fit(X, y)
    assert est.transform(X).shape == (150, 2)
    np.testing.assert_allclose(est.components_, est.result_.L[:2])


def test_n_components_pads_a_low_rank_metric(iris_std):
    from convexmetric.result import OPTIMAL_INACCURATE
    from convexmetric.solvers import Solver

    class RankOne(Solver):
        name = "rank-one"

        def _run(self, problem):
            M = np.zeros((problem.d, problem.d))
            M[0, 0] = 1.0
            self.record(1, M, problem.objective(M))
            return M, OPTIMAL_INACCURATE, 1, {}

    X, y = iris_std
    est = LMNN(solver=RankOne(certify=False), n_components=3).fit(X, y)
    assert est.components_.shape == (3, 4)
    assert est.components_[0, 0] != 0 and not est.components_[0, 1:].any()   # the one direction, e_1
    assert not est.components_[1:].any()
    assert list(est.get_feature_names_out()) == ["lmnn0", "lmnn1", "lmnn2"]


def test_set_output_pandas_and_feature_names(iris_std):
    pd = pytest.importorskip("pandas")
    X, y = iris_std
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"], index=np.arange(150) + 1000)
    est = LMNN(solver="fista", tol=1e-3, n_components=3).set_output(transform="pandas").fit(df, y)
    out = est.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["lmnn0", "lmnn1", "lmnn2"] == list(est.get_feature_names_out())
    assert (out.index == df.index).all()
    np.testing.assert_allclose(out.to_numpy(), X @ est.components_.T)
    full = LMNN(solver="fista", tol=1e-3).fit(X, y)
    assert len(full.get_feature_names_out()) == full.components_.shape[0]


def test_max_iter_and_tol_reach_the_solver(iris_std):
    X, y = iris_std
    est = LMNN(solver="fista", max_iter=3, tol=1e-12).fit(X, y)
    assert est.result_.nit <= 3 and est.n_iter_ <= 3
    assert est.result_.options["max_iter"] == 3 and est.result_.options["tol"] == 1e-12
    assert est.result_.status == "user_limit"                     # stopped by the cap
    default = LMNN(solver="fista", max_iter=3).fit(X, y)
    assert default.result_.options["tol"] == 1e-6                 # None: the solver's default
    # the same key in solver_options: fine when equal, an error when it differs
    LMNN(solver="fista", max_iter=3, solver_options={"max_iter": 3}).fit(X, y)
    with pytest.raises(ValueError, match=r"tol=0.001 conflicts with solver_options\['tol'\]=0.0001"):
        LMNN(solver="fista", tol=1e-3, solver_options={"tol": 1e-4}).fit(X, y)


def test_time_limit_bounds_the_fit(wine_std):
    import time
    X, y = wine_std
    t0 = time.perf_counter()
    est = LMNN(solver="fista", tol=1e-14, time_limit=0.3, n_passes=3).fit(X, y)
    wall = time.perf_counter() - t0
    assert est.result_.status == "user_limit" and est.result_.options["time_limit"] <= 0.3
    assert sum(r.solve_time for r in est.results_) < 0.3 + 0.5   # passes share the budget
    assert wall < 15                                                # certification on top, bounded
    unlimited = LMNN(solver="fista", max_iter=5).fit(X, y)
    assert unlimited.result_.options["time_limit"] is None


def test_random_state_seeds_randomised_solvers(iris_std):
    X, y = iris_std
    a = LMNN(solver="stochastic", max_iter=40, random_state=1).fit(X, y)
    b = LMNN(solver="stochastic", max_iter=40, random_state=1).fit(X, y)
    c = LMNN(solver="stochastic", max_iter=40, random_state=2).fit(X, y)
    assert a.result_.options["seed"] == 1 and c.result_.options["seed"] == 2
    np.testing.assert_array_equal(a.metric_, b.metric_)
    assert not np.allclose(a.metric_, c.metric_)
    d = LMNN(solver="stochastic", max_iter=40, random_state=np.random.RandomState(0)).fit(X, y)
    assert isinstance(d.result_.options["seed"], int)
    # deterministic solvers accept and ignore it
    e = LMNN(solver="fista", max_iter=5, random_state=3).fit(X, y)
    assert "seed" not in e.result_.options


def test_verbose_talks_without_logging_configured(iris_std, capsys, monkeypatch):
    import logging
    X, y = iris_std
    monkeypatch.setattr(logging.root, "handlers", [])          # as in a plain script
    log = logging.getLogger("convexmetric")
    before = (list(log.handlers), log.level)
    LMNN(solver="fista", tol=1e-3).fit(X, y)
    assert capsys.readouterr().err == ""
    LMNN(solver="fista", tol=1e-3, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "convexmetric.solvers: fista it 0" in err and "LMNN pass 1" in err
    assert (list(log.handlers), log.level) == before            # the temporary handler is gone
    LMNN(tol=1e-3, verbose=1).fit(X, y)
    assert "solver='auto' picked 'hybrid': d = 4 <= 16" in capsys.readouterr().err


def test_verbose_uses_configured_logging_without_duplicates(iris_std, caplog, capsys, monkeypatch):
    import logging
    X, y = iris_std
    monkeypatch.setattr(logging.root, "level", logging.WARNING)  # a handler exists, INFO is off
    LMNN(solver="fista", tol=1e-3, verbose=1).fit(X, y)
    assert any("fista it 0" in r.getMessage() for r in caplog.records)
    assert capsys.readouterr().err == ""                         # no second, private handler
