"""The result object every solver returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import psd

#: Status strings, in the style of CVXPY.
OPTIMAL = "optimal"                      # certified relative gap <= the solver's tolerance
OPTIMAL_INACCURATE = "optimal_inaccurate"  # solver finished, certificate above tolerance
USER_LIMIT = "user_limit"                # time or iteration limit, or a callback stopped it
INTERRUPTED = "interrupted"              # Ctrl-C: best iterate so far is returned
SOLVER_ERROR = "solver_error"


@dataclass
class LMNNResult:
    """Outcome of one solver run on an :class:`~convexmetric.LMNNProblem`.

    Attributes
    ----------
    M : ndarray (d, d), or (C, d, d) for a multi-metric problem
        The learned PSD metric (one per class for a multi-metric problem).
    fun : float
        Objective ``f(M)`` as computed by the problem (never by the solver).
    lower_bound, gap, relative_gap : float
        From the problem's certificate (``nan`` when it was not computed).
    status : str
        One of ``optimal``, ``optimal_inaccurate``, ``user_limit``, ``interrupted``,
        ``solver_error``.
    nit : int
        Iterations (rounds for the active-set solver).
    setup_time, solve_time, certify_time : float
        Seconds spent building, solving and certifying.
    solver : str
        Registry name of the solver; ``options`` the options it ran with.
    history : list of dict
        One record per logged iteration: ``time`` (solve seconds, excluding
        certification), ``objective`` and, when computed, ``lower_bound`` and
        ``relative_gap``; the last record (``final=True``) holds the final certificate.
    info : dict
        Solver-specific details (backend status, working-set sizes, ...).
    certificate : Certificate or None
    """

    M: np.ndarray
    fun: float
    status: str
    solver: str
    lower_bound: float = float("nan")
    gap: float = float("nan")
    relative_gap: float = float("nan")
    nit: int = 0
    setup_time: float = 0.0
    solve_time: float = 0.0
    certify_time: float = 0.0
    options: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    certificate: Any = None

    @property
    def L(self):
        """Linear map ``L`` (r x d) with ``M = L.T @ L``, rows by decreasing eigenvalue.

        For a multi-metric result, a list with one such map per class.
        """
        if self.M.ndim == 3:
            return [psd.components_from_metric(M) for M in self.M]
        return psd.components_from_metric(self.M)

    components_ = L

    @property
    def wall_time(self) -> float:
        return self.setup_time + self.solve_time + self.certify_time

    @property
    def success(self) -> bool:
        return self.status == OPTIMAL

    def history_array(self, key: str) -> np.ndarray:
        """One column of :attr:`history` as a float array (``nan`` where missing)."""
        return np.array([rec.get(key, np.nan) for rec in self.history], dtype=float)

    def __repr__(self) -> str:
        return (f"LMNNResult(solver={self.solver!r}, status={self.status!r}, fun={self.fun:.10g}, "
                f"lower_bound={self.lower_bound:.10g}, relative_gap={self.relative_gap:.3g}, "
                f"nit={self.nit}, wall_time={self.wall_time:.3g}s)")
