"""Plotting functions draw on the given axes and return what they drew (Agg backend)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import convexmetric  # noqa: E402
from convexmetric import LMNNProblem, solve  # noqa: E402
from convexmetric import plotting  # noqa: E402


def test_plotting_is_not_imported_by_the_package_root():
    import subprocess
    import sys
    code = "import sys, convexmetric; print('convexmetric.plotting' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert convexmetric.__name__ == "convexmetric"


@pytest.fixture(scope="module")
def runs(iris_std):
    X, y = iris_std
    p = LMNNProblem(X, y)
    return p, [solve(p, "fista", tol=1e-4), solve(p, "subgradient", max_iter=300)]


def test_convergence_curves(runs):
    p, res = runs
    fig, ax = plt.subplots()
    lines = plotting.plot_convergence(res, quantity="gap", ax=ax)
    assert len(lines) == 2 and all(line.axes is ax for line in lines)
    assert ax.get_yscale() == "log"
    gaps = res[0].history_array("relative_gap")
    np.testing.assert_allclose(lines[0].get_ydata(), gaps[np.isfinite(gaps)])
    lines = plotting.plot_convergence(res, quantity="objective", x="iteration", optimum=res[0].fun * 0.999)
    assert len(lines) == 2
    with pytest.raises(ValueError):
        plotting.plot_convergence(res, quantity="nonsense")
    plt.close("all")


def test_segment_metric_spectrum_embedding(runs, iris_std):
    p, res = runs
    X, y = iris_std
    fig, axes = plt.subplots(2, 2)
    curve, chord = plotting.plot_segment(p, np.eye(4), res[0].M, "M", n=11, ax=axes[0, 0])
    f = curve.get_ydata()
    t = curve.get_xdata()
    assert np.all(f <= f[0] + t * (f[-1] - f[0]) + 1e-9 * np.abs(f).max())   # convex: below the chord
    im = plotting.plot_metric(res[0].M, ax=axes[0, 1], feature_names=list("abcd"))
    np.testing.assert_allclose(im.get_array(), res[0].M)
    lines = plotting.plot_spectrum([res[0].M, np.eye(4)], labels=["lmnn", "I"], ax=axes[1, 0])
    assert len(lines) == 2 and lines[0].get_ydata()[0] >= lines[0].get_ydata()[-1]
    sc = plotting.plot_embedding(X, y, res[0].L, ax=axes[1, 1])
    assert sc.get_offsets().shape == (150, 2)
    plt.close("all")


@pytest.fixture(scope="module")
def phased_runs(iris_std):
    """Runs whose histories concatenate phases that restart their iteration counters."""
    p = LMNNProblem(*iris_std)
    runs = {name: solve(p, name, **opts) for name, opts in
            [("hybrid", {}), ("band-ipm", {}), ("factored", {"max_iter": 200})]}
    # the plain SDP is certified at its end only; every third point keeps its CVXPY solve short
    X, y = iris_std
    runs["sdp-scs"] = solve(LMNNProblem(X[::3], y[::3]), "sdp-scs")
    return runs


def test_iteration_axis_is_cumulative_over_phases():
    from types import SimpleNamespace
    hist = [dict(iteration=0, phase="a"), dict(iteration=5, phase="a"),   # phase a: 0..5
            dict(iteration=1, phase="b"),                                  # a new counter: +1
            dict(iteration=0, phase="a"), dict(iteration=3, phase="a"),    # a restarted: +0, +3
            dict(iteration=8, phase="b"),                                  # b went on from 1: +7
            dict(iteration=8, final=True)]                                 # the certified end
    xs = plotting.iteration_axis(SimpleNamespace(history=hist))
    np.testing.assert_array_equal(xs, [0, 5, 6, 6, 9, 16, 16])
    plain = SimpleNamespace(history=[dict(iteration=i) for i in (0, 5, 10)] + [dict(iteration=10, final=True)])
    np.testing.assert_array_equal(plotting.iteration_axis(plain), [0, 5, 10, 10])


@pytest.mark.parametrize("name", ["hybrid", "band-ipm"])
@pytest.mark.parametrize("quantity", ["objective", "gap"])
def test_convergence_against_iterations_runs_forward(phased_runs, name, quantity):
    res = phased_runs[name]
    raw = res.history_array("iteration")
    assert np.any(np.diff(raw) < 0)                          # the history itself restarts its counter
    fig, ax = plt.subplots()
    (line,) = plotting.plot_convergence(res, quantity=quantity, x="iteration", ax=ax)
    xs = np.asarray(line.get_xdata())
    assert len(xs) >= 2 and np.all(np.diff(xs) >= 0)
    if quantity == "objective":
        assert len(xs) == len(res.history)                  # every record drawn
        assert xs[-1] >= raw[np.isfinite(raw)].max()          # no iteration lost
    plt.close(fig)


def test_factored_draws_every_record_and_an_end_only_certificate_stays_visible(phased_runs):
    res = phased_runs["factored"]
    fig, axes = plt.subplots(1, 3)
    (obj,) = plotting.plot_convergence(res, quantity="objective", x="iteration", ax=axes[0])
    assert len(obj.get_xdata()) == len(res.history) > 10
    (gap,) = plotting.plot_convergence(res, quantity="gap", ax=axes[1])  # certified at every iteration
    assert len(gap.get_xdata()) == sum(np.isfinite(h.get("relative_gap", np.nan)) for h in res.history) > 10
    # a run certified only at its end (the plain SDP) shows as one visible, labelled point
    (end,) = plotting.plot_convergence(phased_runs["sdp-scs"], quantity="gap", ax=axes[2])
    assert len(end.get_xdata()) == 1 and end.get_marker() == "o" and end.get_markersize() >= 6
    assert "certified at the end only" in end.get_label()
    assert axes[2].get_legend().get_texts()[0].get_text() == end.get_label()
    plt.close(fig)


@pytest.mark.parametrize("learned", [False, True])
def test_embedding_has_a_class_legend_and_axis_labels(phased_runs, iris_std, learned):
    X, y = iris_std
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    fig, ax = plt.subplots()
    sc = plotting.plot_embedding(X, names, phased_runs["hybrid"].L if learned else None, ax=ax)
    legend = ax.get_legend()
    assert legend is not None and legend.get_title().get_text() == "class"
    assert [t.get_text() for t in legend.get_texts()] == ["setosa", "versicolor", "virginica"]
    # each legend marker has the colour of its class's points
    colours = sc.to_rgba(sc.get_array())
    for code, handle in enumerate(legend.legend_handles):
        np.testing.assert_allclose(matplotlib.colors.to_rgba(handle.get_color()), colours[y == code][0])
    assert ax.get_xlabel().endswith("1") and ax.get_ylabel().endswith("2")
    assert ("learned direction" if learned else "principal component") in ax.get_xlabel()
    plt.close(fig)
