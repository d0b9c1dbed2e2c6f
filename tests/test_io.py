"""Saving and loading results and estimators without pickle (convexmetric.io)."""
import json
import pickle

import numpy as np
import pytest

import convexmetric
from convexmetric import LMNNProblem, MultiMetricProblem, load_estimator, load_result, recertify, save_estimator, \
    save_result, solve
from convexmetric.estimator import LMNN
from convexmetric.io import FORMAT_VERSION, FormatError

from conftest import random_problem_data


@pytest.fixture(scope="module")
def single():
    X, y = random_problem_data(5, n=36, d=3, classes=3)
    p = LMNNProblem(X, y)
    seen = []
    return p, solve(p, "hybrid", callback=lambda info: seen.append(info["iteration"]) and False)


@pytest.fixture(scope="module")
def multi():
    X, y = random_problem_data(6, n=30, d=3, classes=3)
    p = MultiMetricProblem(X, y, k=2)
    return p, solve(p, "active-set")


def _same_numbers(a, b):
    for f in ("fun", "lower_bound", "gap", "relative_gap", "status", "solver", "nit", "setup_time", "solve_time",
              "certify_time"):
        assert getattr(a, f) == getattr(b, f), f


def test_single_metric_round_trip_is_bit_identical(single, tmp_path):
    p, res = single
    path = save_result(tmp_path / "iris.lmnn", res)
    assert path == tmp_path / "iris.lmnn" and path.is_file()            # written as named, no suffix added
    back = load_result(path)
    assert isinstance(back, convexmetric.LMNNResult) and back.certificate is None
    assert back.M.dtype == np.float64 and back.M.tobytes() == res.M.tobytes()
    np.testing.assert_array_equal(back.L, res.L)
    _same_numbers(back, res)
    assert back.history == res.history and back.history[-1]["final"] is True
    assert "callback" not in back.options and back.options["tol"] == res.options["tol"]
    kept = back.info["certificate"]                                     # the certificate's numbers survive
    for f in ("objective", "lower_bound", "gap", "relative_gap", "lb_scale", "lb_ball", "n_support"):
        assert kept[f] == getattr(res.certificate, f), f
    assert kept["method"] == res.certificate.method


def test_multi_metric_round_trip_and_recertification(multi, tmp_path):
    p, res = multi
    assert res.M.shape == (3, 3, 3)
    back = load_result(save_result(tmp_path / "multi.npz", res))
    assert back.M.tobytes() == res.M.tobytes() and back.M.shape == (3, 3, 3)
    _same_numbers(back, res)
    again = load_result(tmp_path / "multi.npz", problem=p)
    direct = p.certificate(res.M)
    assert again.certificate is not None
    assert again.gap == direct.gap and again.lower_bound == direct.lower_bound and again.fun == res.fun
    assert again.relative_gap <= max(res.relative_gap, res.options["tol"])


def test_recertification_gives_the_same_gap(single, tmp_path):
    p, res = single
    back = recertify(load_result(save_result(tmp_path / "r.npz", res)), p)
    fresh = recertify(res, p)             # the metric in memory, certified the same way
    assert back.fun == fresh.fun == res.fun
    assert (back.gap, back.lower_bound, back.relative_gap) == (fresh.gap, fresh.lower_bound, fresh.relative_gap)
    # without the solver's own dual points the bound may differ, but it still certifies the optimum
    assert back.relative_gap <= res.options["tol"] and back.status == res.status == "optimal"


def test_recertifying_against_another_shape_is_refused(single, tmp_path):
    _, res = single
    X, y = random_problem_data(0, n=20, d=4)
    with pytest.raises(ValueError, match=r"shape \(3, 3\) but this problem needs \(4, 4\)"):
        load_result(save_result(tmp_path / "r.npz", res), problem=LMNNProblem(X, y))


def test_a_file_with_pickled_objects_is_refused_without_running_it(single, tmp_path):
    _, res = single
    marker = tmp_path / "pickle-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(FormatError, match="pickled"):
        load_result(bad)
    # an archive that looks right but hides an object array
    good = np.load(save_result(tmp_path / "ok.npz", res), allow_pickle=False)
    members = {k: good[k] for k in good.files}
    members["M"] = np.array([Payload()], dtype=object)
    with open(tmp_path / "obj.npz", "wb") as fh:
        np.savez(fh, **members)
    with pytest.raises(FormatError, match="obj.npz holds pickled objects"):
        load_result(tmp_path / "obj.npz")
    assert not marker.exists()


def _rewrite_metadata(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    meta = json.loads(str(members["__metadata__"]))
    meta.update(changes)
    members["__metadata__"] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **members)


def test_unknown_format_version_and_wrong_kind_are_refused(single, tmp_path):
    _, res = single
    path = save_result(tmp_path / "v.npz", res)
    _rewrite_metadata(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(FormatError, match=rf"v.npz has format version {FORMAT_VERSION + 1}.*newer"):
        load_result(path)
    _rewrite_metadata(path, format_version=FORMAT_VERSION, format="something-else")
    with pytest.raises(FormatError, match="not a convexmetric file"):
        load_result(path)
    plain = tmp_path / "plain.npz"
    np.savez(plain, M=np.eye(3))
    with pytest.raises(FormatError, match="no __metadata__"):
        load_result(plain)
    _rewrite_metadata(path, format="convexmetric", kind="estimator")
    with pytest.raises(FormatError, match="load_estimator"):
        load_result(path)


def test_estimator_round_trip_transforms_identically(iris_std, tmp_path):
    X, y = iris_std
    names = np.array(["setosa", "versicolor", "virginica"])[y]          # string labels
    est = LMNN(solver="hybrid", solver_options={"tol": 1e-7}, n_components=3, k=2).fit(X, names)
    path = save_estimator(tmp_path / "lmnn.npz", est)
    back = load_estimator(path)
    assert isinstance(back, LMNN) and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    for name in ("metric_", "components_", "classes_", "targets_"):
        a, b = getattr(back, name), getattr(est, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert back.n_features_in_ == est.n_features_in_ == 4 and back.n_iter_ == est.n_iter_
    assert back.result_.M.tobytes() == est.result_.M.tobytes() and back.result_.fun == est.result_.fun
    with pytest.raises(ValueError, match="features"):                   # still validates its input
        back.transform(X[:, :3])
    with pytest.raises(FormatError, match="load_result"):
        load_estimator(save_result(tmp_path / "r.npz", est.result_))


def test_estimator_callable_options_are_dropped_with_a_warning(iris_std, tmp_path):
    X, y = iris_std
    est = LMNN(solver="fista", solver_options={"tol": 1e-3, "callback": lambda info: False}).fit(X, y)
    with pytest.warns(UserWarning, match=r"solver_options\['callback'\]"):
        path = save_estimator(tmp_path / "e.npz", est)
    back = load_estimator(path)
    assert back.solver_options == {"tol": 1e-3}
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
