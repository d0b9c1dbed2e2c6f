"""Run a long native call (a conic backend) where Ctrl-C and deadlines can stop it.

Conic solvers called through CVXPY run in native code that does not return to Python
until they finish: a Ctrl-C waits for the whole solve, and a time limit cannot cut
CVXPY's compilation. :func:`run_stoppable` runs such a call in a forked child process
and waits for it in short polls, so the parent reacts to ``KeyboardInterrupt`` within
a poll interval and to its deadline on time; the child is killed in both cases. Only
the (small) result travels back.

Where the child is forked from:

- **This process, while it runs one thread.** The child inherits the parent's memory, so
  nothing is pickled on the way in.
- **A fork server, once the process runs other threads.** ``fork()`` in a multi-threaded
  process can deadlock: OpenBLAS (NumPy's BLAS) hangs in ``fork()`` while another thread
  is inside a multi-threaded BLAS call (OpenMathLib/OpenBLAS issues 2270 and 5520), and
  this package's own test suite once hung there. The server is a fresh single-threaded
  interpreter, started on first need, with CVXPY and the backends' callers already
  imported; it forks the children instead, and ``fn`` is pickled to reach them, with this
  process's standard output and error (the child writes where this process writes now).
  A server serves one call at a time; concurrent callers get one each, and up to
  :data:`MAX_IDLE_SERVERS` of them are kept for later calls. A server kills its child when
  asked (the deadline, Ctrl-C) and when this process goes away.

Set ``CONVEXMETRIC_NO_FORK=1`` to run the calls in this process instead (Ctrl-C and the
deadline then wait for the call to finish). A call that cannot be pickled for the server
or unpickled there (a function of the caller's ``__main__``), or one for which no server
starts, runs in this process too, with a warning.
"""
from __future__ import annotations

import atexit
import gc
import logging
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)

#: Seconds between the parent's checks for a result, Ctrl-C and the deadline.
POLL_SECONDS = 0.02

#: Environment variable that, set to anything but ``0``, runs the calls in-process (see the module doc).
NO_FORK_VARIABLE = "CONVEXMETRIC_NO_FORK"

#: Modules the fork server imports once, so that its children unpickle their calls at once.
SERVER_PRELOAD = ("cvxpy", "convexmetric.solvers.sdp", "convexmetric.certificate")

#: Seconds allowed for a fork server to start (a fresh interpreter importing CVXPY).
SERVER_START_SECONDS = 120.0

#: Idle fork servers kept for later calls (each holds about 120 MB); more are stopped.
MAX_IDLE_SERVERS = max(2, os.cpu_count() or 1)


class DeadlineExceeded(Exception):
    """The call was still running at its deadline; the child was killed."""


class ChildFailed(RuntimeError):
    """The child process raised or died; the message says how."""


# --- messages: a length, then a pickle -------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``, or None at end of file."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, struct.pack("!Q", len(data)) + data)


def _read_message(fd: int) -> bytes:
    """One raw message (length and pickle) from ``fd``; empty if the writer closed first.

    Reads no further, so a process the child left behind holding the pipe delays nothing.
    """
    head = _read_exactly(fd, 8)
    body = None if head is None else _read_exactly(fd, struct.unpack("!Q", head)[0])
    return b"" if body is None else head + body


def _receive(fd: int):
    """The next message on ``fd``, unpickled; EOFError when the writer closed it first."""
    raw = _read_message(fd)
    if not raw:
        raise EOFError
    return pickle.loads(raw[8:])


# --- the child: the same code whichever process forks it ------------------------------

def _readable(fd: int, seconds: float | None) -> bool:
    """Whether ``fd`` has data or end of file within ``seconds`` (None: wait). ``poll``:
    ``select`` fails on descriptors above 1023, which a process with many files hands out."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if seconds is None else seconds * 1000.0))


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):  # closed or replaced streams
            pass


def _fork_call(job, close_fds=(), std_fds=None) -> tuple[int, int]:
    """Fork a child that runs ``job`` and writes its outcome to a pipe; return ``(pid, read end)``.

    ``job`` is the callable itself or its pickle. The child writes one message,
    ``("ok", result)``, ``("error", text)`` or, when ``job`` cannot be unpickled here,
    ``("unpickled", text)``, then exits; a child that dies writes nothing. It closes
    ``close_fds`` (its parent's own descriptors) first, and makes ``std_fds`` (a map from
    1 or 2 to a descriptor) its standard output and error.
    """
    _flush_std_streams()  # or the child would print the parent's buffered output again
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid:
        os.close(write_end)
        return pid, read_end
    try:  # the child
        for fd in (read_end, *close_fds):
            os.close(fd)
        for target, fd in (std_fds or {}).items():
            os.dup2(fd, target)
        for fd in set((std_fds or {}).values()) - set(STD_FDS):
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
        # The objects inherited from the parent are shared copy-on-write: a garbage collection
        # that walked them would write to (so copy) the parent's heap page by page, which made
        # the small SDPs solved here about 1.5 times slower. Collect only the child's own objects.
        gc.freeze()
        try:
            fn = pickle.loads(job) if isinstance(job, bytes) else job
        except BaseException as exc:  # noqa: BLE001 - a function of the caller's __main__, say
            fn, outcome = None, ("unpickled", f"{type(exc).__name__}: {exc}")
        if fn is not None:
            try:
                outcome = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - report anything, the parent re-raises
                outcome = ("error", f"{type(exc).__name__}: {exc}")
        try:
            _send(write_end, outcome)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            _send(write_end, ("error", f"the result could not be sent back: {type(exc).__name__}: {exc}"))
        _flush_std_streams()
    finally:
        os._exit(0)  # skip atexit handlers and buffered output inherited from the parent


def _reap(pid: int) -> int | None:
    """Wait for the child ``pid``; its exit code (None where SIGCHLD is ignored and it was reaped already)."""
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return None


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already exited
        pass
    _reap(pid)


# --- the fork server -------------------------------------------------------------------

#: The caller's descriptors a child writes its output to, as with a child forked from the caller.
STD_FDS = (1, 2)

#: What a caller sends on the job socket, while its call runs, to have the child killed.
KILL_REQUEST = b"k"

#: Seconds a caller waits for the server to confirm a kill before stopping the server itself.
KILL_REPLY_SECONDS = 5.0


def _open_std_fds() -> list[int]:
    out = []
    for fd in STD_FDS:
        try:
            os.fstat(fd)
            out.append(fd)
        except OSError:  # closed (a daemon, say): the child writes nowhere
            pass
    return out


def _read_all(fd: int, size: int) -> bytes:
    data = _read_exactly(fd, size)
    if data is None:
        raise EOFError
    return data


def _serve_one(jobs, job_fd: int, reply_fd: int) -> None:
    """Receive one call on ``jobs``, fork its child, wait for it, reply ``("done", message, exit code)``.

    While the child runs, a :data:`KILL_REQUEST` from the caller kills it, and so does the
    caller going away (end of file on ``jobs``, then EOFError): no solve outlives its caller.
    """
    head, fds = b"", []
    while not head:
        head, fds, _, _ = socket.recv_fds(jobs, 9, len(STD_FDS))
        if not head:
            raise EOFError
        # a kill request that crossed the child's end is stale: a header never starts with
        # one (its first byte is the high byte of the call's length, 0)
        head = head.lstrip(KILL_REQUEST)
    try:
        head += _read_all(job_fd, 9 - len(head))
        size, mask = struct.unpack("!QB", head)
        std_fds = dict(zip([t for i, t in enumerate(STD_FDS) if mask >> i & 1], fds))
        pid, read_end = _fork_call(_read_all(job_fd, size), close_fds=(job_fd, reply_fd), std_fds=std_fds)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        poller = select.poll()
        poller.register(read_end, select.POLLIN)
        poller.register(job_fd, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if job_fd in ready:
                request = jobs.recv(1)
                _kill_and_reap(pid)
                if not request:
                    raise EOFError
                _send(reply_fd, ("done", b"", None))
                return
            if read_end in ready:
                break
        message = _read_message(read_end)
    except BaseException:
        _kill_and_reap(pid)
        raise
    finally:
        os.close(read_end)
    _send(reply_fd, ("done", message, _reap(pid)))


def serve(job_fd: int, reply_fd: int, preload=SERVER_PRELOAD) -> None:
    """Main loop of a fork server: for each pickled call received, fork a child that runs it.

    ``job_fd`` is a Unix socket: each call comes as a header (its length and which of the
    caller's standard streams follow) carrying those streams' descriptors, then the pickle;
    the child writes to the caller's streams. The server replies on the pipe ``reply_fd``:
    ``("ready", pid)`` or ``("failed", text)`` once, then one ``("done", message, exit code)``
    per call (see :func:`_serve_one`). Returns when the caller closes the socket.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C at a terminal reaches the server too
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the caller may ignore it, which exec keeps
    try:
        for name in preload:
            __import__(name)
    except BaseException as exc:  # noqa: BLE001 - reported to the caller, which runs its call itself
        _send(reply_fd, ("failed", f"{type(exc).__name__}: {exc}"))
        return
    _send(reply_fd, ("ready", os.getpid()))
    jobs = socket.socket(fileno=job_fd)
    try:
        while True:
            _serve_one(jobs, job_fd, reply_fd)
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the caller has gone
        return


class ServerUnavailable(ChildFailed):
    """No fork server could be started; the call can run in this process instead."""


class _ForkServer:
    """Caller's side of one fork server process (see :func:`serve`)."""

    def __init__(self):
        self.jobs, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.reply_fd, reply_write = os.pipe()
        code = (f"import sys; sys.path[:] = {sys.path!r}; from convexmetric.interrupt import serve; "
                f"serve({server_end.fileno()}, {reply_write})")
        try:
            # Its own session: a terminal's Ctrl-C does not reach it. No standard streams of
            # its own, which would keep open whatever this process's were at the start (a
            # pipe someone reads to its end, say): each call brings this process's.
            self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            pass_fds=(server_end.fileno(), reply_write), start_new_session=True)
        except BaseException as exc:
            self.jobs.close()
            os.close(self.reply_fd)
            if isinstance(exc, OSError):
                raise ServerUnavailable(f"cannot run {sys.executable!r}: {exc}") from None
            raise
        finally:
            server_end.close()
            os.close(reply_write)
        try:
            if not _readable(self.reply_fd, SERVER_START_SECONDS):
                raise ServerUnavailable(f"the fork server did not start in {SERVER_START_SECONDS:g} s")
            status, detail = _receive(self.reply_fd)
            if status != "ready":
                raise ServerUnavailable(f"the fork server could not import what it needs: {detail}")
        except BaseException as exc:
            self.close(kill=True)
            if isinstance(exc, EOFError):
                raise ServerUnavailable(f"the fork server failed to start (exit code {self.process.poll()})") from None
            raise
        logger.debug("started a fork server (pid %d)", self.process.pid)

    def start(self, payload: bytes) -> None:
        """Send a pickled call with this process's standard streams."""
        fds = _open_std_fds()
        mask = sum(1 << i for i, fd in enumerate(STD_FDS) if fd in fds)
        socket.send_fds(self.jobs, [struct.pack("!QB", len(payload), mask)], fds)
        self.jobs.sendall(payload)

    def close(self, kill: bool = False) -> None:
        """Stop the server: at once with its child (``kill``), or once it has no child left."""
        self.jobs.close()
        try:
            os.close(self.reply_fd)
        except OSError:
            pass
        if not kill:
            try:
                self.process.wait(5)
                return
            except subprocess.TimeoutExpired:  # pragma: no cover - a server waiting on a child
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


_idle_servers: list[_ForkServer] = []
_servers_lock = threading.Lock()


def _take_idle_server() -> _ForkServer | None:
    with _servers_lock:
        return _idle_servers.pop() if _idle_servers else None


def _give_back(server: _ForkServer) -> None:
    with _servers_lock:
        keep = len(_idle_servers) < MAX_IDLE_SERVERS
        if keep:
            _idle_servers.append(server)
    if not keep:
        server.close()


@atexit.register
def _close_servers() -> None:
    with _servers_lock:
        servers = list(_idle_servers)
        _idle_servers.clear()
    for server in servers:
        server.close()


def _forget_servers_after_fork() -> None:
    # a forked child must not talk to its parent's servers (their pipes are the parent's)
    global _servers_lock
    _idle_servers.clear()
    _servers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_servers_after_fork)


# --- the caller ------------------------------------------------------------------------

class _Unpickled(Exception):
    """The server's child could not unpickle the call (it names the caller's ``__main__``, say)."""


def _outcome(message: bytes, exit_code):
    """The result in a child's raw message, or the failure it reports."""
    if not message:
        how = "was killed or exited" if exit_code is None else f"died (exit code {exit_code})"
        raise ChildFailed(f"the backend process {how}")
    status, payload = pickle.loads(message[8:])
    if status == "unpickled":
        raise _Unpickled(payload)
    if status != "ok":
        raise ChildFailed(payload)
    return payload


def _deadline(timeout) -> float | None:
    return None if timeout is None else time.monotonic() + max(float(timeout), 0.0)


def _wait_readable(fd: int, deadline: float | None, timeout: float | None) -> None:
    """Poll ``fd`` until it is readable; DeadlineExceeded at ``deadline``."""
    while not _readable(fd, POLL_SECONDS):
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded(f"still running after {timeout:.3g} s")


def _run_forked_here(fn, timeout):
    deadline = _deadline(timeout)
    pid, read_end = _fork_call(fn)
    try:
        _wait_readable(read_end, deadline, timeout)
        message = _read_message(read_end)
    except BaseException:  # the deadline, Ctrl-C: the child goes first
        _kill_and_reap(pid)
        raise
    finally:
        os.close(read_end)
    return _outcome(message, _reap(pid))


def _call_server(payload: bytes, timeout):
    """The outcome of the pickled call on a fork server; an idle one if any, else a new one.

    The deadline starts once the server is there (a new one takes about a second to
    start), as the backend's own time limit starts in the child. A pooled server found
    dead is replaced once. Raises ServerUnavailable where no server starts.
    """
    for attempt in range(2):
        server, in_step = None, False  # in_step: the server has answered everything asked of it
        try:
            server = _take_idle_server()
            fresh = server is None
            if fresh:
                server = _ForkServer()
            try:
                server.start(payload)
            except OSError:
                if fresh or attempt:
                    raise ChildFailed("the fork server went away") from None
                continue  # a pooled server that died (the OOM killer, say): the finally stops it
            try:
                _wait_readable(server.reply_fd, _deadline(timeout), timeout)
            except BaseException:  # the deadline, Ctrl-C: the server kills its child first
                try:
                    server.jobs.sendall(KILL_REQUEST)
                    if _readable(server.reply_fd, KILL_REPLY_SECONDS):  # else it is stuck: the finally stops it
                        _receive(server.reply_fd)
                        in_step = True
                except (EOFError, OSError):
                    pass
                raise
            try:
                _, message, exit_code = _receive(server.reply_fd)
            except EOFError:
                raise ChildFailed("the fork server died during the call") from None
            in_step = True
        finally:
            if in_step:
                _give_back(server)
            elif server is not None:  # an error left its state unknown: stop it with any child
                server.close(kill=True)
        return _outcome(message, exit_code)


def _other_threads_running() -> bool:
    """Whether forking this process could hang (see the module doc)."""
    return threading.active_count() > 1


def run_stoppable(fn, timeout: float | None = None):
    """Return ``fn()`` computed in a forked child, stoppable by Ctrl-C and by ``timeout``.

    Parameters
    ----------
    fn : callable
        Called with no arguments in the child; its result must be picklable, and so must
        ``fn`` itself when this process runs other threads (see the module doc).
    timeout : float or None
        Seconds from now (from the fork server's start, where one starts) after which the
        child is killed and :class:`DeadlineExceeded` raised.

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C in the parent while waiting (the child is killed first).
    DeadlineExceeded, ChildFailed
    """
    if os.environ.get(NO_FORK_VARIABLE, "").strip() not in ("", "0"):
        logger.debug("%s is set: running the call in this process", NO_FORK_VARIABLE)
        return fn()
    if not hasattr(os, "fork"):  # pragma: no cover - not Linux/macOS
        return fn()
    if not _other_threads_running():
        return _run_forked_here(fn, timeout)
    why = "this process runs other threads, where forking it can hang, and {}: running the call in this process"
    try:
        payload = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - pickle raises several types
        logger.warning(why.format(f"the call cannot be pickled for the fork server ({exc})"))
        return fn()
    try:
        return _call_server(payload, timeout)
    except ServerUnavailable as exc:
        logger.warning(why.format(f"no fork server could be started ({exc})"))
    except _Unpickled as exc:
        logger.warning(why.format(f"the fork server cannot unpickle the call ({exc})"))
    return fn()
