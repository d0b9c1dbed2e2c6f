"""The feature maps of ``paper_repro/explain_differences.py`` (``bal-inputs``): what they claim to
compute, since the section's evidence is the rows they produce."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_repro.explain_differences import _directions  # noqa: E402


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
