"""TripletSet: a subset's pair table, relabelled from its parent's, equals one built afresh."""
import numpy as np
import pytest

from convexmetric.triplets import TripletSet


def _fresh_table(ts):
    fresh = TripletSet.from_keys(ts.keys.copy(), ts.n)
    return fresh.pairs, fresh.target_pair, fresh.impostor_pair


@pytest.mark.parametrize("seed", range(6))
def test_subset_pair_table_matches_a_fresh_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    T = int(rng.integers(1, 3000))
    ts = TripletSet(rng.integers(0, n, T), rng.integers(0, n, T), rng.integers(0, n, T), n)
    m = ts.n_pairs                                      # builds the parent's table
    selections = [rng.random(len(ts)) < q for q in (0.0, 0.05, 0.5, 1.0)]
    selections += [np.sort(rng.choice(len(ts), size=s, replace=False)) for s in (0, 1, len(ts) // 3)]
    relabelled = 0
    for sel in selections:
        sub = ts.subset(sel)
        relabelled += "_pair_table" in sub.__dict__ and len(sub) > 0
        np.testing.assert_array_equal(sub.keys, ts.keys[sel])
        for got, want in zip((sub.pairs, sub.target_pair, sub.impostor_pair), _fresh_table(sub)):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype
        # each triplet still points at its own pairs
        a, b = sub.pairs[sub.target_pair].T
        np.testing.assert_array_equal(np.minimum(sub.anchor, sub.target), a)
        np.testing.assert_array_equal(np.maximum(sub.anchor, sub.target), b)
        a, b = sub.pairs[sub.impostor_pair].T
        np.testing.assert_array_equal(np.minimum(sub.anchor, sub.impostor), a)
        # and the weighted sums built on it are those of the parent restricted to the subset
        alpha = np.zeros(len(ts))
        alpha[sel] = rng.random(len(sub))
        in_parent = np.searchsorted(ts.pairs[:, 0] * n + ts.pairs[:, 1], sub.pairs[:, 0] * n + sub.pairs[:, 1])
        beta = np.zeros(m)
        beta[in_parent] = sub.pair_weights(alpha[sel])
        np.testing.assert_allclose(beta, ts.pair_weights(alpha), atol=1e-12)
    assert relabelled >= 2                              # the relabelling path ran


def test_subset_of_a_set_without_a_table_builds_its_own_lazily():
    rng = np.random.default_rng(1)
    ts = TripletSet(rng.integers(0, 30, 500), rng.integers(0, 30, 500), rng.integers(0, 30, 500), 30)
    sub = ts.subset(rng.random(len(ts)) < 0.5)
    assert "_pair_table" not in sub.__dict__
    for got, want in zip((sub.pairs, sub.target_pair, sub.impostor_pair), _fresh_table(sub)):
        np.testing.assert_array_equal(got, want)
