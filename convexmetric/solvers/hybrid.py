"""Exact hybrid: a short accelerated smoothed run, then the exact active-set SDP.

The first-order run brings ``M`` close enough that the triplets on or above the
margin are (nearly) the final ones, so the active-set SDP usually finishes in one
round on 1–3 % of the triplets, and dual polishing then certifies the result.
"""
from __future__ import annotations

from .._checks import check_int
from ..result import USER_LIMIT
from .active_set import ActiveSetSDP
from .base import Solver, StopSolver, WhitenedPhase, was_interrupted
from .first_order import AcceleratedSmoothed


class HybridSolver(Solver):
    """``fista`` to a loose certified gap, then ``active-set`` from that warm start.

    Options
    -------
    warm_tol : float
        Certified relative gap at which the first-order phase hands over (default 1e-3);
        it also hands over when it stalls (``stall_rtol``, default 1e-6, at
        ``gamma_min`` = 1e-3), which is usually first.
    warm_iters : int or None
        Iteration cap of the first-order phase when it starts from the identity (default
        100; None: no cap). The active set is exact from any start, and 100 iterations
        find the triplets near the margin well enough (1 to 3 rounds). Uncapped, the phase
        crept on for 200 to 2 300 iterations on Wine's training splits: the cap made
        those solves 1.3 to 13 times faster, one metric a class on Wine 18 times, to the
        same optimum (``benchmarks/hybrid_handover.py``); the final certified gap is
        somewhat looser (100 Wine splits: median 1.1e-8 against 2.6e-9). From a warm
        start (multi-pass LMNN) the cap made solves slower and less accurate (gaps up to
        1e-6), so a warm-started first phase runs to its stall as before.
    warm_time : float
        Time cap of the first-order phase in seconds (default 30).
    near, backend, backend_options, max_memory, max_rounds : passed to ``active-set``.
    warm_gamma : float
        Final smoothing width of the first-order phase (relative to the margin).
    fista_options : dict or None
        Extra options for the first-order phase (override the above).
    whiten : bool
        Run the first-order phase where the pull matrix is the identity (one metric;
        :meth:`~convexmetric.LMNNProblem.pull_whitened`, an exact change of variables),
        starting at the Euclidean metric or the warm start mapped there (default True).
        Wine as loaded, whose features' scales are four orders of magnitude apart: 9.4 s ->
        0.39 s; synthetic sets with features scaled 1e-2..1e2 18-20 times faster; data
        already on one scale (iris, Wine, Table 1's Wine splits) 0.43-1.32 times the time,
        median 1.1 (``benchmarks/hybrid_whiten.py``).
    """

    name = "hybrid"
    exact = True
    #: One BLAS thread: its GEMMs are too small to share (``benchmarks/blas_threads.py``, two
    #: cores: digits 2.8-3.5x faster, breast cancer 2.5x, synthetic 2000 x 50 1.26x, Wine and
    #: Isolet the same), and the passes over the triplets keep both cores busy with their own workers.
    blas_threads = 1
    defaults = dict(tol=1e-8, warm_tol=1e-3, warm_iters=100, warm_time=30.0, stall_rtol=1e-6,
                    warm_gamma=1e-3, near=0.1, backend="CLARABEL", backend_options=None, max_memory=None, max_rounds=50,
                    fista_options=None, whiten=True)

    def __init__(self, **options):
        super().__init__(**options)
        if self.options["warm_iters"] is not None:
            self.options["warm_iters"] = check_int("warm_iters", self.options["warm_iters"])

    def _run(self, problem):
        o = self.options
        # fista runs on the pull-whitened twin itself (its option whiten); one metric a class:
        # not measured for hybrid, left unwhitened
        whiten = bool(o["whiten"] and problem.n_metrics == 1 and WhitenedPhase.applies(problem))
        fista_opts = {"stall_rtol": o["stall_rtol"], "gamma_min": o["warm_gamma"], "check_every": 25, "whiten": whiten}
        if o["warm_start"] is None and o["warm_iters"] is not None:
            fista_opts["max_iter"] = o["warm_iters"]
        fista_opts.update(o["fista_options"] or {})
        warm_time = o["warm_time"] if o["time_limit"] is None else min(o["warm_time"], o["time_limit"])
        # inner solvers see the normalised problem: hand them the warm start in its coordinates;
        # whitened, the phase starts at the Euclidean metric itself (as measured), not its best multiple
        M0 = self.initial_metric(problem) if o["warm_start"] is not None or whiten else None
        warm = AcceleratedSmoothed(tol=o["warm_tol"], time_limit=warm_time, warm_start=M0, certify=False,
                                   verbose=o["verbose"], callback=o["callback"], **fista_opts)
        first = warm.solve(problem)
        M_first = first.M
        self.duals.extend(warm.duals)  # the first phase's best dual bounds any stop
        for rec in first.history:
            self.history.append({**rec, "phase": "fista"})
        self._best = (M_first, first.fun)
        if was_interrupted(first):
            raise KeyboardInterrupt
        if first.info.get("stop_reason") == "stopped by callback":
            raise StopSolver(USER_LIMIT, "stopped by callback")
        t_first = self.elapsed()
        exact = ActiveSetSDP(tol=o["tol"], warm_start=M_first, near=o["near"], backend=o["backend"],
                             backend_options=o["backend_options"], max_memory=o["max_memory"],
                             max_rounds=o["max_rounds"], certify=False, verbose=o["verbose"],
                             callback=o["callback"],
                             time_limit=None if o["time_limit"] is None else max(o["time_limit"] - t_first, 1e-3))
        second = exact.solve(problem)
        for rec in second.history:
            self.history.append({**rec, "time": rec["time"] + t_first, "phase": "active-set"})
        if second.fun <= self._best[1]:
            self._best = (second.M, second.fun)
        if was_interrupted(second):
            raise KeyboardInterrupt
        info = {"fista": {"nit": first.nit, "time": first.solve_time, "status": first.status,
                          "objective": first.fun},
                "active_set": {"nit": second.nit, "time": second.solve_time, "status": second.status,
                               "rounds": second.info.get("rounds")}}
        if "dual" in second.info:
            info["dual"] = second.info["dual"]
        return second.M, second.status, first.nit + second.nit, info
