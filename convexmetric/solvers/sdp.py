"""Exact LMNN as a semidefinite program through CVXPY.

Formulation: ``M`` is a PSD variable; each pair ``p`` used by a
triplet gets a distance variable ``dist_p = <C_p, M>`` (one row of ``svec(C_p)``);
each triplet a slack ``xi_t >= 0`` with ``xi_t >= margin + dist_target - dist_impostor``.
The multiplier of that hinge constraint is ``mu * alpha_t``, the dual point used by
the certificate. Explicit pair variables were measured 2–7x faster than writing each
hinge row in terms of ``M``.
"""
from __future__ import annotations

import functools
import logging
import os
import time
import warnings

import numpy as np
import scipy.sparse as sp

from .. import psd
from ..result import OPTIMAL, OPTIMAL_INACCURATE, SOLVER_ERROR
from ..triplets import TripletSet, TripletWeights
from .base import Solver

logger = logging.getLogger("convexmetric.solvers")

#: Backend options used unless the caller overrides them.
BACKEND_DEFAULTS = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 200},
    "SCS": {"eps_abs": 1e-6, "eps_rel": 1e-6, "max_iters": 200_000},
    "MOSEK": {},
}


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or total memory as a fallback."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


#: Bytes of peak memory per unit of each term of :func:`estimate_sdp_bytes`, by backend:
#: ``(per pair * s, per triplet, per s**2, constant)`` with ``s = d(d+1)/2``. Least-squares
#: fits to the measurements in that function's docstring, times about 1.25 and rounded up.
SDP_MEMORY_COEFFICIENTS = {
    "SCS": (320, 4800, 256, 16 * 2**20),
    "CLARABEL": (280, 2500, 256, 8 * 2**20),
}


def estimate_sdp_bytes(n_triplets: int, n_pairs: int, d: int, backend: str | None = None) -> int:
    """Upper bound on the peak memory that building and solving the SDP adds, in bytes.

    ``a * n_pairs * s + b * n_triplets + c * s**2 + e`` with ``s = d(d+1)/2``: the pair
    distance rows (``n_pairs * s`` nonzeros, copied by CVXPY's canonicalisation and the
    backend), the hinge rows (measured at 2-4 kB per triplet, in CVXPY and the backend:
    not in the certificate), the PSD cone's dense blocks, and a constant. The
    coefficients (:data:`SDP_MEMORY_COEFFICIENTS`) are measured per backend; an unknown
    backend (MOSEK) or ``None`` gets the largest.

    Measured with ``python benchmarks/sdp_memory.py`` (2-core Linux, Python 3.11, CVXPY
    1.9.3, SCS, Clarabel; ``make_synthetic(n, d, n_classes=3, seed=0)``, k = 3, all triplets;
    "added" is the rise of ``VmHWM`` over ``solve(problem, solver)`` in a fresh process, the
    certificate included; it changed by under 1 % without the certificate at n = 300, d = 5).
    The estimate before this calibration, ``96 * (n_pairs * s + 5 T + s**2)``, was 3-9x too low:

    ============  ===  ==  =======  ======  ========  ============  =============  =====
    solver          n   d        T   pairs  added MB  old est. (x)  this est. (x)  wall s
    ============  ===  ==  =======  ======  ========  ============  =============  =====
    sdp-scs        60   4    7 200   1 327      41.6    4.7 (0.11)    55.6 (1.34)    0.6
    sdp-scs       150   5   45 000   7 822     220.0   32.9 (0.15)   270.4 (1.23)    4.9
    sdp-scs       300   5  180 000  30 641     850.7  130.5 (0.15)  1027.9 (1.21)   25.0
    sdp-scs       120   8   28 800   5 060     166.1   31.4 (0.19)   213.6 (1.29)    2.9
    sdp-scs       150  10   45 000   7 838     287.2   63.3 (0.22)   371.5 (1.29)    9.1
    sdp-scs       100  20   19 998   3 553     297.0   85.5 (0.29)   362.8 (1.22)    8.5
    sdp-scs        80  30   12 798   2 318     354.6  130.4 (0.37)   478.5 (1.35)   27.1
    sdp-clarabel   60   4    7 200   1 327      21.0    4.7 (0.23)    30.1 (1.43)    0.6
    sdp-clarabel  150   5   45 000   7 822     120.8   32.9 (0.27)   153.8 (1.27)    8.0
    sdp-clarabel  300   5  180 000  30 641     474.2  130.5 (0.28)   587.1 (1.24)   56.0
    sdp-clarabel  120   8   28 800   5 060      97.9   31.4 (0.32)   131.7 (1.35)    3.2
    sdp-clarabel  150  10   45 000   7 838     178.5   63.3 (0.35)   242.4 (1.36)   19.7
    sdp-clarabel  100  20   19 998   3 553     223.7   85.5 (0.38)   278.6 (1.25)   19.5
    sdp-clarabel   80  30   12 798   2 318     298.4  130.4 (0.44)   397.5 (1.33)   15.2
    ============  ===  ==  =======  ======  ========  ============  =============  =====

    (MB = 10**6 bytes. The n = 300 rows take 25-56 s, so they are not in the default
    sizes: ``python benchmarks/sdp_memory.py --sizes 300x5``. Repeated runs agree within 2 %.)
    """
    a, b, c, e = SDP_MEMORY_COEFFICIENTS.get(
        (backend or "").upper(), tuple(map(max, *SDP_MEMORY_COEFFICIENTS.values())))
    s = d * (d + 1) // 2
    return int(a * n_pairs * s + b * n_triplets + c * s * s + e)


def check_sdp_memory(n_triplets: int, n_pairs: int, d: int, max_memory=None, backend: str | None = None) -> int:
    """Raise ``MemoryError`` with advice when the SDP would not fit in memory."""
    need = estimate_sdp_bytes(n_triplets, n_pairs, d, backend)
    limit = int(0.7 * available_memory()) if max_memory is None else int(max_memory)
    if need > limit:
        raise MemoryError(
            f"the SDP with {n_triplets} triplets on {n_pairs} pairs in dimension {d} needs about "
            f"{need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB allowed; use the "
            "'active-set' solver (working set of triplets) or a first-order solver "
            "('fista', 'subgradient', 'stochastic', 'factored')")
    return need


class SDPFormulation:
    """The CVXPY primal SDP of ``problem`` restricted to ``triplets``.

    A multi-metric problem gets one PSD variable per class, and each pair distance is
    measured in its owner's metric (see ``owned_pairs``). Attributes ``problem``
    (cvxpy.Problem), ``Ms`` (the metric variables), ``dist``, ``xi`` and ``hinge`` (the
    constraint whose multipliers are ``mu * alpha``).

    The variables are the metrics of features rescaled to a unit root-mean-square
    difference over the pairs (``feature_scale``): an exact change of variables,
    ``M_ij = M'_ij / (s_i s_j)``, that :meth:`metric` undoes and that leaves the distances,
    the objective and the hinge multipliers unchanged. Conic solvers have absolute
    tolerances, and features whose scales differ by orders of magnitude (raw Wine:
    proline against hue) left Clarabel ``optimal_inaccurate`` after seconds a round.
    """

    def __init__(self, lmnn, triplets: TripletSet):
        import cvxpy as cp

        d, mu, C = lmnn.d, lmnn.mu, lmnn.n_metrics
        self.triplets = triplets
        self.stacked = C > 1
        T = len(triplets)
        if T:
            a, b, owner, tp, ip = lmnn.owned_pairs(triplets)
            D = lmnn.X[a] - lmnn.X[b]
            rms = np.sqrt(np.mean(D * D, axis=0))
            self.feature_scale = np.where(rms > 1e-12 * max(rms.max(), 1e-300), rms, 1.0)
            D = D / self.feature_scale
        else:
            self.feature_scale = np.ones(d)
        outer = np.outer(self.feature_scale, self.feature_scale)
        self.Ms = [cp.Variable((d, d), PSD=True, name=f"M{c}") for c in range(C)]
        pulls = lmnn.pull_matrix if self.stacked else [lmnn.pull_matrix]
        obj = (1 - mu) * sum(cp.sum(cp.multiply(P / outer, M)) for P, M in zip(pulls, self.Ms))
        cons = []
        if T:
            iu, ju = np.triu_indices(d)
            Q = D[:, iu] * D[:, ju] * np.where(iu == ju, 1.0, 2.0)  # <C_p, M> = Q_p . svec(M)
            m = len(a)
            self.dist = cp.Variable(m, name="dist")
            self.xi = cp.Variable(T, nonneg=True, name="xi")
            rows = np.repeat(np.arange(T), 2)
            cols = np.stack([tp, ip], 1).ravel()
            vals = np.tile([1.0, -1.0], T)
            S = sp.csr_matrix((vals, (rows, cols)), shape=(T, m))
            self.hinge = self.xi >= lmnn.margin + S @ self.dist
            for c in np.unique(owner):
                idx = np.flatnonzero(owner == c)
                Mc = self.Ms[c]
                cons.append(self.dist[idx] == Q[idx] @ Mc[iu, ju])
            cons.append(self.hinge)
            obj = obj + mu * cp.sum(self.xi)
        else:
            self.dist = self.xi = self.hinge = None
        self.problem = cp.Problem(cp.Minimize(obj), cons)
        self.mu = mu

    def read_solution(self):
        """The solved values CVXPY holds (called where the solve ran): metrics and hinge duals."""
        return {"M": [None if M.value is None else np.asarray(M.value) for M in self.Ms],
                "hinge": None if self.hinge is None or self.hinge.dual_value is None
                else np.ravel(self.hinge.dual_value)}

    def dual_weights(self, values) -> TripletWeights | None:
        """``alpha = multiplier / mu`` of the hinge constraints, clipped to [0, 1]."""
        if self.hinge is None:
            return TripletWeights(self.triplets, np.empty(0))
        if values["hinge"] is None:
            return None
        return TripletWeights(self.triplets, np.clip(values["hinge"] / self.mu, 0, 1))

    def metric(self, values) -> np.ndarray | None:
        """The solution projected onto the PSD cone (SCS returns it slightly indefinite)."""
        Ms = values["M"]
        if any(M is None for M in Ms):
            return None
        M = np.stack(Ms) if self.stacked else Ms[0]
        return psd.project_psd(M) / np.outer(self.feature_scale, self.feature_scale)


#: The backend option that bounds its own solve time (seconds).
BACKEND_TIME_OPTION = {"CLARABEL": "time_limit", "SCS": "time_limit_secs"}

#: Seconds a backend may overrun its own time limit before its process is killed.
KILL_GRACE = 0.5

#: Options each backend gets in its child process unless the caller sets them. Clarabel
#: runs its factorisations on a rayon thread pool, and a pool does not survive ``fork``:
#: once the parent has solved anything with Clarabel itself (a user's own CVXPY code,
#: say), a child that reaches the pool waits for threads it does not have, forever.
#: One thread never reaches the pool, and on two cores it solved Wine's full SDP no slower.
CHILD_BACKEND_OPTIONS = {"CLARABEL": {"max_threads": 1}}


def _solve_and_read(cvx_problem, backend: str, opts: dict, read, verbose: bool):
    """The work of :func:`run_backend`'s child: solve, then return status, ``read()`` and timings."""
    import cvxpy as cp
    try:
        with warnings.catch_warnings():
            # "Solution may be inaccurate": the certificate, not the backend, judges the answer
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            cvx_problem.solve(solver=backend, verbose=verbose, **opts)
    except cp.error.SolverError as exc:
        return SOLVER_ERROR, None, {"error": str(exc)}
    st = cvx_problem.solver_stats
    stats = {"compilation_time": getattr(cvx_problem, "compilation_time", None),
             "native_solve_time": getattr(st, "solve_time", None) if st else None,
             "native_iterations": getattr(st, "num_iters", None) if st else None}
    return cvx_problem.status, read(), stats


def variable_values(*variables):
    """The values CVXPY holds for ``variables``: a picklable ``read`` for :func:`run_backend`."""
    return tuple(v.value for v in variables)


def run_backend(cvx_problem, backend: str, opts: dict, read, *, time_limit=None, verbose=False):
    """Solve a CVXPY problem in a stoppable child process (see :mod:`convexmetric.interrupt`).

    The remaining ``time_limit`` goes to the backend's own time option, and the child is
    killed :data:`KILL_GRACE` seconds after it; Ctrl-C kills it at once. ``read()`` runs
    in the child after the solve and returns the (picklable) values the caller needs; it
    is pickled with the problem when the child comes from the fork server (a bound method,
    or :func:`variable_values` of the problem's variables, keeps pointing at them).
    ``opts`` go over :data:`CHILD_BACKEND_OPTIONS`.

    Returns
    -------
    status : str
        CVXPY's status, or ``solver_error``.
    values : object or None
        ``read()``, or None when the backend failed.
    stats : dict
        Compilation and native solve times, native iterations, the error message if any.

    Raises
    ------
    convexmetric.interrupt.DeadlineExceeded, KeyboardInterrupt
    """
    from ..interrupt import run_stoppable
    backend = backend.upper()
    opts = {**CHILD_BACKEND_OPTIONS.get(backend, {}), **opts}
    if time_limit is not None and backend in BACKEND_TIME_OPTION:
        opts.setdefault(BACKEND_TIME_OPTION[backend], max(float(time_limit), 1e-3))

    job = functools.partial(_solve_and_read, cvx_problem, backend, opts, read, verbose)
    timeout = None if time_limit is None else float(time_limit) + KILL_GRACE
    return run_stoppable(job, timeout=timeout)


def solve_sdp(lmnn, triplets: TripletSet, backend: str, backend_options=None, max_memory=None,
              verbose: bool = False, time_limit: float | None = None):
    """Build and solve the SDP on ``triplets``; return ``(M, alpha, info)``.

    ``M`` is None when the backend produced no solution. The solve runs in a child
    process bounded by ``time_limit`` seconds and stopped at once by Ctrl-C (see
    :func:`run_backend`).
    """
    n_pairs = len(lmnn.owned_pairs(triplets)[0])  # one metric per class: a pair counts once per metric it is in
    check_sdp_memory(len(triplets), n_pairs, lmnn.d, max_memory, backend)
    backend = backend.upper()
    opts = {**BACKEND_DEFAULTS.get(backend, {}), **(backend_options or {})}
    t0 = time.perf_counter()
    form = SDPFormulation(lmnn, triplets)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    left = None if time_limit is None else time_limit - t_build
    status, values, stats = run_backend(form.problem, backend, opts, form.read_solution,
                                        time_limit=left, verbose=verbose)
    if status == SOLVER_ERROR:
        logger.warning("%s failed: %s", backend, stats.get("error"))
    elif status != "optimal":
        logger.info("%s returned status %s; the certificate will judge the solution", backend, status)
    info = {"backend": backend, "backend_status": status, "backend_options": opts,
            "build_time": t_build, "cvxpy_solve_time": time.perf_counter() - t1,
            **{k: stats.get(k) for k in ("compilation_time", "native_solve_time", "native_iterations")},
            "n_triplets": len(triplets), "n_pairs": triplets.n_pairs}
    M = form.metric(values) if values is not None else None
    alpha = form.dual_weights(values) if M is not None else None
    return M, alpha, info


def _backend_installed(backend: str) -> bool:
    import cvxpy as cp
    return backend.upper() in cp.installed_solvers()


class CvxpySDP(Solver):
    """The full LMNN SDP in one CVXPY call (small problems only).

    Options: ``backend`` ("CLARABEL", "SCS" or "MOSEK"), ``backend_options``
    (passed to the backend, over :data:`BACKEND_DEFAULTS` and
    :data:`CHILD_BACKEND_OPTIONS`: Clarabel runs on one thread unless ``max_threads`` is
    given, and more threads can hang once this process has run Clarabel itself), ``max_memory`` (bytes;
    default 70 % of available memory), ``backend_verbose`` (let CVXPY and the backend
    print their own logs; default False, independent of ``verbose``). The triplets
    must be enumerated.
    """

    name = "sdp"
    exact = True
    defaults = dict(backend="CLARABEL", backend_options=None, max_memory=None, backend_verbose=False)

    def _run(self, problem):
        backend = self.options["backend"].upper()
        if not _backend_installed(backend):
            raise RuntimeError(f"CVXPY backend {backend} is not installed (or not licensed)")
        if not problem.is_enumerated:
            raise ValueError(
                f"the plain SDP needs enumerated triplets but this problem has "
                f"{problem.n_candidate_triplets} implicit ones; use solver='active-set', or build "
                "the problem with triplets='all' if it fits in memory")
        M, alpha, info = solve_sdp(problem, problem.triplets, backend, self.options["backend_options"],
                                   self.options["max_memory"], self.options["backend_verbose"],
                                   time_limit=self.remaining())
        if M is None:
            return None, SOLVER_ERROR, 0, info
        self.setup_time = info["build_time"]
        if alpha is not None:
            info["dual"] = [alpha]
        self.record(1, M, problem.objective(M))
        status = OPTIMAL if info["backend_status"] in ("optimal",) else OPTIMAL_INACCURATE
        return M, status, info.get("native_iterations") or 1, info
