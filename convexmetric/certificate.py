"""Duality-gap certificates for any candidate metric.

The dual of LMNN is ``max mu * margin * 1^T alpha`` over ``alpha in [0, 1]^T`` with
``S(alpha) = (1 - mu) P + mu * sum_t alpha_t A_t`` PSD. Any ``alpha`` in the box gives a
valid lower bound after one of two repairs, both computed from
``kappa = lambda_min(sum_t alpha_t A_t, P)`` (a generalised eigenvalue):

* scaling: ``tau * alpha`` is dual feasible for ``tau = min(1, (1-mu) / (mu * max(0, -kappa)))``;
* bounded region: every optimum has ``<P, M*> <= rho = f(M_hat) / (1 - mu)``, so
  ``mu * margin * 1^T alpha + rho * min(0, (1 - mu) + mu * kappa)`` bounds ``f*`` from below.

The margin multiplies the dual objective: the hinge constraint ``xi_t >= margin + <A_t, M>``
contributes ``mu * alpha_t * margin`` to the Lagrangian's constant term.

The certificate takes the best bound over several dual points: the hinge indicator,
smoothed-hinge weights and, when affordable, a *polished* dual that solves the small
dual SDP over the triplets sitting on the margin.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .interrupt import DeadlineExceeded
from .triplets import TripletWeights

logger = logging.getLogger(__name__)

#: Above this dimension, ``polish="auto"`` skips dual polishing: its SDP has a d x d PSD
#: cone (measured: 0.1-0.2 s at d = 13, 8-22 s at d = 64 with 300-800 free triplets).
POLISH_MAX_DIM = 40

# Relative safety subtracted from computed generalised eigenvalues, so that round-off
# in the eigen-solver cannot make a bound invalid; it costs rho * mu * 1e-10 * |kappa|.
_KAPPA_SAFETY = 1e-10


@dataclass(frozen=True)
class DualAggregate:
    """A dual point given by what the bound needs of it: ``K = sum_t alpha_t A_t`` and ``sum_t alpha_t``.

    ``K`` is in the coordinates of ``problem.normalized()``, where solvers work and form it.

    A pass over all triplets with weights ``alpha_t = h'(z_t)`` in ``[0, 1]`` forms both
    (they are the hinge part of its gradient), so large problems get bounds without
    listing a single triplet. ``K`` must come from weights in ``[0, 1]``.
    """

    K: np.ndarray
    total: float
    label: str = "aggregate"

    def __len__(self) -> int:  # a dual point of unknown support size
        return 0


@dataclass(frozen=True)
class Bound:
    """A lower bound on the optimal value derived from one dual point."""

    value: float
    lb_scale: float
    lb_ball: float
    kappa: float
    tau: float
    dual_sum: float
    method: str
    weights: TripletWeights = field(repr=False)


@dataclass(frozen=True)
class Certificate:
    """Objective of a candidate ``M`` and a proven lower bound on the optimum.

    ``gap = objective - lower_bound`` is an upper bound on ``f(M) - f*``;
    ``relative_gap = gap / max(objective, mu * margin)`` (see :func:`gap_floor`).
    """

    objective: float
    lower_bound: float
    gap: float
    relative_gap: float
    lb_scale: float
    lb_ball: float
    method: str
    n_support: int
    n_polished: int
    time: float
    dual: TripletWeights = field(repr=False)
    bounds: tuple = field(repr=False, default=())

    def __str__(self) -> str:
        return (f"f = {self.objective:.10g}, lower bound = {self.lower_bound:.10g}, "
                f"gap = {self.gap:.3g} (relative {self.relative_gap:.3g}, dual: {self.method})")


def _min_generalized_eig(problem, K: np.ndarray) -> float:
    """``lambda_min(K, P)`` on the range of ``P`` (the whole space when ``P`` is definite).

    For one metric per class (``K`` and ``P`` stacks ``(C, d, d)``) the dual slack is
    block diagonal, so this is the minimum over the blocks.
    """
    if K.ndim == 3:
        return min(_block_generalized_eig(V, lam, Kc)
                   for V, lam, Kc in zip(problem._pull_basis, problem._pull_eigs, K))
    return _block_generalized_eig(problem._pull_basis, problem._pull_eigs, K)


def _block_generalized_eig(V: np.ndarray, lam: np.ndarray, K: np.ndarray) -> float:
    if V.shape[1] == 0:  # P = 0 and the data do not vary: S(alpha) = 0 is PSD for every alpha
        return 0.0
    B = V / np.sqrt(lam)                      # B^T P B = I on range(P)
    return float(np.linalg.eigvalsh(B.T @ K @ B)[0])


def _max_feasible_tau(problem, K: np.ndarray) -> float:
    """Largest tau in [0, 1] with (1-mu) P + mu tau K PSD, by bisection (singular P).

    A trial ``tau`` counts as feasible only when the computed smallest eigenvalue clears
    the eigen-solver's error bound (``10 d^2 eps`` times the entries' scale), so round-off
    can lower the bound but never make an infeasible dual point look feasible.
    """
    mu, P = problem.mu, problem.pull_matrix
    d = P.shape[-1]
    scale = np.abs(P).max() + mu * np.abs(K).max()
    safety = 10.0 * d * d * np.finfo(float).eps * scale

    def ok(t):
        return np.linalg.eigvalsh((1 - mu) * P + mu * t * K)[..., 0].min() >= safety

    if ok(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def gap_floor(problem) -> float:
    """Absolute floor of the relative gap's denominator: ``mu * margin``.

    That is the hinge cost of one triplet violated by a full margin. Without a floor, a
    problem whose optimum is 0 (separable data) could never reach a relative gap below
    1, however close its objective came to 0.
    """
    return problem.mu * problem.margin


def relative_gap(gap: float, objective: float, floor: float) -> float:
    """``gap / max(objective, floor)``: the relative gap with an absolute floor."""
    return float(gap) / max(float(objective), float(floor))


def lower_bound(problem, weights: TripletWeights, objective_value: float | None = None,
                M=None, method: str = "given") -> Bound:
    """Best of the scaling and bounded-region bounds for the dual point ``weights``.

    ``objective_value`` (or ``M``, from which it is computed) is ``f`` at a feasible
    point and enables the bounded-region bound; without either, only the scaling
    bound is used.
    """
    mu = problem.mu
    if isinstance(weights, DualAggregate):
        w, K = weights, weights.K
        s = float(weights.total) * problem.margin
    else:
        w, K = weights.clipped(), None
        # the dual objective is mu * margin * sum(alpha): ``s`` carries the margin
        s = float(w.values.sum()) * problem.margin
    if not problem._pull_definite and problem._known_zero_optimum:
        # the optimum is 0 (a metric attains it): 0, the bound of tau = 0, is the best any dual
        # point can give, so the bisection's eigenvalue problems would be spent for nothing
        return Bound(0.0, 0.0, -np.inf, float("nan"), 0.0, s, method, w)
    if K is None:
        K = problem.weighted_sum(w.triplets, w.values)
    if objective_value is None and M is not None:
        objective_value = problem.objective(M)
    rho = None if objective_value is None else max(float(objective_value), 0.0) / (1.0 - mu)

    if not problem._pull_definite:
        tau = _max_feasible_tau(problem, K)
        lb = mu * tau * s
        return Bound(max(lb, 0.0), lb, -np.inf, float("nan"), tau, s, method, w)

    kappa = _min_generalized_eig(problem, K)
    kappa_safe = kappa - _KAPPA_SAFETY * max(1.0, abs(kappa))
    neg = max(0.0, -kappa)
    tau = 1.0 if mu * neg <= (1.0 - mu) else (1.0 - mu) / (mu * neg)
    if rho is None:
        lb_scale, lb_ball = mu * tau * s, -np.inf
    else:
        lb_scale = mu * tau * s + rho * min(0.0, (1.0 - mu) + mu * tau * kappa_safe)
        lb_ball = mu * s + rho * min(0.0, (1.0 - mu) + mu * kappa_safe)
    value = max(lb_scale, lb_ball, 0.0)
    return Bound(value, lb_scale, lb_ball, kappa, tau, s, method, w)


def smoothed_duals(active, gammas=(0.0, 1e-1, 1e-3)) -> list:
    """Dual points ``clip(z / gamma, 0, 1)`` on the triplets of an active set (``gamma=0``: indicator)."""
    pos = active.margins > 0
    ts, z = active.triplets.subset(pos), active.margins[pos]
    out = []
    for g in gammas:
        vals = np.ones_like(z) if g <= 0 else np.clip(z / g, 0.0, 1.0)
        out.append((TripletWeights(ts, vals), "indicator" if g <= 0 else f"smoothed(gamma={g:g})"))
    return out


def margin_band(z: np.ndarray, band: float, max_free: int) -> np.ndarray:
    """Mask of the margins with ``|z| <= band``, at most ``max_free`` of them (nearest first).

    These are the triplets left free by dual polishing and by the band interior point;
    those above the band count as clearly active, those below as clearly inactive.
    """
    near = np.abs(z) <= band
    if near.sum() > max_free:
        idx = np.flatnonzero(near)
        idx = idx[np.argsort(np.abs(z[idx]), kind="stable")[:max_free]]
        near = np.zeros_like(near)
        near[idx] = True
    return near


def polish_dual(problem, active, band: float, max_free: int = 2000, backend: str = "CLARABEL",
                backend_options: dict | None = None, time_limit: float | None = None):
    """Dual polishing: fix clear cases, solve the dual SDP over triplets on the margin.

    ``alpha_t = 1`` where ``z_t > band``, ``0`` where ``z_t < -band``; the triplets
    with ``|z_t| <= band`` (at most ``max_free``, nearest the margin first) are free
    variables of the small SDP ``max sum alpha s.t. S(alpha) PSD, 0 <= alpha <= 1``.

    Returns ``(TripletWeights, n_free)`` or ``(None, n_free)`` if the SDP failed. The SDP
    runs in a child process that Ctrl-C stops at once; past ``time_limit`` seconds it
    raises :class:`convexmetric.interrupt.DeadlineExceeded`.
    """
    import cvxpy as cp

    z, ts = active.margins, active.triplets
    near = margin_band(z, band, max_free)
    fixed_one = (z > 0) & ~near
    free_ts = ts.subset(near)
    F = len(free_ts)
    mu, d = problem.mu, problem.d
    n_one = int(fixed_one.sum())
    K_one = problem.weighted_sum(ts.subset(fixed_one), np.ones(n_one))
    values = fixed_one.astype(np.float64)
    stacked = K_one.ndim == 3
    pulls = problem.pull_matrix if stacked else problem.pull_matrix[None]
    K_one = K_one if stacked else K_one[None]

    a, b, owner, tp, ip = problem.owned_pairs(free_ts)
    D = problem.X[a] - problem.X[b]
    C = np.einsum("pi,pj->pij", D, D).reshape(len(a), d * d)  # row p: vec(C_p)
    m = len(a)
    # The clearly active triplets share one weight s in [0, 1] (ideally 1): this keeps
    # the SDP feasible (alpha = 0, s = 0) even when M is far from optimal.
    alpha = cp.Variable(F)
    scale = cp.Variable()
    cons = [alpha >= 0, alpha <= 1, scale >= 0, scale <= 1]
    for c in range(len(pulls)):
        S = (1 - mu) * pulls[c] + mu * scale * K_one[c]
        if F:
            # column f is vec of block c of A_f: its target part and/or impostor part if owned by c
            CB = (C[tp] * (owner[tp] == c)[:, None] - C[ip] * (owner[ip] == c)[:, None]).T
            S = S + mu * cp.reshape(CB @ alpha, (d, d), order="F")
        cons.append(0.5 * (S + S.T) >> 0)
    prob = cp.Problem(cp.Maximize(cp.sum(alpha) + n_one * scale), cons)
    from .solvers.sdp import SOLVER_ERROR, run_backend, variable_values
    status, sol, stats = run_backend(prob, backend, dict(backend_options or {}),
                                     functools.partial(variable_values, scale, alpha), time_limit=time_limit)
    if status == SOLVER_ERROR:  # pragma: no cover - backend failure path
        logger.warning("dual polishing failed (%s); using smoothed duals only", stats.get("error"))
        return None, F
    if sol[0] is None:
        logger.warning("dual polishing returned no solution (status %s)", status)
        return None, F
    values[fixed_one] = float(np.clip(sol[0], 0.0, 1.0))
    if F:
        values[near] = np.clip(sol[1], 0.0, 1.0)
    logger.debug("dual polishing: %d free triplets on %d pairs, status %s", F, m, status)
    return TripletWeights(ts, values), F


def certify(problem, M, candidates=(), *, polish="auto", bands=(1e-3, 1e-2, 1e-1), max_free: int = 2000,
            backend: str = "CLARABEL", target: float = 1e-9, time_limit: float | None = None) -> Certificate:
    """Certificate of ``M`` from the best of the given and automatically built dual points.

    Parameters
    ----------
    time_limit : float or None
        Seconds allowed for dual polishing; when they run out, the certificate uses the
        bounds found so far (the cheap dual points are always evaluated).
    bands : sequence of float
        Polishing bands, relative to the margin: triplets with ``|z_t| <= band * margin``
        are left free in the polishing SDP. Wider bands are tried in turn while the
        relative gap exceeds ``target`` (an inaccurate ``M`` needs a wider band).
    """
    t0 = time.perf_counter()
    emb = problem.embed(M)
    bands = tuple(sorted(bands))
    do_polish = polish if isinstance(polish, bool) else problem.d <= POLISH_MAX_DIM
    # the smoothed duals live on z > 0; only polishing needs the band below the margin
    active = problem.active_set(emb, max(bands) * problem.margin if do_polish else 0.0)
    f = problem._objective_from(emb, active)

    cands = [(w, getattr(w, "label", "given")) for w in candidates]
    cands += smoothed_duals(active)
    bounds = [lower_bound(problem, w, f, method=name) for w, name in cands]
    n_free = 0
    for band in bands if do_polish else ():
        if f - max(b.value for b in bounds) <= target * f:
            break
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        slack = band * problem.margin
        keep = active.margins > -slack
        sub = type(active)(active.triplets.subset(keep), active.margins[keep], slack)
        try:
            pw, n_free = polish_dual(problem, sub, slack, max_free, backend, time_limit=left)
        except DeadlineExceeded:
            logger.info("dual polishing stopped at its time limit (%.3g s)", time_limit)
            break
        if pw is not None:
            bounds.append(lower_bound(problem, pw, f, method=f"polished(band={band:g})"))
        if n_free >= max_free:
            break
    best = max(bounds, key=lambda b: b.value)
    gap = f - best.value
    if gap < -1e-9 * max(1.0, abs(f)):
        logger.warning("lower bound exceeds objective by %.3g: numerical trouble", -gap)
    gap = max(gap, 0.0)
    rel = relative_gap(gap, f, gap_floor(problem))
    support = int(np.count_nonzero(best.weights.values)) if hasattr(best.weights, "values") else -1
    return Certificate(objective=f, lower_bound=best.value, gap=gap, relative_gap=rel,
                       lb_scale=best.lb_scale, lb_ball=best.lb_ball, method=best.method,
                       n_support=support, n_polished=n_free, time=time.perf_counter() - t0,
                       dual=best.weights, bounds=tuple(bounds))
