"""Run a long native call (a conic backend) where Ctrl-C and deadlines can stop it.

Conic solvers called through CVXPY run in native code that does not return to Python
until they finish: a Ctrl-C waits for the whole solve, and a time limit cannot cut
CVXPY's compilation. :func:`run_stoppable` runs such a call in a forked child process
and waits for it in short polls, so the parent reacts to ``KeyboardInterrupt`` within
a poll interval and to its deadline on time; the child is killed in both cases. The
child inherits the parent's memory (fork), so nothing is pickled on the way in; only
the (small) result travels back.

Forking has one hazard we cannot remove here: OpenBLAS (NumPy's BLAS) can deadlock in
``fork()`` while another thread of the process is inside a multi-threaded BLAS call
(OpenMathLib/OpenBLAS issues 2270 and 5520). A program that runs matrix products in other
threads while it solves can set ``CONVEXMETRIC_NO_FORK=1``: the call then runs in-process,
at the cost of Ctrl-C and the deadline waiting for it to finish.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import time

logger = logging.getLogger(__name__)

#: Seconds between the parent's checks for a result, Ctrl-C and the deadline.
POLL_SECONDS = 0.02

#: Seconds the parent waits for a child whose pipe closed without a result to exit.
REAP_SECONDS = 5.0

#: Environment variable that, set to anything but ``0``, runs the calls in-process (see the module doc).
NO_FORK_VARIABLE = "CONVEXMETRIC_NO_FORK"


class DeadlineExceeded(Exception):
    """The call was still running at its deadline; the child was killed."""


class ChildFailed(RuntimeError):
    """The child process raised or died; the message says how."""


def _child_main(fn, conn):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    # The objects inherited from the parent are shared copy-on-write: a garbage collection
    # that walked them would write to (so copy) the parent's heap page by page, which made
    # the small SDPs solved here about 1.5 times slower. Collect only the child's own objects.
    gc.freeze()
    try:
        out = ("ok", fn())
    except BaseException as exc:  # noqa: BLE001 - report anything, the parent re-raises
        out = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(out)
    finally:
        conn.close()
        os._exit(0)  # skip atexit handlers and buffered output inherited from the parent


def run_stoppable(fn, timeout: float | None = None):
    """Return ``fn()`` computed in a forked child, stoppable by Ctrl-C and by ``timeout``.

    Parameters
    ----------
    fn : callable
        Called with no arguments in the child; its result must be picklable.
    timeout : float or None
        Seconds from now after which the child is killed and
        :class:`DeadlineExceeded` raised.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C in the parent while waiting (the child is killed first).
    DeadlineExceeded, ChildFailed
    """
    if os.environ.get(NO_FORK_VARIABLE, "").strip() not in ("", "0"):
        logger.debug("%s is set: running the call in this process", NO_FORK_VARIABLE)
        return fn()
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux/macOS
        return fn()
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(fn, send), daemon=True)
    deadline = None if timeout is None else time.monotonic() + max(float(timeout), 0.0)
    proc.start()
    send.close()
    try:
        while not recv.poll(POLL_SECONDS):
            if not proc.is_alive() and not recv.poll(0):
                raise ChildFailed(f"the backend process died (exit code {proc.exitcode})")
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"still running after {timeout:.3g} s")
        try:
            status, payload = recv.recv()
        except EOFError:
            # the pipe reads EOF as soon as the child's end closes, which can be before the
            # child is reaped: wait for it, so that the message has its exit code
            proc.join(REAP_SECONDS)
            raise ChildFailed(f"the backend process died (exit code {proc.exitcode})") from None
    except BaseException:
        proc.kill()
        proc.join()
        recv.close()
        raise
    proc.join()
    recv.close()
    if status != "ok":
        raise ChildFailed(payload)
    return payload
