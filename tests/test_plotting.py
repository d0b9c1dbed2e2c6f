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
