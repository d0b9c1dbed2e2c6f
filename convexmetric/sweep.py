"""One blockwise pass over every impostor triplet, without ever listing the triplets.

A triplet ``(i, j, l)`` with ``j`` the ``k``-th target of ``i`` has margin
``z = margin + t_ik - D_il``, where ``t_ik`` is the learned squared distance to the
target and ``D_il`` the one to the impostor. For a block ``B`` of anchors the pass

1. computes ``D_B`` against every candidate point by one matrix product (in float32 or
   float64), with the candidates' squared norms folded into the product;
2. keeps the pairs ``(i, l)`` of different classes with ``D_il`` below the radius
   ``max_k t_ik + margin (+ slack)`` by one comparison and one ``flatnonzero`` (the
   only work done on every entry of the block besides the product);
3. recomputes those candidates' distances exactly in float64, so every reported number
   is exact whatever the product's precision, and evaluates the hinge (or its Huber
   smoothing, width ``gamma``) for each target;
4. accumulates the loss, the count of active triplets, the pair weights
   ``W_il = sum_k h'(z_ilk)`` and ``c_ik = sum_l h'(z_ilk)``, the products that form
   ``sum_il W_il (x_i - x_l)(x_i - x_l)^T`` in graph-Laplacian form, and, when asked, the
   triplets with ``z > -slack`` (the margin band of working sets and certificates).

Points are processed in class-sorted order, so the same-class candidates of a run of
anchors are one contiguous slab of columns, blanked by a slice. Blocks are shared
among worker threads (NumPy releases the GIL in products and reductions), each with a
one-thread BLAS, so both cores stay busy in the per-entry work as well.

Memory is bounded by ``block_bytes`` per worker (the block's distance and mask arrays)
plus the candidates it keeps; nothing is of the size of the triplet set.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

#: Relative slack on product distances before the exact float64 re-check.
_GEMM_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-6}


def default_workers() -> int:
    """Worker threads for a pass: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class PassResult:
    """What one pass returns (arrays in the caller's point order).

    Attributes
    ----------
    loss : float
        ``sum_t h(z_t)`` over every triplet (hinge, or Huber of width ``gamma``).
    hinge : float
        ``sum_t [z_t]_+`` (equal to ``loss`` for the hinge).
    n_active : int
        Triplets with ``z_t > 0``.
    weight_sum : float
        ``sum_t h'(z_t)``: the mass of the dual point ``alpha_t = h'(z_t)``.
    target_weights : ndarray (n, k)
        ``c_ik = sum_l h'(z_ikl)``, the weight of target pair ``(i, T[i, k])``.
    impostor_matrix : ndarray (d, d) or None
        ``sum_il W_il (x_i - x_l)(x_i - x_l)^T`` with ``W_il = sum_k h'(z_ikl)``.
    band : tuple of arrays or None
        ``(anchor, slot, impostor, z)`` of every triplet with ``z > -slack``.
    n_candidates : int
        Pairs that passed the radius test (a measure of the per-pass work).
    """

    loss: float
    hinge: float
    n_active: int
    weight_sum: float
    target_weights: np.ndarray
    impostor_matrix: np.ndarray | None
    band: tuple | None
    n_candidates: int


def hinge_terms(z: np.ndarray, gamma: float):
    """``(sum h(z), sum [z]_+, h'(z))`` for the hinge (``gamma = 0``) or its Huber smoothing.

    ``h(z) = z^2 / (2 gamma)`` on ``[0, gamma]`` and ``z - gamma / 2`` above, so
    ``h'(z) = clip(z / gamma, 0, 1)``; for the hinge ``h'`` is the indicator of ``z > 0``.
    The exact hinge sum comes along so that one visit gives the true objective too.
    """
    zp = np.maximum(z, 0.0)
    hinge = float(zp.sum())
    if gamma > 0:
        smooth = float(np.sum(np.where(zp > gamma, zp - 0.5 * gamma, 0.5 * zp * zp / gamma)))
        return smooth, hinge, np.minimum(zp / gamma, 1.0)
    return hinge, hinge, (z > 0).astype(np.float64)


class _Accumulator:
    """One worker's running sums (no locking: each worker owns one)."""

    def __init__(self, n, k, d, gradient):
        self.loss = 0.0
        self.hinge = 0.0
        self.n_active = 0
        self.weight_sum = 0.0
        self.n_candidates = 0
        self.c = np.zeros((n, k))
        self.deg = np.zeros(n) if gradient else None          # row + column sums of W
        self.WX = np.zeros((n, d)) if gradient else None       # (W + W^T) X
        self.band = []


def sweep(Z, t, labels, margin, *, X=None, gamma: float = 0.0, slack: float | None = None,
          rows=None, column_class=None, block_bytes: int = 64 * 2**20, search_dtype=np.float64,
          workers: int | None = None) -> PassResult:
    """One pass over every impostor triplet (see the module docstring).

    Parameters
    ----------
    Z : ndarray (n, r)
        Points in the learned space used for impostor distances.
    t : ndarray (n, k)
        Learned squared distances to the targets (``-inf`` in empty slots).
    labels : ndarray (n,) of int
    margin : float
    X : ndarray (n, d), optional
        Input points: with it, the pass forms :attr:`PassResult.impostor_matrix`.
    gamma : float
        Huber width; 0 for the exact hinge.
    slack : float or None
        Also return the triplets with ``z > -slack`` (the band).
    rows : int array, optional
        Restrict the anchors to these points.
    column_class : int, optional
        Restrict the candidate impostors to this class (one metric per class: the
        caller passes that class's embedding).
    block_bytes : int
        Working memory of one worker's block.
    search_dtype : float32 or float64
        Precision of the distance product; candidates are re-checked in float64.
    workers : int, optional
        Worker threads (default: the usable cores).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, r = Z.shape
    t = np.asarray(t, dtype=np.float64)
    k = t.shape[1]
    labels = np.asarray(labels)
    dtype = np.dtype(search_dtype)
    gradient = X is not None
    d = X.shape[1] if gradient else 0
    want_band = slack is not None
    extra = float(slack) if want_band else 0.0

    order = np.argsort(labels, kind="stable")           # class-sorted working order
    lab = labels[order]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    cls_of_run = lab[starts]
    Zs = Z[order]
    ts = t[order]
    Xs = np.asarray(X, dtype=np.float64)[order] if gradient else None
    sq = np.einsum("ij,ij->i", Zs, Zs)
    with np.errstate(invalid="ignore"):
        radius = np.max(ts, axis=1) + margin + extra     # -inf: no target
    anchor_ok = np.isfinite(radius)
    if rows is not None:
        keep = np.zeros(n, bool)
        keep[np.asarray(rows, dtype=np.int64)] = True
        anchor_ok &= keep[order]
    if column_class is None:
        col_lo, col_hi = 0, n
    else:
        run = np.flatnonzero(cls_of_run == column_class)
        col_lo, col_hi = (int(starts[run[0]]), int(ends[run[0]])) if run.size else (0, 0)
        anchor_ok &= lab != column_class
    m = col_hi - col_lo
    acc_list = []
    if m == 0 or not anchor_ok.any():
        return _finish([_Accumulator(n, k, d, gradient)], order, Xs, gradient, want_band, n, k)

    # candidates' augmented coordinates: [z, -|z|^2 / 2] against [z_i, 1] gives z_i.z - |z|^2 / 2
    Zc_aug = np.empty((m, r + 1), dtype=dtype)
    Zc_aug[:, :r] = Zs[col_lo:col_hi]
    Zc_aug[:, r] = -0.5 * sq[col_lo:col_hi]
    rtol = _GEMM_RTOL[dtype]
    sq_max = float(sq[col_lo:col_hi].max())
    per_row = m * (dtype.itemsize + 1) + 16
    block = int(max(1, min(4096, block_bytes // per_row)))
    anchors = np.flatnonzero(anchor_ok)
    blocks = [anchors[s:s + block] for s in range(0, anchors.size, block)]
    n_workers = max(1, min(int(workers or default_workers()), len(blocks)))

    ctx = dict(Zs=Zs, Zc_aug=Zc_aug, sq=sq, ts=ts, Xs=Xs, radius=radius, lab=lab, starts=starts, ends=ends,
               col_lo=col_lo, col_hi=col_hi, margin=float(margin), gamma=float(gamma), slack=extra,
               want_band=want_band, rtol=rtol, sq_max=sq_max, dtype=dtype, column_class=column_class)
    if n_workers == 1:
        acc = _Accumulator(n, k, d, gradient)
        for b in blocks:
            _process_block(b, acc, ctx)
        acc_list.append(acc)
    else:
        from threadpoolctl import threadpool_limits
        lock = threading.Lock()
        queue = iter(blocks)

        def work():
            acc = _Accumulator(n, k, d, gradient)
            while True:
                with lock:
                    b = next(queue, None)
                if b is None:
                    return acc
                _process_block(b, acc, ctx)

        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_workers) as pool:
            acc_list = [f.result() for f in [pool.submit(work) for _ in range(n_workers)]]
    return _finish(acc_list, order, Xs, gradient, want_band, n, k)


def _process_block(rows, acc: _Accumulator, c: dict) -> None:
    """Radius test, exact re-check and hinge work for one block of anchors (sorted order)."""
    Zs, sq, ts, radius, margin = c["Zs"], c["sq"], c["ts"], c["radius"], c["margin"]
    col_lo, col_hi = c["col_lo"], c["col_hi"]
    dtype = c["dtype"]
    nb, m = rows.size, col_hi - col_lo
    Zr = np.empty((nb, Zs.shape[1] + 1), dtype=dtype)
    Zr[:, :-1] = Zs[rows]
    Zr[:, -1] = 1.0
    G = Zr @ c["Zc_aug"].T                    # z_i.z_l - |z_l|^2 / 2 = (|z_i|^2 - D_il) / 2
    # D_il < radius_i + tol_i  <=>  G_il > (|z_i|^2 - radius_i - tol_i) / 2
    tol = 4 * c["rtol"] * (sq[rows] + c["sq_max"]) + 1e-12 * np.abs(radius[rows])
    thr = (0.5 * (sq[rows] - radius[rows] - tol)).astype(dtype)
    mask = G > thr[:, None]
    del G
    if c["column_class"] is None:             # blank the same-class slab of each run of anchors
        lab_r = c["lab"][rows]
        cuts = np.flatnonzero(np.diff(lab_r)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [nb]])):
            cls_run = np.searchsorted(c["lab"][c["starts"]], lab_r[lo])
            mask[lo:hi, c["starts"][cls_run] - col_lo:c["ends"][cls_run] - col_lo] = False
    flat = np.flatnonzero(mask)
    del mask
    if flat.size == 0:
        return
    r_loc, cc = np.divmod(flat, m)
    a = rows[r_loc]
    l = cc + col_lo
    diff = Zs[a] - Zs[l]
    D = np.einsum("ij,ij->i", diff, diff)     # exact float64 distances of the candidates
    keep = D < radius[a]
    if not keep.all():
        a, l, r_loc, D = a[keep], l[keep], r_loc[keep], D[keep]
    acc.n_candidates += a.size
    if a.size == 0:
        return
    z = margin + ts[a] - D[:, None]           # (candidates, k); -inf in empty slots
    acc.n_active += int(np.count_nonzero(z > 0))
    loss, hinge, w = hinge_terms(z, c["gamma"])
    acc.loss += loss
    acc.hinge += hinge
    acc.weight_sum += float(w.sum())
    for s in range(w.shape[1]):
        acc.c[rows, s] += np.bincount(r_loc, w[:, s], minlength=nb)
    if c["want_band"]:
        ii, ss = np.nonzero(z > -c["slack"])
        acc.band.append((a[ii], ss, l[ii], z[ii, ss]))
    if acc.WX is not None:
        W = w.sum(axis=1)
        nz = W > 0
        if nz.any():
            l_nz, W_nz, r_nz = l[nz], W[nz], r_loc[nz]
            Xs = c["Xs"]
            acc.deg[rows] += np.bincount(r_nz, W_nz, minlength=nb)
            # W X for the block's rows and W^T X_B for the columns it touches, as sparse products
            ucols, inv = np.unique(l_nz, return_inverse=True)
            acc.deg[ucols] += np.bincount(inv, W_nz, minlength=ucols.size)
            indptr = np.searchsorted(r_nz, np.arange(nb + 1))
            Wb = sp.csr_matrix((W_nz, inv, indptr), shape=(nb, ucols.size))
            acc.WX[rows] += Wb @ Xs[ucols]
            acc.WX[ucols] += Wb.T @ Xs[rows]


def _finish(accs, order, Xs, gradient, want_band, n, k) -> PassResult:
    first = accs[0]
    for other in accs[1:]:
        first.loss += other.loss
        first.hinge += other.hinge
        first.n_active += other.n_active
        first.weight_sum += other.weight_sum
        first.n_candidates += other.n_candidates
        first.c += other.c
        if gradient:
            first.deg += other.deg
            first.WX += other.WX
        first.band += other.band
    c = np.empty((n, k))
    c[order] = first.c
    imp = None
    if gradient:
        LX = first.deg[:, None] * Xs - first.WX        # (diag(deg) - W - W^T) X, sorted order
        imp = Xs.T @ LX
        imp = 0.5 * (imp + imp.T)
    band = None
    if want_band:
        parts = first.band
        if parts:
            a, s, l, z = (np.concatenate([p[q] for p in parts]) for q in range(4))
            band = (order[a], s.astype(np.int64), order[l], z)
        else:
            e = np.empty(0, np.int64)
            band = (e, e.copy(), e.copy(), np.empty(0))
    return PassResult(loss=first.loss, hinge=first.hinge, n_active=first.n_active, weight_sum=first.weight_sum,
                      target_weights=c, impostor_matrix=imp, band=band, n_candidates=first.n_candidates)


# -- the two ways a problem visits its triplets ------------------------------------------------
@dataclass
class Evaluation:
    """One visit of a problem's triplets at a metric (see :class:`EnumeratedSweep`, :class:`BlockSweep`).

    ``loss``, ``hinge`` and ``n_active`` as in :class:`PassResult`; ``weight_sum = sum_t h'(z_t)``;
    ``K = sum_t h'(z_t) A_t`` in the metric's shape (None unless asked); ``band`` the
    triplets with ``z_t > -slack`` as :class:`~convexmetric.triplets.ActiveTriplets`
    (None unless asked).
    """

    loss: float
    hinge: float
    n_active: int
    weight_sum: float
    K: np.ndarray | None
    band: object | None


class EnumeratedSweep:
    """Visit a listed set of triplets (small problems, and working sets of large ones)."""

    def __init__(self, problem, triplets):
        self.problem = problem
        self.triplets = triplets

    def evaluate(self, emb, *, gamma=0.0, slack=None, gradient=False, anchors=None) -> Evaluation:
        from .triplets import ActiveTriplets
        p, ts = self.problem, self.triplets
        if anchors is not None:  # keys are sorted by anchor: take contiguous slices
            anchors = np.unique(np.asarray(anchors, dtype=np.int64))
            lo = np.searchsorted(ts.anchor, anchors, "left")
            hi = np.searchsorted(ts.anchor, anchors, "right")
            cnt = hi - lo
            ts = ts.subset(np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(cnt.sum()))
        z = p._margins_of(emb, ts)
        loss, hinge, w = hinge_terms(z, gamma)
        K = p.weighted_sum(ts, w) if gradient else None
        band = None
        if slack is not None:
            keep = z > -slack
            band = ActiveTriplets(ts.subset(keep), z[keep], float(slack))
        return Evaluation(loss, hinge, int(np.count_nonzero(z > 0)), float(w.sum()), K, band)


class BlockSweep:
    """Visit every triplet implicitly by the blockwise pass :func:`sweep` (large problems).

    A problem with one metric per class runs one pass per class: the candidates of class
    ``c`` are measured in ``M_c``, the targets in the anchor's own metric.
    """

    def __init__(self, problem, workers=None):
        self.problem = problem
        self.workers = workers

    def evaluate(self, emb, *, gamma=0.0, slack=None, gradient=False, anchors=None) -> Evaluation:
        from .problem import _laplacian_product
        from .triplets import ActiveTriplets, TripletSet
        p = self.problem
        t = np.where(p.targets >= 0, p.target_sq_dists(emb), -np.inf)
        common = dict(gamma=gamma, slack=slack, rows=anchors, block_bytes=p.block_bytes,
                      search_dtype=p.search_dtype, workers=self.workers, X=p.X if gradient else None)
        stacked = p.n_metrics > 1
        if stacked:
            runs = [(c, sweep(emb.Z[c], t, p.labels, p.margin, column_class=c, **common))
                    for c in range(p.n_metrics)]
        else:
            runs = [(None, sweep(emb.Z, t, p.labels, p.margin, **common))]
        loss = sum(r.loss for _, r in runs)
        hinge = sum(r.hinge for _, r in runs)
        n_active = sum(r.n_active for _, r in runs)
        wsum = sum(r.weight_sum for _, r in runs)
        K = None
        if gradient:
            cw = sum(r.target_weights for _, r in runs)[p.targets >= 0]
            if stacked:
                owner = p.labels[p._pull_a]
                K = np.stack([_laplacian_product(p.X, p._pull_a[owner == c], p._pull_b[owner == c], cw[owner == c])
                              for c in range(p.n_metrics)])
                for c, r in runs:
                    K[c] -= r.impostor_matrix
            else:
                K = _laplacian_product(p.X, p._pull_a, p._pull_b, cw) - runs[0][1].impostor_matrix
        band = None
        if slack is not None:
            a, s, l, z = (np.concatenate([r.band[q] for _, r in runs]) for q in range(4))
            keys = (a * p.n + p.targets[a, s]) * p.n + l
            order = np.argsort(keys, kind="stable")
            band = ActiveTriplets(TripletSet.from_keys(keys[order], p.n), z[order], float(slack))
        return Evaluation(loss, hinge, n_active, wsum, K, band)
