"""The feature maps and the RCA metric of ``paper_repro/explain_differences.py`` (``bal-inputs``,
``bal-witnesses``): what they claim to compute, since the sections' evidence is the rows they produce."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_repro.explain_differences import _directions, rca_metric  # noqa: E402


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_directions_are_unit_vectors_from_the_training_mean(order, seed):
    """Training and test points both become (x - training mean) / ||x - training mean||, a point at
    the mean becomes 0 rather than NaN, and the test rows do not move the mean."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 6))
    Xtr = rng.normal(size=(int(rng.integers(5, 30)), d)) * 10.0 ** rng.uniform(-2, 2) + rng.normal(size=d)
    Xte = np.vstack([rng.normal(size=(7, d)) + 5.0, Xtr.mean(0)])
    Dtr, Dte = _directions(order)(Xtr, Xte)
    for X, D in ((Xtr, Dtr), (Xte[:-1], Dte[:-1])):
        Z = X - Xtr.mean(0)
        assert np.allclose(np.linalg.norm(D, ord=order, axis=1), 1.0)
        scale = np.linalg.norm(Z, ord=order, axis=1, keepdims=True)
        assert np.allclose(D * scale, Z, atol=1e-12 * np.abs(Z).max())
    assert np.all(np.abs(Dte[-1]) <= 1e-6)
    assert np.all(np.isfinite(Dte))


def _sq_dists(X, M):
    diff = X[:, None, :] - X[None, :, :]
    return np.einsum("ijk,kl,ijl->ij", diff, M, diff)


@pytest.mark.parametrize("seed", range(4))
def test_rca_metrics_whiten_the_within_class_scatter_and_ignore_affine_maps(seed):
    """Full RCA is the inverse pooled within-class scatter; reduced RCA keeps the C - 1 directions
    of largest total over within-class variance, the distances of scikit-learn's eigen-solver LDA;
    both give the same distances after any invertible affine map of the inputs."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    rng = np.random.default_rng(seed)
    d, C = int(rng.integers(4, 7)), int(rng.integers(2, 4))
    sizes = rng.integers(6, 25, size=C)
    y = np.repeat(np.arange(C), sizes)
    X = rng.normal(size=(y.size, d)) * 10.0 ** rng.uniform(-1, 1, size=d) + 3.0 * rng.normal(size=(C, d))[y]
    centred = X - np.stack([X[y == c].mean(0) for c in range(C)])[y]
    W = centred.T @ centred / y.size
    full, reduced = rca_metric(X, y, reduced=False), rca_metric(X, y)
    assert np.allclose(full @ W, np.eye(d), atol=1e-8)
    assert np.linalg.matrix_rank(reduced, tol=1e-8 * np.abs(reduced).max()) == C - 1
    Z = LinearDiscriminantAnalysis(solver="eigen").fit(X, y).transform(X)
    lda = _sq_dists(Z, np.eye(Z.shape[1]))
    assert np.allclose(_sq_dists(X, reduced), lda, rtol=1e-6, atol=1e-8 * lda.max())
    A, b = rng.normal(size=(d, d)) + d * np.eye(d), rng.normal(size=d)
    for which in (False, True):
        before, after = _sq_dists(X, rca_metric(X, y, which)), _sq_dists(X @ A + b, rca_metric(X @ A + b, y, which))
        assert np.allclose(before, after, rtol=1e-6, atol=1e-8 * before.max())
