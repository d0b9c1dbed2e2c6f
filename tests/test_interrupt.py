"""Backend calls in a forked child: results, failures, deadlines, and what the child inherits."""
import gc
import os
import subprocess
import sys
import time

import pytest

from convexmetric.interrupt import ChildFailed, DeadlineExceeded, run_stoppable


def _raise():
    raise ValueError("bad input")


def test_child_returns_its_result_and_reports_its_failures():
    assert run_stoppable(lambda: {"sum": sum(range(10))}) == {"sum": 45}
    with pytest.raises(ChildFailed, match="ValueError: bad input"):
        run_stoppable(_raise)
    with pytest.raises(ChildFailed, match="exit code 3"):
        run_stoppable(lambda: os._exit(3))


def _close_pipe_then_exit():
    os.closerange(3, 4096)   # the result pipe closes here: the parent reads EOF before the child exits
    time.sleep(0.5)
    os._exit(3)


def test_a_child_that_closes_its_pipe_before_exiting_is_reported_with_its_exit_code():
    """Under load the parent could read EOF before the child was reaped (CI once saw ``exit code None``)."""
    with pytest.raises(ChildFailed, match="exit code 3"):
        run_stoppable(_close_pipe_then_exit)


def test_child_is_killed_at_its_deadline():
    t = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        run_stoppable(lambda: time.sleep(30), timeout=0.3)
    assert time.perf_counter() - t < 5


def test_child_collects_only_its_own_objects():
    """The parent's objects are frozen in the child, so its collections never copy their pages."""
    before = gc.get_freeze_count()
    assert run_stoppable(gc.get_freeze_count) >= len(gc.get_objects()) // 2
    assert gc.get_freeze_count() == before          # the parent is left as it was


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
