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


def iteration_axis(result) -> np.ndarray:
    """Iterations of ``result.history`` made cumulative over phases, for plotting.

    Solvers that run others (``hybrid``: FISTA, then the active-set SDP; ``band-ipm``:
    factored bursts, then interior-point rounds) concatenate their phases' histories,
    and a phase that is a fresh solver restarts its counter (… 160, then 1). Here each
    phase (the ``"phase"`` key of a record) adds the iterations it ran: a record whose
    phase continues its own earlier counter adds the difference, one whose counter
    restarted adds its value. The closing ``"final"`` record (the certified value of
    the last iterate) sits at the last iteration. For single-phase solvers this is the
    recorded iteration itself.

    Parameters
    ----------
    result : LMNNResult

    Returns
    -------
    ndarray of float, one entry per history record, non-decreasing
    """
    xs, total, last = [], 0.0, {}
    for rec in result.history:
        it = float(rec.get("iteration", np.nan))
        if rec.get("final") or not np.isfinite(it):
            xs.append(total)
            continue
        phase = rec.get("phase")
        seen = last.get(phase)
        # this phase's counter went on (possibly after another phase), or it restarted
        step = it - seen if seen is not None and it >= seen else it
        total += max(step, 0.0)
        last[phase] = it
        xs.append(total)
    return np.array(xs, dtype=float)


def plot_convergence(results, quantity: str = "gap", x: str = "time", optimum: float | None = None,
                     labels=None, ax=None):
    """Certified relative gap (or objective) of each solver run against time or iterations.

    Parameters
    ----------
    results : LMNNResult or sequence of them
    quantity : {"gap", "objective"}
        ``"gap"``: the certified relative gap recorded in the history (log scale).
        ``"objective"``: ``(f - optimum) / optimum`` when ``optimum`` is given (log
        scale), else ``f``. Every record of the history is drawn.
    x : {"time", "iteration"}
        ``"iteration"`` counts iterations cumulatively over the phases of solvers that
        run others (see :func:`iteration_axis`), so every line runs left to right.
    labels : sequence of str, optional (default: solver names)
    ax : matplotlib Axes, optional

    Returns
    -------
    list of matplotlib Line2D, one per run

    Notes
    -----
    Some solvers certify only their final iterate (``factored``, whose history holds
    no lower bounds): in the gap plot such a run is a single point, drawn as a larger
    marker and labelled "certified at the end only".
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
        xs = res.history_array("time") if x == "time" else iteration_axis(res)
        if quantity == "gap":
            ys = res.history_array("relative_gap")
        else:
            f = res.history_array("objective")
            ys = f if optimum is None else np.maximum((f - optimum) / abs(optimum), 1e-16)
        keep = np.isfinite(xs) & np.isfinite(ys)
        style = dict(marker=".", ms=3)
        if keep.sum() == 1:
            style = dict(marker="o", ms=7)
            label = f"{label} (certified at the end only)" if quantity == "gap" else label
        (line,) = ax.plot(xs[keep], ys[keep], label=label, **style)
        lines.append(line)
    if quantity == "gap" or optimum is not None:
        ax.set_yscale("log")
    ax.set_xlabel("solve time (s)" if x == "time" else "iteration (cumulative over phases)")
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

    Points are coloured by class, with a legend naming each class and axis labels
    naming the directions.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,)
        Class labels (any type; the legend shows them as text).
    L : array of shape (r, d), optional
        A learned map (``LMNNResult.L``, ``LMNN.components_``); ``None``: the first
        two principal components of ``X``.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib PathCollection
        The scatter (the legend is ``ax.get_legend()``).
    """
    from matplotlib.lines import Line2D

    ax = _axes(ax)
    X = np.asarray(X, dtype=float)
    if L is None:
        Xc = X - X.mean(0)
        _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
        Z = Xc @ Vt[:2].T
        names = ["principal component 1", "principal component 2"]
    else:
        Z = X @ np.asarray(L, dtype=float)[:2].T
        names = ["learned direction 1", "learned direction 2"]
    if Z.shape[1] < 2:
        Z = np.column_stack([Z[:, 0], np.zeros(len(Z))])
        names[1] = "(none: the map has one direction)"
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    k = classes.size
    # class i takes the i-th colour of a qualitative map (evenly spread when too many)
    cmap, top = ("tab10", 10) if k <= 10 else ("tab20", 20) if k <= 20 else ("viridis", k)
    sc = ax.scatter(Z[:, 0], Z[:, 1], c=codes, cmap=cmap, vmin=-0.5, vmax=top - 0.5, s=12)
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=sc.cmap(sc.norm(i)), label=str(c))
               for i, c in enumerate(classes)]
    ax.legend(handles=handles, title="class", fontsize="small", ncol=1 if k <= 12 else 2)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title or ("PCA of the inputs" if L is None else "learned space (top 2 directions)"))
    return sc
