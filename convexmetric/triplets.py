"""Triplet sets stored as a table of point pairs plus two indices per triplet.

A triplet ``t = (i, j, l)`` stands for ``A_t = C_ij - C_il`` with
``C_ab = (x_a - x_b)(x_a - x_b)^T``. Many triplets share a pair, so the pairs are
kept once (unordered, ``a < b``, since ``C_ab = C_ba``) and each triplet holds the
index of its target pair ``(i, j)`` and of its impostor pair ``(i, l)``. All
computations are then O(#pairs * d + T), never O(T * d^2).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


class TripletSet:
    """An immutable set of triplets ``(i, j, l)`` over ``n`` points.

    Triplets are kept sorted by their canonical key ``(i * n + j) * n + l`` and
    unique, so two sets holding the same triplets compare equal element-wise and
    set operations are merges of sorted integer arrays.

    Parameters
    ----------
    anchor, target, impostor : array-like of int
        The points ``i``, ``j`` and ``l`` of each triplet.
    n : int
        Number of points in the data set.
    """

    def __init__(self, anchor, target, impostor, n: int):
        if n >= 2_000_000:
            raise ValueError("TripletSet keys support at most 2 000 000 points")
        a = np.asarray(anchor, dtype=np.int64).ravel()
        j = np.asarray(target, dtype=np.int64).ravel()
        l = np.asarray(impostor, dtype=np.int64).ravel()
        if not (a.shape == j.shape == l.shape):
            raise ValueError("anchor, target and impostor must have the same length")
        self.n = int(n)
        keys = np.unique((a * n + j) * n + l)
        self._set_keys(keys)

    @classmethod
    def from_keys(cls, keys: np.ndarray, n: int) -> "TripletSet":
        """Build from canonical keys that are already sorted and unique."""
        obj = cls.__new__(cls)
        obj.n = int(n)
        obj._set_keys(np.asarray(keys, dtype=np.int64))
        return obj

    @classmethod
    def empty(cls, n: int) -> "TripletSet":
        return cls.from_keys(np.empty(0, dtype=np.int64), n)

    def _set_keys(self, keys: np.ndarray) -> None:
        self.keys = keys
        n = self.n
        self.impostor = keys % n
        ij = keys // n
        self.target = ij % n
        self.anchor = ij // n

    def __len__(self) -> int:
        return int(self.keys.size)

    def __repr__(self) -> str:
        return f"TripletSet({len(self)} triplets, {self.n_pairs} pairs, n={self.n})"

    # -- pair table -------------------------------------------------------------
    @cached_property
    def _pair_table(self):
        n = self.n
        i, j, l = self.anchor, self.target, self.impostor
        tk = np.minimum(i, j) * n + np.maximum(i, j)
        ik = np.minimum(i, l) * n + np.maximum(i, l)
        pkeys, inverse = np.unique(np.concatenate([tk, ik]), return_inverse=True)
        T = len(self)
        return (np.stack([pkeys // n, pkeys % n], axis=1), inverse[:T].astype(np.int64),
                inverse[T:].astype(np.int64))

    @property
    def pairs(self) -> np.ndarray:
        """Unique unordered pairs ``(a, b)``, ``a < b``, shape ``(m, 2)``."""
        return self._pair_table[0]

    @property
    def target_pair(self) -> np.ndarray:
        """Index into :attr:`pairs` of each triplet's target pair ``(i, j)``."""
        return self._pair_table[1]

    @property
    def impostor_pair(self) -> np.ndarray:
        """Index into :attr:`pairs` of each triplet's impostor pair ``(i, l)``."""
        return self._pair_table[2]

    @cached_property
    def pair_indptr(self) -> np.ndarray:
        """CSR row pointers of the pairs' first points (pairs are sorted by ``(a, b)``)."""
        return np.searchsorted(self.pairs[:, 0], np.arange(self.n + 1)).astype(np.int64)

    @property
    def n_pairs(self) -> int:
        return int(self.pairs.shape[0])

    def pair_weights(self, alpha: np.ndarray) -> np.ndarray:
        """Weights ``beta`` with ``sum_t alpha_t A_t = sum_p beta_p C_p``."""
        alpha = np.asarray(alpha, dtype=np.float64)
        m = self.n_pairs
        return (np.bincount(self.target_pair, alpha, minlength=m)
                - np.bincount(self.impostor_pair, alpha, minlength=m))

    # -- set operations ---------------------------------------------------------
    def subset(self, mask_or_index) -> "TripletSet":
        """Triplets selected by a boolean mask or sorted index array.

        When this set's pair table is built and the subset is not tiny beside it, the
        subset's table is taken from it by a linear relabelling instead of a new sort
        (the minibatch and certificate paths take several subsets of each set).
        """
        child = TripletSet.from_keys(self.keys[mask_or_index], self.n)
        table = self.__dict__.get("_pair_table")
        if table is not None and 16 * len(child) >= len(table[0]):
            pairs, target_pair, impostor_pair = table
            target_pair, impostor_pair = target_pair[mask_or_index], impostor_pair[mask_or_index]
            used = np.zeros(len(pairs), dtype=bool)
            used[target_pair] = True
            used[impostor_pair] = True
            relabel = np.cumsum(used, dtype=np.int64) - 1      # pairs stay sorted: the used ones keep their order
            child.__dict__["_pair_table"] = (pairs[used], relabel[target_pair], relabel[impostor_pair])
        return child

    def union(self, other: "TripletSet") -> "TripletSet":
        self._check_same_n(other)
        return TripletSet.from_keys(np.union1d(self.keys, other.keys), self.n)

    def difference(self, other: "TripletSet") -> "TripletSet":
        self._check_same_n(other)
        return TripletSet.from_keys(np.setdiff1d(self.keys, other.keys, assume_unique=True), self.n)

    def isin(self, other: "TripletSet") -> np.ndarray:
        """Boolean mask: which of these triplets are also in ``other``."""
        self._check_same_n(other)
        return np.isin(self.keys, other.keys, assume_unique=True)

    def _check_same_n(self, other: "TripletSet") -> None:
        if other.n != self.n:
            raise ValueError(f"triplet sets over different data sizes ({self.n} vs {other.n})")


class TripletWeights:
    """Dual weights ``alpha_t`` in [0, 1] on a set of triplets (zero elsewhere).

    This is how a dual point is passed to :meth:`LMNNProblem.certificate` when the
    triplets are not enumerated: only the support needs to be stored.
    """

    def __init__(self, triplets: TripletSet, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.shape != (len(triplets),):
            raise ValueError(f"need one weight per triplet ({len(triplets)}), got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("dual weights contain NaN or infinite values")
        self.triplets = triplets
        self.values = values

    def __len__(self) -> int:
        return len(self.triplets)

    def __repr__(self) -> str:
        return f"TripletWeights({len(self)} triplets, sum={self.values.sum():.6g})"

    def clipped(self) -> "TripletWeights":
        """Weights clipped to the dual box [0, 1]."""
        return TripletWeights(self.triplets, np.clip(self.values, 0.0, 1.0))


@dataclass(frozen=True)
class ActiveTriplets:
    """Triplets whose margin ``z_t = margin + d_M(i,j) - d_M(i,l)`` exceeds ``-slack``, with their margins."""

    triplets: TripletSet
    margins: np.ndarray
    slack: float

    def __len__(self) -> int:
        return len(self.triplets)
