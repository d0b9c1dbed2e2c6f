"""The emulations of the authors' public LMNN solvers (``paper_repro/explain_differences.py``)
against the problem spec: their objective is the one they report as evidence about."""
import sys
from pathlib import Path

import numpy as np
import pytest

from convexmetric import LMNNProblem, solve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_repro.explain_differences import _ListedHinges, public_lmnn_v1, public_lmnn_v24  # noqa: E402


def random_problem(seed):
    """A small random problem; every parameter the emulations take varies with ``seed``."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 5))
    k = int(rng.integers(1, 4))
    sizes = rng.integers(k + 1, 12, size=int(rng.integers(2, 4)))
    y = np.repeat(np.arange(sizes.size), sizes)
    X = rng.normal(size=(y.size, d)) * 10.0 ** rng.uniform(-1, 1) + y[:, None] * rng.uniform(0, 2)
    mu = float(rng.uniform(0.05, 0.95))
    problem = LMNNProblem(X, y, k=k, mu=mu)
    return problem, X, y, rng


@pytest.mark.parametrize("seed", range(12))
def test_listed_hinges_match_the_problem(seed):
    """Over every pair, and over the pairs within some target's radius + 1 of either point, the
    emulations' objective and gradient are the problem's objective and subgradient."""
    problem, X, y, rng = random_problem(seed)
    hinges = _ListedHinges(X, y, np.asarray(problem.targets), problem.mu)
    L = np.eye(X.shape[1]) * 10.0 ** rng.uniform(-1, 0.5) + 0.3 * rng.normal(size=(X.shape[1],) * 2)
    M = L.T @ L
    f, G = hinges.value_and_gradient(L, hinges.enemies)
    assert f == pytest.approx(problem.objective(M), rel=1e-10)
    assert np.allclose(G, problem.subgradient(M), rtol=1e-9, atol=1e-9 * np.abs(G).max())
    assert hinges.complete(L) == pytest.approx(f, rel=1e-12)
    every_radius = np.logical_or.reduce([hinges.pairs_within(L, col) for col in range(hinges.targets.shape[1])])
    near, _ = hinges.value_and_gradient(L, every_radius)
    assert near == pytest.approx(f, rel=1e-12)
    if len(problem.active_set(M).triplets):      # a list that misses active pairs gives less
        assert hinges.value_and_gradient(L, np.zeros_like(hinges.enemies))[0] < f


@pytest.mark.parametrize("seed", range(3))
def test_emulated_solvers_return_metrics_the_certificate_bounds(seed):
    """What each emulation returns is a PSD metric whose objective, as the emulation computes
    it, is the problem's, and no lower than a certified lower bound on the optimum."""
    problem, X, y, _ = random_problem(seed)
    bound = solve(problem, "hybrid").lower_bound
    for emulate in (public_lmnn_v1, public_lmnn_v24):
        M, iterations, complete = emulate(X, y, np.asarray(problem.targets), mu=problem.mu)
        assert iterations >= 1
        assert np.linalg.eigvalsh(M).min() >= -1e-9 * np.abs(M).max()
        assert complete == pytest.approx(problem.objective(M), rel=1e-9)
        assert complete >= bound * (1 - 1e-9)
