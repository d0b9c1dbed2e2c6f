"""The factored, non-convex route: optimise ``L`` (r x d) with ``M = L.T @ L``.

This is what other LMNN libraries do. ``f(L.T @ L)`` is not convex in ``L``, so
different starts can stop at different values; it is kept for contrast, as a warm
start, and for low-rank embeddings (``r < d``, the paper's LMNN-R). Its result is
certified by the same certificate as every other solver, so a user sees how far it is
from the global optimum.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize

from ..certificate import DualAggregate
from ..psd import metric_from_components
from ..result import OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT
from .base import Solver, StopSolver


class _Certified(Exception):
    """Raised in the L-BFGS callback once the certified gap reaches ``tol``."""


#: ``working_set="auto"`` iterates on working sets of pairs when a full pass costs at least
#: this many multiply-adds in its distance products (``n^2 d``): full MNIST has 5.9e11 (a
#: pass takes 16 s on two cores), Isolet 6.7e9 and Letters 3.1e9 (a fraction of a second).
WORKING_SET_MIN_PASS_COST = 1e11


def pass_cost(problem) -> float:
    """Multiply-adds of one full pass's distance products, ``n^2 d`` (0 for listed triplets)."""
    return 0.0 if problem.is_enumerated else float(problem.n) ** 2 * problem.d


class FactoredSolver(Solver):
    """L-BFGS on ``L`` for the Huber-smoothed objective ``f_gamma(L.T @ L)``.

    The gradient in ``L`` is ``2 L G`` with ``G`` the gradient in ``M``. The reported
    objective and certificate are those of the true (unsmoothed) problem.

    Options
    -------
    rank : int or None
        Rows of ``L`` (default ``d``).
    init : {"identity", "random", "pca"} or array (r, d)
        Start: the first ``r`` rows of the identity scaled so that ``L.T @ L`` is the best
        multiple of the identity (exact line search), a seeded Gaussian matrix scaled
        to the identity's norm, or the top ``r`` principal directions. A ``warm_start``
        metric overrides it (its top ``r`` components are used).
    seed : int or None
        Seed of the random start.
    gamma : float or sequence of float
        Smoothing width relative to the margin (default 1e-3); a decreasing sequence runs
        L-BFGS stage by stage (continuation), e.g. ``(1e-2, 1e-3, 1e-4)``.
    stage_iters, stage_ftol : int, float
        A stage before the last ends after ``stage_iters`` iterations or when L-BFGS's
        relative decrease falls below ``stage_ftol`` (defaults 200, 1e-8).
    working_set : bool or "auto"
        Iterate on the impostor pairs near the radius between full passes (implicit
        problems; ``"auto"``: when :func:`pass_cost` reaches :data:`WORKING_SET_MIN_PASS_COST`,
        where a full pass costs seconds and the pairs that matter are a tiny fraction).
    near : float
        Working-set slack, relative to the margin: pairs within ``max_k t_ik + margin +
        near`` of their anchor at the last full pass (default 0.5).
    refresh : int
        L-BFGS iterations on a working set before the next full pass (default 15).
    pass_ftol : float
        With working sets, a smoothing width before the last ends when a full pass finds
        the smoothed objective less than this (relative) below the previous pass's
        (default 1e-3).
    """

    name = "factored"
    #: One BLAS thread: its GEMMs are too small to share (``benchmarks/blas_threads_first_order.py``,
    #: two cores: faces in their span, digits and synthetic 2000 x 50 faster on one; MNIST the same),
    #: and the passes over the triplets keep both cores busy with their own workers.
    blas_threads = 1
    defaults = dict(tol=1e-4, rank=None, init="identity", seed=0, gamma=1e-3, max_iter=2000, stage_iters=200,
                    stage_ftol=1e-8, working_set="auto", near=0.5, refresh=15, pass_ftol=1e-3)

    def _initial_factor(self, problem, r):
        from ..psd import components_from_metric
        o, d = self.options, problem.d
        if o["warm_start"] is not None:
            L = components_from_metric(self.initial_metric(problem))[:r]
            return np.vstack([L, np.zeros((r - L.shape[0], d))]) if L.shape[0] < r else L
        init = o["init"]
        if isinstance(init, str):
            if init == "identity":  # at its best multiple: digits reaches f <= 1740 in 0.7 s, not 1.1 s
                from .first_order import best_multiple
                return np.sqrt(best_multiple(problem, np.eye(d))) * np.eye(r, d)
            if init == "random":
                rng = np.random.default_rng(o["seed"])
                return rng.standard_normal((r, d)) / np.sqrt(d)
            if init == "pca":
                Xc = problem.X - problem.X.mean(0)
                _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
                return Vt[:r] if r <= Vt.shape[0] else np.vstack([Vt, np.zeros((r - Vt.shape[0], d))])
            raise ValueError(f"init must be 'identity', 'random', 'pca' or an array, got {init!r}")
        L = np.asarray(init, dtype=np.float64)
        if L.shape != (r, d):
            raise ValueError(f"init must have shape ({r}, {d}), got {L.shape}")
        return L

    def _run(self, problem):
        if problem.n_metrics != 1:
            raise ValueError("the factored solver learns one metric; use 'fista', 'subgradient' or an "
                             "exact solver for a multi-metric problem")
        o, d = self.options, problem.d
        r = int(o["rank"] or d)
        if not 1 <= r <= d:
            raise ValueError(f"rank must lie in [1, {d}], got {o['rank']!r}")
        gammas = np.atleast_1d(np.asarray(o["gamma"], dtype=float)) * problem.margin
        if gammas.size == 0 or np.any(gammas <= 0):
            raise ValueError(f"gamma must be a positive number or a sequence of them, got {o['gamma']!r}")
        ws = o["working_set"]
        if ws == "auto":
            # on a GPU (another array backend) full passes are cheap and working sets are NumPy's
            ws = problem.backend is None and pass_cost(problem) >= WORKING_SET_MIN_PASS_COST
        elif not isinstance(ws, bool):
            raise ValueError(f"working_set must be True, False or 'auto', got {ws!r}")
        if ws and problem.is_enumerated:
            raise ValueError("working_set=True needs implicit triplets (triplets='implicit')")
        self._best_lb, self._best_dual, self._last_gamma = -np.inf, None, float(gammas[0])
        L0 = self._initial_factor(problem, r)
        run = self._run_working_sets if ws else self._run_full
        try:
            M, status, nit, info = run(problem, L0, gammas, r, d)
        except StopSolver:  # time limit or callback: certify the best iterate with the last pass's dual too
            self._keep_dual()
            raise
        self._keep_dual()
        return M, status, nit, {**info, "rank": r, "working_set": ws}

    def _evaluate(self, problem, v, r, d, gamma, **kw):
        """Smoothed objective, gradient in ``L`` (``2 L G``) and the pass's evaluation."""
        L = v.reshape(r, d)
        ev = problem.evaluate(problem.embed_factor(L), gamma=gamma, gradient=True, **kw)
        return ev.smoothed, (2.0 * L @ ev.gradient).ravel(), ev

    def _bound(self, problem, ev):
        """Best lower bound so far, now including the smoothed dual of ``ev``, and the relative gap.

        The pass formed ``K = sum_t h'(z_t) A_t`` for the gradient, so the bound costs one
        generalised eigenvalue problem (``d x d``): cheap enough for every iteration.
        Nearly dual feasible when the run is accurate (digits: relative gap 3.8e-4, against
        2.6e-2 from FISTA's duals).
        """
        from ..certificate import gap_floor, relative_gap
        self._n_bounds = getattr(self, "_n_bounds", 0) + 1
        if not problem._pull_definite and self._n_bounds % 50 != 1:
            # the weak bound bisects over eigenvalue problems: too dear for every iteration
            return self._best_lb, relative_gap(ev.objective - self._best_lb, ev.objective, gap_floor(problem))
        dual = DualAggregate(ev.K, ev.weight_sum, f"smoothed(gamma={self._last_gamma:g})")
        lb = problem.lower_bound(dual, ev.objective).value
        if lb > self._best_lb:
            self._best_lb, self._best_dual = lb, dual
        return self._best_lb, relative_gap(ev.objective - self._best_lb, ev.objective, gap_floor(problem))

    def _keep_dual(self):
        """Offer the best dual point seen to the final certificate (also on an early stop)."""
        if self._best_dual is not None:
            self.duals.append(self._best_dual)
            self._best_dual = None

    def _run_full(self, problem, L0, gammas, r, d):
        """L-BFGS with every evaluation a full visit of the triplets (stage by stage in gamma)."""
        o = self.options
        it = [0]
        state = {"gamma": float(gammas[0])}
        last = {}  # the latest evaluation, reused by the callback (L-BFGS reports its last point)

        def fun(v):
            if last.get("v") is not None and np.array_equal(last["v"], v) and last["gamma"] == state["gamma"]:
                return last["out"]
            fg, g, ev = self._evaluate(problem, v, r, d, state["gamma"])
            last.update(v=v.copy(), gamma=state["gamma"], out=(fg, g, ev))
            return last["out"]

        def f_and_grad(v):
            fg, g, _ = fun(v)
            return fg, g

        def callback(v):
            it[0] += 1
            _, _, ev = fun(v)
            self._last_gamma = state["gamma"]
            lb, rel = self._bound(problem, ev)
            self.record(it[0], metric_from_components(v.reshape(r, d)), ev.objective, rank=r, gamma=state["gamma"],
                        lower_bound=lb, relative_gap=rel)
            if rel <= o["tol"]:
                raise _Certified

        ev0 = fun(L0.ravel())[2]
        lb, rel = self._bound(problem, ev0)
        self.record(0, metric_from_components(L0), ev0.objective, rank=r, gamma=state["gamma"], lower_bound=lb,
                    relative_gap=rel)
        v, nit, opt = L0.ravel(), 0, None
        message = ""
        for s, g in enumerate(gammas):  # continuation: each stage starts where the wider one stopped
            state["gamma"] = float(g)
            final = s == gammas.size - 1
            cap = int(o["max_iter"]) - nit if final else min(int(o["stage_iters"]), int(o["max_iter"]) - nit)
            try:
                opt = scipy.optimize.minimize(f_and_grad, v, jac=True, method="L-BFGS-B", callback=callback,
                                              options={"maxiter": max(1, cap), "gtol": 1e-10,
                                                       "ftol": 1e-13 if final else o["stage_ftol"]})
            except _Certified:  # the best iterate is certified to tol: the base class returns it
                return None, OPTIMAL, it[0], {"message": "certified", "gamma": state["gamma"]}
            v, nit, message = opt.x, nit + int(opt.nit), str(opt.message)
            self._bound(problem, fun(v)[2])
            if nit >= o["max_iter"]:
                break
        M = metric_from_components(v.reshape(r, d))
        status = OPTIMAL_INACCURATE if nit < o["max_iter"] else USER_LIMIT
        return M, status, nit, {"message": message, "gamma": state["gamma"]}

    def _run_working_sets(self, problem, L0, gammas, r, d):
        """Full passes only every ``refresh`` L-BFGS iterations; in between, the pairs near the radius.

        Each full pass is exact (objective, gradient, and the smoothed dual's bound, all
        from the same visit) and keeps the impostor pairs within the radius extended by
        ``near``; L-BFGS then runs on those pairs alone, at a fraction of a pass's cost,
        until it converges or has made ``refresh`` iterations. A stage of the gamma
        continuation ends when a full pass finds no real progress since the last one.
        """
        o = self.options
        near = float(o["near"]) * problem.margin
        nit, passes, v = 0, 0, L0.ravel()
        status = OPTIMAL_INACCURATE
        for s, g in enumerate(gammas):
            g = float(g)
            final = s == gammas.size - 1
            f_prev = np.inf
            while True:
                fg, grad, ev = self._evaluate(problem, v, r, d, g, keep_pairs=near)
                passes += 1
                self._last_gamma = g
                best_lb, rel = self._bound(problem, ev)
                self.record(nit, metric_from_components(v.reshape(r, d)), ev.objective, gamma=g, rank=r,
                            pairs=ev.n_pairs, active=ev.n_active, lower_bound=best_lb, relative_gap=rel,
                            phase="full pass")
                if rel <= o["tol"]:
                    return metric_from_components(v.reshape(r, d)), OPTIMAL, nit, {"passes": passes, "gamma": g}
                if nit >= o["max_iter"]:
                    return metric_from_components(v.reshape(r, d)), USER_LIMIT, nit, {"passes": passes, "gamma": g}
                if f_prev - fg <= o["pass_ftol"] * abs(fg) and not final:
                    break  # this width has converged: on to the next
                if f_prev - fg <= 1e-10 * abs(fg) and final:
                    return metric_from_components(v.reshape(r, d)), status, nit, {"passes": passes, "gamma": g}
                f_prev = fg
                working = ev.pairs
                if working is None:
                    self._log("factored: %d impostor pairs near the radius, more than a working set holds "
                              "(sweep.MAX_KEPT_PAIRS): full passes until the next refresh", ev.n_pairs)
                cache = {}

                def f_and_grad(u, working=working, cache=cache):
                    fu, gu, ev_u = self._evaluate(problem, u, r, d, g, working=working)
                    if working is None:  # a full pass: its bound comes free
                        self._bound(problem, ev_u)
                    cache["last"] = fu
                    return fu, gu

                def callback(u):
                    self._log("factored working set: gamma %.3g, f_gamma on %s pairs = %.10g", g,
                              "all" if working is None else len(working),
                              cache.get("last", np.nan))
                    if self.options["time_limit"] is not None and self.elapsed() > self.options["time_limit"]:
                        raise StopSolver(USER_LIMIT, f"time limit {self.options['time_limit']}s reached")

                cap = max(1, min(int(o["refresh"]), int(o["max_iter"]) - nit))
                opt = scipy.optimize.minimize(f_and_grad, v, jac=True, method="L-BFGS-B", callback=callback,
                                              options={"maxiter": cap, "gtol": 1e-10, "ftol": 1e-13})
                v, nit = opt.x, nit + max(int(opt.nit), 1)
        return metric_from_components(v.reshape(r, d)), status, nit, {"passes": passes, "gamma": float(gammas[-1])}
