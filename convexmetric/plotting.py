"""Plots for teaching and comparing solvers (matplotlib; not imported by the package root).

Every function draws on ``ax`` (a new figure's axes when ``None``) and returns what it
drew, so notebooks and tests can restyle or inspect the artists.
"""
from __future__ import annotations

import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots()
    return ax


def plot_convergence(results, quantity: str = "gap", x: str = "time", optimum: float | None = None,
                     labels=None, ax=None):
    """Certified relative gap (or objective) of each solver run against time or iterations.

    Parameters
    ----------
    results : LMNNResult or sequence of them
    quantity : {"gap", "objective"}
        ``"gap"``: the certified relative gap recorded in the history (log scale).
        ``"objective"``: ``(f - optimum) / optimum`` when ``optimum`` is given (log
        scale), else ``f``.
    x : {"time", "iteration"}
    labels : sequence of str, optional (default: solver names)

    Returns
    -------
    list of matplotlib Line2D, one per run
    """
    if quantity not in ("gap", "objective"):
        raise ValueError(f"quantity must be 'gap' or 'objective', got {quantity!r}")
    if x not in ("time", "iteration"):
        raise ValueError(f"x must be 'time' or 'iteration', got {x!r}")
    ax = _axes(ax)
    results = [results] if hasattr(results, "history") else list(results)
    labels = labels or [r.solver for r in results]
    lines = []
    for res, label in zip(results, labels):
        xs = res.history_array(x)
        if quantity == "gap":
            ys = res.history_array("relative_gap")
        else:
            f = res.history_array("objective")
            ys = f if optimum is None else np.maximum((f - optimum) / abs(optimum), 1e-16)
        keep = np.isfinite(xs) & np.isfinite(ys)
        (line,) = ax.plot(xs[keep], ys[keep], marker=".", ms=3, label=label)
        lines.append(line)
    if quantity == "gap" or optimum is not None:
        ax.set_yscale("log")
    ax.set_xlabel("solve time (s)" if x == "time" else "iteration")
    ax.set_ylabel({"gap": "certified relative gap",
                   "objective": "relative suboptimality" if optimum is not None else "objective"}[quantity])
    ax.legend()
    return lines


def plot_segment(problem, A, B, space: str = "M", n: int = 101, ax=None, **line_kw):
    """Objective along a segment in ``M`` (convex) or in ``L`` (need not be), with its chord.

    Returns ``(curve, chord)`` Line2D objects.
    """
    from .convexity import segment_objective
    ax = _axes(ax)
    t, f = segment_objective(problem, A, B, space, n)
    (curve,) = ax.plot(t, f, label=f"f along a segment in {space}", **line_kw)
    (chord,) = ax.plot([0, 1], [f[0], f[-1]], ls="--", color=curve.get_color(), alpha=0.6,
                       label="chord (convexity bound)")
    ax.set_xlabel("t")
    ax.set_ylabel("objective f")
    ax.legend()
    return curve, chord


def plot_metric(M, ax=None, feature_names=None, cmap="RdBu_r"):
    """Heatmap of a learned metric, colour scale symmetric about zero. Returns the AxesImage."""
    ax = _axes(ax)
    M = np.asarray(M, dtype=float)
    v = float(np.abs(M).max()) or 1.0
    im = ax.imshow(M, cmap=cmap, vmin=-v, vmax=v)
    if feature_names is not None:
        ax.set_xticks(range(len(feature_names)), feature_names, rotation=90)
        ax.set_yticks(range(len(feature_names)), feature_names)
    ax.figure.colorbar(im, ax=ax)
    ax.set_title("learned metric M")
    return im


def plot_spectrum(metrics, labels=None, ax=None):
    """Eigenvalues of one or more metrics, largest first, on a log scale. Returns the lines."""
    ax = _axes(ax)
    if isinstance(metrics, np.ndarray) and metrics.ndim == 2:
        metrics = [metrics]
    labels = labels or [None] * len(metrics)
    lines = []
    for M, label in zip(metrics, labels):
        w = np.sort(np.linalg.eigvalsh(np.asarray(M, dtype=float)))[::-1]
        (line,) = ax.semilogy(np.arange(1, w.size + 1), np.maximum(w, 1e-16), marker="o", label=label)
        lines.append(line)
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue of M")
    if any(label is not None for label in labels):
        ax.legend()
    return lines


def plot_embedding(X, y, L=None, ax=None, title=None):
    """2-D scatter of the data mapped by ``L`` (its top two rows), or by PCA when ``L`` is None.

    Returns the PathCollection of the scatter.
    """
    ax = _axes(ax)
    X = np.asarray(X, dtype=float)
    if L is None:
        Xc = X - X.mean(0)
        _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
        Z = Xc @ Vt[:2].T
    else:
        Z = X @ np.asarray(L, dtype=float)[:2].T
    if Z.shape[1] < 2:
        Z = np.column_stack([Z[:, 0], np.zeros(len(Z))])
    codes = np.unique(np.asarray(y), return_inverse=True)[1]
    sc = ax.scatter(Z[:, 0], Z[:, 1], c=codes, cmap="tab10", s=12)
    ax.set_title(title or ("PCA of the inputs" if L is None else "learned space (top 2 directions)"))
    return sc
