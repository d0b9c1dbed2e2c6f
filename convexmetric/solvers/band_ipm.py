"""Exact solver for larger d: a first-order start, then the structured interior point.

A short first-order run (the factored L-BFGS by default: fastest to a good metric on
digits and on the synthetic d = 50 set) settles which triplets are clearly active and
clearly inactive. :func:`convexmetric.interior.solve_margin_band` then solves the SDP
over the triplets near the margin with a primal-dual interior point that exploits the
rank-one pair structure, growing the band until no fixed triplet contradicts its fixing.
Its primal is the metric and its dual certifies it, so the problem's own certificate
gives a tight gap at d where CVXPY's dual polishing costs tens of seconds.

A warm start goes straight to the band when the dual ascent certifies it within the
handover gap (or when the ascent is turned off); a rougher one, or one with more active
triplets than :data:`~convexmetric.interior.BAND_MAX_LISTED`, takes the first-order phase
first.

If the band solve does not certify ``tol`` within its rounds (the start was too rough
for the band), the first-order phase continues from the best metric, for twice as long
and at least as long as the failed attempt took, and the band solve is tried again.
"""
from __future__ import annotations

from ..dual import dual_ascent
from ..interior import BAND_MAX_LISTED, solve_margin_band
from ..result import OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT
from .base import Solver, StopSolver, WhitenedPhase, was_interrupted


class BandInteriorSolver(Solver):
    """First-order warm start, then the interior point on the margin band.

    Every budget that shapes the path counts work (iterations), not seconds, so the same
    input gives the same result on a busy or an idle machine; ``time_limit`` only bounds
    the total.

    Options
    -------
    first : str
        Registry name of the first-order phase (default ``"factored"``), which stops as
        soon as its own certificate reaches ``handover_gap``.
    first_iters : int
        Iterations of the first burst of the first-order phase (default 200; digits
        hands over after about 90). Each further burst has twice as many.
    first_options : dict or None
        Extra options for the first-order phase (default ``{"gamma": 1e-2}`` for
        ``factored``). The phase's certificate is not polished unless these say
        ``polish``: the dual ascent and the band solve certify more cheaply. At
        ``d <= certificate.POLISH_MAX_DIM`` a polishing SDP in every burst cost 28 of
        the 41 s on the standardised breast-cancer data (d = 30); without it the solve
        took 12 s to the same metric (``benchmarks/band_ipm_polish.py``).
    handover_gap : float or None
        The band solve starts once the first-order iterate's certified relative gap is
        below this (default: ``30 tol`` clipped to ``[1e-2, 3e-2]``: a loose ``tol`` needs
        a less accurate start), or when the first-order run stops by itself, or after
        ``2 * max_attempts`` bursts. From rougher starts the band's fixings are too wrong
        and a round costs more than the first-order work it would save (synthetic
        d = 50: gap 2.3e-2 failed, 4.9e-3 certified 4.6e-5).
    band : float
        Half-width of the margin band, in units of the margin (default 0.01).
    max_free : int
        Most triplets left free in the band (the interior point factorises an
        ``m x m`` matrix per iteration; default 2500).
    max_attempts : int
        Band solves before giving up (default 4).
    whiten : bool
        Run the first-order phase where the pull matrix is the identity
        (:meth:`~convexmetric.LMNNProblem.pull_whitened`, an exact change of variables;
        default True). L-BFGS on the factor is not invariant to the features' scales: on
        breast cancer (d = 30) the default fit took 12 s standardised and 25 s on the raw
        features (still 3.7e-2 from the optimum); whitened, 0.9 s and 1.2 s, to certified
        gaps of 2.4e-4 and 1.3e-4; digits as loaded 36 s -> 3.2 s; data already on one scale
        (standardised digits, synthetic sets) 0.9-1.2 times the time
        (``benchmarks/band_ipm_whiten.py``). The band's interior point is
        invariant to such changes of variables; the phase is not.
    ascent_iters : int
        Before each band solve, this many iterations of first-order ascent on the dual
        (:func:`convexmetric.dual.dual_ascent`, a fraction of a second); when they
        certify ``tol`` the interior point is not needed (synthetic d = 50: 3e-2 to 6e-4
        in 0.5 s). 0 turns it off.
    """

    name = "band-ipm"
    exact = True
    #: One BLAS thread: its GEMMs are too small to share (``benchmarks/blas_threads.py``, two
    #: cores: digits 2.8-3.5x faster, breast cancer 2.5x, synthetic 2000 x 50 1.26x, Wine and
    #: Isolet the same), and the passes over the triplets keep both cores busy with their own workers.
    blas_threads = 1
    defaults = dict(tol=1e-6, first="factored", first_iters=100, first_options=None, handover_gap=None,
                    band=0.01, max_free=2500, max_attempts=4, max_rounds=6, ascent_iters=40, whiten=True)

    def _first_phase(self, problem, M, iters, gap_target):
        """A burst of the first-order phase; returns (metric, certified gap, whether it hit its budget).

        With ``whiten`` the burst runs on ``problem.pull_whitened()`` (the metric goes there
        and back; a cold start begins at the Euclidean metric); its gap is then the twin's
        (same optimal value), and only its coordinate-free dual points are kept.
        """
        from . import REGISTRY, get_solver
        o = self.options
        opts = dict(o["first_options"] or ({"gamma": 1e-2} if o["first"] == "factored" else {}))
        opts.setdefault("polish", False)
        if "whiten" in REGISTRY[o["first"]].load().defaults:  # whitened here (option whiten) or not at all
            opts.setdefault("whiten", False)
        wp = self._whitened
        if wp is not None:
            M = wp.to_twin(self.initial_metric(problem) if M is None else M)
        left = self.remaining()
        start = self.elapsed()
        cb = o["callback"]  # it sees this solver's clock and metrics in its coordinates, as the history does
        if wp is not None:
            inner_cb = wp.callback(cb, start)
        else:
            inner_cb = None if cb is None else (lambda info: cb({**info, "time": info["time"] + start}))
        first = get_solver(o["first"], warm_start=M, max_iter=int(iters), time_limit=left, certify=True,
                           tol=gap_target, verbose=o["verbose"], callback=inner_cb, **opts)
        run = first.solve(problem if wp is None else wp.twin)
        duals = first.duals + ([run.certificate.dual] if run.certificate is not None else [])
        for rec in run.history:
            self.history.append({**rec, "time": rec["time"] + start, "phase": o["first"]})
        M = run.M
        if wp is not None:
            duals, M = wp.portable(duals), wp.back(M)
        if run.fun < self._best[1]:
            self._best = (M, run.fun)
        if was_interrupted(run):
            raise KeyboardInterrupt
        if run.info.get("stop_reason") == "stopped by callback":
            raise StopSolver(USER_LIMIT, "stopped by callback")
        self.duals.extend(duals)
        if o["time_limit"] is not None and self.remaining() <= 0:
            raise StopSolver(USER_LIMIT, f"time limit {o['time_limit']}s reached")
        return M, run.relative_gap, run.nit >= iters

    def _run(self, problem):
        o = self.options
        if problem.n_metrics != 1:
            raise ValueError("band-ipm learns one metric; use 'active-set' or 'hybrid' for a multi-metric problem")
        if not problem._pull_definite:
            raise ValueError("band-ipm needs target differences that span the data (a definite pull matrix "
                             "on the data's span); use 'hybrid' or a first-order solver")
        if not o["band"] > 0:
            raise ValueError(f"band must be positive, got {o['band']!r}")
        iters = int(o["first_iters"])
        self._whitened = WhitenedPhase(problem) if o["whiten"] and WhitenedPhase.applies(problem) else None
        M = None if o["warm_start"] is None else self.initial_metric(problem)
        nit, status = 0, OPTIMAL_INACCURATE
        dual = []
        # a warm start goes to the band if the dual ascent certifies it within the handover gap
        attempt, need_first, bursts = 0, M is None, 0
        handover = o["handover_gap"]
        handover = min(max(30 * o["tol"], 1e-2), 3e-2) if handover is None else max(float(handover), o["tol"])
        while attempt < int(o["max_attempts"]):
            if need_first:
                M, gap, hit_budget = self._first_phase(problem, M, iters, handover)
                bursts += 1
                nit += iters if hit_budget else 0
                if gap <= o["tol"] and self._whitened is not None:  # the twin's gap: judge M here
                    gap = problem.certificate(M, alpha=self.duals or None, polish=False).relative_gap
                if gap <= o["tol"]:  # the first-order phase already certifies tol
                    status = OPTIMAL
                    break
                # the burst ended at its budget or at the handover gap: the band takes over
                # either way (the smoothed dual can lag far behind the primal, e.g. k = 1)
            need_first = True
            start = problem.evaluate(M)  # counts the active triplets before any is listed
            if bursts == 0 and start.n_active > BAND_MAX_LISTED:
                continue  # a warm start too rough to list its active triplets: first-order first
            attempt += 1
            f = start.objective
            if o["ascent_iters"]:  # cheap first: first-order ascent on the dual from this start
                asc = dual_ascent(problem, M, objective_value=f, band=o["band"], iterations=int(o["ascent_iters"]),
                                  time_limit=self.remaining())
                cert = problem.certificate(M, alpha=asc.dual, polish=False)
                self.duals.append(asc.dual)
                self.record(nit, M, cert.objective, phase="dual ascent", lower_bound=cert.lower_bound,
                            relative_gap=cert.relative_gap, free=asc.n_free, ascent_iterations=asc.iterations)
                if cert.relative_gap <= o["tol"]:
                    status, dual = OPTIMAL, [asc.dual]
                    break
                if bursts == 0 and cert.relative_gap > handover:
                    # a warm start this rough (20news, multi-pass's second pass: 0.81) would
                    # make the band's fixings wrong, at a cost that grows with n: the
                    # first-order phase takes it to the handover gap first
                    attempt -= 1
                    continue
            left = self.remaining()
            best = {"M": M, "f": f, "cert": None}

            def judge(candidate, best=best):
                """Certify the better of the round's metric and the best so far with the
                round's dual (a good dual often comes before a good primal)."""
                c = problem.certificate(candidate.M, alpha=candidate.dual, polish=False)
                if c.objective > best["f"]:
                    c = problem.certificate(best["M"], alpha=candidate.dual, polish=False)
                else:
                    best.update(M=candidate.M, f=c.objective)
                if best["cert"] is None or c.gap < best["cert"].gap:
                    best["cert"] = c
                return c.relative_gap <= o["tol"]

            sol = solve_margin_band(problem, M, o["band"], objective_value=f, target_gap=0.3 * o["tol"] * f,
                                    max_free=int(o["max_free"]), max_rounds=int(o["max_rounds"]),
                                    time_limit=left, accept=judge)
            judge(sol)
            iters *= 2
            cert = best["cert"]
            self.duals.append(cert.dual)
            nit += sum(r["iterations"] for r in sol.info["rounds"])
            self.record(nit, best["M"], cert.objective, phase="band", lower_bound=cert.lower_bound,
                        relative_gap=cert.relative_gap, free=sol.n_free, rounds=len(sol.info["rounds"]))
            M = best["M"]  # continue from the best metric
            if cert.relative_gap <= o["tol"]:
                status = OPTIMAL
                dual = [cert.dual]
                break
        M = self._best[0] if M is None else M
        return M, status, nit, {"dual": dual, "polish": False}
