"""Teaching helpers: LMNN is convex in ``M`` and not in ``L``, shown numerically.

Along a segment of PSD matrices ``M(t) = (1 - t) A + t B`` the objective is convex (a
sum of linear functions and hinges of linear functions). Along a segment of factors
``L(t) = (1 - t) L_A + t L_B`` the metric ``L(t).T @ L(t)`` is quadratic in ``t`` and
the objective need not be convex; :func:`find_nonconvex_segment` searches for such a
segment and returns the evidence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .psd import metric_from_components


def segment_objective(problem, A, B, space: str = "M", n: int = 101):
    """Objective along the segment from ``A`` to ``B`` (metrics for ``"M"``, factors for ``"L"``).

    Returns ``(t, f)``, arrays of length ``n``.
    """
    if space not in ("M", "L"):
        raise ValueError(f"space must be 'M' or 'L', got {space!r}")
    t = np.linspace(0.0, 1.0, int(n))
    A, B = np.asarray(A, float), np.asarray(B, float)
    if space == "M":
        f = [problem.objective((1 - s) * A + s * B) for s in t]
    else:
        f = [problem.objective(metric_from_components((1 - s) * A + s * B)) for s in t]
    return t, np.array(f)


def midpoint_violation(problem, A, B, space: str = "M") -> float:
    """``f(midpoint) - (f(A) + f(B)) / 2``: positive means convexity fails on this segment."""
    if space == "M":
        fa, fb, fm = (problem.objective(A), problem.objective(B), problem.objective(0.5 * (A + B)))
    else:
        fa, fb = problem.objective(metric_from_components(A)), problem.objective(metric_from_components(B))
        fm = problem.objective(metric_from_components(0.5 * (A + B)))
    return float(fm - 0.5 * (fa + fb))


@dataclass
class NonConvexSegment:
    """Two factors ``L_A``, ``L_B`` whose midpoint breaks the convexity inequality."""

    L_A: np.ndarray
    L_B: np.ndarray
    violation: float
    relative_violation: float
    tries: int


def find_nonconvex_segment(problem, rank: int | None = None, seed: int = 0, tries: int = 200):
    """Search random pairs of factors for one whose midpoint breaks convexity.

    Half the tries draw two independent factors; the other half draw ``L_A`` and a
    randomly rotated copy ``L_B = Q L_A`` (``Q`` orthogonal), which has the *same* metric
    and objective, while the midpoint ``(I + Q) L_A / 2`` is a shrunken metric. Each
    ``L_A`` is first scaled to the best multiple of its metric, so shrinking it cannot
    help. The pair with the largest violation is returned (:class:`NonConvexSegment`),
    or ``None`` if no pair failed.
    """
    from .solvers.first_order import best_scaling
    rng = np.random.default_rng(seed)
    r = int(rank or problem.d)
    best = None
    for i in range(1, int(tries) + 1):
        LA = rng.standard_normal((r, problem.d))
        LA *= np.sqrt(best_scaling(problem, metric_from_components(LA), min_scale=1e-3))
        if i % 2:
            LB = rng.standard_normal((r, problem.d)) * np.linalg.norm(LA) / np.sqrt(r * problem.d)
        else:
            Q, _ = np.linalg.qr(rng.standard_normal((r, r)))
            LB = Q @ LA
        v = midpoint_violation(problem, LA, LB, "L")
        if v > 0 and (best is None or v > best.violation):
            ends = 0.5 * (problem.objective(metric_from_components(LA))
                          + problem.objective(metric_from_components(LB)))
            best = NonConvexSegment(LA, LB, v, v / max(abs(ends), 1e-300), i)
    return best
