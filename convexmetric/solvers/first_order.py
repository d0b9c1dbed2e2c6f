"""First-order solvers on ``M``: accelerated smoothed gradient, projected subgradient and
stochastic minibatch subgradient.

All keep every iterate PSD (eigenvalue clipping), stop on the problem's own certified
relative gap, and record the certified lower bound in the history when they compute it.
They iterate, by default, where the pull matrix (summed over the classes' metrics) is the
identity (:class:`FirstOrderSolver`).
"""
from __future__ import annotations

import logging

import numpy as np

from .. import psd
from ..certificate import gap_floor, relative_gap, smoothed_duals
from ..dual import certificate_duals
from ..result import OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT
from .base import Solver, StopSolver, WhitenedPhase, was_interrupted

logger = logging.getLogger("convexmetric.solvers")


class _Certifier:
    """Periodic certificates for a first-order run.

    Smoothed dual points are always tried (cheap). When the run is near convergence, on
    the 1st, 2nd, 4th, 8th, ... such check, a stronger dual point is added: a short dual
    ascent for one metric per class (:func:`convexmetric.dual.certificate_duals`, warm-started
    from the previous one), then dual polishing (a small SDP) where ``d`` allows it and
    the gap is still above ``tol``. The schedule counts work, not seconds, so that the
    same input gives the same run on a busy or an idle machine, and these stay a small
    share of it.
    """

    def __init__(self, problem, polish="auto", keep=None, remaining=None, tol=0.0):
        from ..certificate import POLISH_MAX_DIM
        self.problem = problem
        self.remaining = remaining or (lambda: None)  # seconds left in the run (polishing's budget)
        self.keep = keep  # a list (the solver's ``duals``) that holds the best dual point
        self.can_polish = polish is True or (polish == "auto" and problem.d <= POLISH_MAX_DIM)
        self.ascend = problem.n_metrics > 1
        self.tol = tol
        self.n_near = 0
        self.best = None
        self._ascended = None  # the last ascent's dual point: the next ascent starts there

    def __call__(self, M, extra=(), near_converged=True):
        cands = list(extra)
        scheduled = False
        if near_converged and (self.can_polish or self.ascend):
            self.n_near += 1
            scheduled = self.n_near & (self.n_near - 1) == 0  # a power of two
        if scheduled and self.ascend:
            left = self.remaining()
            asc = certificate_duals(self.problem, M, time_limit=None if left is None else 0.25 * left,
                                    start=self._ascended)
            self._ascended = asc[0] if asc else self._ascended
            cands += asc
        cert = self.problem.certificate(M, alpha=cands or None, polish=False)
        if scheduled and self.can_polish and cert.relative_gap > self.tol:
            pc = self.problem.certificate(M, alpha=cands or None, polish=True, time_limit=self.remaining(),
                                          target=self.tol)
            cert = pc if pc.lower_bound > cert.lower_bound else cert
        if self.best is None or cert.lower_bound > self.best.lower_bound:
            self.best = cert
            if self.keep is not None:
                self.keep[:] = [cert.dual]
        return cert

    @property
    def lower_bound(self) -> float:
        return self.best.lower_bound if self.best is not None else 0.0


def best_scaling(problem, M0, min_scale: float = 0.25):
    """Exact minimiser ``c >= min_scale`` of ``f(c * M0)`` (piecewise linear and convex in ``c``).

    Triplets with margin ``1 + c * delta_t`` can only be active for ``c >= min_scale``
    when ``delta_t > -1 / min_scale``, so one active-set search with slack
    ``(1 / min_scale - 1) * margin`` sees every term that matters.
    """
    m = problem.margin
    act = problem.active_set(M0, (1.0 / min_scale - 1.0) * m)
    delta = act.margins - m                    # <A_t, M0>
    pull = (1 - problem.mu) * problem.pull_value(M0)
    # f(c) = pull * c + mu * sum_t [m + c delta_t]_+ ; breakpoints where m + c delta_t = 0
    neg = delta < 0
    brk = np.sort(-m / delta[neg])
    pos_slope = problem.mu * delta[~neg].sum()
    # slope just above c: pull + pos_slope + mu * (sum of negative deltas still active, i.e. brk > c)
    order = np.argsort(-m / delta[neg])        # by ascending breakpoint
    dneg = delta[neg][order]
    tail = problem.mu * np.concatenate([np.cumsum(dneg[::-1])[::-1], [0.0]])  # active negatives beyond each point
    cands = np.concatenate([[min_scale], brk[brk > min_scale]])
    # slope on the right of each candidate c: active negatives are those with breakpoint > c
    idx = np.searchsorted(brk, cands, side="right")
    slope = pull + pos_slope + tail[idx]
    first_up = np.flatnonzero(slope >= 0)
    c = cands[first_up[0]] if first_up.size else (cands[-1] if cands.size else min_scale)
    return float(c)


def scale_profile(problem, M0, grid, rows=None, counts: bool = False):
    """``f(s M0)`` at every ``s`` of an increasing ``grid`` from one pass (implicit problems).

    Along ``s M0`` each margin ``margin + s (t - D)`` is linear in ``s``, so one pass that
    counts, per grid point, the active triplets and the sum of their ``t - D`` gives every
    value (:func:`convexmetric.sweep.sweep` with ``scales=``). With ``rows`` (a sample of
    anchors) the hinge part is scaled up by ``n / len(rows)``: an estimate. With
    ``counts``, also return the (scaled) number of active triplets at each grid point.
    """
    s, count, dsum = problem.sweeper.profile(problem.embed(M0), grid, rows)
    factor = 1.0 if rows is None else problem.n / len(rows)
    pull = (1 - problem.mu) * problem.pull_value(M0)
    f = pull * s + problem.mu * factor * (problem.margin * count + s * dsum)
    return (f, factor * count) if counts else f


#: The profiling pass of :func:`_best_multiple_by_profile` visits every triplet active
#: somewhere on its grid; above this many (predicted from the sample) it narrows the grid,
#: and if even that is too many the sample's estimate is the start.
PROFILE_MAX_TRIPLETS = 3e8


def _best_multiple_by_profile(problem, M0, sample: int = 1000) -> float:
    """Best multiple on a 0.5 % grid: an estimate from a sample of anchors, then one full pass.

    The sample (seeded, so the start is reproducible) locates the minimiser roughly
    over ``[2^-4, 2^6]`` and predicts how many triplets the full profiling pass over
    ``[s / 2, 16 s]`` would visit; that window is narrowed from below until the
    prediction is under :data:`PROFILE_MAX_TRIPLETS` (and the pass skipped, keeping the
    sample's estimate, if that cannot be done). Should the minimiser sit at the window's
    lower end of an unnarrowed window, the window moves down (a rare second pass).
    """
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(problem.n, size=min(sample, max(problem.n // 8, 1)), replace=False))
    coarse = 2.0 ** np.arange(-4.0, 6.0 + 1e-9, 1.0 / 16)
    est, counts = scale_profile(problem, M0, coarse, rows, counts=True)
    g_hat = int(np.argmin(est))
    s_hat = float(coarse[g_hat])
    ok = np.flatnonzero((coarse >= s_hat / 2) & (coarse <= s_hat) & (counts <= PROFILE_MAX_TRIPLETS))
    if ok.size == 0:
        logger.info("best multiple %.4g from a sample of %d anchors (a profiling pass would visit about "
                    "%.2g triplets)", s_hat, len(rows), counts[g_hat])
        return s_hat
    lo = float(coarse[ok[0]])
    narrowed = lo > s_hat / 2
    for _ in range(6):
        grid = lo * 1.005 ** np.arange(int(np.ceil(np.log(32) / np.log(1.005))) + 1)
        f = scale_profile(problem, M0, grid)
        g = int(np.argmin(f))
        if 0 < g < grid.size - 1 or (g == grid.size - 1 and grid[-1] >= 2.0 ** 20) or (g == 0 and narrowed):
            return float(grid[g])
        lo = lo / 16 if g == 0 else grid[-1] / 2
    return float(grid[g])


def best_multiple(problem, M0, max_calls: int = 20) -> float:
    """Minimiser ``c > 0`` of ``f(c * M0)``: the Euclidean start of the first-order solvers.

    Listed triplets, and one metric per class: exact, by :func:`best_scaling` windows.
    Each call searches ``[c / 4, inf)`` exactly at the cost of one impostor search with a
    modest radius; when the minimiser sits at the window's lower end, the window moves
    down by 4x. Implicit problems: on a 0.5 % grid from one full pass
    (:func:`scale_profile`; large ones locate the window on a sample of anchors first),
    where ten searches would cost ten passes.
    """
    if not problem.is_enumerated and problem.n_metrics == 1:
        return _best_multiple_by_profile(problem, M0)
    c = 1.0
    for _ in range(int(max_calls)):
        step = best_scaling(problem, c * M0, min_scale=0.25)
        c *= step
        if step > 0.25:
            break
    return c


class FirstOrderSolver(Solver):
    """A solver iterating on ``M`` whose steps depend on the features' scales: it runs, by
    default, on :meth:`~convexmetric.LMNNProblem.pull_whitened`.

    That twin is the same problem after the exact change of variables ``M = W M' W^T``
    (same objective at corresponding metrics, same optimal value, same triplet weights),
    where the pull matrix is the identity (one metric per class: their sum is, and every
    class metric maps with the same ``W``). A gradient or subgradient step is not invariant
    to such a change, and on features whose scales differ by orders of magnitude the
    direct iteration crawls (``benchmarks/first_order_whiten.py``). The run starts at the
    same metric either way (the warm start, or the solver's own start, mapped there); the
    callback, the history and the result see metrics of ``problem``, and only dual points
    that do not depend on the coordinates reach the final certificate.

    Option
    ------
    whiten : bool
        Iterate on the whitened twin (default True; not when every target difference is
        zero).
    """

    def _start(self, problem) -> np.ndarray:
        """The first iterate: the warm start, or the identity (the Euclidean metric)."""
        return self.initial_metric(problem)

    def _iterate(self, problem):  # pragma: no cover - abstract
        """The method itself, on ``problem``; returns ``(M, status, nit, info)``."""
        raise NotImplementedError

    def _run(self, problem):
        if not (self.options["whiten"] and WhitenedPhase.applies(problem)):
            return self._iterate(problem)
        o = self.options
        wp = WhitenedPhase(problem)
        start = wp.to_twin(self._start(problem))
        offset = self.elapsed()  # the inner run's clock starts here: its records are shifted by it
        inner = type(self)(**{**o, "whiten": False, "certify": False, "warm_start": start,
                              "callback": wp.callback(o["callback"], offset),
                              "time_limit": None if o["time_limit"] is None else max(self.remaining(), 1e-3)})
        res = inner.solve(wp.twin)
        self.duals.extend(wp.portable(inner.duals))
        self.history.extend({**rec, "time": rec["time"] + offset} for rec in res.history)
        self._best = (wp.back(res.M), res.fun)
        self._last_iteration = res.nit
        if was_interrupted(res):
            raise KeyboardInterrupt
        if res.info.get("stop_reason") == "stopped by callback":
            raise StopSolver(USER_LIMIT, "stopped by callback")
        return self._best[0], res.status, res.nit, {**res.info, "whitened": True}


class AcceleratedSmoothed(FirstOrderSolver):
    """Accelerated projected gradient on the Huber-smoothed LMNN objective.

    Uses the Auslender–Teboulle (Tseng) form of acceleration, whose gradient points
    are convex combinations of PSD iterates and so stay PSD, with backtracking on the
    Lipschitz constant, function-value restart, and continuation of the smoothing
    width ``gamma`` from ``gamma0`` down to ``gamma_min`` (both relative to the margin).
    Iterations evaluate only a working set of triplets (margin above ``-near``) that
    a full impostor search refreshes every ``recheck`` iterations, at every
    certificate check and before stopping. Stops when the certified relative gap is
    at most ``tol``. Without a warm start it begins at the best multiple of the
    identity (an exact one-dimensional minimisation, :func:`best_multiple`).

    Options
    -------
    gamma0, gamma_min, gamma_factor : float
        Continuation schedule (defaults 0.1, 1e-5, 0.1).
    stage_rtol : float
        A smoothing stage ends when ``|x_{k+1} - x_k| <= stage_rtol * |x_k|``.
    stage_iters : int
        ...or after this many iterations.
    stage_ftol : float
        ...or when the smoothed objective fell by less than this (relative) over the
        last ``recheck`` iterations.
    near : float
        Working-set slack, relative to the margin (default 0.2).
    recheck : int
        Iterations between full impostor searches (default 5).
    check_every : int
        Iterations between certificate checks (also checked at each stage end while
        ``gamma`` is above ``gamma_min``, or, with ``stall_rtol``, at every stage end).
    polish : bool or "auto"
        Use dual polishing in the periodic certificates (``"auto"``: when
        ``d <= certificate.POLISH_MAX_DIM``, under a 20 % time budget).
    stall_rtol : float or None
        Also stop (status ``optimal_inaccurate``) once ``gamma`` has reached
        ``gamma_min`` and the objective fell by less than ``stall_rtol`` (relative)
        over the last ``check_every`` iterations: used to hand over to an exact phase.
    whiten : bool
        Iterate where the pull matrix is the identity (default True; :class:`FirstOrderSolver`).
    """

    name = "fista"
    defaults = dict(tol=1e-6, gamma0=0.1, gamma_min=1e-5, gamma_factor=0.1, stage_rtol=1e-4,
                    stage_iters=200, stage_ftol=1e-4, near=0.2, recheck=5, check_every=50, max_iter=100_000,
                    stall_rtol=None, whiten=True)

    def _start(self, problem) -> np.ndarray:
        x = self.initial_metric(problem)
        return x if self.options["warm_start"] is not None else best_multiple(problem, x) * x

    def _iterate(self, problem):
        o = self.options
        floor = gap_floor(problem)
        x = self._start(problem)
        near = o["near"] * problem.margin
        gamma = o["gamma0"] * problem.margin
        gamma_min = o["gamma_min"] * problem.margin

        def refresh(M):
            """Full impostor search: the new working set and the violated triplets."""
            full = problem.active_set(M, near)
            pos = full.margins > 0
            return full.triplets, type(full)(full.triplets.subset(pos), full.margins[pos], 0.0)

        def evaluate(M, gradient=True):  # reads the current ``working`` at call time
            return problem.smoothed_objective_and_gradient(M, gamma, working, gradient, active=False)[:3]

        working, act = refresh(x)
        f_x, g_x, ftrue_x = evaluate(x)
        lip = max(np.linalg.norm(g_x) / max(np.linalg.norm(x), 1e-12), 1e-12)
        zk, theta = x.copy(), 1.0
        stage_it, it, status = 0, 0, OPTIMAL_INACCURATE
        certifier = _Certifier(problem, o["polish"], keep=self.duals, remaining=self.remaining, tol=o["tol"])
        f_last_check = f_stage = np.inf
        f_verified = (x.copy(), ftrue_x)  # last iterate whose objective a full search confirmed
        self.record(0, x, ftrue_x, gamma=gamma, working=len(working))
        while it < o["max_iter"]:
            it += 1
            stage_it += 1
            y = (1 - theta) * x + theta * zk
            f_y, g_y, _ = evaluate(y)
            lip *= 0.9
            while True:
                z_new = psd.project_psd(zk - g_y / (theta * lip))
                x_new = (1 - theta) * x + theta * z_new
                f_new, _, ftrue_new = evaluate(x_new, gradient=False)
                D = x_new - y
                if f_new <= f_y + np.sum(g_y * D) + 0.5 * lip * np.sum(D * D) + 1e-12 * abs(f_y):
                    break
                lip *= 2.0
            step = np.linalg.norm(x_new - x)
            if f_new > f_x:  # function-value restart
                theta, zk = 1.0, x.copy()
            else:
                zk = z_new
                theta = 0.5 * (np.sqrt(theta ** 4 + 4 * theta ** 2) - theta ** 2)
                x, f_x, ftrue_x = x_new, f_new, ftrue_new
            stage_end = stage_it >= o["stage_iters"] or step <= o["stage_rtol"] * max(np.linalg.norm(x), 1e-12)
            if it % o["recheck"] == 0:
                # the smoothed objective stopped falling: next stage
                stage_end |= f_stage - f_x <= o["stage_ftol"] * abs(f_x)
                f_stage = f_x
            # Once gamma is at its floor a stage end changes nothing, and near convergence it
            # comes every iteration: checking there made certificates most of the run's work.
            # A hand-over run (stall_rtol) still checks there, which is how it sees the stall.
            at_floor = gamma <= gamma_min and o["stall_rtol"] is None
            check = (stage_end and not at_floor) or it % o["check_every"] == 0
            if check or it % o["recheck"] == 0:
                old = working
                working, act = refresh(x)
                f_x, _, ftrue_x = evaluate(x)  # exact: the new set holds every violator
                if len(act.triplets.difference(old)):  # the objective changed under us
                    theta, zk = 1.0, x.copy()
                    if ftrue_x > f_verified[1] * (1 + 1e-12):
                        # the stale working set let the steps overshoot: go back, step shorter
                        x, zk = f_verified[0].copy(), f_verified[0].copy()
                        lip *= 4.0
                        working, act = refresh(x)
                        f_x, _, ftrue_x = evaluate(x)
                f_verified = (x.copy(), ftrue_x)
            extra = {"gamma": gamma, "active": len(act), "working": len(working)}
            if not (check or it % o["recheck"] == 0):
                continue  # between full searches the objective is the working set's: not recorded
            if check:
                dual = [w for w, _ in smoothed_duals(act, (gamma,))]
                certifier(x, dual, near_converged=gamma <= 1e-2 * problem.margin)
                lb = certifier.lower_bound
                rel = relative_gap(ftrue_x - lb, ftrue_x, floor)
                extra.update(lower_bound=lb, relative_gap=rel)
                self.record(it, x, ftrue_x, **extra)
                if rel <= o["tol"]:
                    status = OPTIMAL
                    break
                if (o["stall_rtol"] is not None and gamma <= gamma_min
                        and f_last_check - ftrue_x <= o["stall_rtol"] * ftrue_x):
                    break
                f_last_check = ftrue_x
            else:
                self.record(it, x, ftrue_x, **extra)
            if stage_end:
                if gamma > gamma_min:
                    gamma = max(gamma * o["gamma_factor"], gamma_min)
                    f_x, _, ftrue_x = evaluate(x)
                    theta, zk = 1.0, x.copy()
                stage_it, f_stage = 0, np.inf
        else:
            status = USER_LIMIT
        x = self._best[0] if self._best[0] is not None else x
        return x, status, it, {"gamma": gamma, "lipschitz": lip}


class ProjectedSubgradient(FirstOrderSolver):
    """Projected subgradient on ``M`` with the Weinberger–Saul active set (JMLR 2009, App. A).

    The subgradient is computed over an active list of triplets (margin above
    ``-near * margin``), rebuilt from all triplets every ``recheck`` iterations. The
    step grows by 1 % after a descent and halves after an ascent (the step is then
    rejected). When the step falls below ``min_step`` or the run ends, a final full
    check restarts the loop if it finds violators outside the list.

    Options
    -------
    step0 : float or None
        Initial step; default ``0.1 * |M0| / |G0|`` (Frobenius norms, in the coordinates
        the run iterates in: the whitened twin's unless ``whiten=False``).
    near, recheck, min_step, check_every : see above; ``check_every`` counts
        iterations between certificate checks (a multiple of ``recheck``).
    polish, whiten : as for ``fista``.
    """

    name = "subgradient"
    defaults = dict(tol=1e-4, step0=None, near=0.5, recheck=15, min_step=1e-10, check_every=105,
                    max_iter=20_000, whiten=True)

    def _working_objective(self, problem, M, working):
        emb = problem.embed(M)
        z = problem._margins_of(emb, working)
        viol = z > 0
        pull = (1 - problem.mu) * float(np.sum(problem.pull_matrix * emb.M))
        return pull + problem.mu * float(z[viol].sum()), working.subset(viol)

    def _iterate(self, problem):
        o = self.options
        floor = gap_floor(problem)
        near = o["near"] * problem.margin
        M = self._start(problem)
        working = problem.active_set(M, near).triplets
        f_w, viol = self._working_objective(problem, M, working)
        G = problem.gradient_from_weights(viol, np.ones(len(viol)))
        step = o["step0"] or 0.1 * max(np.linalg.norm(M), 1.0) / max(np.linalg.norm(G), 1e-300)
        status, it = OPTIMAL_INACCURATE, 0
        certifier = _Certifier(problem, o["polish"], keep=self.duals, remaining=self.remaining, tol=o["tol"])
        self.record(0, M, problem.objective(M), step=step, active=len(working))
        while it < o["max_iter"]:
            it += 1
            M_new = psd.project_psd(M - step * G)
            f_new, viol_new = self._working_objective(problem, M_new, working)
            if f_new <= f_w:
                M, f_w, viol = M_new, f_new, viol_new
                G = problem.gradient_from_weights(viol, np.ones(len(viol)))
                step *= 1.01
            else:
                step *= 0.5
            converged = step < o["min_step"]
            if it % o["recheck"] == 0 or converged:
                act = problem.active_set(M, near)
                new = act.triplets.subset(act.margins > 0).difference(working)
                working = working.union(act.triplets) if len(new) else act.triplets
                f_w, viol = self._working_objective(problem, M, working)
                G = problem.gradient_from_weights(viol, np.ones(len(viol)))
                extra = {"step": step, "active": len(working)}
                if it % o["check_every"] == 0 or converged:
                    certifier(M)
                    extra.update(lower_bound=certifier.lower_bound,
                                 relative_gap=relative_gap(f_w - certifier.lower_bound, f_w, floor))
                self.record(it, M, f_w, **extra)
                if relative_gap(f_w - certifier.lower_bound, f_w, floor) <= o["tol"]:
                    status = OPTIMAL
                    break
                if converged:
                    if len(new) == 0:
                        break
                    step = max(step, o["min_step"] * 1e3)  # restart after new violators
        else:
            status = USER_LIMIT
        return self._best[0] if self._best[0] is not None else M, status, it, {"step": step}


class StochasticSubgradient(FirstOrderSolver):
    """Stochastic minibatch projected subgradient over anchor points, with averaging.

    Each step samples ``batch_size`` anchors without replacement, searches impostors
    for those anchors only, and steps along the unbiased estimate
    ``(1 - mu) P + mu * (n / b) * sum_{active t anchored in batch} A_t`` with step
    ``step0 / (1 + t / decay_iters) ** power``; the returned metric is the running
    average of the iterates after ``burn_in`` steps (Polyak–Ruppert). Every
    ``check_every`` steps the average is evaluated and certified on the full problem.

    Options
    -------
    batch_size : int (default 64); seed : int or None (default 0);
    step0 : float or None (default ``0.1 |M0| / |G0|`` from one batch, in the coordinates
    iterated in, as for ``subgradient``);
    power : float in (0, 1] (default 0.5); decay_iters : float (default 100);
    burn_in : int (default 100); check_every : int (default: one epoch, ``n / batch``);
    whiten : as for ``fista`` (the minibatches are drawn from the seed either way).
    """

    name = "stochastic"
    defaults = dict(tol=1e-3, batch_size=64, seed=0, step0=None, power=0.5, decay_iters=100.0,
                    burn_in=100, check_every=None, max_iter=20_000, whiten=True)

    def _iterate(self, problem):
        o = self.options
        floor = gap_floor(problem)
        rng = np.random.default_rng(o["seed"])
        b = int(min(max(1, o["batch_size"]), problem.n))
        scale = problem.n / b
        M = self._start(problem)
        pull = (1 - problem.mu) * problem.pull_matrix

        def batch_gradient(M):
            batch = rng.choice(problem.n, size=b, replace=False)
            act = problem.active_set(M, 0.0, anchors=batch)
            return pull + problem.mu * scale * problem.weighted_sum(act.triplets, np.ones(len(act)))

        G = batch_gradient(M)
        step0 = o["step0"] or 0.1 * max(np.linalg.norm(M), 1.0) / max(np.linalg.norm(G), 1e-300)
        check = int(o["check_every"] or max(1, problem.n // b))
        certifier = _Certifier(problem, o["polish"], keep=self.duals, remaining=self.remaining, tol=o["tol"])
        avg, n_avg, status, it = M.copy(), 0, OPTIMAL_INACCURATE, 0
        self.record(0, M, problem.objective(M), step=step0)
        while it < o["max_iter"]:
            it += 1
            step = step0 / (1.0 + it / o["decay_iters"]) ** o["power"]
            M = psd.project_psd(M - step * G)
            if it > o["burn_in"]:
                n_avg += 1
                avg += (M - avg) / n_avg
            else:
                avg = M.copy()
            G = batch_gradient(M)
            if it % check == 0:
                f = problem.objective(avg)
                certifier(avg)
                lb = certifier.lower_bound
                rel = relative_gap(f - lb, f, floor)
                self.record(it, avg, f, step=step, lower_bound=lb, relative_gap=rel)
                if rel <= o["tol"]:
                    status = OPTIMAL
                    break
        else:
            status = USER_LIMIT
        return self._best[0] if self._best[0] is not None else avg, status, it, {"step0": step0}
