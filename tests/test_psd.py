"""``psd.psd_factor`` and the embeddings built on it: a factor of the metric given, by
Cholesky where it is positive definite, and the PSD test where it is not."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, psd
from convexmetric.multimetric import MultiMetricProblem


def random_metric(rng, d, rank, scale, condition):
    """A ``d x d`` PSD metric of the given rank, scale and spread of eigenvalues."""
    V = np.linalg.qr(rng.standard_normal((d, d)))[0][:, :rank]
    w = scale * np.logspace(0, -np.log10(condition), rank)
    return (V * w) @ V.T


@pytest.mark.parametrize("seed", range(20))
def test_factor_reproduces_the_metric_at_any_rank_scale_and_condition(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 40))
    rank = int(rng.integers(0, d + 1))
    scale, condition = 10.0 ** rng.uniform(-6, 6), 10.0 ** rng.uniform(0, 6)
    M = psd.symmetrize(random_metric(rng, d, rank, scale, condition))
    L, ratio = psd.psd_factor(M)
    assert L.shape[1] == d
    assert np.allclose(L.T @ L, M, rtol=0, atol=1e-10 * max(scale, 1e-300))
    if rank == d:                          # positive definite: the Cholesky factor
        assert np.isnan(ratio) and L.shape == (d, d) and np.allclose(L, np.triu(L))
    elif not np.isnan(ratio):              # singular, as Cholesky saw it: the eigen-factor, PSD ratio
        assert -psd.PSD_RTOL < ratio <= 1e-12 and L.shape[0] <= d


@pytest.mark.parametrize("seed", range(10))
def test_indefinite_metrics_are_refused_and_round_off_is_not(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 30))
    X, y = rng.standard_normal((4 * d, d)), np.arange(4 * d) % 2
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    w = np.linspace(1.0, 2.0, d) * 10.0 ** rng.uniform(-3, 3)
    M = psd.symmetrize((V * w) @ V.T)
    for lam_min, refused in ((-1e-3, True), (-1e-12, False)):
        w_bad = w.copy()
        w_bad[0] = lam_min * w.max()
        bad = psd.symmetrize((V * w_bad) @ V.T)
        L, ratio = psd.psd_factor(bad)
        assert ratio == pytest.approx(lam_min, rel=1e-3, abs=1e-14)
        if refused:
            with pytest.raises(ValueError, match="not positive semidefinite"):
                LMNNProblem(X, y).embed(bad)
            with pytest.raises(ValueError, match="not positive semidefinite"):
                MultiMetricProblem(X, y).embed(np.stack([M, bad]))
        else:                              # round-off: evaluated as its PSD projection
            emb = LMNNProblem(X, y).embed(bad)
            assert np.allclose(emb.M, bad, rtol=0, atol=1e-10 * w.max())
            assert np.linalg.eigvalsh(emb.M).min() >= -1e-14 * w.max()


@pytest.mark.parametrize("seed", range(8))
def test_embedded_distances_are_the_metric_quadratic_forms(seed):
    """Whichever factor the embedding holds, its coordinates give the metric's distances."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 12))
    X, y = rng.standard_normal((30, d)) * 10.0 ** rng.uniform(-2, 2), np.arange(30) % 3
    p, q = LMNNProblem(X, y), MultiMetricProblem(X, y)
    Ms = [random_metric(rng, d, r, 10.0 ** rng.uniform(-3, 3), 100.0) for r in (d, max(d - 2, 0), d)]
    diff = X[:, None, :] - X[None, :, :]
    for M, emb in [(M, p.embed(M)) for M in Ms] + list(zip(Ms, q.embed(np.stack(Ms)).Z)):
        Z = emb.Z if hasattr(emb, "Z") else emb
        direct = np.einsum("abi,ij,abj->ab", diff, M, diff)
        via_Z = np.sum((Z[:, None, :] - Z[None, :, :]) ** 2, axis=2)
        assert np.allclose(via_Z, direct, rtol=1e-9, atol=1e-9 * np.abs(direct).max())


@pytest.mark.parametrize("seed", range(12))
def test_projection_is_the_eigenvalue_clipping_for_definite_and_indefinite_matrices(seed):
    """``project_psd`` (which skips the eigendecomposition when a Cholesky factor exists)
    equals clipping the eigenvalues at 0, for one matrix and for a stack of them."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 25))
    scale = 10.0 ** rng.uniform(-4, 4)
    stack = []
    for shift in (-2.0, -0.5, 0.0, 0.5):       # indefinite, indefinite, singular-ish, definite
        A = rng.standard_normal((d, d))
        stack.append(scale * (A @ A.T / d + shift * np.eye(d)))
    stack = np.stack(stack)
    w, V = np.linalg.eigh(psd.symmetrize(stack))
    expected = (V * np.maximum(w, 0.0)[:, None, :]) @ np.swapaxes(V, -1, -2)
    tol = 1e-12 * scale * max(1.0, np.abs(w).max() / scale)
    assert np.allclose(psd.project_psd(stack), expected, rtol=0, atol=tol)
    for M, want in zip(stack, expected):
        got = psd.project_psd(M)
        assert np.allclose(got, want, rtol=0, atol=tol) and np.allclose(got, got.T, rtol=0, atol=0)
        assert np.linalg.eigvalsh(got).min() >= -1e-12 * np.abs(w).max()
