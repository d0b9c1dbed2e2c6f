"""First-order and factored solvers: they reach the certified optimum, and L is non-convex."""
import numpy as np
import pytest

from convexmetric import LMNNProblem, MultiMetricProblem, solve

from conftest import random_problem_data

CONVEX = {"fista": dict(tol=1e-6), "subgradient": dict(tol=1e-5),
          "stochastic": dict(tol=1e-4, batch_size=16, power=1.0, decay_iters=20),
          "hybrid": {}, "active-set": {}, "band-ipm": dict(tol=1e-7)}


@pytest.fixture(scope="module", params=[(31, 45, 3, 3, "all"), (32, 60, 4, 4, "implicit")],
                ids=lambda p: f"seed{p[0]}-d{p[2]}-{p[4]}")
def problem_and_optimum(request):
    seed, n, d, c, trip = request.param
    X, y = random_problem_data(seed, n=n, d=d, classes=c)
    p = LMNNProblem(X, y, triplets=trip)
    return p, solve(p, "hybrid", tol=1e-10).fun


@pytest.mark.parametrize("name", CONVEX)
def test_convex_solvers_reach_the_optimum_and_bound_their_gap(problem_and_optimum, name):
    p, f_star = problem_and_optimum
    r = solve(p, name, **CONVEX[name])
    assert r.status == "optimal", r
    tol = CONVEX[name].get("tol", 1e-8)
    # status optimal means gap <= tol * f, hence 0 <= f - f* <= tol * f
    assert -1e-9 * f_star <= r.fun - f_star <= max(tol, 1e-7) * r.fun
    # the certified gap is a true upper bound on the suboptimality
    assert r.fun - f_star <= r.gap + 1e-9 * f_star
    assert r.lower_bound <= f_star * (1 + 1e-9)


def test_factored_solver_is_non_convex_but_convex_solvers_agree():
    X, y = random_problem_data(2, n=40, d=3, classes=2)
    p = LMNNProblem(X, y)
    ends = [solve(p, "factored", rank=1, init="random", seed=s).fun for s in range(6)]
    assert max(ends) - min(ends) > 0.01 * min(ends), ends  # different local minima
    rng = np.random.default_rng(0)
    convex_ends = []
    for s in range(3):
        A = rng.standard_normal((3, 3))
        convex_ends.append(solve(p, "band-ipm", tol=1e-8, warm_start=A.T @ A * (s + 1)).fun)
        convex_ends.append(solve(p, "active-set", warm_start=A @ A.T).fun)
    convex_ends.append(solve(p, "fista", tol=1e-6, warm_start=A.T @ A).fun)
    assert max(convex_ends) - min(convex_ends) <= 2e-6 * min(convex_ends), convex_ends  # fista: 1e-6 of f
    # full-rank factored from the identity reaches the convex optimum (to its tolerance),
    # and every factored end is certified against the same bound
    full = solve(p, "factored", tol=1e-4)
    assert full.fun == pytest.approx(min(convex_ends), rel=1e-4)
    assert all(e >= min(convex_ends) * (1 - 1e-9) for e in ends)


def test_seed_reproducibility():
    X, y = random_problem_data(5, n=50, d=3, classes=3)
    p = LMNNProblem(X, y)
    a = solve(p, "stochastic", seed=7, batch_size=8, max_iter=300, tol=1e-12)
    b = solve(p, "stochastic", seed=7, batch_size=8, max_iter=300, tol=1e-12)
    c = solve(p, "stochastic", seed=8, batch_size=8, max_iter=300, tol=1e-12)
    np.testing.assert_array_equal(a.M, b.M)
    assert not np.array_equal(a.M, c.M)
    f1 = solve(p, "factored", rank=2, init="random", seed=3)
    f2 = solve(p, "factored", rank=2, init="random", seed=3)
    np.testing.assert_array_equal(f1.M, f2.M)


@pytest.mark.parametrize("name", ["fista", "subgradient", "stochastic", "factored", "hybrid"])
def test_callback_stop_and_ctrl_c(name):
    X, y = random_problem_data(6, n=50, d=3, classes=3)
    p = LMNNProblem(X, y)
    calls = []

    def stop(info):
        calls.append(info["objective"])
        return len(calls) >= 3

    r = solve(p, name, callback=stop, tol=1e-12)
    assert r.status == "user_limit" and len(calls) == 3
    assert r.fun == pytest.approx(p.objective(r.M), rel=1e-12)

    def interrupt(info):
        if info["iteration"] >= 2:
            raise KeyboardInterrupt

    r = solve(p, name, callback=interrupt, tol=1e-12)
    assert r.status == "interrupted"
    # the best iterate so far is returned, and certified
    best = min(h["objective"] for h in r.history)
    assert r.fun <= best * (1 + 1e-12) and r.lower_bound <= r.fun


def test_time_limit_is_honoured():
    X, y = random_problem_data(6, n=50, d=3, classes=3)
    p = LMNNProblem(X, y)
    for name in ("fista", "subgradient", "stochastic"):
        r = solve(p, name, time_limit=0.05, tol=1e-14)
        assert r.status == "user_limit", name
        assert r.solve_time < 1.0


def test_factored_rank_and_init_validation():
    X, y = random_problem_data(6, n=30, d=3)
    p = LMNNProblem(X, y)
    with pytest.raises(ValueError, match="rank"):
        solve(p, "factored", rank=5)
    with pytest.raises(ValueError, match="init"):
        solve(p, "factored", init="zeros")
    r = solve(p, "factored", rank=2, init="pca")
    assert np.linalg.matrix_rank(r.M, tol=1e-8 * np.abs(r.M).max()) <= 2


def test_factored_gamma_continuation_is_certified(problem_and_optimum):
    p, f_star = problem_and_optimum
    r = solve(p, "factored", gamma=(1e-1, 1e-2, 1e-3), stage_iters=30)
    gammas = [h["gamma"] for h in r.history if "gamma" in h]
    assert gammas[0] == 1e-1 and gammas[-1] == 1e-3 and np.all(np.diff(gammas) <= 0)
    assert r.lower_bound <= f_star * (1 + 1e-9)            # every stage's dual is a valid bound
    assert r.fun - f_star <= r.gap + 1e-9 * f_star
    assert r.fun <= f_star * (1 + 1e-3)                    # full rank reaches the optimum here
    with pytest.raises(ValueError, match="gamma"):
        solve(p, "factored", gamma=(1e-2, -1.0))


_REPRO_SCRIPT = r"""
import hashlib, sys, threading, time
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from convexmetric import LMNNProblem, MultiMetricProblem, solve
busy = sys.argv[1] == "busy"
stop = []
if busy:  # a competing thread makes every wall-clock decision come out differently
    def spin():  # matrix products: OpenBLAS hung forking this process while they ran
        x = np.random.default_rng(0).standard_normal((300, 300))
        while not stop:
            x = x @ x
            x /= np.abs(x).max()
    threading.Thread(target=spin, daemon=True).start()
X, y = load_iris(return_X_y=True)
p = LMNNProblem(StandardScaler().fit_transform(X), y)
out = []
for name, opts in (("hybrid", {}), ("stochastic", {"seed": 0, "max_iter": 400}), ("band-ipm", {"tol": 1e-6})):
    r = solve(p, name, **opts)
    out.append(hashlib.sha256(np.ascontiguousarray(r.M).tobytes()).hexdigest()[:16] + f" {r.lower_bound!r}")
stop.append(1)
print("|".join(out))
"""


def test_same_input_same_result_in_fresh_processes_busy_or_idle():
    """Paths are shaped by work counts, never by the clock: two processes, one of them with a
    competing busy thread, return bit-identical metrics and bounds (hybrid's polishing ran on
    wall-clock time before, and differed between processes). The busy process's conic solves
    run in children of the fork server (:mod:`convexmetric.interrupt`); forked from the busy
    process itself they hung in ``fork()`` on most runs."""
    import subprocess
    import sys
    runs = [subprocess.run([sys.executable, "-c", _REPRO_SCRIPT, mode], capture_output=True, text=True,
                           check=True, timeout=600).stdout.strip() for mode in ("idle", "busy")]
    assert runs[0] == runs[1], runs


def test_fista_certifies_every_check_every_iterations_once_smoothing_is_done():
    """Near convergence every iteration ends a smoothing stage; at the last smoothing width
    that must not bring a certificate each time (it made them most of the run's work)."""
    X, y = random_problem_data(7, n=60, d=4, classes=3)
    p = LMNNProblem(X, y)
    r = solve(p, "fista", tol=1e-7, check_every=50)
    assert r.status == "optimal", r
    checks = sum("lower_bound" in rec for rec in r.history)
    stages = 5                                        # gamma 0.1 -> 1e-5 by factors of 10
    assert r.nit > 200 and checks <= r.nit // 50 + stages + 1, (checks, r.nit)


def draw_badly_scaled_problem(seed, multi=False):
    """A random problem whose features' scales lie up to 10^3 apart (a constant feature on odd
    seeds), with random overall scale of X, margin, mu, k and unbalanced class sizes (``multi``:
    one metric per class)."""
    rng = np.random.default_rng(500 + seed)
    sizes = rng.integers(6, 20, size=int(rng.integers(2, 4)))
    y = np.repeat(np.arange(sizes.size), sizes)
    d = int(rng.integers(2, 6))
    X = rng.standard_normal((y.size, d)) + rng.normal(scale=1.5, size=(sizes.size, d))[y]
    X *= 10.0 ** rng.uniform(-1.5, 1.5, d) * 10.0 ** rng.uniform(-4, 4)
    if seed % 2:
        X[:, 0] = 3.0
    return (MultiMetricProblem if multi else LMNNProblem)(X, y, k=int(rng.integers(1, 4)),
                                                          mu=float(rng.uniform(0.05, 0.95)),
                                                          margin=float(10 ** rng.uniform(-1, 1)))


#: (solver, tol, how close to the optimum it must end, one metric per class?, seed); the
#: multi-metric seed 0 takes 12 600 FISTA iterations (20 s): slow.
WHITENED_CASES = [pytest.param(name, tol, reach, multi, seed, id=f"{name}{'-multimetric' if multi else ''}-{seed}",
                               marks=[pytest.mark.slow] if multi and seed == 0 else [])
                  for name, tol, reach, multi in (("fista", 1e-5, 2e-5, False), ("subgradient", 1e-4, 1e-2, False),
                                                  ("fista", 1e-4, 2e-4, True))
                  for seed in range(4)]


@pytest.mark.parametrize("name, tol, reach, multi, seed", WHITENED_CASES)
def test_whitened_first_order_runs_start_where_direct_ones_do_and_reach_the_optimum(name, tol, reach, multi, seed):
    """By default the run iterates on the pull-whitened twin: it starts at the same metric as
    the direct run, ends near the exact optimum (fista certifies it; subgradient stops when
    its step vanishes, here within 1 %), and its certificate, callback, history and result
    all speak of the problem's own metrics; a warm start is taken where it is. One metric per
    class maps every class metric with one W."""
    p = draw_badly_scaled_problem(seed, multi)
    f_star = solve(p, "hybrid", tol=1e-10).fun
    seen = []
    r = solve(p, name, tol=tol, callback=lambda info: seen.append((info["M"], info["objective"])) and False)
    assert r.info["whitened"] is True and r.status in ("optimal", "optimal_inaccurate"), r
    assert r.status == "optimal" or name == "subgradient"
    assert f_star * (1 - 1e-9) <= r.fun <= f_star * (1 + reach)
    assert r.fun == pytest.approx(p.objective(r.M), rel=1e-12)
    assert r.lower_bound <= f_star * (1 + 1e-9) and r.fun - f_star <= r.gap + 1e-9 * f_star
    assert len(seen) >= 2
    for M, f in seen:
        assert p.objective(M) == pytest.approx(f, rel=1e-7)
    times = [h["time"] for h in r.history]
    assert np.all(np.diff(times) >= 0)
    direct = solve(p, name, whiten=False, max_iter=5)
    assert "whitened" not in direct.info and direct.lower_bound <= f_star * (1 + 1e-9)
    assert r.history[0]["objective"] == pytest.approx(direct.history[0]["objective"], rel=1e-7)
    warm = solve(p, name, tol=tol, warm_start=r.M)
    assert warm.history[0]["objective"] == pytest.approx(r.fun, rel=1e-7)
    assert warm.fun <= r.fun * (1 + 1e-9)


def test_stochastic_whitened_run_is_reproducible_and_certified():
    """The minibatches are drawn as in the direct run, from the seed: same seed, same metric;
    every bound stays below the exact optimum and the callback sees the problem's metrics."""
    p = draw_badly_scaled_problem(1)
    f_star = solve(p, "hybrid", tol=1e-10).fun
    seen = []
    runs = [solve(p, "stochastic", seed=s, batch_size=8, max_iter=300, tol=1e-12,
                  callback=lambda info: seen.append((info["M"], info["objective"])) and False) for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].M, runs[1].M)
    assert not np.array_equal(runs[0].M, runs[2].M)
    for r in runs:
        assert r.info["whitened"] is True and r.status == "user_limit"
        assert r.lower_bound <= f_star * (1 + 1e-9) <= r.fun * (1 + 2e-9)
    for M, f in seen:
        assert p.objective(M) == pytest.approx(f, rel=1e-7)


def test_whitening_moves_badly_scaled_features_to_the_optimum():
    """Features 10^-2 to 10^2 apart: in the same number of iterations the whitened runs end
    far closer to the optimum than the direct ones (a change of variables, not of problem)."""
    X, y = random_problem_data(11, n=90, d=6, classes=3)
    p = LMNNProblem(X * 10.0 ** np.linspace(-2, 2, 6), y)
    f_star = solve(p, "hybrid", tol=1e-10).fun
    for name, iters in (("fista", 150), ("subgradient", 300), ("stochastic", 300)):
        white, direct = (solve(p, name, whiten=w, max_iter=iters, tol=1e-12) for w in (True, False))
        assert white.fun - f_star < 0.1 * (direct.fun - f_star), (name, white.fun, direct.fun, f_star)


def test_solvers_with_their_own_whitened_phase_whiten_once(monkeypatch):
    """hybrid and band-ipm run their first-order phase on the twin themselves: the phase must
    not whiten the twin again (an eigendecomposition and a copy of the data for nothing)."""
    X, y = random_problem_data(12, n=60, d=4, classes=3)
    p = LMNNProblem(X * np.array([1e-2, 1.0, 1e2, 10.0]), y)
    calls = []
    original = LMNNProblem.pull_whitened
    monkeypatch.setattr(LMNNProblem, "pull_whitened", lambda self: calls.append(1) or original(self))
    for name, opts in (("hybrid", {}), ("band-ipm", {"first": "fista"}), ("fista", {})):
        calls.clear()
        solve(p, name, **opts)
        assert len(calls) == 1, name
