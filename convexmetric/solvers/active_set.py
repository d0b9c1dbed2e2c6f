"""Exact active-set SDP.

Solve the SDP on a working set ``W`` of triplets; evaluate every triplet's margin at
the result; if no triplet outside ``W`` has ``z_t > 0``, the result is the global
optimum of the full problem (dropped hinge terms are zero there and non-negative
everywhere) and the working set's dual, padded with zeros, certifies it. Otherwise
add the violators and near-violators (``z_t > -near``) and repeat. ``W`` only grows,
so the loop ends; a good warm start makes it end after one round.
"""
from __future__ import annotations

import logging

import numpy as np

from ..result import OPTIMAL, OPTIMAL_INACCURATE, SOLVER_ERROR, USER_LIMIT
from .base import Solver
from .sdp import _backend_installed, solve_sdp

logger = logging.getLogger("convexmetric.solvers")


class ActiveSetSDP(Solver):
    """Exact LMNN through a sequence of SDPs on growing working sets of triplets.

    Options
    -------
    backend : str
        CVXPY backend, default "CLARABEL" (interior point: accurate duals).
    backend_options : dict or None
        Passed to the backend (see :class:`convexmetric.solvers.sdp.CvxpySDP`).
    near : float
        Triplets with margin ``z_t > -near * margin`` at the current metric join the
        working set (default 0.1).
    max_rounds : int
        Upper bound on SDP rounds (``max_iter`` is ignored).
    max_add : int or None
        At most this many triplets join per round, the most violated first (default
        ``max(2000, |W|)``): from a poor start the first SDP's metric can violate most
        triplets, and adding them all would make the next SDP nearly the full problem.
    max_memory : int or None
        Byte budget for one SDP (default 70 % of available memory).
    backend_verbose : bool
        Let CVXPY and the backend print their own logs (default False, independent
        of ``verbose``).
    """

    name = "active-set"
    exact = True
    defaults = dict(backend="CLARABEL", backend_options=None, near=0.1, max_rounds=50,
                    max_memory=None, tol=1e-8, max_add=None, backend_verbose=False)

    def _run(self, problem):
        backend = self.options["backend"].upper()
        if not _backend_installed(backend):
            raise RuntimeError(f"CVXPY backend {backend} is not installed (or not licensed)")
        near = float(self.options["near"]) * problem.margin
        if not near >= 0:
            raise ValueError(f"near must be non-negative, got {self.options['near']!r}")
        M = self.initial_metric(problem)
        working = problem.active_set(M, near).triplets
        rounds = []
        alpha = None
        status = OPTIMAL_INACCURATE
        for r in range(1, int(self.options["max_rounds"]) + 1):
            try:
                M_new, alpha_new, info = solve_sdp(problem, working, backend, self.options["backend_options"],
                                                   self.options["max_memory"], self.options["backend_verbose"],
                                                   time_limit=self.remaining())
            except MemoryError as exc:  # the working set outgrew memory: keep the best metric so far
                logger.warning("active-set round %d: %s", r, exc)
                rounds.append({"round": r, "working_set": len(working), "error": str(exc)})
                status = SOLVER_ERROR if alpha is None else OPTIMAL_INACCURATE
                break
            if M_new is None:
                rounds.append(info)
                status = SOLVER_ERROR if alpha is None else OPTIMAL_INACCURATE
                break
            M, alpha = M_new, alpha_new
            act = problem.active_set(M, near)
            outside = act.triplets.subset(act.margins > 0).difference(working)
            f = problem._objective_from(problem.embed(M), act)
            info.update(round=r, working_set=len(working), new_violators=len(outside))
            rounds.append(info)
            self.record(r, M, f, working=len(working), new_violators=len(outside),
                        backend_status=info["backend_status"])
            if len(outside) == 0:
                status = OPTIMAL
                break
            working = working.union(self._additions(act, working))
        else:
            status = USER_LIMIT
        result_info = {"rounds": rounds, "working_set": working}
        if alpha is not None:
            result_info["dual"] = [alpha]
        return M, status, len(rounds), result_info

    def _additions(self, act, working):
        """Triplets of ``act`` not yet in ``working``, capped at ``max_add``, most violated first."""
        fresh = ~act.triplets.isin(working)
        cap = self.options["max_add"] or max(2000, len(working))
        idx = np.flatnonzero(fresh)
        if idx.size > cap:
            idx = np.sort(idx[np.argsort(-act.margins[idx], kind="stable")[:cap]])
        return act.triplets.subset(idx)
