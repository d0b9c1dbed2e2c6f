"""Exact solvers agree with each other and with their certificates; progress display."""
import io
import subprocess
import sys

import numpy as np
import pytest

from convexmetric import LMNNProblem, MultiMetricProblem, available_solvers, get_solver, solve
from convexmetric.datasets import make_synthetic
from convexmetric.solvers import REGISTRY, choose_solver
from convexmetric.solvers import base as solver_base
from convexmetric.solvers.sdp import check_sdp_memory

from conftest import random_problem_data

EXACT = ["sdp-clarabel", "sdp-scs", "active-set", "hybrid"]


@pytest.fixture(scope="module", params=[(21, 45, 3, 3), (22, 50, 4, 2), (23, 40, 2, 4)],
                ids=lambda p: f"seed{p[0]}-n{p[1]}-d{p[2]}-c{p[3]}")
def small_problem(request):
    seed, n, d, c = request.param
    X, y = random_problem_data(seed, n=n, d=d, classes=c)
    return LMNNProblem(X, y)


def test_exact_solvers_agree(small_problem):
    results = {name: solve(small_problem, name) for name in EXACT}
    ref = results["sdp-clarabel"].fun
    for name, r in results.items():
        assert r.status == "optimal", (name, r)
        assert r.fun == pytest.approx(ref, rel=1e-5), name
        # the reported gap is an upper bound on the suboptimality
        assert r.lower_bound <= min(x.fun for x in results.values()) * (1 + 1e-9)
        assert r.fun == pytest.approx(small_problem.objective(r.M), rel=1e-12)
        assert r.M.shape == (small_problem.d, small_problem.d)
        np.testing.assert_allclose(r.L.T @ r.L, r.M, atol=1e-8 * np.abs(r.M).max())


def test_first_order_solvers_reach_the_optimum(small_problem):
    ref = solve(small_problem, "hybrid").fun
    r = solve(small_problem, "fista", tol=1e-5)
    assert r.status == "optimal"
    assert r.fun == pytest.approx(ref, rel=1e-5)
    assert r.fun - ref <= r.gap + 1e-9 * ref  # the certified gap bounds the true suboptimality


def test_hybrid_hands_over_after_warm_iters_and_stays_exact(small_problem):
    """From the identity the first phase stops at ``warm_iters``; the active set is exact from
    wherever it stops."""
    ref = solve(small_problem, "active-set")
    for cap in (1, 4):
        r = solve(small_problem, "hybrid", warm_iters=cap)
        assert r.info["fista"]["nit"] <= cap
        assert r.status == "optimal" and r.fun == pytest.approx(ref.fun, rel=1e-7)
        assert r.lower_bound <= min(r.fun, ref.fun) * (1 + 1e-9)
    # from a warm start the first phase runs to its stall (the cap made multi-pass slower)
    warm = solve(small_problem, "hybrid", warm_iters=1, warm_start=2.0 * np.eye(small_problem.d))
    assert warm.info["fista"]["nit"] > 1 and warm.fun == pytest.approx(ref.fun, rel=1e-7)
    assert solve(small_problem, "hybrid", warm_iters=None).fun == pytest.approx(ref.fun, rel=1e-7)
    with pytest.raises(ValueError, match="warm_iters"):
        solve(small_problem, "hybrid", warm_iters=0)


def test_hybrid_whitened_first_phase_hands_over_near_the_optimum():
    """Features scaled 1e-2 to 1e2: FISTA on the pull-whitened twin hands the active set a
    metric within 0.1 % of the optimal objective (in the data's own coordinates, 2.9 times
    it); both end at the same certified optimum, the callback sees the problem's own metrics,
    and a warm start at the optimum stays there."""
    X, y = make_synthetic(n=150, d=8, n_classes=3, seed=1)
    p = LMNNProblem(X * 10.0 ** np.linspace(-2, 2, 8), y)
    seen = []
    white = solve(p, "hybrid", callback=lambda info: seen.append((info["M"], info["objective"])) and False)
    plain = solve(p, "hybrid", whiten=False)
    for r in (white, plain):
        assert r.status == "optimal" and r.relative_gap <= 1e-8, r
    assert white.fun == pytest.approx(plain.fun, rel=1e-8)
    assert white.info["fista"]["objective"] <= 1.001 * white.fun
    assert plain.info["fista"]["objective"] >= 1.5 * plain.fun
    assert len(seen) > 10
    for M, f in seen:
        assert p.objective(M) == pytest.approx(f, rel=1e-8)
    again = solve(p, "hybrid", warm_start=white.M)
    assert again.status == "optimal" and again.info["fista"]["objective"] <= white.fun * (1 + 1e-6)


@pytest.mark.parametrize("name", ["hybrid", "band-ipm", "factored"])
def test_mid_size_solvers_run_on_one_blas_thread(name):
    """Their GEMMs are too small to share between threads (digits: 2.3-3.5 times faster on one);
    the limit holds for the whole run, callbacks included, and is lifted afterwards."""
    from threadpoolctl import threadpool_info
    X, y = random_problem_data(0, n=40, d=4)
    p = LMNNProblem(X, y)

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    before, seen = blas_threads(), []
    solve(p, name, callback=lambda info: seen.append(set(blas_threads().values())) and False)
    assert seen and all(s == {1} for s in seen)
    after = blas_threads()            # (a backend may load its own BLAS during the run)
    assert {lib: after[lib] for lib in before} == before


def test_hybrid_default_hands_over_where_fista_creeps():
    """Wine's first Table 1 training split (targets in the raw features): uncapped, the first
    phase crept for over 2 000 iterations before stalling; the default cap hands over at 100."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convexmetric.neighbors import select_targets
    X, y = load_wine(return_X_y=True)
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    p = LMNNProblem(StandardScaler().fit_transform(Xtr), ytr,
                    targets=select_targets(Xtr, np.unique(ytr, return_inverse=True)[1], 3))
    r = solve(p, "hybrid")
    assert r.info["fista"]["nit"] <= 100
    assert r.relative_gap <= 1e-7
    assert r.fun == pytest.approx(p.objective(r.M), rel=1e-12)


@pytest.mark.slow
def test_full_wine_exact_solvers_agree(wine_std):
    p = LMNNProblem(*wine_std)
    res = {s: solve(p, s) for s in ("sdp-clarabel", "sdp-scs", "active-set", "hybrid")}
    ref = res["active-set"].fun
    for name, r in res.items():
        assert r.fun == pytest.approx(ref, rel=1e-5), name
    assert res["active-set"].relative_gap <= 1e-7
    assert res["hybrid"].relative_gap <= 1e-7


def test_active_set_from_any_warm_start_is_exact(small_problem):
    ref = solve(small_problem, "sdp-clarabel").fun
    rng = np.random.default_rng(0)
    A = rng.standard_normal((small_problem.d, small_problem.d))
    for M0 in (None, 5 * np.eye(small_problem.d), A.T @ A):
        r = solve(small_problem, "active-set", warm_start=M0)
        assert r.status == "optimal"
        assert r.fun == pytest.approx(ref, rel=1e-6)
        assert r.relative_gap <= 1e-7


@pytest.mark.parametrize("seed", range(4))
def test_sdp_rescaled_variables_give_the_problems_own_optimum(seed):
    """The CVXPY SDP solves for the metric of features rescaled to unit pair differences; the
    metric it returns must be the problem's own. Random problems (feature scales 1e-3 to 1e3,
    margin, mu, k, class sizes, one metric or one per class): ``metric`` maps the variables
    back, and the full SDP's optimum equals that of the same problem on prescaled features,
    mapped through the same change of variables, and is certified."""
    from convexmetric.neighbors import select_targets
    from convexmetric.solvers.sdp import SDPFormulation
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(18, 30)), int(rng.integers(2, 5))
    X, _ = random_problem_data(seed, n=n, d=d)
    y = rng.integers(0, 2 + seed % 2, n)
    scale = 10.0 ** rng.uniform(-3, 3, d)
    X = X * scale
    opts = dict(k=int(rng.integers(1, 3)), mu=float(rng.uniform(0.1, 0.9)), margin=float(10 ** rng.uniform(-1, 1)))
    targets = select_targets(X, np.unique(y, return_inverse=True)[1], opts["k"])
    kind = MultiMetricProblem if seed % 2 else LMNNProblem
    raw = kind(X, y, targets=targets, **opts)
    pre = kind(X / scale, y, targets=targets, **opts)              # the same problem, prescaled
    work = raw.normalized()
    form = SDPFormulation(work, work.triplets)
    s = form.feature_scale
    assert s.shape == (d,) and np.all(s > 0) and np.ptp(np.log10(s)) > 1  # the scales differ widely
    B = rng.standard_normal((d, d))
    Mv = B @ B.T
    got = form.metric({"M": [Mv] * work.n_metrics})
    np.testing.assert_allclose(np.reshape(got, (-1, d, d))[0], Mv / np.outer(s, s), rtol=1e-12)
    r_raw, r_pre = solve(raw, "sdp-clarabel"), solve(pre, "sdp-clarabel")
    for r in (r_raw, r_pre):
        assert r.relative_gap <= 1e-6, r
    assert r_raw.fun == pytest.approx(r_pre.fun, rel=1e-6)
    # the prescaled optimum, mapped back, is optimal for the raw problem
    mapped = r_pre.M / np.outer(scale, scale)
    assert raw.objective(mapped) == pytest.approx(r_raw.fun, rel=1e-6)


def test_plain_sdp_refuses_implicit_and_huge_problems():
    X, y = random_problem_data(0, n=30, d=2)
    p = LMNNProblem(X, y, triplets="implicit")
    with pytest.raises(ValueError, match="active-set"):
        solve(p, "sdp-scs")
    with pytest.raises(MemoryError, match="first-order"):
        check_sdp_memory(10**9, 10**8, 784)
    with pytest.raises(MemoryError, match="active-set"):
        solve(LMNNProblem(X, y), "sdp-clarabel", max_memory=1000)


def test_registry_lists_without_importing_backends():
    code = ("import sys, convexmetric; names = convexmetric.available_solvers(); "
            "assert 'sdp-clarabel' in names and 'hybrid' in names, names; "
            "assert 'clarabel' not in sys.modules and 'scs' not in sys.modules and 'cvxpy' not in sys.modules, "
            "[m for m in ('clarabel', 'scs', 'cvxpy') if m in sys.modules]; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(available_solvers(exact=True)) >= {"sdp-clarabel", "sdp-scs", "active-set", "hybrid"}
    assert "sdp-mosek" in REGISTRY


def test_registry_errors_are_clear():
    with pytest.raises(ValueError, match="unknown solver"):
        get_solver("newton")
    with pytest.raises(TypeError, match="unknown option"):
        get_solver("fista", learning_rate=1e-7)
    with pytest.raises(TypeError, match="fixes option"):
        get_solver("sdp-scs", backend="CLARABEL")
    with pytest.raises(ValueError, match="tol"):
        get_solver("fista", tol=-1)


def test_auto_picks_by_dimension_and_logs(caplog):
    X, y = random_problem_data(0, n=30, d=3)
    p = LMNNProblem(X, y)
    assert choose_solver(p) == "hybrid"
    with caplog.at_level("INFO", logger="convexmetric.solvers"):
        r = solve(p)
    assert "picked 'hybrid'" in caplog.text
    assert r.solver == "hybrid" and r.status == "optimal"
    assert r.info["auto"]["solver"] == "hybrid" and "d = 3" in r.info["auto"]["reason"]
    assert r.options["tol"] == 1e-3  # auto's default target
    Xbig = np.random.default_rng(0).standard_normal((80, 40))
    assert choose_solver(LMNNProblem(Xbig, np.arange(80) % 2)) == "band-ipm"
    # band-ipm learns one metric: a multi-metric problem of the same size gets FISTA
    assert choose_solver(MultiMetricProblem(Xbig, np.arange(80) % 2)) == "fista"


@pytest.mark.skipif("sdp-mosek" not in available_solvers(), reason="MOSEK is not installed")
def test_mosek_agrees_when_licensed(small_problem):  # pragma: no cover - needs a licence
    import cvxpy as cp
    if "MOSEK" not in cp.installed_solvers():
        pytest.skip("MOSEK is installed but not licensed")
    r = solve(small_problem, "sdp-mosek")
    assert r.fun == pytest.approx(solve(small_problem, "sdp-clarabel").fun, rel=1e-5)


def test_callback_time_limit_and_history():
    X, y = random_problem_data(3, n=60, d=4)
    p = LMNNProblem(X, y)
    seen = []

    def stop_after_five(info):
        seen.append(info["iteration"])
        return info["iteration"] >= 5

    r = solve(p, "fista", callback=stop_after_five)
    assert r.status == "user_limit" and max(seen) == 5
    assert r.fun == pytest.approx(p.objective(r.M)) and np.isfinite(r.lower_bound)
    r = solve(p, "fista", time_limit=1e-4, tol=1e-12)
    assert r.status == "user_limit"
    r = solve(p, "fista", tol=1e-4)
    t = r.history_array("time")
    assert np.all(np.diff(t) >= 0) and len(t) == len(r.history)
    assert np.nanmax(r.history_array("lower_bound")) <= r.fun


def test_warm_start_at_optimum_finishes_fast(small_problem):
    opt = solve(small_problem, "hybrid")
    r = solve(small_problem, "active-set", warm_start=opt.M)
    assert r.nit == 1 and r.status == "optimal"
    r = solve(small_problem, "fista", warm_start=opt, tol=1e-6)
    assert r.fun == pytest.approx(opt.fun, rel=1e-6)


@pytest.mark.parametrize("option, value", [("tol", "1e-6"), ("time_limit", "5"), ("max_iter", "10"),
                                           ("max_iter", 2.5), ("max_iter", 0), ("tol", None)])
def test_string_solver_options_name_the_option(option, value):
    X, y = random_problem_data(0, n=12, d=2)
    p = LMNNProblem(X, y)
    with pytest.raises((TypeError, ValueError), match=rf"^{option} must be .*, got {type(value).__name__} "):
        solve(p, "fista", **{option: value})
    assert solve(p, "fista", time_limit=None, max_iter=5).nit <= 5   # None and ints still accepted


@pytest.mark.parametrize("solver", ["sdp-scs", "sdp-clarabel"])
def test_sdp_memory_estimate_bounds_the_measured_peak(solver):
    """The estimate is at least the peak memory a solve adds, measured in a fresh process
    (benchmarks/sdp_memory.py; the estimate before calibration was 3-5x below it here)."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "sdp_memory", Path(__file__).resolve().parents[1] / "benchmarks" / "sdp_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.measure(120, 8, solver)       # T = 28 800 triplets on 5 060 pairs, about 3 s
    assert r["status"] == "optimal"
    assert r["added"] <= r["estimate"] <= 2 * r["added"], r   # an upper bound with modest slack


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def tiny_problem():
    X, y = random_problem_data(6, n=40, d=3, classes=3)
    return LMNNProblem(X, y)


def test_progress_writes_lines_not_carriage_returns_off_a_terminal(tiny_problem, capsys, monkeypatch):
    """Standard error captured to a file: one plain line per update, never '\\r'."""
    monkeypatch.setattr(solver_base, "PROGRESS_LINE_INTERVAL", 0.0)
    r = solve(tiny_problem, "fista", tol=1e-5, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    updates = [h for h in r.history if not h.get("final")]
    assert len(lines) == len(updates) + 1                       # every update, then the result
    for line, rec in zip(lines, updates):
        assert line.startswith("fista: [") and f"it={rec['iteration']}," in line and "f=" in line
    assert any("gap=" in line for line in lines[:-1])           # certified gaps along the way
    assert f"status={r.status}" in lines[-1] and f"certified gap={r.relative_gap:.1e}" in lines[-1]
    solve(tiny_problem, "fista", tol=1e-5)
    assert capsys.readouterr().err == ""


def test_progress_lines_are_throttled_and_show_phases(tiny_problem, capsys, monkeypatch):
    monkeypatch.setattr(solver_base, "PROGRESS_LINE_INTERVAL", 3600.0)
    solve(tiny_problem, "fista", tol=1e-5, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "it=0," in lines[0] and "status=" in lines[1]   # first update, result
    monkeypatch.setattr(solver_base, "PROGRESS_LINE_INTERVAL", 0.0)
    solve(tiny_problem, "hybrid", progress=True)                 # phases report to one display
    err = capsys.readouterr().err
    assert "\r" not in err
    assert all(line.startswith("hybrid: [") for line in err.splitlines())
    assert "phase=fista" in err and "phase=active-set" in err


def test_progress_bar_on_a_terminal_is_closed_even_on_error(tiny_problem, monkeypatch):
    from tqdm import tqdm
    term = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    r = solve(tiny_problem, "fista", tol=1e-5, progress=True)
    out = term.getvalue()
    assert out.startswith("\rfista: 0 updates") and out.endswith("\n")
    assert f"{len(r.history) - 1} updates" in out and f"certified gap={r.relative_gap:.1e}" in out
    assert not tqdm._instances

    def boom(info):
        raise RuntimeError("callback failed")

    term.truncate(0)
    with pytest.raises(RuntimeError, match="callback failed"):
        solve(tiny_problem, "fista", progress=True, callback=boom)
    assert not tqdm._instances and term.getvalue().endswith("\n")


def test_progress_from_threads_keeps_whole_lines(tiny_problem, capsys, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    monkeypatch.setattr(solver_base, "PROGRESS_LINE_INTERVAL", 0.0)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda name: solve(tiny_problem, name, tol=1e-5, progress=True),
                             ["fista", "subgradient"]))
    lines = capsys.readouterr().err.splitlines()
    for name, r in zip(["fista", "subgradient"], runs):
        mine = [line for line in lines if line.startswith(f"{name}: [")]
        assert len(mine) == len([h for h in r.history if not h.get("final")]) + 1
    assert len(lines) == sum(len(r.history) for r in runs)      # nothing else, nothing torn


def test_verbose_does_not_switch_on_backend_logs(tiny_problem, capfd):
    solve(tiny_problem, "active-set", verbose=True)
    captured = capfd.readouterr()
    assert "CVXPY" not in captured.out + captured.err and "Clarabel" not in captured.out + captured.err
    solve(tiny_problem, "active-set", backend_verbose=True)
    assert "CVXPY" in capfd.readouterr().out


def test_auto_choice_comes_with_its_reason(monkeypatch):
    from convexmetric import solvers
    from convexmetric.solvers import choose_solver_with_reason
    small = LMNNProblem(*random_problem_data(0, n=30, d=3))
    Xbig = np.random.default_rng(0).standard_normal((80, 40))
    big = LMNNProblem(Xbig, np.arange(80) % 2)
    with pytest.warns(UserWarning, match="do not span"):      # 40 points per class in 40 dimensions
        multi = MultiMetricProblem(Xbig, np.arange(80) % 2)
    for p, expect, words in [(small, "hybrid", "d = 3 <= 16"), (big, "band-ipm", "d = 40 > 16"),
                             (multi, "fista", "one metric per class")]:
        name, reason = choose_solver_with_reason(p)
        assert name == expect == choose_solver(p) and words in reason, reason
    # without the SDP packages the rule falls through, and says why
    monkeypatch.setattr(solvers, "available_solvers", lambda exact=None: ["band-ipm", "fista"])
    name, reason = choose_solver_with_reason(small)
    assert name == "band-ipm" and "not installed" in reason


#: Two classes of two points each, every point's target twice as far (squared) as its impostors:
#: the subgradient at M = 0 is 8 I for any mu and margin, so M = 0 is the optimum.
ZERO_OPTIMUM = (np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]]), np.array([0, 0, 1, 1]))


@pytest.mark.parametrize("triplets", ["implicit", "all"])
@pytest.mark.parametrize("mu, margin", [(0.2, 0.5), (0.5, 1.0), (0.9, 3.0)])
def test_every_solver_reaches_and_certifies_a_zero_metric_optimum(triplets, mu, margin):
    """Where M = 0 is optimal, iterates land on it exactly: the pass over implicit triplets must
    evaluate a rank-0 metric (it divided by the rank), and the certificate must close on it."""
    X, y = ZERO_OPTIMUM
    p = LMNNProblem(X, y, k=1, mu=mu, margin=margin, triplets=triplets)
    zero = np.zeros((2, 2))
    f0 = mu * margin * p.n_triplets                      # every hinge is the margin, no pull
    assert p.objective(zero) == pytest.approx(f0, rel=1e-12)
    assert np.all(np.linalg.eigvalsh(p.subgradient(zero)) >= 0)   # no descent direction in the cone
    assert p.certificate(zero).lower_bound == pytest.approx(f0, rel=1e-9)
    names = [s for s in available_solvers() if triplets == "all" or not s.startswith("sdp")]
    for name in names:
        res = solve(p, name)
        assert res.status == "optimal", name
        assert res.fun == pytest.approx(f0, rel=1e-6) and res.lower_bound <= f0 * (1 + 1e-9), name
        assert np.abs(res.M).max() <= 1e-6, name
