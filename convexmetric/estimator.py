"""scikit-learn estimator: :class:`LMNN`, a supervised transformer.

``LMNN().fit(X, y).transform(X)`` maps data into the learned space ``x -> L x`` where
``M = L.T @ L`` is the certified LMNN metric, so any scikit-learn estimator that uses
Euclidean distances (``KNeighborsClassifier`` above all) works in the learned metric
inside a ``Pipeline``. Preprocessing the paper used (standardising, PCA to a given
dimension) is a pipeline step before it, not hidden inside.
"""
from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .neighbors import select_targets
from .problem import LMNNProblem
from .solvers import Solver, solve

logger = logging.getLogger(__name__)


class LMNN(TransformerMixin, BaseEstimator):
    """Large Margin Nearest Neighbour metric learning, solved as a convex problem in ``M``.

    Parameters
    ----------
    k : int, default 3
        Target neighbours per point.
    mu : float, default 0.5
        Weight of the push (hinge) term.
    margin : float, default 1.0
    solver : str or Solver, default "auto"
        A registry name (see :func:`convexmetric.available_solvers`) or a solver instance.
    solver_options : dict or None
        Options for a named solver (``tol``, ``time_limit``, ``seed``, ...).
    n_passes : int, default 1
        Multi-pass LMNN (JMLR 2009 §5.2): after each pass, recompute the target
        neighbours in the learned space and solve again from the current metric.
    n_components : int or None
        Keep only the top ``n_components`` directions of the learned map in
        :meth:`transform` (``None``: all of them, the numerical rank of ``M``).
    triplets : {"auto", "all", "implicit"}, default "auto"
        How the problem stores its triplets (see :class:`~convexmetric.LMNNProblem`).

    Attributes
    ----------
    metric_ : ndarray (d, d)
        The learned PSD metric ``M``.
    components_ : ndarray (r, d)
        The map ``L`` with ``M = L.T @ L`` (rows by decreasing eigenvalue).
    result_ : LMNNResult
        The last pass's solver result (objective, certified gap, history, ...).
    results_ : list of LMNNResult
        One per pass.
    n_iter_ : int
        Solver iterations summed over passes.
    targets_ : ndarray (n, k)
        Target neighbours of the last pass.
    classes_, n_features_in_
    """

    def __init__(self, k=3, mu=0.5, margin=1.0, solver="auto", solver_options=None, n_passes=1,
                 n_components=None, triplets="auto"):
        self.k = k
        self.mu = mu
        self.margin = margin
        self.solver = solver
        self.solver_options = solver_options
        self.n_passes = n_passes
        self.n_components = n_components
        self.triplets = triplets

    def _check_params(self):
        if isinstance(self.n_passes, bool) or not isinstance(self.n_passes, (int, np.integer)) \
                or self.n_passes < 1:
            raise ValueError(f"n_passes must be a positive integer, got {self.n_passes!r}")
        if self.n_components is not None and (
                isinstance(self.n_components, bool) or not isinstance(self.n_components, (int, np.integer))
                or self.n_components < 1):
            raise ValueError(f"n_components must be None or a positive integer, got {self.n_components!r}")
        if isinstance(self.solver, Solver) and self.solver_options:
            raise ValueError("pass options to the solver instance, not solver_options")

    def fit(self, X, y):
        """Learn the metric from labelled data ``X`` (n, d) and ``y`` (n,)."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        opts = dict(self.solver_options or {})
        targets, M, problem, self.results_ = None, None, None, []
        for p in range(int(self.n_passes)):
            if problem is not None:
                Z = X @ _components(M).T
                targets = select_targets(Z, problem.labels, problem.k)
                if np.array_equal(targets, problem.targets):
                    logger.info("pass %d: target neighbours unchanged, stopping", p + 1)
                    break
            problem = LMNNProblem(X, y, k=self.k, mu=self.mu, margin=self.margin, targets=targets,
                                  triplets=self.triplets)
            if M is not None and not isinstance(self.solver, Solver):
                opts["warm_start"] = M
            res = solve(problem, self.solver, **({} if isinstance(self.solver, Solver) else opts))
            self.results_.append(res)
            M = res.M
            logger.info("LMNN pass %d: %r", p + 1, res)
        self.result_ = self.results_[-1]
        self.metric_ = M
        self.targets_ = problem.targets
        L = _components(M)
        if L.shape[0] == 0:  # M = 0: keep the shape usable
            L = np.zeros((1, X.shape[1]))
        self.components_ = L[: self.n_components] if self.n_components else L
        self.n_iter_ = int(sum(r.nit for r in self.results_))
        return self

    def transform(self, X):
        """Map ``X`` into the learned space: ``X @ components_.T``."""
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.components_.T

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _components(M):
    from .psd import components_from_metric
    return components_from_metric(M)
