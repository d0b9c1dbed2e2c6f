"""What every solver shares: options, warm starts, limits, callbacks and certification.

A solver subclasses :class:`Solver`, declares its options in ``defaults`` and
implements :meth:`Solver._run`, which yields nothing but calls :meth:`Solver.record`
each iteration. The base class times the run (certification excluded), honours the
time limit, the callback and Ctrl-C, certifies the final iterate with the problem's
own certificate and packs an :class:`~convexmetric.result.LMNNResult`.
"""
from __future__ import annotations

import logging
import math
import sys
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from .. import psd
from .._checks import check_int, check_real
from ..dual import certificate_duals
from ..interrupt import DeadlineExceeded
from ..result import INTERRUPTED, OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT, LMNNResult

logger = logging.getLogger("convexmetric.solvers")

#: Least seconds between two progress lines where no progress bar can render
#: (standard error redirected to a file or a pipe, a notebook without ipywidgets).
PROGRESS_LINE_INTERVAL = 1.0

_progress_state = threading.local()  # this thread's running progress display, if any
_write_lock = threading.Lock()       # progress lines from several threads never interleave


def _in_jupyter_kernel() -> bool:
    """True inside a Jupyter kernel (where ``tqdm.auto`` draws a widget)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython install
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _bar_renders(stream) -> bool:
    """Whether a redrawn progress bar displays properly on ``stream``.

    A terminal redraws a line in place with carriage returns, and a Jupyter kernel
    with ``ipywidgets`` shows ``tqdm``'s widget; anywhere else (a log file, a pipe, a
    CI log, a notebook without widgets) carriage returns pile up into one huge line.
    """
    if _in_jupyter_kernel():
        import importlib.util
        return importlib.util.find_spec("ipywidgets") is not None
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _fmt_gap(gap) -> str | None:
    return None if gap is None or not math.isfinite(gap) else f"{gap:.1e}"


class _Progress:
    """Progress display of one solve, fed by :meth:`Solver.record`.

    Where a bar renders (see :func:`_bar_renders`) it is a ``tqdm.auto`` bar: no total
    (a solver cannot know in advance how many iterations it needs), the number of
    recorded updates and the elapsed time, and in the postfix the current phase (for
    solvers that run others, such as ``hybrid``), the solver's iteration counter, the
    objective and the certified relative gap when known. Elsewhere it writes one plain
    line per update, at most one every :data:`PROGRESS_LINE_INTERVAL` seconds, and
    never a carriage return. Both end with a line holding the final certified result.
    """

    BAR_FORMAT = "{desc}: {n_fmt} updates [{elapsed}{postfix}]"

    def __init__(self, name: str, stream=None):
        self.name = name
        self.stream = sys.stderr if stream is None else stream
        self._last_line = -math.inf
        self._t0 = time.perf_counter()
        self.bar = None
        if _bar_renders(self.stream):
            from tqdm.auto import tqdm
            self.bar = tqdm(desc=name, unit="update", file=self.stream, bar_format=self.BAR_FORMAT,
                            dynamic_ncols=True, leave=True)

    def update(self, source: str, rec: dict) -> None:
        """Show one recorded iteration of solver ``source``."""
        fields = {"phase": source} if source != self.name else {}
        fields.update(it=rec["iteration"], f=f"{rec['objective']:.8g}")
        gap = _fmt_gap(rec.get("relative_gap"))
        if gap is not None:
            fields["gap"] = gap
        if self.bar is not None:
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self._last_line >= PROGRESS_LINE_INTERVAL:
            self._last_line = now
            self._write(fields)

    def close(self, result: LMNNResult | None = None) -> None:
        """Close the bar (or write the last line) with the final result, if any."""
        fields = None
        if result is not None:
            fields = {"status": result.status, "it": result.nit, "f": f"{result.fun:.8g}"}
            gap = _fmt_gap(result.relative_gap)
            if gap is not None:
                fields["certified gap"] = gap
        if self.bar is not None:
            if fields is not None:
                self.bar.set_postfix(fields, refresh=False)
            self.bar.close()
        elif fields is not None:
            self._write(fields)

    def _write(self, fields: dict) -> None:
        text = ", ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{self.name}: [{time.perf_counter() - self._t0:.1f}s] {text}\n"
        with _write_lock:
            self.stream.write(line)
            self.stream.flush()


class StopSolver(Exception):
    """Raised inside a run to stop it early with a given status."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WhitenedPhase:
    """A first-order phase run on :meth:`~convexmetric.LMNNProblem.pull_whitened`, for a solver
    that works on ``problem``: the maps of metrics there and back, and what may come back.

    The twin is the same problem in other coordinates (same optimal value, same triplet
    weights), where first-order methods no longer crawl when the features' scales differ.
    Its aggregated dual points hold a ``K`` in its own coordinates, so only coordinate-free
    ones (:class:`~convexmetric.triplets.TripletWeights`) may reach this problem's certificate.
    """

    def __init__(self, problem):
        self.twin, self.W = problem.pull_whitened()
        self.W_inv = np.linalg.inv(self.W)

    @staticmethod
    def applies(problem) -> bool:
        """Some target difference not 0 (else there is nothing to whiten)."""
        return problem.has_pull()

    def to_twin(self, M):
        """A metric (or a stack of class metrics) of the problem, in the twin's coordinates."""
        return None if M is None else self.W_inv @ M @ self.W_inv.T

    def back(self, M):
        """A metric (or a stack) of the twin, in the problem's coordinates."""
        return self.W @ M @ self.W.T

    def callback(self, cb, time_offset: float = 0.0):
        """``cb`` seeing the phase's records with metrics in this problem's coordinates."""
        if cb is None:
            return None
        return lambda info: cb({**info, "time": info["time"] + time_offset,
                                **({"M": self.back(info["M"])} if "M" in info else {})})

    @staticmethod
    def portable(duals) -> list:
        from ..triplets import TripletWeights
        return [d for d in duals if isinstance(d, TripletWeights)]


def was_interrupted(result) -> bool:
    """Whether Ctrl-C stopped a run (its status may still say ``optimal`` when certified)."""
    return result.status == INTERRUPTED or result.info.get("stop_reason") == "KeyboardInterrupt"


class Solver:
    """Base class of all LMNN solvers.

    Common options
    --------------
    tol : float
        Target certified relative gap: status is ``optimal`` when reached.
    time_limit : float or None
        Wall-clock seconds for the solve phase.
    max_iter : int
    warm_start : array (d, d), LMNNResult or None
        Initial metric (projected onto the PSD cone). For a multi-metric problem a
        single ``(d, d)`` metric starts every class.
    callback : callable or None
        ``callback(info) -> bool``; called each recorded iteration with a dict of
        ``iteration, time, objective, M`` (and ``lower_bound`` when known); returning
        True stops the run with status ``user_limit``.
    certify : bool
        Certify the final iterate (default True).
    polish : bool or "auto"
        Dual polishing (a small SDP over the triplets on the margin) in the final
        certificate; ``"auto"`` (default) polishes when ``d <= certificate.POLISH_MAX_DIM``.
        ``fista`` also uses it in its periodic certificates.
    verbose : bool
        Log progress at INFO level instead of DEBUG.
    progress : bool
        Show progress on standard error: a ``tqdm`` bar (updates, elapsed time, and in
        its postfix the phase, iteration, objective and certified relative gap) in a
        terminal or a Jupyter notebook with ``ipywidgets``; elsewhere (output redirected
        to a file or a pipe) plain lines, at most one per second, never carriage
        returns. Both end with the certified result. A solver run inside another one
        (the phases of ``hybrid`` and ``band-ipm``) reports to its parent's display.
    """

    name = "base"
    exact = False
    #: BLAS threads for the whole run (solving and certifying), or None to leave the
    #: library's setting; passes over the triplets run their own worker threads either way.
    blas_threads: int | None = None
    #: Options and defaults common to every solver; subclasses extend ``defaults``.
    common_defaults = dict(tol=1e-6, time_limit=None, max_iter=10_000, warm_start=None,
                           callback=None, certify=True, polish="auto", verbose=False, progress=False)
    defaults: dict = {}
    _progress: _Progress | None = None  # the display record() feeds, set during solve()

    def __init__(self, **options):
        allowed = {**self.common_defaults, **self.defaults}
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"solver {self.name!r} got unknown option(s) {unknown}; "
                            f"it accepts {sorted(allowed)}")
        self.options = {**allowed, **options}
        o = self.options
        o["tol"] = check_real("tol", o["tol"], "a finite positive number", lambda v: 0.0 < v < np.inf)
        o["time_limit"] = check_real("time_limit", o["time_limit"], "a positive number of seconds or None",
                                     lambda v: v > 0.0, allow_none=True)
        o["max_iter"] = check_int("max_iter", o["max_iter"])
        if not (o["polish"] is True or o["polish"] is False or o["polish"] == "auto"):
            raise ValueError(f"polish must be True, False or 'auto', got {o['polish']!r}")
        cb = self.options["callback"]
        if cb is not None and not callable(cb):
            raise TypeError("callback must be callable")

    # -- helpers for subclasses -------------------------------------------------
    def _log(self, msg, *args):
        logger.log(logging.INFO if self.options["verbose"] else logging.DEBUG, msg, *args)

    def initial_metric(self, problem) -> np.ndarray:
        """Warm start projected onto the PSD cone, or the identity (Euclidean metric).

        The warm start is given in the user's coordinates and returned in those of the
        problem being solved (the normalised twin, see :meth:`LMNNProblem.normalized`).
        """
        M0 = self.options["warm_start"]
        if M0 is None:
            return problem.identity_metric()
        if hasattr(M0, "M") and not isinstance(M0, np.ndarray):  # an LMNNResult
            M0 = M0.M
        M0 = problem.validate_metric(M0, "warm_start")
        return psd.project_psd(M0) * self._scale2

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def remaining(self) -> float | None:
        """Seconds left before ``time_limit`` (None without one); never negative."""
        tl = self.options["time_limit"]
        return None if tl is None else max(tl - self.elapsed(), 0.0)

    def record(self, iteration: int, M, objective: float, **extra) -> None:
        """Log an iteration, keep the best iterate, apply limits and the callback."""
        rec = {"iteration": iteration, "time": self.elapsed(), "objective": float(objective), **extra}
        self._last_iteration = iteration
        self.history.append(rec)
        if objective < self._best[1]:
            self._best = (np.array(M, copy=True), float(objective))
        self._log("%s it %d  f=%.8g %s t=%.2fs", self.name, iteration, objective,
                  " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in extra.items()), rec["time"])
        if self._progress is not None:
            self._progress.update(self.name, rec)
        cb = self.options["callback"]
        if cb is not None and cb({**rec, "M": M}):
            raise StopSolver(USER_LIMIT, "stopped by callback")
        tl = self.options["time_limit"]
        if tl is not None and rec["time"] > tl:
            raise StopSolver(USER_LIMIT, f"time limit {tl}s reached")

    # -- the template -----------------------------------------------------------
    def _run(self, problem):  # pragma: no cover - abstract
        """Solve; return ``(M, status, nit, info)``. Call :meth:`record` each iteration.

        ``info["dual"]`` may hold a list of dual points (TripletWeights) for the final
        certificate, and ``info["polish"]`` whether to polish (default "auto").
        """
        raise NotImplementedError

    def solve(self, problem) -> LMNNResult:
        """Run the solver on ``problem`` and return a certified :class:`LMNNResult`.

        The run works on ``problem.normalized()`` (data divided by a power of two so that
        target distances are near the margin), so that no solver depends on the scale of
        ``X``; metrics are mapped back before they reach the callback or the result.
        """
        user_problem, problem = problem, problem.normalized()
        scale2 = user_problem.data_scale ** 2
        self._scale2 = scale2
        user_cb = self.options["callback"]
        if user_cb is not None and scale2 != 1.0:  # inner solvers get the wrapped callback too
            self.options = {**self.options, "callback": lambda info: user_cb({**info, "M": info["M"] / scale2})}
        parent = getattr(_progress_state, "display", None)
        own = _Progress(self.name) if self.options["progress"] and parent is None else None
        self._progress = own or parent
        if own is not None:
            _progress_state.display = own
        res = None
        try:
            with threadpool_limits(self.blas_threads, user_api="blas"):  # None: no limit
                res = self._solve(problem, user_problem)
        finally:
            self.options = {**self.options, "callback": user_cb}
            if own is not None:
                _progress_state.display = parent
                own.close(res)
            self._progress = None
        return res

    def _solve(self, problem, user_problem) -> LMNNResult:
        self.history = []
        self._best = (None, np.inf)
        self._last_iteration = 0
        #: Dual points found during the run, offered to the final certificate even when
        #: the run is stopped early (time limit, callback, Ctrl-C).
        self.duals = []
        self.setup_time = 0.0
        self._t0 = time.perf_counter()
        info = {}
        try:
            M, status, nit, info = self._run(problem)
            if self._best[0] is not None:
                # every recorded objective is exact: return the best point the run saw (a
                # smoothed or non-convex method can end above a point it passed through)
                M = self._best[0]
        except (StopSolver, DeadlineExceeded) as stop:
            if isinstance(stop, DeadlineExceeded):  # a backend process outran the time limit
                stop = StopSolver(USER_LIMIT, f"time limit {self.options['time_limit']}s reached ({stop})")
            M, status, nit = self._best[0], stop.status, self._last_iteration
            info = {"stop_reason": stop.reason}
            self._log("%s stopped: %s", self.name, stop.reason)
        except KeyboardInterrupt:
            M, status, nit = self._best[0], INTERRUPTED, self._last_iteration
            info = {"stop_reason": "KeyboardInterrupt"}
            logger.warning("%s interrupted: returning the best iterate so far", self.name)
        t_end = self.elapsed()
        solve_time = t_end - self.setup_time
        if M is None:
            M = self.initial_metric(problem)
        M = user_problem.from_normalized(psd.project_psd(M))

        t1 = time.perf_counter()
        cert = None
        if self.options["certify"]:
            cands = (info.pop("dual", None) or []) + self.duals
            polish = info.pop("polish", self.options["polish"])
            if status == INTERRUPTED:  # the user is waiting: the duals at hand, no polishing SDP
                polish = False
            # with a time limit, polishing gets what is left, and at least 1 s + a quarter of the limit
            tl = self.options["time_limit"]
            budget = None if tl is None else max(self.remaining(), 1.0 + 0.25 * tl)
            polish_options = {}
            if status != INTERRUPTED and user_problem.n_metrics > 1:
                # one metric per class: a dual ascent (seconds) rather than a polishing SDP with
                # one block per class (minutes on Letters, and weaker); polish only past tol
                cands = cands + certificate_duals(user_problem, M, time_limit=None if budget is None
                                                  else 0.5 * budget)
                polish_options["target"] = self.options["tol"]
            try:
                cert = user_problem.certificate(M, alpha=cands or None, polish=polish, time_limit=budget,
                                                **polish_options)
            except KeyboardInterrupt:  # Ctrl-C during the polishing SDP: certify without it
                status, info["stop_reason"] = INTERRUPTED, "KeyboardInterrupt"
                cert = user_problem.certificate(M, alpha=cands or None, polish=False)
            fun, lb, gap, rel = cert.objective, cert.lower_bound, cert.gap, cert.relative_gap
            if rel <= self.options["tol"]:  # certified: optimal, whatever stopped the run
                status = OPTIMAL
            elif status == OPTIMAL:
                status = OPTIMAL_INACCURATE
        else:
            fun, lb, gap, rel = user_problem.objective(M), np.nan, np.nan, np.nan
        certify_time = time.perf_counter() - t1
        if cert is not None:  # the curve of every run ends at its certified value
            self.history.append({"iteration": nit, "time": t_end, "objective": fun, "lower_bound": lb,
                                 "relative_gap": rel, "final": True})
        opts = {k: v for k, v in self.options.items() if k not in ("callback", "warm_start")}
        info["data_scale"] = user_problem.data_scale
        res = LMNNResult(M=M, fun=fun, status=status, solver=self.name, lower_bound=lb, gap=gap,
                         relative_gap=rel, nit=nit, setup_time=self.setup_time, solve_time=solve_time,
                         certify_time=certify_time, options=opts, history=self.history, info=info,
                         certificate=cert)
        self._log("%s", res)
        return res
