"""The pass on a Dask cluster equals the single-process pass, also when a worker dies."""
import os
import threading
import time

import numpy as np
import pytest

from convexmetric import LMNNProblem, solve

from conftest import random_problem_data, random_psd

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("block_bytes", [2048, 64 * 2**20])
def test_cluster_pass_equals_single_process(client, block_bytes):
    X, y = random_problem_data(4, n=120, d=4, classes=3)
    local = LMNNProblem(X, y, triplets="implicit", block_bytes=block_bytes)
    remote = LMNNProblem(X, y, triplets="implicit", block_bytes=block_bytes, executor=client)
    rng = np.random.default_rng(0)
    for M in (np.eye(4), random_psd(rng, 4), np.zeros((4, 4))):   # M = 0: a factor with no rows
        f0, G0 = local.objective_and_subgradient(M)
        f1, G1 = remote.objective_and_subgradient(M)
        assert f1 == pytest.approx(f0, rel=1e-12)
        np.testing.assert_allclose(G1, G0, rtol=1e-12, atol=1e-12 * np.abs(G0).max())
        e0 = local.evaluate(M, gamma=0.1, gradient=True, slack=0.3, keep_pairs=0.2)
        e1 = remote.evaluate(M, gamma=0.1, gradient=True, slack=0.3, keep_pairs=0.2)
        assert e1.smoothed == pytest.approx(e0.smoothed, rel=1e-12)
        np.testing.assert_array_equal(e1.band.triplets.keys, e0.band.triplets.keys)
        np.testing.assert_array_equal(e1.pairs.anchor, e0.pairs.anchor)
        np.testing.assert_array_equal(e1.pairs.impostor, e0.pairs.impostor)
        assert e1.n_pairs == e0.n_pairs == len(e0.pairs)
        c0, c1 = local.certificate(M, polish=False), remote.certificate(M, polish=False)
        assert c1.lower_bound == pytest.approx(c0.lower_bound, rel=1e-12)
        assert c1.objective == pytest.approx(c0.objective, rel=1e-12)


def test_cluster_pass_drops_a_working_set_over_its_cap(client):
    from convexmetric.distributed import DaskPass
    X, y = random_problem_data(4, n=120, d=4, classes=3)
    p = LMNNProblem(X, y, triplets="implicit")
    t = np.where(p.targets >= 0, p.target_sq_dists(np.eye(4)), -np.inf)
    run = DaskPass(client, p.labels, p.X)
    full = run(p.X, t, p.labels, p.margin, keep_pairs=0.3)
    assert full.n_pairs == len(full.pairs) > 10
    over = run(p.X, t, p.labels, p.margin, keep_pairs=0.3, max_pairs=full.n_pairs - 1)
    assert over.pairs is None and over.n_pairs == full.n_pairs and over.loss == pytest.approx(full.loss, rel=1e-12)


def test_solver_on_the_cluster_reaches_the_same_result(client):
    X, y = random_problem_data(6, n=90, d=3, classes=3)
    r0 = solve(LMNNProblem(X, y, triplets="implicit"), "fista", tol=1e-6)
    r1 = solve(LMNNProblem(X, y, triplets="implicit", executor=client), "fista", tol=1e-6)
    assert r1.fun == pytest.approx(r0.fun, rel=1e-9)
    assert r1.status == r0.status == "optimal"


def test_data_as_dask_array(client):
    da = pytest.importorskip("dask.array")
    X, y = random_problem_data(2, n=80, d=3, classes=2)
    p0 = LMNNProblem(X, y, triplets="implicit")
    p1 = LMNNProblem(da.from_array(X, chunks=(20, 3)), y, triplets="implicit", executor=client)
    assert p1.objective(np.eye(3)) == pytest.approx(p0.objective(np.eye(3)), rel=1e-12)


class _FailingCluster:
    """A client whose first scatters or gathers fail as when a worker dies during a pass.

    A worker lost during a broadcast closes its connection (``CommClosedError``); one lost
    before the broadcast reached every worker cancels the tasks (lost dependencies).
    """

    def __init__(self, client, scatter_failures=0, gather_failures=0):
        self._client, self.scatter_failures, self.gather_failures = client, scatter_failures, gather_failures
        self.scatters = self.gathers = 0

    def scatter(self, *args, **kwargs):
        from distributed.comm.core import CommClosedError
        self.scatters += 1
        if self.scatters <= self.scatter_failures:
            raise CommClosedError("in <TCP (closed) ConnectionPool.scatter>: Stream is closed")
        return self._client.scatter(*args, **kwargs)

    def gather(self, *args, **kwargs):
        from distributed.client import FutureCancelledError
        self.gathers += 1
        if self.gathers <= self.gather_failures:
            raise FutureCancelledError("_task-0", "lost dependencies")
        return self._client.gather(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_pass_that_loses_a_worker_while_sending_is_run_again(client, monkeypatch, caplog):
    from concurrent.futures import CancelledError

    from convexmetric import distributed as cd
    from distributed.comm.core import CommClosedError
    monkeypatch.setattr(cd.time, "sleep", lambda s: None)
    X, y = random_problem_data(4, n=120, d=4, classes=3)
    p = LMNNProblem(X, y, triplets="implicit")
    t = np.where(p.targets >= 0, p.target_sq_dists(np.eye(4)), -np.inf)
    want = cd.DaskPass(client, p.labels, p.X)(p.X, t, p.labels, p.margin)
    retries = cd.PASS_ATTEMPTS - 1                                   # the last attempt succeeds
    for flaky, scatters in ((_FailingCluster(client, scatter_failures=retries), retries + 4),
                            (_FailingCluster(client, gather_failures=retries), 4 * cd.PASS_ATTEMPTS)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="convexmetric.distributed"):
            got = cd.DaskPass(flaky, p.labels, p.X)(p.X, t, p.labels, p.margin)
        assert got.loss == pytest.approx(want.loss, rel=1e-12) and got.n_active == want.n_active
        assert flaky.scatters == scatters            # labels, X, Z, target distances: all sent again
        assert sum("sending it again" in r.getMessage() for r in caplog.records) == retries
    for broken, error in ((_FailingCluster(client, scatter_failures=cd.PASS_ATTEMPTS), CommClosedError),
                          (_FailingCluster(client, gather_failures=cd.PASS_ATTEMPTS), CancelledError)):
        with pytest.raises(error):                                   # a cluster that stays broken is an error
            cd.DaskPass(broken, p.labels, p.X)(p.X, t, p.labels, p.margin)


def test_a_worker_killed_mid_pass_gives_the_right_result(client):
    """Kill one worker process while a pass runs: the scheduler reruns its tasks elsewhere."""
    from convexmetric import distributed as cd
    X, y = random_problem_data(8, n=6000, d=6, classes=3)
    local = LMNNProblem(X, y, triplets="implicit")
    remote = LMNNProblem(X, y, triplets="implicit", executor=client, block_bytes=8192)  # slow tasks
    M = np.eye(6)
    f0, G0 = local.objective_and_subgradient(M)
    remote.objective(M)  # data on the workers
    old = cd.TASKS_PER_THREAD
    cd.TASKS_PER_THREAD = 8  # many small tasks: the kill lands mid-pass
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]

    when = {}

    def kill():
        time.sleep(0.2)
        when["kill"] = time.perf_counter()
        os.kill(pids[victim], 9)

    try:
        killer = threading.Thread(target=kill)
        start = time.perf_counter()
        killer.start()
        f1, G1 = remote.objective_and_subgradient(M)
        end = time.perf_counter()
        killer.join()
    finally:
        cd.TASKS_PER_THREAD = old
    assert start < when["kill"] < end, "the worker died after the pass: the test did not test anything"
    assert client.run(os.getpid).get(victim) != pids[victim]  # that worker process is gone
    assert f1 == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(G1, G0, rtol=1e-12, atol=1e-12 * np.abs(G0).max())
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
