"""Early stopping on held-out rows: a stratified validation split and a solver callback.

Where the convex optimum overfits (a metric learned from fewer points than dimensions, as
on the paper's face sets, where the optimal objective is 0), the iterate to keep is the
one that classifies held-out rows best, not the last. The paper holds out 30 % of the
training part there; :class:`~convexmetric.estimator.LMNN` (``validation_fraction``) and
the Table 1 reproduction (:mod:`convexmetric.repro`) both use this module.
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from .classify import knn_error


def validation_split(y, fraction: float, seed: int):
    """``(fit, val)``: sorted row indices of a stratified split of the training part.

    ``val`` holds ``fraction`` of the rows (the paper's 30 % on the face sets), stratified
    by class where every class has at least two rows (else a plain random split, which
    may hold a small class out entirely); the metric is learned on ``fit``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie strictly between 0 and 1, got {fraction!r}")
    y = np.asarray(y)
    counts = np.unique(y, return_counts=True)[1]
    strat = y if counts.min() >= 2 else None
    held = int(np.ceil(fraction * y.size))
    if strat is not None and not counts.size <= held <= y.size - counts.size:
        raise ValueError(f"validation fraction {fraction!r} holds out {held} of {y.size} rows, but a split "
                         f"stratified over {counts.size} classes needs between {counts.size} and "
                         f"{y.size - counts.size} held-out rows (one of each class on both sides)")
    fit, val = train_test_split(np.arange(y.size), test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(fit), np.sort(val)


class ValidationStopper:
    """Early stopping by validation error: a solver callback that keeps the best iterate.

    Every metric a solver records is a candidate; on a geometric schedule of the calls
    (1, 2, 3, 4, 5, 7, 9, ... growing by ``growth``) its 3-NN error on the validation rows
    is measured with the fit rows as reference, and the metric of the lowest error is
    kept; on a tie the later one (closer to the optimum). After the solve,
    :meth:`consider` the result itself, so that without any gain from stopping early the
    solver's answer is kept.

    Parameters
    ----------
    X_fit, y_fit : arrays
        The rows the metric is learned on (the kNN reference set).
    X_val, y_val : arrays
        The held-out validation rows.
    growth : float
        Ratio between successive evaluated calls (> 1).
    patience : float or None
        Stop the solver once ``patience`` times the call of the last strict improvement
        has passed without another (and at least ``min_calls`` calls were made); ties keep
        the later metric but do not renew the patience. None: never stop the solver, it
        runs to its own limits.
    min_calls : int
        The fewest calls before ``patience`` may stop the solver.
    k : int
        Neighbours of the validation kNN (the paper: 3).
    """

    def __init__(self, X_fit, y_fit, X_val, y_val, growth: float = 1.25, patience: float | None = None,
                 min_calls: int = 50, k: int = 3):
        if not growth > 1.0:
            raise ValueError(f"growth must exceed 1, got {growth!r}")
        if patience is not None and not patience > 1.0:
            raise ValueError(f"patience must exceed 1 (or be None), got {patience!r}")
        self.X_fit, self.y_fit, self.X_val, self.y_val = X_fit, y_fit, X_val, y_val
        self.growth = float(growth)
        self.patience, self.min_calls, self.k = patience, int(min_calls), int(k)
        self.calls = 0
        self._next = 1
        self.best_error = np.inf
        self.best_M = None
        self.best_at = None
        self._improved_at = 1
        self.trace = []      # (call, validation error) of every evaluated iterate

    def __call__(self, info) -> bool:
        """Solver callback: evaluate ``info["M"]`` when the schedule says so; True stops the solver.

        The solver is stopped only with a ``patience``, at an evaluated call that is at
        least ``patience`` times the call of the last strict improvement and ``min_calls``.
        """
        self.calls += 1
        if self.calls < self._next:
            return False
        self._next = max(self.calls + 1, int(np.ceil(self.calls * self.growth)))
        self.consider(info["M"], at=self.calls)
        return (self.patience is not None and self.calls >= self.min_calls
                and self.calls >= self.patience * self._improved_at)

    def consider(self, M, at="final") -> float:
        """Validation error (fraction) of metric ``M``; keep it if it is the lowest so far (or ties)."""
        err = knn_error(self.X_fit, self.y_fit, self.X_val, self.y_val, M, k=self.k)
        self.trace.append((at, err))
        if err < self.best_error and at != "final":
            self._improved_at = at     # ties keep the later metric but do not renew the patience
        if err <= self.best_error:
            self.best_error, self.best_M, self.best_at = err, np.array(M, copy=True), at
        return err
