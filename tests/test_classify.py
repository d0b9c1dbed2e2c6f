"""The paper's classifiers: kNN tie-breaking, leave-one-out, energy (Eq. 15), multi-metric."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, solve
from convexmetric.classify import (_nearest, energy_predict, knn_predict, loo_knn_error,
                                   vote_with_tie_breaking)

from conftest import random_problem_data, random_psd


def test_ties_shrink_k_down_to_one():
    # neighbours sorted by distance: labels (a, b) tie at k=2 -> decided by the nearest
    codes = np.array([[0, 1, 2], [1, 1, 0], [2, 0, 1], [0, 2, 2]])
    np.testing.assert_array_equal(vote_with_tie_breaking(codes, 3), [0, 1, 2, 2])


def test_knn_matches_a_loop_in_a_learned_metric():
    X, y = random_problem_data(0, n=40, d=3)
    Xt, _ = random_problem_data(1, n=15, d=3)
    M = random_psd(np.random.default_rng(0), 3)
    pred = knn_predict(X, y, Xt, M, k=3)
    for t, x in enumerate(Xt):
        d = np.einsum("ij,jk,ik->i", X - x, M, X - x)
        order = np.lexsort((np.arange(len(X)), d))
        for kk in (3, 2, 1):
            votes = np.bincount(y[order[:kk]], minlength=3)
            if (votes == votes.max()).sum() == 1:
                assert pred[t] == votes.argmax()
                break


@pytest.mark.parametrize("seed", range(6))
def test_nearest_by_distance_then_index_equals_a_full_sort(seed):
    """The kk nearest columns of every row, ties in column order, as a stable sort of the whole
    row gives them, on small-integer distances (ties everywhere, also across the kk-th place)."""
    from convexmetric.classify import nearest_by_distance_then_index
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    D = rng.integers(0, int(rng.integers(2, 6)), size=(300, n)).astype(float)
    for kk in range(1, n + 1):
        expect = np.argsort(D, axis=1, kind="stable")[:, :kk]
        np.testing.assert_array_equal(nearest_by_distance_then_index(D, kk), expect, err_msg=f"kk={kk}")


@pytest.mark.parametrize("k", [1, 3, 5])
def test_knn_takes_the_lowest_indices_among_ties_at_the_kth_distance(k):
    # integer points on a line: distances are exact and tie across the k-th place in most rows,
    # where a bare argpartition would keep an arbitrary subset of the tied points
    from convexmetric.repro import knn_predict_sparse
    rng = np.random.default_rng(k)
    X = rng.integers(0, 4, size=(200, 1)).astype(float)
    y = rng.integers(0, 3, size=200)
    Xtr, ytr, Xte = X[:60], y[:60], X[60:]
    expect = []
    for x in Xte:
        order = np.lexsort((np.arange(len(Xtr)), ((Xtr - x) ** 2).sum(1)))
        expect.append(vote_with_tie_breaking(ytr[order[:k]][None, :], 3)[0])
    D = np.sort(((Xte[:, None, :] - Xtr[None]) ** 2).sum(-1), axis=1)
    assert np.mean(D[:, k - 1] == D[:, k]) > 0.5                 # ties do cross the k-th place
    np.testing.assert_array_equal(knn_predict(Xtr, ytr, Xte, k=k), expect)
    np.testing.assert_array_equal(knn_predict(Xtr, ytr, Xte, 4.0 * np.eye(1), k=k), expect)
    np.testing.assert_array_equal(knn_predict_sparse(Xtr, ytr, Xte, k=k), expect)
    # fewer training points than k: every one of them votes, nearest first, ties by index
    few = [vote_with_tie_breaking(ytr[:4][np.lexsort((np.arange(4), ((Xtr[:4] - x) ** 2).sum(1)))][None, :], 3)[0]
           for x in Xte]
    np.testing.assert_array_equal(knn_predict(Xtr[:4], ytr[:4], Xte, k=max(k, 4)), few)
    # leave-one-out on the training rows follows the same order among the other points
    loo = knn_predict(Xtr, ytr, Xtr, k=k, leave_one_out=True)
    for i, x in enumerate(Xtr):
        d = ((Xtr - x) ** 2).sum(1)
        d[i] = np.inf
        order = np.lexsort((np.arange(len(Xtr)), d))
        assert loo[i] == vote_with_tie_breaking(ytr[order[:k]][None, :], 3)[0]


def test_leave_one_out_never_uses_the_point_itself():
    X = np.array([[0.0], [0.1], [5.0], [5.1], [10.0]])
    y = np.array([0, 0, 1, 1, 0])
    # with the point itself, 1-NN training error would be 0; LOO misclassifies the lone 10.0
    assert loo_knn_error(X, y, k=1) == pytest.approx(1 / 5)


def test_multimetric_distances_use_the_reference_class_metric():
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    y = np.array([0, 1, 1])
    Ms = np.stack([np.diag([1.0, 1.0]), np.diag([0.01, 1.0])])   # class 1 ignores x
    # query at (2, 0): Euclidean nearest is (3, 0) (class 1); also under M_1 (0.01) -> class 1
    assert knn_predict(X, y, np.array([[2.0, 0.0]]), Ms, k=1)[0] == 1
    Ms[1] = np.diag([100.0, 1.0])                                  # now class 1 stretches x
    assert knn_predict(X, y, np.array([[2.0, 0.0]]), Ms, k=1)[0] == 0


def _energy_loop(X, y, M, targets, xt, k, mu, test_targets="metric", own_margin=1.0):
    d = lambda a, b: (a - b) @ M @ (a - b)  # noqa: E731
    pick = d if test_targets == "metric" else (lambda a, b: (a - b) @ (a - b))  # noqa: E731
    E = []
    for c in np.unique(y):
        g = np.flatnonzero(y == c)
        js = g[np.argsort([pick(xt, X[j]) for j in g], kind="stable")[:k]]
        e = (1 - mu) * sum(d(xt, X[j]) for j in js)
        for j in js:
            for l in np.flatnonzero(y != c):
                e += mu * max(own_margin + d(xt, X[j]) - d(xt, X[l]), 0)
        for i in np.flatnonzero(y != c):
            for j in targets[i]:
                e += mu * max(1 + d(X[i], X[j]) - d(X[i], xt), 0)
        E.append(e)
    return int(np.argmin(E))


@pytest.mark.parametrize("test_targets", ["metric", "euclidean"])
def test_energy_classifier_matches_the_loop(test_targets):
    X, y = random_problem_data(2, n=36, d=3)
    Xt, _ = random_problem_data(3, n=12, d=3)
    p = LMNNProblem(X, y)
    M = solve(p, "fista", tol=1e-2).M
    pred = energy_predict(X, y, Xt, M, p.targets, k=3, mu=0.5, test_targets=test_targets)
    expect = [_energy_loop(X, y, M, p.targets, x, 3, 0.5, test_targets) for x in Xt]
    np.testing.assert_array_equal(pred, expect)


@pytest.mark.parametrize("test_targets", ["metric", "euclidean"])
def test_energy_classifier_matches_the_loop_far_from_euclidean(test_targets):
    # a stretched metric: the two ways of choosing a test point's targets pick different points
    X, y = random_problem_data(4, n=60, d=4)
    Xt, _ = random_problem_data(6, n=60, d=4)
    p = LMNNProblem(X, y)
    M = np.diag([25.0, 1.0, 0.04, 1.0])
    pred = energy_predict(X, y, Xt, M, p.targets, k=3, mu=0.3, test_targets=test_targets)
    expect = [_energy_loop(X, y, M, p.targets, x, 3, 0.3, test_targets) for x in Xt]
    np.testing.assert_array_equal(pred, expect)


def test_energy_own_margin_matches_the_loop_and_matters():
    # the public code's variant: no margin in the test point's own impostor hinges
    X, y = random_problem_data(4, n=60, d=4)
    Xt, _ = random_problem_data(6, n=60, d=4)
    p = LMNNProblem(X, y)
    M = np.diag([2.5, 1.0, 0.4, 1.0])
    pred = energy_predict(X, y, Xt, M, p.targets, own_margin=0.0)
    expect = [_energy_loop(X, y, M, p.targets, x, 3, 0.5, own_margin=0.0) for x in Xt]
    np.testing.assert_array_equal(pred, expect)
    assert (pred != energy_predict(X, y, Xt, M, p.targets)).any()
    for bad in ({"own_margin": -1.0}, {"own_margin": np.nan}, {"margin": -0.5}):
        with pytest.raises(ValueError, match="margin"):
            energy_predict(X, y, Xt, M, p.targets, **bad)


def test_energy_euclidean_targets_break_ties_by_index():
    # columns 1, 2 and 3 tie on the selecting distance: the two earliest are taken
    select = np.array([[5.0, 1.0, 1.0, 1.0, 7.0]])
    values = np.array([[0.1, 9.0, 4.0, 2.0, 0.2]])
    np.testing.assert_array_equal(_nearest(values, select, 2), [[4.0, 9.0]])
    np.testing.assert_array_equal(_nearest(values, None, 2), [[0.1, 0.2]])


def test_energy_test_targets_matter_only_away_from_the_euclidean_metric():
    X, y = random_problem_data(4, n=60, d=4)
    Xt, _ = random_problem_data(5, n=80, d=4)
    p = LMNNProblem(X, y)
    by = {t: energy_predict(X, y, Xt, np.eye(4), p.targets, test_targets=t) for t in ("metric", "euclidean")}
    np.testing.assert_array_equal(by["metric"], by["euclidean"])
    M = np.diag([25.0, 1.0, 0.04, 1.0])                      # far from Euclidean: other targets
    by = {t: energy_predict(X, y, Xt, M, p.targets, test_targets=t) for t in ("metric", "euclidean")}
    assert (by["metric"] != by["euclidean"]).any()
    with pytest.raises(ValueError, match="test_targets"):
        energy_predict(X, y, Xt, M, p.targets, test_targets="learned")


@pytest.mark.parametrize("seed", range(4))
def test_sq_dist_blocks_from_factors_equal_those_from_metrics(seed):
    """``factor=L`` (or one per class) gives the distances of ``metric=L.T @ L``; not both."""
    from convexmetric.classify import sq_dist_blocks
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 8))
    Xtr, Xte, codes = rng.standard_normal((40, d)), rng.standard_normal((25, d)), np.arange(40) % 3
    Ls = [rng.standard_normal((int(rng.integers(1, d + 1)), d)) for _ in range(3)]
    for factor, metric in ((Ls[0], Ls[0].T @ Ls[0]), (Ls, np.stack([L.T @ L for L in Ls]))):
        got = np.vstack([D for _, D in sq_dist_blocks(Xtr, codes, Xte, factor=factor)])
        want = np.vstack([D for _, D in sq_dist_blocks(Xtr, codes, Xte, metric)])
        assert np.allclose(got, want, rtol=1e-10, atol=1e-10 * want.max())
    with pytest.raises(ValueError, match="not both"):
        next(sq_dist_blocks(Xtr, codes, Xte, metric, factor=Ls))
