"""Backend calls in a forked child: results, failures, deadlines, Ctrl-C, and where the child
comes from (this process while it runs one thread, the fork server once it runs more)."""
import functools
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from convexmetric import interrupt
from convexmetric.interrupt import ChildFailed, DeadlineExceeded, run_stoppable


@pytest.fixture(params=["here", "server"])
def route(request, monkeypatch):
    """Fork from this process ("here") or from the fork server, whatever threads pytest runs."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: request.param == "server")
    return request.param


def _close_pipe_then_exit():
    os.closerange(3, 4096)   # the result pipe closes here: the parent reads EOF before the child exits
    time.sleep(0.5)
    os._exit(3)


def _note_pid_then_sleep(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(30)


def test_child_returns_its_result_and_reports_its_failures(route):
    assert run_stoppable(functools.partial(divmod, 45, 7)) == (6, 3)
    assert run_stoppable(functools.partial(np.arange, 3)).tolist() == [0, 1, 2]
    with pytest.raises(ChildFailed, match="ValueError: invalid literal"):
        run_stoppable(functools.partial(int, "bad input"))
    with pytest.raises(ChildFailed, match="exit code 3"):
        run_stoppable(functools.partial(os._exit, 3))
    with pytest.raises(ChildFailed, match="could not be sent back"):
        run_stoppable(threading.Lock)        # a result that cannot be pickled
    assert run_stoppable(os.getpid) != os.getpid()


def test_a_child_that_closes_its_pipe_before_exiting_is_reported_with_its_exit_code(route):
    """Under load the parent could read EOF before the child was reaped (CI once saw ``exit code None``)."""
    with pytest.raises(ChildFailed, match="exit code 3"):
        run_stoppable(_close_pipe_then_exit)


def test_child_is_killed_at_its_deadline_and_the_server_serves_on(route):
    parent = run_stoppable(os.getppid)
    t = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        run_stoppable(functools.partial(time.sleep, 30), timeout=0.3)
    assert time.perf_counter() - t < 5
    assert run_stoppable(os.getppid) == parent    # here: this process; server: the same server
    assert (parent == os.getpid()) == (route == "here")


def test_ctrl_c_kills_the_child_at_once(route, tmp_path):
    run_stoppable(os.getpid)                       # a server, if any, is up before the clock starts
    path = tmp_path / "pid"

    def interrupt_now(*_):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt_now)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    t = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_stoppable(functools.partial(_note_pid_then_sleep, str(path)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - t < 5
    with pytest.raises(ProcessLookupError):       # killed and reaped before the exception reached us
        os.kill(int(path.read_text()), 0)


def test_child_writes_where_this_process_writes_now(route, tmp_path):
    """A backend's own log (``backend_verbose``) goes to this process's standard output and
    error as they are at the call, even when the server was started before they moved."""
    run_stoppable(os.getpid)                       # a server, if any, starts before the streams move
    for fd in (1, 2):
        path = tmp_path / f"fd{fd}"
        with open(path, "wb") as f:
            saved = os.dup(fd)
            os.dup2(f.fileno(), fd)
            try:
                assert run_stoppable(functools.partial(os.write, fd, b"from the child\n")) == 15
            finally:
                os.dup2(saved, fd)
                os.close(saved)
        assert path.read_bytes() == b"from the child\n"


def test_descriptors_above_1023_are_waited_on(route):
    """``select`` cannot wait on them; a process with many open files gets them for its pipes."""
    import resource
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("the soft limit on open files is below 1200")
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        assert run_stoppable(functools.partial(divmod, 7, 2)) == (3, 1)
        with pytest.raises(DeadlineExceeded):
            run_stoppable(functools.partial(time.sleep, 30), timeout=0.2)
    finally:
        for fd in held:
            os.close(fd)


def _leave_a_sleeper_behind(then_sleep):
    if os.fork() == 0:         # a process of the child's own that keeps the result pipe open
        time.sleep(8)
        os._exit(0)
    time.sleep(then_sleep)
    return "done"


def test_a_process_the_child_leaves_behind_delays_nothing(route):
    t = time.perf_counter()
    assert run_stoppable(functools.partial(_leave_a_sleeper_behind, 0.0)) == "done"
    with pytest.raises(DeadlineExceeded):
        run_stoppable(functools.partial(_leave_a_sleeper_behind, 30.0), timeout=0.5)
    assert time.perf_counter() - t < 4


def test_ignoring_sigchld_breaks_neither_route(route, monkeypatch):
    monkeypatch.setattr(interrupt, "_idle_servers", [])      # a server started while it is ignored
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert run_stoppable(functools.partial(divmod, 7, 2)) == (3, 1)
        assert run_stoppable(functools.partial(divmod, 9, 2)) == (4, 1)
        # the server restores SIGCHLD, so its children keep their exit codes; ours are reaped unseen
        with pytest.raises(ChildFailed, match="exit code 3" if route == "server" else "killed or exited"):
            run_stoppable(functools.partial(os._exit, 3))
    finally:
        signal.signal(signal.SIGCHLD, old)
    while interrupt._idle_servers:
        interrupt._idle_servers.pop().close()


def test_a_kill_request_that_arrives_after_its_child_ended_is_ignored(monkeypatch):
    """The deadline can pass as the child ends: the server then reads the kill request
    between calls, where it must not be taken for the start of the next call."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: True)
    run_stoppable(os.getpid)
    interrupt._idle_servers[-1].jobs.sendall(interrupt.KILL_REQUEST * 2)
    assert run_stoppable(functools.partial(divmod, 7, 2), timeout=10) == (3, 1)
    assert run_stoppable(functools.partial(divmod, 9, 2), timeout=10) == (4, 1)


def test_a_stuck_server_cannot_hang_its_caller(monkeypatch):
    """A server that neither runs the call nor answers the kill request is stopped after
    KILL_REPLY_SECONDS, and the caller gets its DeadlineExceeded."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: True)
    monkeypatch.setattr(interrupt, "KILL_REPLY_SECONDS", 1.0)
    run_stoppable(os.getpid)
    server = interrupt._idle_servers[-1]
    os.kill(server.process.pid, signal.SIGSTOP)
    t = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        run_stoppable(functools.partial(divmod, 7, 2), timeout=0.5)
    assert time.perf_counter() - t < 5 and server.process.poll() is not None and server not in interrupt._idle_servers


def test_server_start_is_not_counted_in_the_deadline_and_a_dead_server_is_replaced(monkeypatch):
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: True)
    monkeypatch.setattr(interrupt, "_idle_servers", [])
    assert run_stoppable(functools.partial(time.sleep, 0.3), timeout=0.6) is None  # the start takes ~1 s
    server = interrupt._idle_servers[0]
    server.process.kill()                                      # the OOM killer, say
    server.process.wait()
    assert run_stoppable(os.getppid) not in (os.getpid(), server.process.pid)
    while interrupt._idle_servers:
        interrupt._idle_servers.pop().close()


def test_the_server_keeps_no_stream_of_ours_open(monkeypatch):
    """Started while our stdout was a pipe that someone reads to its end, the server must not
    hold that pipe open after we move stdout back."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: True)
    monkeypatch.setattr(interrupt, "_idle_servers", [])
    read_end, write_end = os.pipe()
    saved = os.dup(1)
    os.dup2(write_end, 1)
    try:
        run_stoppable(os.getpid)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(write_end)
    try:
        assert interrupt._readable(read_end, 5.0) and os.read(read_end, 100) == b""   # end of file
    finally:
        os.close(read_end)
        while interrupt._idle_servers:
            interrupt._idle_servers.pop().close()


_CALLER_KILLED = """
import functools, os, sys, threading, time
from convexmetric import interrupt
threading.Thread(target=threading.Event().wait, daemon=True).start()
interrupt.run_stoppable(os.getpid)
print(interrupt._idle_servers[0].process.pid, flush=True)
interrupt.run_stoppable(functools.partial(time.sleep, 60))
"""


def test_a_killed_caller_takes_its_servers_and_their_children_along():
    proc = subprocess.Popen([sys.executable, "-c", _CALLER_KILLED], stdout=subprocess.PIPE, text=True)
    try:
        server = int(proc.stdout.readline())
        children = []
        for _ in range(100):                  # the sleeping child, once the server has forked it
            with open(f"/proc/{server}/task/{server}/children") as f:
                children = [int(c) for c in f.read().split()]
            if children:
                break
            time.sleep(0.05)
        assert children
    finally:
        proc.kill()
        proc.wait()
    for _ in range(100):
        if not any(os.path.exists(f"/proc/{pid}") for pid in (server, *children)):
            break
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in (server, *children))


_MAIN_FUNCTION = """
import logging, threading
logging.basicConfig()
from convexmetric.interrupt import run_stoppable
def job():
    return 42
threading.Thread(target=threading.Event().wait, daemon=True).start()
print(run_stoppable(job))
"""


def test_a_function_of_the_callers_main_runs_here_with_a_warning():
    out = subprocess.run([sys.executable, "-c", _MAIN_FUNCTION], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["42"] and "cannot unpickle the call" in out.stderr, out


def test_child_collects_only_its_own_objects(monkeypatch):
    """The parent's objects are frozen in the child, so its collections never copy their pages."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: False)
    before = gc.get_freeze_count()
    assert run_stoppable(gc.get_freeze_count) >= len(gc.get_objects()) // 2
    assert gc.get_freeze_count() == before          # the parent is left as it was


def test_a_process_with_other_threads_forks_its_children_from_the_server(monkeypatch):
    """OpenBLAS hangs in ``fork()`` while another thread is in a BLAS call; a thread alive
    sends every call to the fork server, and concurrent calls to servers of their own."""
    done = threading.Event()
    waiting = threading.Thread(target=done.wait, daemon=True)
    waiting.start()
    try:
        assert interrupt._other_threads_running()
        server = run_stoppable(os.getppid)
        assert server != os.getpid()
        with __import__("concurrent.futures").futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(run_stoppable, [functools.partial(divmod, i, 3) for i in range(6)]))
        assert results == [divmod(i, 3) for i in range(6)]
        # two calls at once take two servers; only MAX_IDLE_SERVERS of them are kept afterwards
        monkeypatch.setattr(interrupt, "_idle_servers", [])
        monkeypatch.setattr(interrupt, "MAX_IDLE_SERVERS", 1)
        started = []

        class Counted(interrupt._ForkServer):
            def __init__(self):
                super().__init__()
                started.append(self)
        monkeypatch.setattr(interrupt, "_ForkServer", Counted)
        with __import__("concurrent.futures").futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(run_stoppable, [functools.partial(time.sleep, 0.5)] * 2))
        assert len(started) == 2 and len(interrupt._idle_servers) == 1 and interrupt._idle_servers[0] in started
        assert [s.process.poll() is None for s in started].count(True) == 1   # the other one was stopped
        interrupt._idle_servers.pop().close()
    finally:
        done.set()
        waiting.join()


def test_a_single_threaded_process_forks_its_children_itself():
    """The common case pays for no server and pickles nothing (a fresh process: pytest may
    keep threads of its own or of earlier tests)."""
    code = ("import os, threading; from convexmetric.interrupt import run_stoppable; "
            "print(threading.active_count(), run_stoppable(os.getppid) == os.getpid())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert out == ["1", "True"], out


def test_a_call_the_server_cannot_take_runs_here_with_a_warning(route, caplog):
    with caplog.at_level(logging.WARNING, logger="convexmetric.interrupt"):
        pid = run_stoppable(lambda: os.getpid())   # a lambda cannot be pickled
    assert (pid == os.getpid()) == (route == "server")
    assert ("cannot be pickled" in caplog.text) == (route == "server")


@pytest.mark.parametrize("executable", ["/nonexistent/python", "/bin/false"])
def test_without_a_fork_server_the_call_runs_here_with_a_warning(monkeypatch, caplog, executable):
    """An interpreter that cannot be started, or one that exits at once, leaves no server:
    the call still returns its result, from this process."""
    monkeypatch.setattr(interrupt, "_other_threads_running", lambda: True)
    monkeypatch.setattr(interrupt, "_idle_servers", [])
    monkeypatch.setattr(sys, "executable", executable)
    with caplog.at_level(logging.WARNING, logger="convexmetric.interrupt"):
        assert run_stoppable(os.getpid) == os.getpid()
    assert "no fork server could be started" in caplog.text


def test_the_conic_solvers_give_the_same_result_from_either_route(monkeypatch):
    """The server route pickles the CVXPY problem with the callable that reads its solution;
    the full SDP, the hybrid solver and dual polishing must return what the fork route does."""
    from convexmetric import LMNNProblem, solve
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [9, 7, 8])
    X = rng.normal(size=(24, 3)) + 2.0 * rng.normal(size=(3, 3))[y]
    p = LMNNProblem(X, y, k=2, mu=0.4, margin=0.7)
    out = {}
    for server in (False, True):
        monkeypatch.setattr(interrupt, "_other_threads_running", lambda: server)
        out[server] = [solve(p, name) for name in ("sdp-clarabel", "hybrid", "active-set")]
    for a, b in zip(out[False], out[True]):
        assert a.status == b.status == "optimal"
        assert np.array_equal(a.M, b.M) and a.lower_bound == b.lower_bound


#: A user's own CVXPY code solves with Clarabel in this process, large enough for Clarabel to
#: start its thread pool; then the package solves SDPs in forked children.
_AFTER_USER_CLARABEL = """
import sys
import numpy as np
import cvxpy as cp
from convexmetric.interrupt import DeadlineExceeded
from convexmetric.solvers.sdp import run_backend

def sdp(d=13, F=300):
    a = cp.Variable(F)
    C = np.random.default_rng(0).normal(size=(d * d, F))
    S = F * np.eye(d) + cp.reshape(C @ a, (d, d), order="F")
    return cp.Problem(cp.Maximize(cp.sum(a)), [a >= 0, a <= 1, 0.5 * (S + S.T) >> 0])

user = sdp()
user.solve(solver="CLARABEL")
ours = sdp()
try:
    status, value, _ = run_backend(ours, "clarabel", {}, lambda: ours.value, time_limit=20)
except DeadlineExceeded:
    print("hung")
    sys.exit(0)
print(status, round(value / user.value, 9))
"""


def test_backend_child_works_after_the_user_ran_clarabel_in_this_process():
    """Clarabel's thread pool does not survive fork: without one thread in the child, every
    later solve (hybrid, active-set, the plain SDP, dual polishing) waited forever."""
    out = subprocess.run([sys.executable, "-c", _AFTER_USER_CLARABEL], capture_output=True, text=True,
                         timeout=240, check=True).stdout.split()
    assert out == ["optimal", "1.0"], out


@pytest.mark.parametrize("value, forks", [("1", False), ("yes", False), ("0", True), ("", True)])
def test_no_fork_variable_runs_the_call_in_this_process(monkeypatch, value, forks):
    """``CONVEXMETRIC_NO_FORK`` (the escape from OpenBLAS's fork deadlock) runs ``fn`` here."""
    monkeypatch.setenv("CONVEXMETRIC_NO_FORK", value)
    assert (run_stoppable(os.getpid) != os.getpid()) == forks
