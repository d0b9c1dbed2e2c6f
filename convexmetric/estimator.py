"""scikit-learn estimator: :class:`LMNN`, a supervised transformer.

``LMNN().fit(X, y).transform(X)`` maps data into the learned space ``x -> L x`` where
``M = L.T @ L`` is the certified LMNN metric, so any scikit-learn estimator that uses
Euclidean distances (``KNeighborsClassifier`` above all) works in the learned metric
inside a ``Pipeline``. Preprocessing the paper used (standardising, PCA to a given
dimension) is a pipeline step before it, not hidden inside.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .neighbors import select_targets, warn_small_classes
from .problem import LMNNProblem
from .result import INTERRUPTED, OPTIMAL
from .solvers import REGISTRY, Solver, auto_defaults, choose_solver_with_reason, get_solver
from .span import DataSpan
from .validation import ValidationStopper, validation_split

logger = logging.getLogger(__name__)

#: Estimator parameters passed straight to the solver under the same name.
_SOLVER_PARAMS = ("tol", "max_iter", "time_limit")
#: An uncertified fit suggests standardising when the features' standard deviations
#: span more than this factor (raw breast-cancer data: 2.2e5).
SCALE_SPREAD_WARNING = 100.0
#: With ``validation_fraction``, a solve stops once its recorded iterations reach this
#: multiple of the one where the validation error last fell (and at least 50).
VALIDATION_PATIENCE = 2.0


class LMNN(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Large Margin Nearest Neighbour metric learning, solved as a convex problem in ``M``.

    Parameters
    ----------
    k : int, default=3
        Target neighbours per point.
    mu : float in (0, 1), default=0.5
        Weight of the push (hinge) term.
    margin : float > 0, default=1.0
        The margin impostors must keep beyond the target neighbours.
    solver : str or Solver, default="auto"
        A registry name (see :func:`convexmetric.available_solvers`), ``"auto"``
        (the exact ``hybrid`` for up to 16 features, else ``band-ipm``, ``factored`` or
        ``fista``; see :func:`convexmetric.solvers.choose_solver_with_reason`), or a configured
        solver instance.
    solver_options : dict or None, default=None
        Further options for a named solver (``near``, ``backend``, ``progress``,
        ...). ``tol``, ``max_iter``, ``time_limit``, ``verbose`` and ``seed`` may be set
        either here or through the parameters below, not both with different values:
        a conflict raises ``ValueError``.
    n_passes : int, default=1
        Multi-pass LMNN (JMLR 2009 §5.2): after each pass, recompute the target
        neighbours in the learned space and solve again from the current metric.
        Passes stop early once the targets no longer change. Each pass is a full
        solve, and where many distances tie (integer features) the targets can keep
        changing and the error keep falling for many passes: on the UCI balance-scale
        data, 3-NN test error 8.2 % after at most 3 passes and 5.7 % after 10 (means over
        30 splits, ``paper_repro/explain_differences.py bal-more-passes``).
    n_components : int or None, default=None
        Dimension of the output of :meth:`transform`, in ``[1, n_features]``: the top
        ``n_components`` directions of the learned map (zero rows are appended when
        the learned metric has lower rank, so the output always has this many
        columns). ``None``: all directions, i.e. the numerical rank of ``M``.
    triplets : {"auto", "all", "implicit"}, default="auto"
        How the problem stores its triplets (see :class:`~convexmetric.LMNNProblem`).
    tol : float > 0 or None, default=None
        Target certified relative gap. ``None``: the solver's default (``1e-8`` for
        ``hybrid``, ``1e-6`` for ``fista`` and ``band-ipm``, ...).
    max_iter : int >= 1 or None, default=None
        Iteration cap per pass, honoured by the first-order solvers (``fista``,
        ``subgradient``, ``stochastic``, ``factored``); the exact solvers bound their
        work by rounds and ``time_limit``. ``None``: the solver's default.
    time_limit : float > 0 or None, default=None
        Wall-clock seconds for the solver phases of the whole fit (passes share it; a
        pass that would start with no time left is skipped). Certifying the last
        iterate comes on top. ``None``: no limit.
    verbose : int, default=0
        ``>= 1``: log each pass and the solver's iterations at INFO on the
        ``convexmetric`` logger; ``>= 2``: also DEBUG messages. If logging is not
        configured (no handler other than ``NullHandler`` on the way to the root
        logger), the messages go to standard error for the duration of ``fit``. A
        solver instance logs its iterations at INFO only if it was built with
        ``verbose=True``.
    random_state : int, RandomState instance or None, default=None
        Seed of the solvers that draw random numbers (those with a ``seed`` option:
        ``stochastic``, ``factored``) and of the ``validation_fraction`` split; the
        deterministic solvers ignore it. ``None``: seed 0, so fits are reproducible.
    validation_fraction : float in (0, 1) or None, default=None
        Early stopping on held-out rows (the paper's protocol on its face sets, 0.3):
        hold out this fraction of the rows (stratified by class), learn on the rest, and
        keep the solver iterate whose ``k``-NN error on the held-out rows is lowest
        (checked on a geometric schedule of the iterations; a solve stops once it has
        run twice as long as its last improvement). With ``n_passes > 1`` each pass
        keeps its own best iterate and the next pass starts from it, as in the paper's
        protocol; ``validation_error_`` is the last pass's. Use it where the convex optimum
        overfits, e.g. fewer rows than features, where the optimal objective is 0
        (:meth:`LMNNProblem.zero_objective_metric`). Needs a solver name, not an instance.

    Attributes
    ----------
    metric_ : ndarray of shape (n_features, n_features)
        The learned PSD metric ``M``.
    components_ : ndarray of shape (n_components_out, n_features)
        The map ``L`` with ``M = L.T @ L`` (rows by decreasing eigenvalue), truncated
        or zero-padded to ``n_components`` rows when that is set.
    result_ : LMNNResult
        The last pass's solver result (objective, certified gap, history, ...).
    results_ : list of LMNNResult
        One per pass.
    n_iter_ : int
        Solver iterations summed over passes.
    targets_ : ndarray of shape (n_samples, k)
        Target neighbours of the last pass. With ``validation_fraction`` they index
        the rows learned from, ``np.setdiff1d(np.arange(n_samples), validation_rows_)``,
        not ``X`` itself.
    validation_rows_ : ndarray of int or None
        With ``validation_fraction``: the held-out rows of ``X``; else None.
    validation_error_ : float or None
        With ``validation_fraction``: the held-out ``k``-NN error (fraction) of
        ``metric_``, the iterate kept; ``result_`` describes the solver's own last
        iterate, and its ``lower_bound`` also bounds ``metric_``'s objective from below.
    solver_ : str
        Name of the solver that ran (what ``"auto"`` resolved to).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    sklearn.neighbors.NeighborhoodComponentsAnalysis : a non-convex metric learner
        with the same transformer interface.

    Notes
    -----
    With at least as many features as rows learned from (faces, documents, genes), ``fit``
    learns in the ``r <= n - 1`` coordinates of the span of the centred rows
    (:mod:`convexmetric.span`): the same problem, optimum and certificate at ``r x r``
    instead of ``d x d``. ``metric_`` gives zero weight to the directions the rows do not
    vary in, which shifts a new point's distance to every training row alike, so no
    neighbour ranking depends on it. ``result_.info["data_span"]`` records ``r``. A solver
    instance keeps the data's coordinates.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), LMNN(tol=1e-6), KNeighborsClassifier(3))
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "mu": [Interval(Real, 0, 1, closed="neither")],
        "margin": [Interval(Real, 0, None, closed="neither")],
        "solver": [str, Solver],
        "solver_options": [dict, None],
        "n_passes": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "triplets": [StrOptions({"auto", "all", "implicit"})],
        "tol": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "time_limit": [Interval(Real, 0, None, closed="neither"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    }

    def __init__(self, k=3, mu=0.5, margin=1.0, solver="auto", solver_options=None, n_passes=1,
                 n_components=None, triplets="auto", *, tol=None, max_iter=None, time_limit=None,
                 verbose=0, random_state=None, validation_fraction=None):
        self.k = k
        self.mu = mu
        self.margin = margin
        self.solver = solver
        self.solver_options = solver_options
        self.n_passes = n_passes
        self.n_components = n_components
        self.triplets = triplets
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.verbose = verbose
        self.random_state = random_state
        self.validation_fraction = validation_fraction

    def _check_solver(self):
        """Errors the parameter constraints cannot express (before any work)."""
        if isinstance(self.solver, Solver):
            if self.solver_options:
                raise ValueError("pass options to the solver instance, not solver_options")
            given = [p for p in (*_SOLVER_PARAMS, "random_state", "validation_fraction")
                     if getattr(self, p) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} cannot be combined with a solver instance; "
                                 "configure the instance instead")
        elif self.solver != "auto" and self.solver not in REGISTRY:
            raise ValueError(f"unknown solver {self.solver!r}; use 'auto' or one of {list(REGISTRY)}")

    def _solver_options(self, name: str, time_left: float | None, seed: int | None) -> dict:
        """Options for registry solver ``name``: ``solver_options`` plus the parameters."""
        opts = dict(self.solver_options or {})
        cls = REGISTRY[name].load()
        accepted = {**cls.common_defaults, **cls.defaults}
        explicit = {p: getattr(self, p) for p in _SOLVER_PARAMS}
        explicit["verbose"] = bool(self.verbose) or None
        if "seed" in accepted:
            explicit["seed"] = seed
        for key, value in explicit.items():
            if value is None:
                continue
            if key in opts and not _same(opts[key], value):
                param = "random_state" if key == "seed" else key
                raise ValueError(f"{param}={getattr(self, param)!r} conflicts with "
                                 f"solver_options[{key!r}]={opts[key]!r}; set it in one place")
            opts[key] = value
        if time_left is not None:
            opts["time_limit"] = time_left
        return opts

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the metric from labelled data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : LMNN
            The fitted estimator.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            When the last pass's certified relative gap is above the solver's ``tol`` (not
            with ``validation_fraction``); the message gives the gap and what to try.
        """
        self._check_solver()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        if self.n_components is not None and self.n_components > X.shape[1]:
            raise ValueError(f"n_components ({self.n_components}) cannot be greater than the number "
                             f"of features ({X.shape[1]})")
        self.classes_ = np.unique(y)
        with _verbose_logging(self.verbose):
            M_learned, span, problem = self._fit_passes(X, y)
        self._warn_if_not_certified(X)
        if _mean_sq_distance(problem.X, M_learned) <= ZERO_METRIC_FRACTION * problem.margin:
            self._warn_zero_metric(problem)
        L = _components(M_learned)
        if span is not None:
            L = span.components_from_span(L)
        if L.shape[0] == 0:  # M = 0: keep the shape usable
            L = np.zeros((1, X.shape[1]))
        if self.n_components is not None:
            L = L[: self.n_components]
            L = np.vstack([L, np.zeros((self.n_components - L.shape[0], X.shape[1]))])
        self.components_ = L
        self.n_iter_ = int(sum(r.nit for r in self.results_))
        return self

    def _warn_if_not_certified(self, X):
        """A ``ConvergenceWarning`` when the last pass's certificate is above its tolerance.

        Not with ``validation_fraction`` (the kept iterate is meant to stop short of the
        optimum), after Ctrl-C (the user stopped it), or without a certificate (a solver
        built with ``certify=False``). The metric is still usable, and ``result_`` says how
        far from the optimum it is proven to be.
        """
        res = self.result_
        if (self.validation_rows_ is not None or res.status in (OPTIMAL, INTERRUPTED)
                or not np.isfinite(res.relative_gap)):
            return
        spread = X.std(axis=0)
        spread = spread[spread > 0]
        advice = "raise time_limit or max_iter, or choose another solver"
        if spread.size and spread.max() > SCALE_SPREAD_WARNING * spread.min():
            advice = (f"the features' standard deviations span a factor of {spread.max() / spread.min():.2g}, "
                      f"which slows every solver: put a StandardScaler before LMNN in a Pipeline, or {advice}")
        warnings.warn(f"LMNN: solver {res.solver!r} stopped with status {res.status!r}: its objective is proven "
                      f"within {res.relative_gap:.2g} (relative) of the optimum, above tol={res.options.get('tol')!r}; "
                      f"{advice}.", ConvergenceWarning, stacklevel=4)

    def _warn_zero_metric(self, problem):
        """A ``UserWarning`` that the learned metric is 0, with the ``mu`` that would learn one.

        Every distance in the zero metric is 0, so a k-NN on the output can only break
        ties; a metric that is 0 up to the solver's round-off points in a direction that
        round-off chose. :meth:`LMNNProblem.zero_metric_threshold` says for which ``mu``
        0 is the optimum of the last pass's problem, and so whether raising ``mu`` helps.
        """
        mu_star = problem.zero_metric_threshold()
        if mu_star >= 1.0:
            why = ("M = 0 is the optimum at every mu: over all triplets, the target neighbours are no nearer "
                   "than the impostors in any direction, so no linear metric helps; check the features and "
                   "labels, or try another k")
        elif self.mu <= mu_star:
            why = (f"M = 0 is the optimum for these targets whenever mu <= {mu_star:.3g} (mu = {self.mu:g}): "
                   f"a mu above {mu_star:.3g} weighs the impostors enough to learn a metric")
        else:
            why = (f"the optimum is not 0 here (M = 0 is optimal only for mu <= {mu_star:.3g}, and mu = "
                   f"{self.mu:g}), so the solver stopped short of it: see result_")
        warnings.warn(f"LMNN learned the zero metric (its mean squared distance between training points is at "
                      f"most {ZERO_METRIC_FRACTION:g} of the margin): k-NN on its output cannot tell points apart, "
                      f"or tells them apart by round-off. {why}.", UserWarning, stacklevel=4)

    def _fit_passes(self, X, y):
        start = time.perf_counter()
        rs = self.random_state
        seed = None if rs is None else int(rs) if isinstance(rs, Integral) else \
            int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        targets, M, problem, self.results_ = None, None, None, []
        X_learn, y_learn, self.validation_rows_, self.validation_error_ = X, y, None, None
        X_held = None
        if self.validation_fraction is not None:
            rows, self.validation_rows_ = validation_split(y, self.validation_fraction, 0 if seed is None else seed)
            X_learn, y_learn, X_held = X[rows], y[rows], X[self.validation_rows_]
        span = self._data_span(X_learn)
        if span is not None:
            # the first pass's targets in the given coordinates, where ties break as LMNNProblem breaks them
            classes, labels = np.unique(y_learn, return_inverse=True)
            warn_small_classes(labels, classes, self.k, stacklevel=4)
            targets = select_targets(X_learn, labels, self.k)
            X_learn = span.coordinates(X_learn)
            X_held = None if X_held is None else span.coordinates(X_held)
        for p in range(int(self.n_passes)):
            time_left = None
            if self.time_limit is not None:
                time_left = self.time_limit - (time.perf_counter() - start)
                if p > 0 and time_left <= 0:
                    logger.info("time limit of %gs spent after %d pass(es), stopping", self.time_limit, p)
                    break
                time_left = max(time_left, 1e-3)
            if problem is not None:
                targets = problem.targets_in_metric(M)
                if np.array_equal(targets, problem.targets):
                    logger.info("pass %d: target neighbours unchanged, stopping", p + 1)
                    break
            problem = LMNNProblem(X_learn, y_learn, k=self.k, mu=self.mu, margin=self.margin, targets=targets,
                                  triplets=self.triplets)
            stopper = None
            if self.validation_rows_ is not None:
                stopper = ValidationStopper(X_learn, y_learn, X_held, y[self.validation_rows_],
                                            patience=VALIDATION_PATIENCE, k=self.k)
            if isinstance(self.solver, Solver):
                solver = self.solver
            else:
                name, auto = self.solver, {}
                if name == "auto":
                    name, reason = choose_solver_with_reason(problem)
                    logger.info("solver='auto' picked %r: %s", name, reason)
                    auto = auto_defaults(problem, name)
                opts = {**auto, **self._solver_options(name, time_left, seed)}
                if span is not None:
                    opts = _options_in_span(opts, span)
                if M is not None:
                    opts["warm_start"] = M
                if stopper is not None:
                    opts["callback"] = _both(stopper, opts.get("callback"))
                solver = get_solver(name, **opts)
            res = solver.solve(problem)
            if not isinstance(self.solver, Solver) and self.solver == "auto":
                res.info["auto"] = {"solver": name, "reason": reason}
            self.results_.append(res)
            M = res.M
            logger.info("LMNN pass %d: %r", p + 1, res)
            if stopper is not None:
                stopper.consider(res.M)
                M, self.validation_error_ = stopper.best_M, float(stopper.best_error)
                logger.info("pass %d keeps the iterate of call %s: held-out %d-NN error %.4g",
                            p + 1, stopper.best_at, self.k, self.validation_error_)
        if span is not None:
            last = self.results_[-1].M
            self.results_ = [_result_from_span(r, span) for r in self.results_]
            M_full = self.results_[-1].M if M is last else span.metric_from_span(M)  # d x d: map once
        self.solver_ = self.results_[-1].solver
        self.result_ = self.results_[-1]
        self.metric_ = M if span is None else M_full
        self.targets_ = problem.targets
        return M, span, problem

    def _data_span(self, X_learn):
        """The span of the rows learned from, when there are at least as many features as rows.

        Only differences of rows enter LMNN, so the problem on the span's ``r <= n - 1``
        coordinates is the same problem (:mod:`convexmetric.span`) at ``r x r`` instead of
        ``d x d``. With fewer features than rows, ``d x d`` is cheap already. A solver
        instance keeps the given coordinates: its options (warm start, callback) refer to them.
        """
        n, d = X_learn.shape
        if d < n or isinstance(self.solver, Solver):
            return None
        span = DataSpan.of(X_learn)
        if span.dim == 0:   # every row the same: no coordinates to learn in, and d x d is just as quick
            return None
        logger.info("%d features >= %d rows: learning in the %d-dimensional span of the centred rows "
                    "(the same optimum and certificate; the metric gives 0 weight to the other directions)",
                    d, n, span.dim)
        return span

    def transform(self, X):
        """Map ``X`` into the learned space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, components_.shape[0])
            ``X @ components_.T``.
        """
        check_is_fitted(self, "components_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.components_.T

    @property
    def _n_features_out(self):
        """Number of output features, for :meth:`get_feature_names_out`."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _both(stopper, user_callback):
    """A solver callback that feeds ``stopper`` and the user's own callback; either may stop."""
    if user_callback is None:
        return stopper

    def callback(info) -> bool:
        stop = bool(stopper(info))
        return bool(user_callback(info)) or stop
    return callback


def _options_in_span(opts: dict, span) -> dict:
    """Solver options given in the data's coordinates, restated in the span's.

    A warm start ``M`` becomes ``U^T M U``; a callback sees its metrics as ``U M U^T``; a
    factored ``rank`` above the span's dimension is capped there (rank ``r`` already reaches
    every metric on the span).
    """
    opts = dict(opts)
    if opts.get("warm_start") is not None:
        opts["warm_start"] = span.metric_to_span(opts["warm_start"])
    user_callback = opts.get("callback")
    if user_callback is not None:
        def callback(info):
            return user_callback({**info, "M": span.metric_from_span(info["M"])})
        opts["callback"] = callback
    if opts.get("rank") is not None and int(opts["rank"]) > span.dim:
        logger.info("rank %d capped at the span's dimension %d", int(opts["rank"]), span.dim)
        opts["rank"] = span.dim
    return opts


def _result_from_span(res, span):
    """``res`` with its metric in the data's coordinates (``U M U^T``); values unchanged."""
    info = {**res.info, "data_span": {"dim": span.dim, "n_features": span.n_features}}
    return dataclasses.replace(res, M=span.metric_from_span(res.M), info=info)


def _same(a, b) -> bool:
    try:
        return bool(np.all(a == b))
    except (TypeError, ValueError):
        return a is b


#: A learned metric whose mean squared distance between training points is at most this
#: fraction of the margin is reported as the zero metric (``LMNN.fit`` warns).
ZERO_METRIC_FRACTION = 1e-6


def _mean_sq_distance(X, M) -> float:
    """Mean of ``d_M(x_i, x_j)^2`` over all ordered pairs of rows of ``X``: ``2 tr(M Cov)``."""
    Xc = X - X.mean(axis=0)
    return 2.0 * float(np.sum(M * (Xc.T @ Xc))) / X.shape[0]


def _components(M):
    from .psd import components_from_metric
    return components_from_metric(M)


def _has_output_handler(log: logging.Logger) -> bool:
    """Whether a record of ``log`` reaches a handler other than ``NullHandler``."""
    current = log
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


class _verbose_logging:
    """Context manager: make the ``convexmetric`` logger heard while fitting verbosely.

    With ``verbose >= 1`` it lowers the logger's level to INFO (DEBUG for ``>= 2``)
    unless the user set a level on it, and attaches a stderr handler when logging is
    not configured at all. Concurrent fits (threads) share one setup: the first to
    enter installs it, the last to leave restores the logger.
    """

    _lock = threading.Lock()
    _users = 0
    _saved = None  # (level, handler or None) to restore

    def __init__(self, verbose):
        self.verbose = int(verbose)

    def __enter__(self):
        if self.verbose <= 0:
            return self
        log = logging.getLogger("convexmetric")
        cls = type(self)
        with cls._lock:
            if cls._users == 0:
                level = logging.DEBUG if self.verbose >= 2 else logging.INFO
                handler = None
                if not _has_output_handler(log):
                    handler = logging.StreamHandler(sys.stderr)
                    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
                    log.addHandler(handler)
                cls._saved = (log.level, handler)
                # a level the user set on our logger wins; else make INFO (DEBUG) pass
                if log.level == logging.NOTSET and log.getEffectiveLevel() > level:
                    log.setLevel(level)
            cls._users += 1
        return self

    def __exit__(self, *exc):
        if self.verbose <= 0:
            return False
        log = logging.getLogger("convexmetric")
        cls = type(self)
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                level, handler = cls._saved
                log.setLevel(level)
                if handler is not None:
                    log.removeHandler(handler)
                    handler.close()
                cls._saved = None
        return False
