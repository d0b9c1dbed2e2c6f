"""Multi-metric LMNN (JMLR 2009 §5.3): one metric per class, learned jointly.

The distance from a point ``x_i`` to ``x_j`` is measured in the metric of ``x_j``'s
class, ``d(i, j) = (x_i - x_j)^T M_{y_j} (x_i - x_j)``. Target pairs share the
anchor's class; an impostor pair ``(i, l)`` is measured in ``M_{y_l}``. The objective

``f(M_1..M_C) = (1 - mu) sum_c <P_c, M_c> + mu sum_t [margin + <C_ij, M_{y_i}> - <C_il, M_{y_l}>]_+``

is linear-plus-hinge in the stack ``(M_1, ..., M_C)``, so the problem stays convex, the
dual slack ``S(alpha)`` is block diagonal (``S_c = (1 - mu) P_c + mu K_c(alpha)``) and
the same certificates apply with ``kappa = min_c lambda_min(K_c, P_c)``. A metric here
is an array of shape ``(C, d, d)`` in the order of :attr:`classes`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import psd
from .neighbors import exact_sq_dists
from .problem import LMNNProblem, _laplacian_product
from .triplets import TripletSet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackedEmbedding:
    """A stack of PSD metrics prepared for evaluation: ``Z[c] = X @ L[c].T``; ``min_eig_ratio``
    is the smallest over the classes factored by eigendecomposition (NaN if none was)."""

    M: np.ndarray
    L: list
    Z: list
    min_eig_ratio: float


class MultiMetricProblem(LMNNProblem):
    """LMNN with one PSD metric per class (a metric is a ``(C, d, d)`` stack).

    Takes the same parameters as :class:`~convexmetric.LMNNProblem`; target neighbours
    and triplets are the same, only the metric each distance is measured in changes.
    Every solver except ``factored`` accepts it, and certificates (dual polishing
    included) work as for one metric, with one PSD block per class.
    """

    @property
    def n_metrics(self) -> int:
        return int(self.classes.size)

    def __repr__(self) -> str:
        return "Multi" + super().__repr__()

    # -- metric shape -------------------------------------------------------------
    def identity_metric(self) -> np.ndarray:
        return np.tile(np.eye(self.d), (self.n_metrics, 1, 1))

    def validate_metric(self, M, name: str = "M") -> np.ndarray:
        """Accept a ``(C, d, d)`` stack, or one ``(d, d)`` metric used for every class."""
        M = np.asarray(M, dtype=np.float64)
        if M.ndim == 2:
            return np.tile(psd.check_square(M, self.d, name), (self.n_metrics, 1, 1))
        if M.shape != (self.n_metrics, self.d, self.d):
            raise ValueError(f"{name} must have shape ({self.n_metrics}, {self.d}, {self.d}) "
                             f"(one metric per class) or ({self.d}, {self.d}), got {M.shape}")
        return np.stack([psd.check_square(Mc, self.d, f"{name}[{c}]") for c, Mc in enumerate(M)])

    # -- per-class pull matrices --------------------------------------------------
    def _check_pull_rank(self):
        """Per-class pull matrices ``P_c`` and their ranges (see the base class)."""
        owner = self.labels[self._pull_a]
        C, d = self.classes.size, self.d
        self.pull_matrix = np.stack([
            _laplacian_product(self.X, self._pull_a[owner == c], self._pull_b[owner == c],
                               np.ones(int(np.sum(owner == c)))) if np.any(owner == c) else np.zeros((d, d))
            for c in range(C)])
        self._pull_basis, self._pull_eigs, self._pull_null = [], [], []
        definite = True
        Xc = self.X - self.X.mean(0)
        for P in self.pull_matrix:
            w, V = np.linalg.eigh(P)
            keep = w > 1e-12 * max(w[-1], 1e-300)
            self._pull_basis.append(V[:, keep])
            self._pull_eigs.append(w[keep])
            null = V[:, ~keep]
            self._pull_null.append(null)
            if null.shape[1] and np.linalg.norm(Xc @ null) > 1e-10 * max(np.linalg.norm(Xc), 1e-300):
                definite = False
        self._pull_definite = definite
        self.pull_matrix.setflags(write=False)

    def targets_in_metric(self, M):
        """Not defined for a stack of metrics (each class would pick its targets in its own)."""
        raise NotImplementedError("targets_in_metric takes one metric; multi-pass learning of a "
                                  "multi-metric problem is not supported")

    # -- evaluation ---------------------------------------------------------------
    def embed(self, M) -> StackedEmbedding:
        """Validate a stack of metrics and factor each as ``L_c.T @ L_c``."""
        if isinstance(M, StackedEmbedding):
            return M
        M = self.validate_metric(M)
        Ls, ratios = zip(*(psd.psd_factor(Mc) for Mc in M))
        ratio = min((r for r in ratios if not np.isnan(r)), default=float("nan"))
        if ratio < -psd.PSD_RTOL:
            raise ValueError(
                f"a class metric is not positive semidefinite (lambda_min / max|lambda| = {ratio:.3g}); "
                "project it first with convexmetric.psd.project_psd")
        if ratio < 0:
            M = np.stack([psd.symmetrize(L.T @ L) if r < 0 else Mc for L, r, Mc in zip(Ls, ratios, M)])
        return StackedEmbedding(M=M, L=list(Ls), Z=[self.X @ L.T for L in Ls], min_eig_ratio=ratio)

    def _embed_factors(self, factors) -> StackedEmbedding:
        """The embedding of the stack ``L_c.T @ L_c`` from one factor ``L_c`` per class."""
        Ls = [np.asarray(L, dtype=np.float64) for L in factors]
        return StackedEmbedding(M=np.stack([psd.metric_from_components(L) for L in Ls]), L=Ls,
                                Z=[self.X @ L.T for L in Ls], min_eig_ratio=0.0)

    def owned_pairs(self, triplets: TripletSet):
        """Ordered pairs ``(a, b)`` with the class ``owner`` whose metric measures them.

        A target pair ``(i, j)`` is measured in ``M_{y_i}``; an impostor pair ``(i, l)``
        in ``M_{y_l}``. Cached on the (immutable) triplet set.
        """
        cached = getattr(triplets, "_owned_pairs", None)
        if cached is not None:
            return cached
        n, C = self.n, self.n_metrics
        i, j, l = triplets.anchor, triplets.target, triplets.impostor
        keys = np.concatenate([(i * n + j) * C + self.labels[i], (i * n + l) * C + self.labels[l]])
        uniq, inv = np.unique(keys, return_inverse=True)
        T = len(triplets)
        ab, owner = uniq // C, uniq % C
        out = (ab // n, ab % n, owner, inv[:T].astype(np.int64), inv[T:].astype(np.int64))
        triplets._owned_pairs = out
        return out

    def _pair_dists(self, emb: StackedEmbedding, a, b, owner) -> np.ndarray:
        out = np.empty(a.size)
        for c in np.unique(owner):
            idx = np.flatnonzero(owner == c)
            out[idx] = exact_sq_dists(emb.Z[c], a[idx], b[idx])
        return out

    def _margins_of(self, emb: StackedEmbedding, ts: TripletSet) -> np.ndarray:
        if len(ts) == 0:
            return np.empty(0)
        a, b, owner, tp, ip = self.owned_pairs(ts)
        dist = self._pair_dists(emb, a, b, owner)
        return self.margin + dist[tp] - dist[ip]

    def target_sq_dists(self, M) -> np.ndarray:
        emb = self.embed(M)
        out = np.full(self.targets.shape, np.nan)
        valid = self.targets >= 0
        out[valid] = self._pair_dists(emb, self._pull_a, self._pull_b, self.labels[self._pull_a])
        return out

    def weighted_sum(self, triplets: TripletSet, alpha) -> np.ndarray:
        """``sum_t alpha_t A_t`` as a ``(C, d, d)`` stack (block ``c``: pairs owned by ``c``)."""
        C, d = self.n_metrics, self.d
        out = np.zeros((C, d, d))
        if len(triplets) == 0:
            return out
        a, b, owner, tp, ip = self.owned_pairs(triplets)
        alpha = np.asarray(alpha, dtype=np.float64)
        beta = np.bincount(tp, alpha, minlength=a.size) - np.bincount(ip, alpha, minlength=a.size)
        for c in np.unique(owner):
            idx = np.flatnonzero(owner == c)
            out[c] = _laplacian_product(self.X, a[idx], b[idx], beta[idx])
        return out
