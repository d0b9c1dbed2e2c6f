"""A structured interior-point method for the LMNN SDP restricted to its margin band.

Near an optimum, most triplets are clearly active (``z_t > band``: their dual weight is
1 and their hinge is linear) or clearly inactive (``z_t < -band``: weight 0, hinge 0).
Fixing those leaves the SDP in ``m`` free dual weights on the band::

    max  mu * margin * (n_one + 1^T y) - rho * s
    s.t. S(y, s) = C + mu * sum_t y_t A_t + s P  PSD,   0 <= y <= 1,  s >= 0,

with ``C = (1 - mu) P + mu * sum_{clearly active} A_t``. The slack ``s`` (priced at
``rho = f(M_hat) / (1 - mu)``, for any PSD ``M_hat``) keeps the problem strictly feasible from
any start; its primal counterpart is the constraint ``<P, M> <= rho``, which every
optimum satisfies, so it changes nothing at the solution.

It is solved by a primal-dual interior-point method (HKM direction, Mehrotra
predictor-corrector) whose primal iterate is the metric ``M`` itself. Each ``A_t`` is a
difference of two rank-one pair matrices ``d d^T``, so the Schur complement
``tr(A_s M A_t S^{-1})`` is a signed sum of four entries of ``(D M D^T) * (D S^{-1} D^T)``
for the band's ``p`` pair vectors ``D``: one iteration costs ``O(p^2 d + m^3 / 3)``,
independent of the triplets outside the band, where a general-purpose SDP solver pays
``O(p d^4)`` to form the same system.

Everything here is a heuristic for *finding* a good primal-dual pair: the problem's own
objective and certificate judge the result, so a wrong guess of the band costs accuracy,
never validity.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from .certificate import margin_band
from .triplets import TripletWeights

logger = logging.getLogger(__name__)

#: Most active triplets at a round's metric for :func:`solve_margin_band` to list them.
#: Listing costs over 100 bytes per triplet at its peak (measured: 1.05e8 triplets ran out
#: of a 13.4 GiB address space), so 10^7 stay near a gigabyte.
BAND_MAX_LISTED = 10_000_000

#: Widest band, in units of the margin, that :func:`solve_margin_band` widens to when a
#: round is worse than its start and nothing between them is better: each widening lists
#: every triplet with ``z_t > -band`` at the start, which grows with the band.
MAX_WIDENED_BAND = 0.25

# Dual weights stay this far inside (0, 1), so that 1/y and 1/(1-y) stay finite.
_TINY = 1e-13


@dataclass
class BandSolution:
    """Output of :func:`solve_margin_band`.

    ``M`` is the primal metric (d x d); ``dual`` the dual weights on the clearly active
    triplets (1) and the band's triplets (the solved ``y``); ``duality_gap`` the interior
    point's complementarity ``<M, S> + sum w y + u (1 - y) + q s`` of the band problem
    (the full problem's gap is the certificate's job); ``info["rounds"]`` one record
    per round (free triplets, iterations, objective, fixings contradicted).
    """

    M: np.ndarray
    dual: TripletWeights
    n_free: int
    n_iter: int
    duality_gap: float
    converged: bool
    info: dict = field(default_factory=dict)


class _Band:
    """The band problem's data in the coordinates of ``range(P)`` (where ``P`` is definite)."""

    def __init__(self, problem, one, free, rho):
        V = problem._pull_basis                         # d x r, orthonormal
        self.V = V
        self.mu = problem.mu
        self.rho = float(rho)
        self.P = np.diag(problem._pull_eigs)            # V^T P V
        K_one = problem.weighted_sum(one, np.ones(len(one)))
        self.C = (1.0 - self.mu) * self.P + self.mu * (V.T @ K_one @ V)
        a, b, _, tp, ip = problem.owned_pairs(free)
        self.D = (problem.X[a] - problem.X[b]) @ V       # p x r pair vectors
        self.tp, self.ip = np.asarray(tp), np.asarray(ip)
        self.m, self.p, self.r = len(free), len(a), V.shape[1]

    def combine(self, y, s):
        """``mu * sum_t y_t A_t + s P`` (r x r)."""
        beta = np.bincount(self.tp, y, self.p) - np.bincount(self.ip, y, self.p)
        S = self.mu * (self.D.T @ (beta[:, None] * self.D)) + s * self.P
        return 0.5 * (S + S.T)

    def on_triplets(self, B):
        """``<mu A_t, B>`` for every band triplet and ``<P, B>`` for a symmetric ``B`` (r x r)."""
        q = np.einsum("pi,pi->p", self.D @ B, self.D)
        return np.append(self.mu * (q[self.tp] - q[self.ip]), np.sum(self.P * B))

    def schur(self, X, Zinv):
        """HKM Schur complement ``tr(F_i X F_j Z^-1)`` for ``F = (mu A_1, ..., mu A_m, P)``."""
        mu, tp, ip = self.mu, self.tp, self.ip
        Q = self.D @ X @ self.D.T
        Q *= self.D @ Zinv @ self.D.T                 # two p x p arrays at the peak
        K = Q[tp] - Q[ip]
        H = np.empty((self.m + 1, self.m + 1))
        H[:-1, :-1] = mu * mu * (K[:, tp] - K[:, ip])
        XPZ = X @ self.P @ Zinv
        h = np.einsum("pi,pi->p", self.D @ XPZ, self.D)
        H[:-1, -1] = H[-1, :-1] = mu * (h[tp] - h[ip])
        H[-1, -1] = np.trace(XPZ @ self.P)
        return H


def _psd_step(X, dX):
    """Largest ``t`` with ``X + t dX`` PSD (``X`` positive definite)."""
    try:
        L = np.linalg.cholesky(X)
        Li = scipy.linalg.solve_triangular(L, np.eye(len(X)), lower=True)
        lam = np.linalg.eigvalsh(Li @ dX @ Li.T)[0]
    except np.linalg.LinAlgError:  # X lost definiteness to round-off: no step
        return 0.0
    return np.inf if lam >= 0 else -1.0 / lam


def _box_step(v, dv, upper=None):
    """Largest ``t`` with ``v + t dv > 0`` (and ``< upper``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dv < 0, -v / dv, np.inf).min(initial=np.inf)
        if upper is not None:
            t = min(t, np.where(dv > 0, (upper - v) / dv, np.inf).min(initial=np.inf))
    return t


def _values_on(ts, old_ts, old_values, default):
    """Values of ``old_ts``'s triplets carried over to ``ts`` (``default`` for new ones)."""
    out = np.full(len(ts), default, dtype=np.float64)
    pos = np.searchsorted(old_ts.keys, ts.keys)
    pos = np.minimum(pos, max(len(old_ts) - 1, 0))
    hit = (old_ts.keys[pos] == ts.keys) if len(old_ts) else np.zeros(len(ts), bool)
    out[hit] = old_values[pos[hit]]
    return out


def solve_margin_band(problem, M, band: float, *, objective_value: float | None = None,
                      target_gap: float | None = None, max_free: int = 4000, max_rounds: int = 5,
                      max_iter: int = 40, time_limit: float | None = None, accept=None,
                      max_listed: int | None = None) -> BandSolution:
    """Solve the LMNN SDP with the triplets outside a margin band fixed, growing the band.

    The triplets with ``|z_t| <= band`` at ``M`` are free; those above are fixed active,
    those below fixed inactive. After each solve, the fixed triplets whose margin at the
    new metric comes within ``band / 2`` of the other side are freed (the most contradicted
    first while ``max_free`` allows), and the band problem is solved again from the
    previous iterate, until no fixing is contradicted (then the band problem's optimum is
    the full problem's), after ``max_rounds``, when the band is full, or when the
    interior point does not converge within ``max_iter`` (a sign that the start is too
    rough for the band). A round whose metric is worse than its start is not kept: the
    next round starts from the best point on the segment between them or, when no point
    on it is better, from the same start with a band four times as wide (up to
    :data:`MAX_WIDENED_BAND`).

    Parameters
    ----------
    problem : LMNNProblem
        A one-metric problem whose pull matrix is definite on the data's span.
    M : ndarray (d, d)
        Start metric: it decides the first band (at most ``max_free`` triplets, nearest
        the margin first) and is the first primal iterate.
    band : float
        Half-width of the band, in units of the margin.
    objective_value : float, optional
        ``f(M)``, for the price ``rho = f / (1 - mu)`` of the feasibility slack.
    target_gap : float, optional
        Absolute complementarity gap of the band problem at which to stop (default
        ``1e-6 * f(M)``).
    max_iter : int
        Interior-point iterations per round (each one factorisation of an
        ``(m+1)``-square matrix, ``m`` the free triplets).
    accept : callable, optional
        ``accept(solution) -> bool``, called after each round; True ends the rounds
        (e.g. once the problem's certificate of the round's metric is good enough).
    max_listed : int, optional
        Most active triplets a round's metric may have for its triplets to be listed
        (default :data:`BAND_MAX_LISTED`). A round's metric is first judged by a pass that
        only counts; one with more active triplets is never listed, offered to
        ``accept`` or returned: the round backs off towards its start if it is worse,
        else the rounds stop. (A rough start once gave a round metric with 10^8 active
        triplets at n = 13 192, whose listing needed over 20 GiB.)

    Returns
    -------
    BandSolution
    """
    if problem.n_metrics != 1:
        raise ValueError("solve_margin_band handles one metric; use the CVXPY polishing for a stack")
    if not problem._pull_definite:
        raise ValueError("the pull matrix is singular on directions where the data vary; "
                         "the band problem is not strictly feasible there")
    if not band > 0:
        raise ValueError(f"band must be positive, got {band!r}")
    t0 = time.perf_counter()
    max_listed = BAND_MAX_LISTED if max_listed is None else int(max_listed)
    slack = band * problem.margin
    M = problem.validate_metric(M)
    f = problem.objective(M) if objective_value is None else float(objective_value)
    target = 1e-6 * f if target_gap is None else float(target_gap)
    rho = max(f, 1e-12) / (1.0 - problem.mu)
    V = problem._pull_basis
    one_ts, free_ts, y = _band_sets(problem, M, slack, max_free)
    X = V.T @ M @ V
    rounds, sol, best = [], None, None
    for k in range(max(1, int(max_rounds))):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if k > 0 and left is not None and left <= 0:  # the first round always runs
            break
        sol, X, y = _interior_point(problem, one_ts, free_ts, X, y, rho, target, max_iter, left)
        ev = problem.evaluate(sol.M)  # a counting pass: the round's metric may be far too rough to list
        f_new, listable = ev.objective, ev.n_active <= max_listed
        record = {"free": sol.n_free, "iterations": sol.n_iter, "gap": sol.duality_gap, "objective": f_new,
                  "active": ev.n_active}
        rounds.append(record)
        if listable and (best is None or f_new < best[1]):
            best = (sol, f_new)
        if listable and accept is not None and accept(sol):
            record["accepted"] = True
            break
        if not sol.converged:
            # the interior point ran out of iterations: the fixings make the band problem
            # nearly infeasible (the start is too rough for this band), so stop the rounds
            record["converged"] = False
            break
        if f_new > f:
            # the fixings were too wrong for this band: the band problem's metric is worse
            # than its start. Back off along the segment (f is convex) and re-band there.
            M_back, f_back = _backtrack(problem, M, f, sol.M)
            record["backtracked"] = f_back < f
            if record["backtracked"]:
                M, f = M_back, f_back
            if best is None or f < best[1]:  # keep the round's dual: it bounds f* wherever the metric is
                best = (dataclasses.replace(sol, M=M, info=dict(sol.info)), f)
            if record["backtracked"]:
                one_ts, free_ts, y = _band_sets(problem, M, slack, max_free)
            else:
                # nothing on the segment is better: the start is already close, and a triplet
                # fixed just outside the band belongs in it (d = 2: the optimum's third tight
                # triplet sat at 1.3 % of the margin with a 1 % band). Widen the band at the start.
                if 4.0 * slack > MAX_WIDENED_BAND * problem.margin:
                    break
                n_free = len(free_ts)
                one_ts, free_ts, y = _band_sets(problem, M, 4.0 * slack, max_free)
                if len(free_ts) <= n_free:
                    break  # the band cannot grow: give up
                slack *= 4.0
                record["widened"] = slack / problem.margin
            X = V.T @ M @ V
            continue
        if not listable:
            # better than its start, yet with too many active triplets to list the next band
            record["too_many_active"] = True
            break
        M, f = sol.M, f_new
        emb = problem.embed(M)
        act = problem.active_set(emb, 0.5 * slack)
        fresh = ~act.triplets.isin(one_ts.union(free_ts))
        near, z_near = act.triplets.subset(fresh), act.margins[fresh]
        z_one = problem._margins_of(emb, one_ts)
        out = z_one < 0.5 * slack
        leaving, z_leaving = one_ts.subset(out), z_one[out]
        record.update(joined=len(near), left_active=len(leaving))
        room = max_free - len(free_ts)
        if len(near) + len(leaving) == 0 or room <= 0:
            break
        if len(near) + len(leaving) > room:  # free the most contradicted fixings first
            score = np.concatenate([z_near, -z_leaving])
            keep = np.zeros(score.size, bool)
            keep[np.argsort(-score, kind="stable")[:room]] = True
            near, leaving = near.subset(keep[:len(near)]), leaving.subset(keep[len(near):])
        grown = free_ts.union(near).union(leaving)
        y = np.clip(_values_on(grown, free_ts, y, 0.5), 0.05, 0.95)
        one_ts, free_ts = one_ts.difference(leaving), grown
    if best is None:  # no round's metric could be listed: return the start, unchanged
        sol = dataclasses.replace(sol, M=M, converged=False, info=dict(sol.info))
    elif not (rounds and rounds[-1].get("accepted")):
        sol = best[0]  # the metric with the lowest true objective seen
    sol.info.update(rounds=rounds, time=time.perf_counter() - t0)
    logger.debug("band SDP: %d round(s) %s", len(rounds), rounds)
    return sol


def _band_sets(problem, M, slack, max_free):
    """Clearly active triplets, free triplets (nearest the margin first) and start weights."""
    active = problem.active_set(M, slack)
    z, ts = active.margins, active.triplets
    free = margin_band(z, slack, max_free)
    y = 0.1 + 0.8 * np.clip(0.5 + 0.5 * z[free] / slack, 0.0, 1.0)
    return ts.subset((z > 0) & ~free), ts.subset(free), y


def _backtrack(problem, M, f, M_try, steps: int = 12):
    """The best of ``M + 2^-k (M_try - M)``, k = 1..steps, by the true objective."""
    best = (M, f)
    for k in range(1, steps + 1):
        cand = M + 0.5 ** k * (M_try - M)
        fc = problem.objective(cand)
        if fc < best[1]:
            best = (cand, fc)
        elif best[1] < f:
            break
    return best


def _interior_point(problem, one_ts, free_ts, X, y, rho, target, max_iter, time_limit):
    """Primal-dual interior point on the band problem; returns (solution, X, y)."""
    t0 = time.perf_counter()
    mu = problem.mu
    bp = _Band(problem, one_ts, free_ts, rho)
    m, r = bp.m, bp.r
    b = np.full(m + 1, mu * problem.margin)   # the dual objective is mu * margin * sum(y)
    b[-1] = -bp.rho
    n_cone = r + 2 * m + 1

    # start: the given dual weights, the slack just above the deficit of S(y, 0); the
    # primal metric nudged inside the cone; box multipliers centred
    sq = 1.0 / np.sqrt(problem._pull_eigs)
    sigma0 = np.linalg.eigvalsh(sq[:, None] * (bp.C + bp.combine(y, 0.0)) * sq[None, :])[0]
    s = max(0.0, -sigma0) + 0.1 * (1.0 - mu)
    Z = bp.C + bp.combine(y, s)
    X = 0.5 * (X + X.T) + 1e-3 * max(np.trace(X) / r, 1e-12) * np.eye(r)
    nu = np.sum(X * Z) / r
    # box multipliers that make the start primal feasible (u - w = mu z_t(X), q = rho -
    # <P, X>) with every product w y, u (1 - y), q s at least nu
    c = b + bp.on_triplets(X)
    w = nu / y + np.maximum(-c[:-1], 0.0)
    u = w + c[:-1]
    u = np.maximum(u, nu / (1.0 - y))
    q = max(-c[-1], nu / s)

    def direction(Zinv, chol, sigma_nu, corr):
        """Solve for (dy, ds, dZ, dX, dw, du, dq); ``corr`` holds the second-order terms."""
        rhs = b + sigma_nu * np.append(bp.on_triplets(Zinv)[:-1] + 1.0 / y - 1.0 / (1.0 - y),
                                       np.trace(Zinv @ bp.P) + 1.0 / s)
        if corr is not None:
            E, ew, eu, eq = corr
            rhs = rhs - bp.on_triplets(E)
            rhs[:-1] -= ew + eu
            rhs[-1] -= eq
        dv = scipy.linalg.cho_solve(chol, rhs, check_finite=False)
        dy, ds = dv[:-1], dv[-1]
        dZ = bp.combine(dy, ds)
        XdZZ = X @ dZ @ Zinv
        dX = sigma_nu * Zinv - X - 0.5 * (XdZZ + XdZZ.T)
        dw = sigma_nu / y - w - (w / y) * dy
        du = sigma_nu / (1.0 - y) - u + (u / (1.0 - y)) * dy
        dq = sigma_nu / s - q - (q / s) * ds
        if corr is not None:
            dX -= E
            dw -= ew
            du += eu
            dq -= eq
        return dy, ds, dZ, dX, dw, du, dq

    def steps(dy, ds, dZ, dX, dw, du, dq):
        tp = min(_psd_step(X, dX), _box_step(w, dw), _box_step(u, du), _box_step(np.array([q]), np.array([dq])))
        td = min(_psd_step(Z, dZ), _box_step(y, dy, 1.0), _box_step(np.array([s]), np.array([ds])))
        return min(1.0, tp), min(1.0, td)
    n_iter, converged, short = 0, False, False
    while n_iter < max_iter:
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
        nu = (np.sum(X * Z) + w @ y + u @ (1.0 - y) + q * s) / n_cone
        resid = b + bp.on_triplets(X) + np.append(w - u, q)
        logger.debug("interior point %d: complementarity %.3g, primal residual %.3g", n_iter, nu * n_cone,
                     np.abs(resid).max())
        if nu * n_cone <= target and np.abs(resid).max() <= 1e-7 * max(1.0, bp.rho):
            converged = True
            break
        n_iter += 1
        last_good = (X, y, s, Z, w, u, q)
        try:
            Zinv = scipy.linalg.cho_solve((np.linalg.cholesky(Z), True), np.eye(r))
        except np.linalg.LinAlgError:  # lost definiteness to round-off: keep the last iterate
            break
        Zinv = 0.5 * (Zinv + Zinv.T)
        H = bp.schur(X, Zinv)
        H[np.diag_indices(m)] += w / y + u / (1.0 - y)
        H[-1, -1] += q / s
        try:
            chol = scipy.linalg.cho_factor(H, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            chol = scipy.linalg.cho_factor(H + 1e-12 * np.abs(np.diag(H)).max() * np.eye(m + 1), lower=True,
                                           check_finite=False)
        # predictor (affine scaling), then Mehrotra's centring and second-order correction
        aff = direction(Zinv, chol, 0.0, None)
        ap, ad = steps(*aff)
        dy, ds, dZ, dX, dw, du, dq = aff
        nu_aff = (np.sum((X + ap * dX) * (Z + ad * dZ)) + (w + ap * dw) @ (y + ad * dy)
                  + (u + ap * du) @ (1.0 - y - ad * dy) + (q + ap * dq) * (s + ad * ds)) / n_cone
        if short:  # the last step was blocked: some products w y, u (1-y) fell far below
            # the others. A pure centring step restores them before progress resumes.
            dy, ds, dZ, dX, dw, du, dq = direction(Zinv, chol, nu, None)
        else:
            sigma = min(1.0, (nu_aff / nu) ** 3)
            E = dX @ dZ @ Zinv
            corr = (0.5 * (E + E.T), dw * dy / y, -du * dy / (1.0 - y), dq * ds / s)
            dy, ds, dZ, dX, dw, du, dq = direction(Zinv, chol, sigma * nu, corr)
        ap, ad = steps(dy, ds, dZ, dX, dw, du, dq)
        ap, ad = 0.95 * ap, 0.95 * ad
        short = min(ap, ad) < 0.1
        X = X + ap * dX
        X = 0.5 * (X + X.T)
        w, u, q = w + ap * dw, u + ap * du, q + ap * dq
        y = np.clip(y + ad * dy, _TINY, 1.0 - _TINY)
        s = max(s + ad * ds, _TINY)
        Z = bp.C + bp.combine(y, s)
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Z))):
            X, y, s, Z, w, u, q = last_good
            break
    nu = (np.sum(X * Z) + w @ y + u @ (1.0 - y) + q * s) / n_cone
    M_new = bp.V @ X @ bp.V.T
    all_ts = one_ts.union(free_ts)
    values = _values_on(all_ts, free_ts, y, 1.0)
    info = {"time": time.perf_counter() - t0, "n_one": len(one_ts), "slack": float(s), "pairs": bp.p}
    sol = BandSolution(0.5 * (M_new + M_new.T), TripletWeights(all_ts, values), m, n_iter,
                       float(nu * n_cone), converged, info)
    return sol, X, y
