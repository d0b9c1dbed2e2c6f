"""The LMNN problem specification: the one judge of every solver.

:class:`LMNNProblem` holds the data, the fixed target neighbours and the triplet set,
and evaluates the objective, margins, subgradient and duality-gap certificate of any
candidate metric ``M``. Solvers never grade themselves; they call these methods.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import psd
from ._checks import InvalidParameterError, check_int, check_real
from .classify import sq_dist_blocks
from .neighbors import DEFAULT_BLOCK_BYTES, exact_sq_dists, select_targets, warn_small_classes
from .sweep import BlockSweep, EnumeratedSweep
from .triplets import ActiveTriplets, TripletSet, TripletWeights

logger = logging.getLogger(__name__)

#: Above this many candidate triplets, ``triplets="auto"`` keeps them implicit.
DEFAULT_MAX_ENUMERATED = 200_000
#: Most multiply-adds the construction-time test for a zero optimum may spend
#: (:meth:`LMNNProblem.zero_objective_metric`; about a second on two cores).
ZERO_OPTIMUM_CHECK_FLOPS = 1e10


@dataclass(frozen=True)
class Embedding:
    """A PSD metric prepared for evaluation: ``M = L.T @ L`` and ``Z = X @ L.T``.

    ``min_eig_ratio`` is ``lambda_min / max|lambda|`` of the metric given, NaN where a
    Cholesky factor showed it positive definite (:func:`convexmetric.psd.psd_factor`).
    """

    M: np.ndarray
    L: np.ndarray
    Z: np.ndarray
    min_eig_ratio: float


def _array_backend(X, backend, device):
    """The array namespace and device of the passes: from ``backend=`` or from ``X``'s own library.

    Returns ``(None, None)`` for NumPy (the sparse CPU form of the pass), else
    ``(namespace, device)`` for the dense form on that library (PyTorch, CuPy, ...).
    """
    if isinstance(backend, str):
        if backend == "numpy":
            return None, None
        import importlib
        try:
            mod = importlib.import_module(backend)
        except ImportError as exc:
            raise ImportError(f"backend={backend!r} is not installed; pip install 'convexmetric[gpu]' "
                              "brings PyTorch (CuPy: pip install cupy-cuda12x)") from exc
        import array_api_compat
        backend = array_api_compat.array_namespace(mod.asarray([0.0]))
    if backend is None and not isinstance(X, np.ndarray) and type(X).__module__.split(".")[0] in (
            "torch", "cupy", "jax", "array_api_strict"):
        import array_api_compat
        backend = array_api_compat.array_namespace(X)
        device = array_api_compat.device(X) if device is None else device
    if backend is None:
        if device is not None:
            raise ValueError("device= needs backend= (e.g. backend='torch', device='cuda') or X on that device")
        return None, None
    return backend, device


def _host_array(X):
    """``X`` as a NumPy array, whatever array library holds it."""
    if isinstance(X, np.ndarray) or type(X).__module__.split(".")[0] not in ("torch", "cupy", "jax",
                                                                             "array_api_strict"):
        return X
    from .sweep import to_numpy
    return to_numpy(X)


def _validate_data(X, y):
    X, y = _host_array(X), _host_array(y)
    if sp.issparse(X):
        raise TypeError(f"sparse input is not supported: X is a scipy.sparse {type(X).__name__} of shape "
                        f"{X.shape}; LMNN works on dense data, pass X.toarray() (reduce the dimension "
                        "first, e.g. with PCA or TruncatedSVD, if that does not fit in memory)")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got {X.ndim} dimension(s)")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    n, d = X.shape
    if n < 2 or d < 1:
        raise ValueError(f"X must have at least 2 samples and 1 feature, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"X contains NaN or infinite values (first at row {bad[0]}, column {bad[1]})")
    y = np.asarray(y)
    if y.ndim != 1:
        y = np.squeeze(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {np.shape(y)}")
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]} labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite labels")
    if y.dtype.kind in "fc":
        frac = np.flatnonzero(y != np.round(y.real))
        if frac.size:  # scikit-learn's type_of_target calls such labels "continuous"
            raise ValueError(
                f"Unknown label type: continuous (y holds non-integer values such as {y[frac[0]].item()!r}); "
                "LMNN needs class labels: cast them to int if they are classes, or bin a continuous target")
    classes, labels = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"LMNN needs at least two classes, y has {classes.size}")
    return X, y, classes, labels.astype(np.int64)


def _laplacian_product(X: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray,
                       indptr: np.ndarray | None = None) -> np.ndarray:
    """``sum_p w_p (x_a - x_b)(x_a - x_b)^T`` as ``X^T (diag(r) - W - W^T) X``.

    One sparse product and one n x d x d GEMM, whatever the number of pairs. When the
    pairs are sorted by ``(a, b)`` and ``indptr`` (CSR row pointers of ``a``) is given,
    the sparse matrix is assembled without sorting.
    """
    n = X.shape[0]
    if indptr is None or a.size * 4 < n:
        keep = w != 0
        a, b, w = a[keep], b[keep], w[keep]
    if a.size == 0:
        return np.zeros((X.shape[1], X.shape[1]))
    if a.size * 4 < n:  # few pairs: the direct outer-product form is cheaper
        D = X[a] - X[b]
        G = (D * w[:, None]).T @ D
    else:
        W = (sp.csr_matrix((w, b, indptr), shape=(n, n)) if indptr is not None
             else sp.csr_matrix((w, (a, b)), shape=(n, n)))
        deg = np.bincount(a, w, n) + np.bincount(b, w, n)
        LX = deg[:, None] * X - W @ X - W.T @ X
        G = X.T @ LX
    return 0.5 * (G + G.T)


class LMNNProblem:
    """Large Margin Nearest Neighbour metric learning as a convex problem in ``M``.

    ``f(M) = (1 - mu) <P, M> + mu * sum_t [margin + <C_ij, M> - <C_il, M>]_+`` over
    ``M`` PSD, where ``P`` sums the target-pair matrices and ``t = (i, j, l)`` runs over
    triplets of a point, one of its target neighbours and a differently-labelled point.

    Parameters
    ----------
    X : array-like (n, d)
        Data. Standardise it first if the features have different units.
    y : array-like (n,)
        Class labels (any hashable values).
    k : int, default 3
        Target neighbours per point: same-class Euclidean nearest neighbours, ties
        broken by smaller index. A class with ``m <= k`` members gives its points
        ``m - 1`` targets, with a warning (a singleton class: none).
    mu : float in (0, 1), default 0.5
        Weight of the push (hinge) term against the pull term.
    margin : float > 0, default 1.0
    targets : array-like (n, k') of int, optional
        Explicit target neighbours; ``-1`` marks an empty slot. Overrides ``k``.
    triplets : {"auto", "all", "implicit"} or array-like (T, 3), default "auto"
        ``"all"`` enumerates every (point, target, differently-labelled point) triplet;
        ``"implicit"`` never enumerates them and finds the relevant ones by a blockwise
        impostor search at each evaluation; ``"auto"`` enumerates when there are at
        most ``max_enumerated``. An array gives explicit triplets ``(i, j, l)``.
    max_enumerated : int
        Threshold for ``triplets="auto"``.
    block_bytes : int
        Working-memory budget of one impostor-search block.
    search_dtype : {"float32", "float64"}
        Precision of the distance products that find the candidate impostors (default
        float32: twice as fast); the radius test allows for the product's worst-case
        round-off and every candidate is re-checked in float64, so results are exact
        either way.
    backend, device : optional
        Where the passes over implicit triplets run: an array library (``"torch"``,
        ``"cupy"``, or an array-API namespace) and its device (``"cuda"``). By default
        the library and device of ``X`` itself when it is a PyTorch or CuPy array, else
        NumPy. Everything else (targets, certificates, solvers' small algebra) runs in
        NumPy; only the passes, which hold nearly all the arithmetic, move.
    executor : dask.distributed.Client, optional
        Run each pass over implicit triplets as Dask tasks, one per range of anchors
        (:mod:`convexmetric.distributed`); ``X`` may then be a ``dask.array`` chunked by
        rows. Solvers and certificates are unchanged.
    """

    def __init__(self, X, y, k: int = 3, mu: float = 0.5, margin: float = 1.0, *,
                 targets=None, triplets="auto", max_enumerated: int = DEFAULT_MAX_ENUMERATED,
                 block_bytes: int = DEFAULT_BLOCK_BYTES, search_dtype="float32", backend=None, device=None,
                 executor=None):
        self.backend, self.device = _array_backend(X, backend, device)
        if executor is not None and not (hasattr(executor, "submit") and hasattr(executor, "scatter")):
            raise TypeError(f"executor must be a dask.distributed Client, got {type(executor).__name__}")
        if executor is not None and self.backend is not None:
            raise ValueError("choose an array backend or a Dask executor, not both")
        self.executor = executor
        # rows that arrive as a dask.array, chunk by chunk, are gathered here (the client)
        X, y = (v.compute() if type(v).__module__.split(".")[0] == "dask" else v for v in (X, y))
        self.X, self.y, self.classes, self.labels = _validate_data(X, y)
        self.n, self.d = self.X.shape
        self.mu = check_real("mu", mu, "a real number strictly between 0 and 1", lambda v: 0.0 < v < 1.0)
        self.margin = check_real("margin", margin, "a finite positive number",
                                 lambda v: 0.0 < v < np.inf)
        self.block_bytes = check_int("block_bytes", block_bytes)
        try:
            dtype = np.dtype(search_dtype)
        except TypeError:  # not a dtype at all ("float" typos, objects)
            dtype = None
        if dtype is None or dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise InvalidParameterError(f"search_dtype must be float64 or float32, got "
                                        f"{type(search_dtype).__name__} {search_dtype!r}")
        self.search_dtype = dtype

        if targets is None:
            self.k = check_int("k", k)
            warn_small_classes(self.labels, self.classes, self.k, stacklevel=2)
            self.targets = select_targets(self.X, self.labels, self.k, self.block_bytes)
        else:
            self.targets = self._validate_targets(targets)
            self.k = self.targets.shape[1]
        self.targets.setflags(write=False)

        valid = self.targets >= 0
        self._pull_a = np.repeat(np.arange(self.n), valid.sum(1))
        self._pull_b = self.targets[valid]
        self.n_targets_per_point = valid.sum(1)
        self.pull_matrix = _laplacian_product(self.X, self._pull_a, self._pull_b,
                                              np.ones(self._pull_a.size))
        self.pull_matrix.setflags(write=False)
        self._check_pull_rank()

        class_sizes = np.bincount(self.labels)
        self.n_candidate_triplets = int(np.sum(self.n_targets_per_point
                                               * (self.n - class_sizes[self.labels])))
        self.triplets = self._build_triplets(triplets, int(max_enumerated))
        if not self._pull_definite:
            self._warn_weak_pull()
        logger.debug("LMNNProblem n=%d d=%d k=%d: %s", self.n, self.d, self.k, self.triplet_form)

    # -- construction helpers ---------------------------------------------------
    def _validate_targets(self, targets):
        t = np.asarray(targets)
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2 or t.shape[0] != self.n:
            raise ValueError(f"targets must have shape (n, k) with n = {self.n}, got {np.shape(targets)}")
        if not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"targets must be integer indices, got dtype {t.dtype}")
        t = t.astype(np.int64)
        if t.shape[1] < 1:
            raise ValueError("targets must hold at least one column")
        if np.any((t < -1) | (t >= self.n)):
            raise ValueError(f"target indices must lie in [0, {self.n}) (or -1 for an empty slot)")
        rows = np.arange(self.n)[:, None]
        if np.any(t == rows):
            raise ValueError("a point cannot be its own target neighbour")
        valid = t >= 0
        if np.any(self.labels[np.where(valid, t, 0)][valid] != np.broadcast_to(self.labels[:, None], t.shape)[valid]):
            warnings.warn("some target neighbours have a different label from their anchor", UserWarning,
                          stacklevel=3)
        srt = np.sort(np.where(valid, t, -1 - np.arange(t.shape[1])), axis=1)
        if np.any(srt[:, 1:] == srt[:, :-1]):
            raise ValueError("a point lists the same target neighbour twice")
        return np.ascontiguousarray(t)

    def _check_pull_rank(self):
        """Find the range of ``P``; certificates work there when the data live there.

        Every ``C_ab`` lies in the span of the centred data, so when that span is inside
        ``range(P)`` (e.g. constant features only add zero directions) the problem is
        exactly a problem on ``range(P)``, where ``P`` is definite. Otherwise strong
        duality may fail and certificates fall back to a weaker bound, with a warning.
        """
        w, V = np.linalg.eigh(self.pull_matrix)
        keep = w > 1e-12 * max(w[-1], 1e-300)
        self._pull_basis = V[:, keep]               # orthonormal basis of range(P)
        self._pull_eigs = w[keep]
        null = V[:, ~keep]
        if null.shape[1] == 0:
            self._pull_definite = True
            return
        Xc = self.X - self.X.mean(0)
        outside = np.linalg.norm(Xc @ null) if null.size else 0.0
        self._pull_definite = bool(outside <= 1e-10 * max(np.linalg.norm(Xc), 1e-300))
        self._pull_null = [null]
        if self._pull_definite:
            logger.info("pull matrix has %d null direction(s) without data variance: "
                        "certificates work on its range", null.shape[1])

    def _warn_weak_pull(self):
        """Warn that the pull matrix is singular where the data vary, saying whether the optimum is 0."""
        weak = ("the target differences do not span the data (a pull matrix is singular on directions "
                "where the data vary)")
        cost = self.n * self.n * sum(B.shape[1] for B in self._pull_null)
        if cost > ZERO_OPTIMUM_CHECK_FLOPS:
            warnings.warn(f"{weak}: strong duality may fail and certificates fall back to a weaker bound "
                          "(zero_objective_metric() tells whether the optimum is 0); consider fewer features",
                          UserWarning, stacklevel=3)
        elif self.zero_objective_metric() is not None:
            warnings.warn(f"{weak}, and the directions they leave free separate every impostor from its "
                          "anchor: the optimal objective is 0 (zero_objective_metric() returns a metric that "
                          "puts every target at distance 0 and every impostor beyond the margin). Any metric "
                          "with a positive objective is then a relative gap of 1 from the optimum, and the "
                          "optimum fits the training labels exactly; use fewer features than points minus "
                          "classes, or stop early on held-out rows (LMNN(validation_fraction=0.3))",
                          UserWarning, stacklevel=3)
        else:
            warnings.warn(f"{weak}: strong duality may fail and certificates fall back to a weaker bound; "
                          "consider fewer features", UserWarning, stacklevel=3)

    def zero_objective_metric(self):
        """A metric whose objective is 0 (so the optimum is 0), or ``None`` if this test finds none.

        Where the target differences leave directions of the data free (fewer points than
        dimensions, say), a metric on those directions alone puts every target at distance
        0. If those directions also separate every hinge pair ``(i, l)``, scaling it until
        every impostor lies twice the margin away zeroes every hinge: the objective is 0
        up to round-off, the convex optimum, attained by a metric that fits the training
        labels exactly. The metric is returned only if its objective, evaluated, is below
        a millionth of ``mu * margin`` (one hinge's share); ``None`` means this
        construction fails, not that the optimum is positive. Computed once (``n^2``
        times the free dimensions, plus one objective evaluation).
        """
        if "_zero_metric" not in self.__dict__:    # searched once; a plain attribute survives pickling
            self._zero_metric = None if self._pull_definite else self._zero_metric_search()
        return self._zero_metric

    def zero_metric_threshold(self, tol: float = 1e-9) -> float:
        """The largest ``mu`` at which ``M = 0`` is optimal, for these targets and triplets.

        At ``M = 0`` every hinge equals the margin, so near 0 the objective is affine with
        gradient ``G(mu) = (1 - mu) P + mu H``: ``P`` the pull matrix, ``H`` the sum of
        ``A_t`` over all triplets. ``M = 0`` is optimal exactly when ``G(mu)`` is PSD (no
        descent direction in the cone). ``G(0) = P`` is, and the smallest eigenvalue is
        concave in ``mu``, so the ``mu`` where it is form an interval ``[0, mu*]``: above
        ``mu*`` the push term is heavy enough to learn a metric. Returns ``mu*`` (1.0 when
        ``M = 0`` is optimal at every ``mu``; 0.0 at none, where a direction that no target
        difference spans separates an impostor), by bisection to ``tol``, from one pass at
        ``M = 0``. It depends on neither the margin nor the scale of ``X``; this problem's
        own ``mu`` does not enter. One metric per class: ``M = 0`` means every metric is 0.
        """
        P = self.pull_matrix
        H = self.evaluate(np.zeros_like(self.identity_metric()), gradient=True).K
        scale = max(float(np.abs(np.linalg.eigvalsh(P)).max(initial=0.0)),
                    float(np.abs(np.linalg.eigvalsh(H)).max(initial=0.0)), np.finfo(float).tiny)

        def psd_at(mu):
            return np.linalg.eigvalsh((1.0 - mu) * P + mu * H).min() >= -1e-12 * scale
        if psd_at(1.0):
            return 1.0
        lo, hi = 0.0, 1.0
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if psd_at(mid) else (lo, mid)
        return lo

    @property
    def _known_zero_optimum(self) -> bool:
        """Whether :meth:`zero_objective_metric` has already found a metric of objective 0
        (construction searches where it is cheap); never starts the search itself."""
        return self.__dict__.get("_zero_metric") is not None

    def _zero_metric_search(self):
        # the projectors on the directions P leaves free, by their factors B^T (B orthonormal),
        # so that neither the distances nor the objective factor a d x d matrix again
        factors = [B.T for B in self._pull_null]
        stacked = self.identity_metric().ndim == 3
        Xc = self.X - self.X.mean(0)
        anchors = np.flatnonzero(self.n_targets_per_point > 0)
        sep = np.inf        # smallest free distance from an anchor to a differently-labelled point
        for rows, D in sq_dist_blocks(Xc, self.labels, Xc[anchors], factor=factors if stacked else factors[0]):
            D[self.labels[anchors[rows]][:, None] == self.labels[None, :]] = np.inf
            sep = min(sep, float(D.min(initial=np.inf)))
        if not np.isfinite(sep) or sep <= 1e-10 * float(np.einsum("ij,ij->i", Xc, Xc).max()):
            return None
        emb = self._embed_factors([np.sqrt(2.0 * self.margin / sep) * L for L in factors])
        # only the objective tells (explicit triplets may pair an anchor with a non-target j)
        return emb.M if self.objective(emb) <= 1e-6 * self.mu * self.margin else None

    def _embed_factors(self, factors):
        """The embedding of the metric whose factor is ``factors[0]`` (one per class for a
        multi-metric problem, which overrides this)."""
        return self.embed_factor(factors[0])

    def _build_triplets(self, spec, max_enumerated):
        if isinstance(spec, str):
            if spec not in ("auto", "all", "implicit"):
                raise ValueError(f"triplets must be 'auto', 'all', 'implicit' or an (T, 3) array, got {spec!r}")
            if spec == "implicit" or (spec == "auto" and self.n_candidate_triplets > max_enumerated):
                return None
            return self._enumerate_all()
        t = np.asarray(spec)
        if t.ndim != 2 or t.shape[1] != 3 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"explicit triplets must be an integer array of shape (T, 3), got {t.shape} {t.dtype}")
        if t.size and (t.min() < 0 or t.max() >= self.n):
            raise ValueError(f"triplet indices must lie in [0, {self.n})")
        i, j, l = t.T.astype(np.int64)
        if np.any(i == j) or np.any(i == l):
            raise ValueError("a triplet (i, j, l) needs i != j and i != l")
        if np.any(self.labels[l] == self.labels[i]):
            warnings.warn("some triplets' impostor has the anchor's label", UserWarning, stacklevel=3)
        ts = TripletSet(i, j, l, self.n)
        if len(ts) < t.shape[0]:
            warnings.warn(f"{t.shape[0] - len(ts)} duplicate triplet(s) dropped", UserWarning, stacklevel=3)
        return ts

    def _enumerate_all(self) -> TripletSet:
        n = self.n
        keys = []
        for c in range(self.classes.size):
            members = np.flatnonzero(self.labels == c)
            others = np.flatnonzero(self.labels != c)
            t = self.targets[members]
            valid = t >= 0
            ij = (np.repeat(members, valid.sum(1)) * n + t[valid])
            keys.append((ij[:, None] * n + others[None, :]).ravel())
        keys = np.sort(np.concatenate(keys)) if keys else np.empty(0, np.int64)
        return TripletSet.from_keys(keys, n)

    # -- internal scaling -----------------------------------------------------------
    @property
    def data_scale(self) -> float:
        """The power of two ``s`` for which ``X / s`` has mean squared target distance near ``margin``.

        LMNN's optimal value does not depend on the scale of ``X`` (``X -> c X`` maps the
        optimum ``M*`` to ``M* / c^2``), but conic solvers' absolute tolerances do: solvers
        and certificates therefore work on :meth:`normalized` data and map back. A power
        of two makes ``X / s`` exact in floating point, so ``X`` and ``2^j X`` give
        bit-identical internal problems.
        """
        cached = self.__dict__.get("_data_scale")
        if cached is None:
            n_pairs = max(int(self._pull_a.size), 1)
            per_pair = float(np.trace(self.pull_matrix if self.pull_matrix.ndim == 2
                                      else self.pull_matrix.sum(0))) / n_pairs
            if not per_pair > 0:  # every target coincides with its anchor: use the data's spread
                Xc = self.X - self.X.mean(0)
                per_pair = 2.0 * float(np.einsum("ij,ij->", Xc, Xc)) / self.n
            if per_pair > 0 and np.isfinite(per_pair):
                cached = float(2.0 ** np.round(0.5 * np.log2(per_pair / self.margin)))
            else:
                cached = 1.0
            self._data_scale = cached
        return cached

    def normalized(self) -> "LMNNProblem":
        """This problem on ``X / data_scale`` (itself when the scale is 1).

        The twin shares the targets and triplets; its metrics relate to this problem's
        by ``M = M_twin / data_scale**2``, its objective values and dual points are the
        same. Use :meth:`to_normalized` and :meth:`from_normalized` to map metrics.
        """
        s = self.data_scale
        if s == 1.0:
            return self
        twin = self.__dict__.get("_normalized")
        if twin is None:
            import copy
            twin = copy.copy(self)
            twin.__dict__.pop("_normalized", None)
            twin.X = self.X / s
            twin.X.setflags(write=False)
            twin.pull_matrix = self.pull_matrix / (s * s)
            twin.pull_matrix.setflags(write=False)
            if self.__dict__.get("_zero_metric") is not None:   # a metric of these coordinates: map it
                twin._zero_metric = self.to_normalized(self._zero_metric)
            if isinstance(self._pull_eigs, list):  # one block per class
                twin._pull_eigs = [e / (s * s) for e in self._pull_eigs]
            else:
                twin._pull_eigs = self._pull_eigs / (s * s)
            twin._data_scale = 1.0
            self._normalized = twin
        return twin

    def pull_whitened(self):
        """This problem in coordinates where its pull matrix is the identity, and the map there.

        Returns ``(twin, W)``. With ``P = V diag(lam) V^T``, ``W = c V diag(lam^-1/2)`` (on
        directions where ``P`` vanishes, ``lam_max^-1/2``; ``c`` makes the mean squared target
        distance the margin, so the twin is its own :meth:`normalized`): the twin has data
        ``(X - mean) @ W`` and the same targets and triplets, and ``f_twin(M') = f(W M' W^T)``
        for every ``M'``,
        so it has the same optimal value and the same triplet weights (dual points given as
        :class:`~convexmetric.triplets.TripletWeights`; an aggregated ``K`` is in the twin's
        coordinates). Metrics map back by ``M = W M' W^T`` and there by
        ``M' = W^-1 M W^-T``. A first-order method sees the pull term as ``tr(M')`` here, so
        features on very different scales no longer slow it (``band-ipm``'s first phase).
        With one metric per class, ``P`` is the sum of the classes' pull matrices and every
        class metric maps with the same ``W`` (each class's own pull matrix is not the
        identity there, but the features' scales are gone).
        """
        import copy
        P = self.pull_matrix if self.n_metrics == 1 else self.pull_matrix.sum(axis=0)
        w, V = np.linalg.eigh(P)
        top = max(float(w[-1]), 1e-300)
        kept = w > 1e-12 * top
        # times c, with c^2 * rank(P) = margin * pairs: the twin is its own normalized() twin
        c = np.sqrt(self.margin * max(int(self._pull_a.size), 1) / max(int(kept.sum()), 1))
        W = V * (c / np.sqrt(np.where(kept, w, top)))
        twin = copy.copy(self)
        for key in ("_normalized", "_data_scale", "_zero_metric", "_sweeper"):
            twin.__dict__.pop(key, None)
        twin.X = (self.X - self.X.mean(0)) @ W  # centred first: a constant feature adds no rounding
        twin.X.setflags(write=False)
        if self.n_metrics == 1:  # (one metric per class: _check_pull_rank builds the stack from X)
            twin.pull_matrix = _laplacian_product(twin.X, self._pull_a, self._pull_b, np.ones(self._pull_a.size))
            twin.pull_matrix.setflags(write=False)
        twin._check_pull_rank()
        return twin, W

    def has_pull(self) -> bool:
        """Whether some target difference is not zero (else the pull term is 0 for every metric)."""
        return bool(np.any(np.asarray(self.pull_matrix) != 0))

    def to_normalized(self, M):
        """A metric of this problem in the coordinates of :meth:`normalized`."""
        return None if M is None else np.asarray(M, dtype=np.float64) * self.data_scale ** 2

    def from_normalized(self, M):
        """A metric of :meth:`normalized` in this problem's coordinates."""
        return None if M is None else np.asarray(M, dtype=np.float64) / self.data_scale ** 2

    # -- the shape of a metric ---------------------------------------------------
    #: Number of metrics learned (one here; one per class in MultiMetricProblem).
    n_metrics = 1

    def targets_in_metric(self, M) -> np.ndarray:
        """Same-class ``k`` nearest neighbours of every point in the metric ``M``.

        The next pass of multi-pass LMNN (JMLR 2009 §5.2) learns with these targets; when
        they equal :attr:`targets`, another pass would solve the same problem again.
        """
        Z = self.X @ psd.components_from_metric(self.validate_metric(M)).T
        return select_targets(Z, self.labels, self.k, self.block_bytes)

    def identity_metric(self) -> np.ndarray:
        """The Euclidean metric, in this problem's metric shape."""
        return np.eye(self.d)

    def validate_metric(self, M, name: str = "M") -> np.ndarray:
        """Check a candidate metric's shape, finiteness and symmetry; return it symmetrised."""
        return psd.check_square(M, self.d, name)

    def owned_pairs(self, triplets: TripletSet):
        """The pairs a triplet set touches, each with the metric it is measured in.

        Returns ``(a, b, owner, target_index, impostor_index)``: pair endpoints, the
        index of the metric (always 0 here), and for each triplet the row of its target
        and impostor pair.
        """
        a, b = triplets.pairs.T
        return a, b, np.zeros(a.size, np.int64), triplets.target_pair, triplets.impostor_pair

    # -- descriptive properties -------------------------------------------------
    @property
    def is_enumerated(self) -> bool:
        """Whether the triplets are stored explicitly (else: implicit, searched)."""
        return self.triplets is not None

    @property
    def n_triplets(self) -> int:
        """Number of triplets in the problem (stored or implicit)."""
        return len(self.triplets) if self.is_enumerated else self.n_candidate_triplets

    @property
    def triplet_form(self) -> str:
        if self.is_enumerated:
            return f"{len(self.triplets)} enumerated triplets on {self.triplets.n_pairs} pairs"
        return f"{self.n_candidate_triplets} implicit triplets (impostor search)"

    def __repr__(self) -> str:
        return (f"LMNNProblem(n={self.n}, d={self.d}, classes={self.classes.size}, k={self.k}, "
                f"mu={self.mu}, margin={self.margin}, {self.triplet_form})")

    # -- evaluation -------------------------------------------------------------
    def embed(self, M) -> Embedding:
        """Validate ``M`` and factor it as ``L.T @ L`` (:func:`convexmetric.psd.psd_factor`:
        Cholesky when ``M`` is positive definite, else its eigendecomposition).

        ``M`` must be symmetric and PSD up to :data:`convexmetric.psd.PSD_RTOL`;
        eigenvalues within that tolerance below zero are treated as zero, so ``M``
        is evaluated as its PSD projection. Larger negative eigenvalues raise.
        """
        if isinstance(M, Embedding):
            return M
        M = self.validate_metric(M)
        L, ratio = psd.psd_factor(M)
        if ratio < -psd.PSD_RTOL:
            raise ValueError(
                f"M is not positive semidefinite (lambda_min / max|lambda| = {ratio:.3g}); "
                "project it first with convexmetric.psd.project_psd")
        Mp = psd.symmetrize(L.T @ L) if ratio < 0 else M
        return Embedding(M=Mp, L=L, Z=self.X @ L.T, min_eig_ratio=ratio)

    def embed_factor(self, L) -> Embedding:
        """The embedding of ``M = L.T @ L`` from a factor ``L`` (``r x d``), without the
        factorisation :meth:`embed` needs (``d^3``: an eigendecomposition at ``d = 399`` was a
        fifth of a factored solve's time)."""
        L = np.asarray(L, dtype=np.float64)
        if L.ndim != 2 or L.shape[1] != self.d:
            raise ValueError(f"L must have shape (r, {self.d}), got {L.shape}")
        if not np.all(np.isfinite(L)):
            raise ValueError("L contains NaN or infinite values")
        return Embedding(M=psd.metric_from_components(L), L=L, Z=self.X @ L.T, min_eig_ratio=0.0)

    def target_sq_dists(self, M) -> np.ndarray:
        """Squared learned distances to the target neighbours, shape (n, k), NaN in empty slots."""
        emb = self.embed(M)
        out = np.full(self.targets.shape, np.nan)
        valid = self.targets >= 0
        out[valid] = exact_sq_dists(emb.Z, self._pull_a, self._pull_b)
        return out

    @property
    def sweeper(self):
        """How this problem visits its triplets: :class:`~convexmetric.sweep.EnumeratedSweep`
        over the stored list, or the blockwise pass :class:`~convexmetric.sweep.BlockSweep`."""
        cached = self.__dict__.get("_sweeper")
        if cached is None or cached.problem is not self:  # a normalised copy gets its own
            cached = EnumeratedSweep(self, self.triplets) if self.is_enumerated else BlockSweep(self)
            self._sweeper = cached
        return cached

    def active_set(self, M, slack: float = 0.0, anchors=None) -> ActiveTriplets:
        """Triplets with margin ``z_t > -slack`` at ``M``, with their margins.

        For enumerated triplets this filters all margins; for implicit triplets the
        blockwise pass (:mod:`convexmetric.sweep`) emits them with radius
        ``max_j d_M(i, j) + margin + slack`` around each point, so it is exact without
        ever listing the other triplets. ``anchors`` (indices) restricts the result to
        triplets anchored at those points, at a proportional cost.
        """
        if not np.isfinite(slack) or slack < 0:
            raise ValueError(f"slack must be a finite non-negative number, got {slack!r}")
        return self.sweeper.evaluate(self.embed(M), slack=float(slack), anchors=anchors).band

    def _margins_of(self, emb: Embedding, ts: TripletSet) -> np.ndarray:
        if len(ts) == 0:
            return np.empty(0)
        a, b = ts.pairs.T
        dist = exact_sq_dists(emb.Z, a, b)
        return self.margin + dist[ts.target_pair] - dist[ts.impostor_pair]

    def margins(self, M) -> np.ndarray:
        """Margins ``z_t`` of all enumerated triplets, in :attr:`triplets` order.

        Implicit problems have no list of all triplets: use :meth:`active_set`.
        """
        if not self.is_enumerated:
            raise ValueError("this problem's triplets are implicit (never enumerated); "
                             "use active_set(M, slack) for the triplets with z_t > -slack")
        return self._margins_of(self.embed(M), self.triplets)

    def pull_value(self, M) -> float:
        """``<P, M>``: the sum of squared learned distances to target neighbours."""
        emb = self.embed(M)
        return float(np.sum(self.pull_matrix * emb.M))

    def evaluate(self, M, *, gamma: float = 0.0, gradient: bool = False, slack=None, keep_pairs=None,
                 working=None):
        """Everything one visit of the triplets gives at ``M``, as a :class:`~convexmetric.sweep.Evaluation`.

        Besides the sweep's fields, the result carries ``objective`` (the true ``f(M)``),
        ``smoothed`` (the Huber-smoothed objective of width ``gamma``; ``f`` when 0) and
        ``gradient`` (of the smoothed objective, when asked).

        Parameters
        ----------
        gamma : float
            Huber width (0: the hinge itself, whose gradient is a subgradient).
        slack : float or None
            Also list the triplets with ``z_t > -slack`` (``band``).
        keep_pairs : float or None
            Implicit problems: also return the impostor pairs within the radius extended
            by ``keep_pairs`` (``pairs``), a working set for later calls.
        working : TripletSet or PairSet, optional
            Visit only these triplets or pairs (exact while they hold every active one).
        """
        from .sweep import PairSet
        emb = self.embed(M)
        if isinstance(working, TripletSet):
            sweeper, extra = EnumeratedSweep(self, working), {}
        else:
            sweeper = self.sweeper
            extra = {} if working is None and keep_pairs is None else {"pairs": working, "keep_pairs": keep_pairs}
            if working is not None and not isinstance(working, (PairSet, tuple)):
                raise TypeError(f"working must be a TripletSet or a PairSet, got {type(working).__name__}")
        ev = sweeper.evaluate(emb, gamma=gamma, gradient=gradient, slack=slack, **extra)
        pull = self._pull_term(emb)
        ev.objective = pull + self.mu * ev.hinge
        ev.smoothed = pull + self.mu * ev.loss
        ev.gradient = (1.0 - self.mu) * self.pull_matrix + self.mu * ev.K if gradient else None
        return ev

    def objective(self, M) -> float:
        """The LMNN objective ``f(M)``."""
        emb = self.embed(M)
        return self._pull_term(emb) + self.mu * self.sweeper.evaluate(emb).hinge

    def _pull_term(self, emb) -> float:
        return (1.0 - self.mu) * float(np.sum(self.pull_matrix * emb.M))

    def _objective_from(self, emb: Embedding, act: ActiveTriplets) -> float:
        push = float(np.sum(act.margins[act.margins > 0]))
        return (1.0 - self.mu) * float(np.sum(self.pull_matrix * emb.M)) + self.mu * push

    def weighted_sum(self, triplets: TripletSet, alpha) -> np.ndarray:
        """``sum_t alpha_t A_t`` (d x d) in graph-Laplacian form."""
        beta = triplets.pair_weights(alpha)
        if len(triplets) == 0:
            return np.zeros((self.d, self.d))
        a, b = triplets.pairs.T
        return _laplacian_product(self.X, a, b, beta, triplets.pair_indptr)

    def gradient_from_weights(self, triplets: TripletSet, alpha) -> np.ndarray:
        """``S(alpha) = (1 - mu) P + mu * sum_t alpha_t A_t``.

        With ``alpha`` the hinge indicator this is a subgradient of ``f``; with
        ``alpha = clip(z / gamma, 0, 1)`` the gradient of the Huber-smoothed objective;
        for a dual point it is the dual slack matrix.
        """
        return (1.0 - self.mu) * self.pull_matrix + self.mu * self.weighted_sum(triplets, alpha)

    def subgradient(self, M) -> np.ndarray:
        """A subgradient of ``f`` at ``M``: ``(1 - mu) P + mu * sum_{z_t > 0} A_t``."""
        return self.objective_and_subgradient(M)[1]

    def objective_and_subgradient(self, M):
        """``(f(M), G)`` from a single visit of the triplets."""
        ev = self.evaluate(M, gradient=True)
        return ev.objective, ev.gradient

    def smoothed_objective_and_gradient(self, M, gamma: float, working: TripletSet | None = None,
                                        gradient: bool = True, active: bool = True):
        """Huber-smoothed objective, its gradient and the true objective, in one pass.

        The hinge ``[z]_+`` is replaced by ``h(z) = z^2 / (2 gamma)`` on ``[0, gamma]`` and
        ``z - gamma / 2`` above, whose derivative is ``clip(z / gamma, 0, 1)``. Then
        ``f_gamma <= f <= f_gamma + mu * gamma / 2 * #{z_t > 0}``.

        With ``working`` (a triplet set, or a pair set of an implicit problem), only those
        are evaluated (no visit of the others), which is exact whenever every violated
        triplet is in the set. With ``gradient=False`` the gradient is not formed, with
        ``active=False`` the active triplets are not collected (each returned as None).

        Returns
        -------
        f_gamma, gradient, f, active : float, ndarray (d, d), float, ActiveTriplets
        """
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}")
        ev = self.evaluate(M, gamma=gamma, gradient=gradient, slack=0.0 if active else None, working=working)
        act = None
        if active:  # the band at slack 0 holds z >= 0; the active set is z > 0
            pos = ev.band.margins > 0
            act = ActiveTriplets(ev.band.triplets.subset(pos), ev.band.margins[pos], 0.0)
        return ev.smoothed, ev.gradient, ev.objective, act

    # -- certificate ------------------------------------------------------------
    def lower_bound(self, alpha, objective_value: float | None = None, M=None):
        """Lower bound on the optimal value from a dual point ``alpha`` (see :mod:`.certificate`)."""
        from .certificate import lower_bound
        work = self.normalized()
        return lower_bound(work, self._as_weights(alpha), objective_value, self.to_normalized(M))

    def certificate(self, M, alpha=None, *, polish="auto", time_limit=None, **polish_options):
        """Duality-gap certificate of ``M``: objective, lower bound and gaps.

        Parameters
        ----------
        M : array-like (d, d)
            A PSD candidate metric.
        alpha : None, array (T,), TripletWeights, or a list of these
            Dual point(s) to bound with. An array needs enumerated triplets. Without
            one, the hinge indicator and smoothed-hinge weights at ``M`` are used.
        polish : bool or "auto"
            Also build a dual point by dual polishing (a small dual SDP over the
            triplets on the margin); ``"auto"`` polishes when
            ``d <= certificate.POLISH_MAX_DIM``.
        time_limit : float or None
            Seconds allowed for polishing (the cheap bounds are always computed).

        Returns
        -------
        Certificate
        """
        from .certificate import certify
        if alpha is None:
            cands = []
        elif isinstance(alpha, (list, tuple)):
            cands = [self._as_weights(a) for a in alpha]
        else:
            cands = [self._as_weights(alpha)]
        work = self.normalized()  # scale-free numbers: conic backends have absolute tolerances
        if work is not self:
            M = self.to_normalized(self.validate_metric(getattr(M, "M", M)))
        return certify(work, M, cands, polish=polish, time_limit=time_limit, **polish_options)

    def _as_weights(self, alpha) -> TripletWeights:
        from .certificate import DualAggregate
        if isinstance(alpha, DualAggregate):
            if np.shape(alpha.K) != np.shape(self.pull_matrix):
                raise ValueError(f"an aggregated dual point needs K of shape {np.shape(self.pull_matrix)}")
            return alpha
        if isinstance(alpha, TripletWeights):
            if alpha.triplets.n != self.n:
                raise ValueError("dual weights were built for a different data set")
            return alpha
        if not self.is_enumerated:
            raise ValueError("an alpha array needs enumerated triplets; pass TripletWeights instead")
        alpha = np.asarray(alpha, dtype=np.float64).ravel()
        if alpha.shape != (len(self.triplets),):
            raise ValueError(f"alpha must have one entry per triplet ({len(self.triplets)}), got {alpha.shape}")
        return TripletWeights(self.triplets, alpha)
