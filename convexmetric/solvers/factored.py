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

from ..certificate import smoothed_duals
from ..psd import metric_from_components
from ..result import OPTIMAL_INACCURATE, USER_LIMIT
from .base import Solver, StopSolver


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
    """

    name = "factored"
    defaults = dict(tol=1e-4, rank=None, init="identity", seed=0, gamma=1e-3, max_iter=2000, stage_iters=200,
                    stage_ftol=1e-8)

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
        L0 = self._initial_factor(problem, r)
        it = [0]
        state = {"gamma": float(gammas[0])}
        last = {}  # the latest evaluation, reused by the callback (L-BFGS reports its last point)

        def fun(v):
            if last.get("v") is not None and np.array_equal(last["v"], v) and last["gamma"] == state["gamma"]:
                return last["out"]
            L = v.reshape(r, d)
            fg, G, f, _ = problem.smoothed_objective_and_gradient(metric_from_components(L), state["gamma"],
                                                                  active=False)
            last.update(v=v.copy(), gamma=state["gamma"], out=(fg, (2.0 * L @ G).ravel(), f))
            return last["out"]

        def f_and_grad(v):
            fg, g, _ = fun(v)
            return fg, g

        def callback(v):
            it[0] += 1
            L = v.reshape(r, d)
            _, _, f = fun(v)
            self.record(it[0], metric_from_components(L), f, rank=r, gamma=state["gamma"])

        def smoothed_dual(M):
            """The smoothed hinge's weights at the current gamma: nearly dual feasible when the
            run is accurate (digits: relative gap 3.8e-4 against 2.6e-2 from FISTA's duals)."""
            return [w for w, _ in smoothed_duals(problem.active_set(M, 0.0), (state["gamma"],))]

        self.record(0, metric_from_components(L0), fun(L0.ravel())[2], rank=r, gamma=state["gamma"])
        v, nit, opt = L0.ravel(), 0, None
        try:
            for s, g in enumerate(gammas):  # continuation: each stage starts where the wider one stopped
                state["gamma"] = float(g)
                final = s == gammas.size - 1
                cap = int(o["max_iter"]) - nit if final else min(int(o["stage_iters"]), int(o["max_iter"]) - nit)
                opt = scipy.optimize.minimize(f_and_grad, v, jac=True, method="L-BFGS-B", callback=callback,
                                              options={"maxiter": max(1, cap), "gtol": 1e-10,
                                                       "ftol": 1e-13 if final else o["stage_ftol"]})
                v, nit = opt.x, nit + int(opt.nit)
                # each stage's own dual is a valid bound for the final certificate (a wider
                # gamma's dual is often the more nearly feasible one)
                self.duals.extend(smoothed_dual(metric_from_components(v.reshape(r, d))))
                if nit >= o["max_iter"]:
                    break
        except StopSolver:  # time limit or callback: certify the best iterate with its own dual too
            if self._best[0] is not None:
                self.duals.extend(smoothed_dual(self._best[0]))
            raise
        L = v.reshape(r, d)
        M = metric_from_components(L)
        status = OPTIMAL_INACCURATE if nit < o["max_iter"] else USER_LIMIT
        return M, status, nit, {"message": str(opt.message), "rank": r, "dual": smoothed_dual(M),
                                "gamma": state["gamma"]}
