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
one-thread BLAS, so both cores stay busy in the per-entry work as well. Each block writes
only its own anchors' rows and keeps its other sums, which are added up in block order,
so a pass gives the same bits for any number of workers and however the threads are
scheduled.

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

def _gemm_rtol(dtype, r: int) -> float:
    """Relative slack on product distances before the exact float64 re-check.

    A dot product of length ``r + 1`` in precision ``u`` (unit round-off) errs by at most
    ``(r + 1) u / (1 - (r + 1) u)`` times ``|x|^T |y|``, which for the augmented vectors
    is at most ``|z_i|^2 + |z_l|^2``; twice that (the distance is twice the product's
    scale), with room for rounding the norms and the threshold, is ``2.2 (r + 3) u``.
    No candidate inside the radius can be lost, in float32 as in float64 (floor 1e-10).
    """
    u = np.finfo(dtype).eps / 2
    return max(2.2 * (r + 3) * u, 1e-10)


#: Below this many anchor-candidate entries (or working-set pairs) a pass runs on one
#: thread: measured on two cores, a second thread gained nothing up to n = 3 000 points
#: (1 500 x 64: 500 vs 519 ms) and 1.5x at n = 6 000 (9.1 s vs 6.2 s); see
#: ``benchmarks/defaults.py``.
PARALLEL_MIN_ENTRIES = 10_000_000

#: Most impostor pairs a pass keeps as a working set (``keep_pairs``): 16 bytes each,
#: so 800 MB. Above it the pass returns no working set (``pairs is None``) and the
#: solver keeps to full passes: where so many pairs lie near the radius (heavily
#: overlapping classes), a working set would save little and could exhaust memory.
#: Full MNIST keeps about 800 000.
MAX_KEPT_PAIRS = 50_000_000


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
    pairs: PairSet | None = None
    #: impostor pairs within the ``keep_pairs`` radius (counted even when ``pairs`` is
    #: ``None`` because there were more than ``max_pairs``)
    n_pairs: int = 0
    #: ``(scales, count, delta_sum)``: at ``s = scales[g]``, ``count[g]`` triplets are active
    #: along ``s M`` and their ``t - D`` sum to ``delta_sum[g]`` (see ``scales=``)
    scale_profile: tuple | None = None


def hinge_terms(z, gamma: float, xp=np):
    """``(sum h(z), sum [z]_+, h'(z))`` for the hinge (``gamma = 0``) or its Huber smoothing.

    ``h(z) = z^2 / (2 gamma)`` on ``[0, gamma]`` and ``z - gamma / 2`` above, so
    ``h'(z) = clip(z / gamma, 0, 1)``; for the hinge ``h'`` is the indicator of ``z > 0``.
    The exact hinge sum comes along so that one visit gives the true objective too.
    ``xp`` is the array namespace (array API standard functions only).
    """
    zp = xp.where(z > 0, z, xp.zeros_like(z))   # also maps -inf (empty slots) to 0
    hinge = float(xp.sum(zp))
    if gamma > 0:
        smooth = float(xp.sum(xp.where(zp > gamma, zp - 0.5 * gamma, 0.5 * zp * zp / gamma)))
        return smooth, hinge, xp.clip(zp / gamma, 0.0, 1.0)
    return hinge, hinge, xp.astype(z > 0, z.dtype)


_BUFFERS = threading.local()
_POOL = {"pool": None}


def _worker_pool(n: int) -> ThreadPoolExecutor:
    """A thread pool kept between passes (its threads keep their block buffers)."""
    pool = _POOL["pool"]
    if pool is None or pool._max_workers < n:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = _POOL["pool"] = ThreadPoolExecutor(n, thread_name_prefix="convexmetric-pass")
    return pool


def _block_buffers(nb, m, dtype):
    """This thread's block product and mask arrays, kept between passes.

    Fresh pages cost more than the product itself (measured: a new float64 block of
    4096 x 20 000 took 1.4 s to fill against 0.36 s for a reused one), so each thread
    keeps the largest it has needed.
    """
    cur = getattr(_BUFFERS, "arrays", None)
    if cur is None or cur[0].dtype != dtype or cur[0].size < nb * m:
        cur = (np.empty(nb * m, dtype=dtype), np.empty(nb * m, dtype=bool))
        _BUFFERS.arrays = cur
    return cur[0][:nb * m].reshape(nb, m), cur[1][:nb * m].reshape(nb, m)


class _Accumulator:
    """One task's sums, so that a pass adds them up in task order whoever ran the task.

    The rows a task owns (its block of anchors) are written straight into the pass's
    shared arrays ``c``, ``deg`` and ``WX``: no two tasks own a row, so those entries do
    not depend on the workers. The degrees of the impostor columns it touches wait here
    until every earlier task's have been added (:meth:`_PassArrays.done`); the rest (the
    scalars, the band, the kept pairs, the scale profile) until :func:`_finish` sums the
    tasks in order. So the pass's floating-point result is the same bits for any number
    of workers and any thread timing.
    """

    def __init__(self, shared):
        self.loss = 0.0
        self.hinge = 0.0
        self.n_active = 0
        self.weight_sum = 0.0
        self.n_candidates = 0
        self.c = shared.c                   # (n, k), this task's rows only
        self.deg = shared.deg               # row sums of W, this task's rows only
        self.WX = shared.WX                 # W X, this task's rows only
        self.column_deg = []                # (columns, column sums of W) per chunk
        self.band = []
        self.pairs = []
        self.pair_budget = shared           # the pass-wide count of kept pairs
        self.profile_pos = np.zeros(2)
        self.profile_count = 0
        self.profile_delta = 0.0


class _PassArrays:
    """The arrays of a pass that tasks write by rows, the impostor columns' degrees added in
    task order, and the pass-wide count of kept pairs."""

    def __init__(self, n, k, d, gradient, max_pairs):
        self.c = np.zeros((n, k))
        self.deg = np.zeros(n) if gradient else None             # row sums of W
        self.column_deg = np.zeros(n) if gradient else None      # column sums of W
        self.WX = np.zeros((n, d)) if gradient else None
        self.max_pairs = max_pairs
        self.n_pairs = 0
        self._lock = threading.Lock()
        self._waiting = {}          # finished tasks whose column degrees wait for earlier tasks
        self._next = 0

    def done(self, index: int, acc) -> None:
        """Task ``index`` has finished: add the column degrees of every finished task up to the
        first unfinished one, in task order. Only tasks that finished ahead of an earlier one
        hold theirs meanwhile (a few blocks' worth), not the whole pass."""
        with self._lock:
            self._waiting[index] = acc
            while self._next in self._waiting:
                ready = self._waiting.pop(self._next)
                for cols, sums in ready.column_deg:
                    self.column_deg[cols] += sums
                ready.column_deg = []
                self._next += 1

    def keep(self, count: int) -> bool:
        """Count ``count`` more kept pairs; False once the pass holds more than ``max_pairs``."""
        with self._lock:
            self.n_pairs += count
            return self.n_pairs <= self.max_pairs


@dataclass(frozen=True)
class PairSet:
    """A working set of impostor pairs ``(i, l)``, kept in the pass's class-sorted order.

    :func:`sweep` returns one (``keep_pairs``): the pairs within the radius extended by a
    slack. Passing it back as ``pairs=`` evaluates only those pairs: no distance product,
    exact whenever every impostor pair with an active triplet is in the set.
    """

    anchor: np.ndarray      # sorted-order indices, ascending
    impostor: np.ndarray
    order: np.ndarray       # the class-sorted order they refer to
    slack: float

    def __len__(self) -> int:
        return int(self.anchor.size)


def _class_order(labels):
    order = np.argsort(labels, kind="stable")
    lab = labels[order]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    return order, lab, np.concatenate([[0], bounds]), np.concatenate([bounds, [labels.size]])


def sweep(Z, t, labels, margin, *, X=None, gamma: float = 0.0, slack: float | None = None,
          keep_pairs: float | None = None, pairs: PairSet | None = None, rows=None, column_class=None,
          scales=None, block_bytes: int = 64 * 2**20, search_dtype=np.float64,
          workers: int | None = None, backend=None, device=None, max_pairs: int | None = None) -> PassResult:
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
    keep_pairs : float or None
        Also return the impostor pairs with ``D_il < max_k t_ik + margin + keep_pairs``
        as a :class:`PairSet` (a working set for later passes with ``pairs=``), or
        ``None`` when there are more than ``max_pairs`` (:attr:`PassResult.n_pairs`
        says how many).
    pairs : PairSet, optional
        Evaluate only these pairs (no product; exact while the set holds every pair
        with an active triplet).
    scales : increasing array, optional
        Profile the metric's multiples ``s M`` for ``s`` on this grid: along ``s M`` every
        margin ``margin + s (t - D)`` is linear in ``s``, so one pass counts, for each
        grid point, the triplets active there and the sum of their ``t - D``
        (:attr:`PassResult.scale_profile`). The radius covers every triplet active at
        ``scales[0]``.
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
        Worker threads (default: one below :data:`PARALLEL_MIN_ENTRIES` entries, else the
        usable cores).
    backend, device : array namespace and device, optional
        Run the pass on another array library (PyTorch or CuPy on a GPU, or any array
        API namespace) by the dense block form (:func:`_sweep_dense`); the inputs are
        NumPy arrays and so are the outputs. Default: NumPy, by the sparse form above.
    max_pairs : int, optional
        Largest working set returned (default :data:`MAX_KEPT_PAIRS`); memory for the
        kept pairs stays within about ``16 * max_pairs`` bytes (counted over the whole pass).
    """
    max_pairs = MAX_KEPT_PAIRS if max_pairs is None else int(max_pairs)
    if backend is not None and not _is_numpy(backend):
        return _sweep_dense(backend, device, Z, t, labels, margin, X=X, gamma=gamma, slack=slack,
                            keep_pairs=keep_pairs, pairs=pairs, rows=rows, column_class=column_class,
                            scales=scales, block_bytes=block_bytes, max_pairs=max_pairs)
    Z = np.asarray(Z, dtype=np.float64)
    n, r = Z.shape
    t = np.asarray(t, dtype=np.float64)
    k = t.shape[1]
    labels = np.asarray(labels)
    dtype = np.dtype(search_dtype)
    gradient = X is not None
    d = X.shape[1] if gradient else 0
    want_band = slack is not None
    extra = max(float(slack) if want_band else 0.0, float(keep_pairs) if keep_pairs is not None else 0.0)
    if scales is not None:
        scales = np.asarray(scales, dtype=np.float64)
        if scales.ndim != 1 or scales.size == 0 or scales[0] <= 0 or np.any(np.diff(scales) <= 0):
            raise ValueError("scales must be a positive increasing grid")
        extra = max(extra, margin / scales[0] - margin)

    order, lab, starts, ends = _class_order(labels)
    if np.all(np.diff(labels) >= 0):  # already class-sorted (e.g. a Dask task's data): no copies
        Zs, ts, Xs = Z, t, (np.asarray(X, dtype=np.float64) if gradient else None)
    else:
        Zs, ts = Z[order], t[order]
        Xs = np.asarray(X, dtype=np.float64)[order] if gradient else None
    sq = np.einsum("ij,ij->i", Zs, Zs)
    with np.errstate(invalid="ignore"):
        tmax = np.max(ts, axis=1)                        # -inf: no target
    anchor_ok = np.isfinite(tmax)
    if rows is not None:
        keep = np.zeros(n, bool)
        keep[np.asarray(rows, dtype=np.int64)] = True
        anchor_ok &= keep[order]
    if column_class is None:
        col_lo, col_hi = 0, n
    else:
        run = np.flatnonzero(lab[starts] == column_class)
        col_lo, col_hi = (int(starts[run[0]]), int(ends[run[0]])) if run.size else (0, 0)
        anchor_ok &= lab != column_class
    ctx = dict(Zs=Zs, sq=sq, ts=ts, Xs=Xs, radius=tmax + margin + extra, tmax=tmax, lab=lab, starts=starts,
               ends=ends, col_lo=col_lo, col_hi=col_hi, margin=float(margin), gamma=float(gamma),
               slack=float(slack) if want_band else 0.0, want_band=want_band,
               keep_pairs=None if keep_pairs is None else float(keep_pairs), dtype=dtype,
               column_class=column_class, scales=scales, max_pairs=max_pairs)
    if pairs is not None:
        if not np.array_equal(pairs.order, order):
            raise ValueError("the working set of pairs was made for other labels")
        ok = anchor_ok[pairs.anchor]
        if column_class is not None:
            ok &= (pairs.impostor >= col_lo) & (pairs.impostor < col_hi)
        a_s, l_s = pairs.anchor[ok], pairs.impostor[ok]
        cuts = np.searchsorted(a_s, a_s[np.arange(0, a_s.size, 1 << 18)]) if a_s.size else np.empty(0, np.int64)
        cuts = np.unique(np.append(cuts, a_s.size))
        tasks = [("pairs", a_s[lo:hi], l_s[lo:hi]) for lo, hi in zip(np.append(0, cuts[:-1]), cuts) if hi > lo]
    else:
        m = col_hi - col_lo
        tasks = []
        if m > 0 and anchor_ok.any():
            # candidates' augmented coordinates: [z, -|z|^2 / 2] against [z_i, 1] gives z_i.z - |z|^2 / 2
            Zc_aug = np.empty((m, r + 1), dtype=dtype)
            Zc_aug[:, :r] = Zs[col_lo:col_hi]
            Zc_aug[:, r] = -0.5 * sq[col_lo:col_hi]
            ctx.update(Zc_aug=Zc_aug, rtol=_gemm_rtol(dtype, r), sq_max=float(sq[col_lo:col_hi].max()))
            block = int(max(1, min(4096, block_bytes // (m * (dtype.itemsize + 1) + 16))))
            anchors = np.flatnonzero(anchor_ok)
            tasks = [("block", anchors[s:s + block], None) for s in range(0, anchors.size, block)]
    if workers is None:  # measured: a second thread pays from about 10^7 entries a pass (n ~ 3 000)
        entries = len(pairs) if pairs is not None else int(anchor_ok.sum()) * (col_hi - col_lo)
        workers = 1 if entries < PARALLEL_MIN_ENTRIES else default_workers()
    n_workers = max(1, min(int(workers), len(tasks)))

    shared = _PassArrays(n, k, d, gradient, max_pairs)

    def run(index):
        kind, rows_or_a, l = tasks[index]
        acc = _Accumulator(shared)
        if kind == "block":
            rws, r_loc, l = _block_candidates(rows_or_a, acc, ctx)
        else:
            rws, r_loc = np.unique(rows_or_a, return_inverse=True)
        if l is not None and l.size:
            _candidate_terms(rws, r_loc, l, acc, ctx, check_radius=kind == "block")
        shared.done(index, acc)
        return acc

    if n_workers == 1:
        acc_list = [run(i) for i in range(len(tasks))]
    else:   # tasks are handed out as workers free up; their sums are kept per task, in task order
        from threadpoolctl import threadpool_limits
        lock = threading.Lock()
        queue = iter(range(len(tasks)))
        acc_list = [None] * len(tasks)

        def work():
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                acc_list[i] = run(i)

        with threadpool_limits(1, user_api="blas"):
            pool = _worker_pool(n_workers)
            for f in [pool.submit(work) for _ in range(n_workers)]:
                f.result()
    res = _finish(acc_list, shared, order, Xs, gradient, want_band, n, k)
    if scales is not None:
        # counts and delta sums of the triplets active at each grid point: those with j > g, plus delta >= 0
        cnt = sum(np.asarray(a.profile_count, dtype=np.float64) * np.ones(scales.size + 1) for a in acc_list)
        dsum = sum(np.asarray(a.profile_delta, dtype=np.float64) * np.ones(scales.size + 1) for a in acc_list)
        pos = sum(a.profile_pos for a in acc_list)
        suffix_c = np.cumsum(cnt[::-1])[::-1][1:] + pos[0]
        suffix_d = np.cumsum(dsum[::-1])[::-1][1:] + pos[1]
        res.scale_profile = (scales, suffix_c, suffix_d)
    if keep_pairs is not None:
        res.n_pairs = shared.n_pairs
        res.pairs = _pairs_out([p for acc in acc_list for p in acc.pairs], order, keep_pairs, res.n_pairs,
                               max_pairs)
    return res


def _block_candidates(rows, acc, c):
    """Radius test of one block of anchors (sorted order) against every candidate column."""
    Zs, sq, radius = c["Zs"], c["sq"], c["radius"]
    col_lo, col_hi = c["col_lo"], c["col_hi"]
    dtype = c["dtype"]
    nb, m = rows.size, col_hi - col_lo
    G, mask = _block_buffers(nb, m, dtype)
    Zr = np.empty((nb, Zs.shape[1] + 1), dtype=dtype)
    Zr[:, :-1] = Zs[rows]
    Zr[:, -1] = 1.0
    np.matmul(Zr, c["Zc_aug"].T, out=G)       # z_i.z_l - |z_l|^2 / 2 = (|z_i|^2 - D_il) / 2
    # D_il < radius_i + tol_i  <=>  G_il > (|z_i|^2 - radius_i - tol_i) / 2
    tol = c["rtol"] * (sq[rows] + c["sq_max"]) + 4 * np.finfo(dtype).eps * np.abs(radius[rows])
    thr = (0.5 * (sq[rows] - radius[rows] - tol)).astype(dtype)
    np.greater(G, thr[:, None], out=mask)
    if c["column_class"] is None:             # blank the same-class slab of each run of anchors
        lab_r = c["lab"][rows]
        cuts = np.flatnonzero(np.diff(lab_r)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [nb]])):
            cls_run = np.searchsorted(c["lab"][c["starts"]], lab_r[lo])
            mask[lo:hi, c["starts"][cls_run] - col_lo:c["ends"][cls_run] - col_lo] = False
    flat = np.flatnonzero(mask)
    r_loc, cc = np.divmod(flat, m)
    return rows, r_loc, cc + col_lo


def _candidate_terms(rows, r_loc, l, acc: _Accumulator, c: dict, check_radius: bool) -> None:
    """Exact distances, hinge terms and weights of candidate pairs ``(rows[r_loc], l)``.

    ``rows`` are distinct anchors (sorted order) and ``r_loc`` ascending: the pairs come
    row by row, as a block's scan or a working set yields them.
    """
    step = max(1024, (8 << 20) // (8 * max(1, c["Zs"].shape[1])))  # gathered rows: about 8 MiB at a time
    for lo in range(0, r_loc.size, step):
        rl = r_loc[lo:lo + step]
        first, last = int(rl[0]), int(rl[-1]) + 1   # r_loc ascends: the chunk's rows are a range
        _chunk_terms(rows[first:last], rl - first, l[lo:lo + step], acc, c, check_radius)


def _chunk_terms(rows, r_loc, l, acc, c, check_radius):
    Zs, ts, margin = c["Zs"], c["ts"], c["margin"]
    nb = rows.size
    a = rows[r_loc]
    diff = Zs[a] - Zs[l]
    D = np.einsum("ij,ij->i", diff, diff)     # exact float64 distances of the candidates
    if check_radius:
        keep = D < c["radius"][a]
        if not keep.all():
            a, l, r_loc, D = a[keep], l[keep], r_loc[keep], D[keep]
        if c["keep_pairs"] is not None:
            near = np.flatnonzero(D < c["tmax"][a] + margin + c["keep_pairs"])
            if acc.pair_budget.keep(near.size):
                acc.pairs.append((a[near], l[near]))
            elif acc.pairs:                   # over the cap: no working set this pass
                acc.pairs = []
    acc.n_candidates += a.size
    if a.size == 0:
        return
    z = margin + ts[a] - D[:, None]           # (candidates, k); -inf in empty slots
    if c["scales"] is not None:               # along s M: margin + s * delta, delta = t - D
        delta = (z - margin)[np.isfinite(z)]
        up = delta >= 0                       # active at every s > 0
        acc.profile_pos += (int(up.sum()), float(delta[up].sum()))
        dn = delta[~up]
        j = np.searchsorted(c["scales"], margin / -dn, side="left")  # active at grid points below j
        acc.profile_count += np.bincount(j, minlength=c["scales"].size + 1)
        acc.profile_delta += np.bincount(j, dn, minlength=c["scales"].size + 1)
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
            # W X for the block's rows as a sparse product; the columns need only their
            # degrees (W^T X enters the gradient as the transpose of X^T W X, see _finish)
            ucols, inv = np.unique(l_nz, return_inverse=True)
            acc.column_deg.append((ucols, np.bincount(inv, W_nz, minlength=ucols.size)))
            indptr = np.searchsorted(r_nz, np.arange(nb + 1))
            Wb = sp.csr_matrix((W_nz, inv, indptr), shape=(nb, ucols.size))
            acc.WX[rows] += Wb @ Xs[ucols]


def _is_numpy(xp) -> bool:
    return xp is np or getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy")


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of an array of any array-API library (moved to the host first)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get") and not hasattr(x, "__dlpack_device__"):  # pragma: no cover - old CuPy
        return np.asarray(x.get())
    import array_api_compat
    if array_api_compat.is_cupy_array(x):  # pragma: no cover - needs a GPU
        return x.get()
    if array_api_compat.is_torch_array(x):  # pragma: no cover - torch not in CI
        return x.detach().cpu().numpy()
    return np.from_dlpack(x)


def _sweep_dense(xp, device, Z, t, labels, margin, *, X, gamma, slack, keep_pairs, pairs, rows, column_class,
                 scales, block_bytes, max_pairs) -> PassResult:
    """The pass in the dense block form, in any array-API namespace ``xp`` (a GPU's library).

    Each block of anchors forms its distances ``D_B``, the margins ``H_Bk`` of every
    target, the weights ``W_B = sum_k h'(H_Bk)`` as dense arrays, and the gradient by the
    products ``W_B X`` and ``W_B^T X_B``: three products per block and elementwise work, no
    data-dependent shapes except for the band and the pairs asked for. On a GPU this is
    faster than any sparse bookkeeping; on CPUs the sparse form of :func:`sweep` is.
    Float64 throughout (the distances are exact to round-off).
    """
    if pairs is not None or scales is not None:
        raise NotImplementedError("working sets of pairs and scale profiles run on NumPy arrays")
    Z = np.asarray(Z, dtype=np.float64)
    n, r = Z.shape
    t = np.asarray(t, dtype=np.float64)
    k = t.shape[1]
    labels = np.asarray(labels)
    order, lab, starts, ends = _class_order(labels)
    f64 = xp.float64
    put = (lambda a, dt=f64: xp.asarray(np.ascontiguousarray(a), dtype=dt, device=device))
    Zs, ts, labs = put(Z[order]), put(t[order]), put(lab, xp.int64)
    gradient = X is not None
    Xs = put(np.asarray(X, dtype=np.float64)[order]) if gradient else None
    sq = xp.sum(Zs * Zs, axis=1)
    tmax_np = np.max(t[order], axis=1)
    anchor_ok = np.isfinite(tmax_np)
    if rows is not None:
        keep = np.zeros(n, bool)
        keep[np.asarray(rows, dtype=np.int64)] = True
        anchor_ok &= keep[order]
    col_lo, col_hi = 0, n
    if column_class is not None:
        run = np.flatnonzero(lab[starts] == column_class)
        col_lo, col_hi = (int(starts[run[0]]), int(ends[run[0]])) if run.size else (0, 0)
        anchor_ok &= lab != column_class
    extra = max(float(slack) if slack is not None else 0.0, float(keep_pairs) if keep_pairs is not None else 0.0)
    m = col_hi - col_lo
    loss = hinge = wsum = 0.0
    n_active = n_cand = n_pairs = 0
    c = xp.zeros((n, k), dtype=f64, device=device)
    LX = xp.zeros((n, Xs.shape[1]), dtype=f64, device=device) if gradient else None
    band, kept = [], []
    live = np.flatnonzero(anchor_ok)
    if m and live.size:
        Zc, sq_c, lab_c = Zs[col_lo:col_hi, :], sq[col_lo:col_hi], labs[col_lo:col_hi]
        Xc = Xs[col_lo:col_hi, :] if gradient else None
        ok_dev = put(anchor_ok, xp.bool)
        step = int(max(1, min(8192, block_bytes // (8 * m * (k + 3)))))
        lo_all, hi_all = int(live[0]), int(live[-1]) + 1
        for lo in range(lo_all, hi_all, step):
            hi = min(hi_all, lo + step)
            D = sq[lo:hi, None] + sq_c[None, :] - 2.0 * (Zs[lo:hi, :] @ xp.permute_dims(Zc, (1, 0)))
            valid = (labs[lo:hi, None] != lab_c[None, :]) & ok_dev[lo:hi, None]
            tb = ts[lo:hi, :]
            near = valid & (D < xp.max(tb, axis=1)[:, None] + margin + extra)
            n_cand += int(xp.sum(xp.astype(near, xp.int64)))
            W = xp.zeros_like(D)
            neg_inf = xp.full_like(D, -xp.inf)
            for q in range(k):
                H = xp.where(valid, margin + tb[:, q:q + 1] - D, neg_inf)
                lq, hq, wq = hinge_terms(H, gamma, xp)
                loss, hinge = loss + lq, hinge + hq
                n_active += int(xp.sum(xp.astype(H > 0, xp.int64)))
                wsum += float(xp.sum(wq))
                W = W + wq
                c[lo:hi, q] = xp.sum(wq, axis=1)
                if slack is not None:
                    ii, jj = xp.nonzero(H > -slack)
                    band.append((to_numpy(ii) + lo, np.full(int(ii.shape[0]), q), to_numpy(jj) + col_lo,
                                 to_numpy(H[ii, jj])))
            if keep_pairs is not None:
                ii, jj = xp.nonzero(near & (D < xp.max(tb, axis=1)[:, None] + margin + float(keep_pairs)))
                n_pairs += int(ii.shape[0])
                if n_pairs <= max_pairs:
                    kept.append((to_numpy(ii) + lo, to_numpy(jj) + col_lo))
                else:
                    kept = []
            if gradient:
                LX[lo:hi, :] = LX[lo:hi, :] + xp.sum(W, axis=1)[:, None] * Xs[lo:hi, :] - W @ Xc
                LX[col_lo:col_hi, :] = (LX[col_lo:col_hi, :] + xp.sum(W, axis=0)[:, None] * Xc
                                        - xp.permute_dims(W, (1, 0)) @ Xs[lo:hi, :])
    c_np = np.empty((n, k))
    c_np[order] = to_numpy(c)
    imp = None
    if gradient:
        imp = to_numpy(xp.permute_dims(Xs, (1, 0)) @ LX)
        imp = 0.5 * (imp + imp.T)
    res = PassResult(loss=loss, hinge=hinge, n_active=n_active, weight_sum=wsum, target_weights=c_np,
                     impostor_matrix=imp, band=_band_out(band, order) if slack is not None else None,
                     n_candidates=n_cand)
    if keep_pairs is not None:
        res.n_pairs = n_pairs
        res.pairs = _pairs_out(kept, order, keep_pairs, n_pairs, max_pairs)
    return res


def _band_out(parts, order):
    """The band's ``(anchor, slot, impostor, z)`` from per-block pieces in class-sorted indices."""
    if not parts:
        e = np.empty(0, np.int64)
        return e, e.copy(), e.copy(), np.empty(0)
    a, s, l, z = (np.concatenate([p[q] for p in parts]) for q in range(4))
    return order[a], s.astype(np.int64), order[l], z


def _pairs_out(parts, order, slack, count, max_pairs):
    """A :class:`PairSet` from per-block ``(anchor, impostor)`` pieces in class-sorted indices.

    ``None`` when the pass found ``count > max_pairs`` pairs: whether a working set is
    returned depends on the count only, never on how the blocks were shared out.
    """
    if count > max_pairs:
        return None
    if parts:
        a = np.concatenate([p[0] for p in parts]).astype(np.int64)
        l = np.concatenate([p[1] for p in parts]).astype(np.int64)
        srt = np.lexsort((l, a))
        a, l = a[srt], l[srt]
    else:
        a = l = np.empty(0, np.int64)
    return PairSet(a, l, order, float(slack))


def _finish(accs, shared, order, Xs, gradient, want_band, n, k) -> PassResult:
    """Sum the tasks' parts in task order (the same bits for any workers and timing)."""
    loss = hinge = weight_sum = 0.0
    n_active = n_candidates = 0
    band = []
    for acc in accs:
        loss += acc.loss
        hinge += acc.hinge
        weight_sum += acc.weight_sum
        n_active += acc.n_active
        n_candidates += acc.n_candidates
        band += acc.band
    c = np.empty((n, k))
    c[order] = shared.c
    imp = None
    if gradient:
        # X^T (diag(deg) - W - W^T) X with deg the row plus column sums of W: X^T W^T X is
        # the transpose of X^T W X, so (diag(deg) - 2 W) X followed by the symmetric part
        deg = shared.deg + shared.column_deg
        LX = deg[:, None] * Xs - 2.0 * shared.WX
        imp = Xs.T @ LX
        imp = 0.5 * (imp + imp.T)
    return PassResult(loss=loss, hinge=hinge, n_active=n_active, weight_sum=weight_sum,
                      target_weights=c, impostor_matrix=imp, band=_band_out(band, order) if want_band else None,
                      n_candidates=n_candidates)


# -- the two ways a problem visits its triplets ------------------------------------------------
@dataclass
class Evaluation:
    """One visit of a problem's triplets at a metric (see :class:`EnumeratedSweep`, :class:`BlockSweep`).

    ``loss``, ``hinge`` and ``n_active`` as in :class:`PassResult`; ``weight_sum = sum_t h'(z_t)``;
    ``K = sum_t h'(z_t) A_t`` in the metric's shape (None unless asked); ``band`` the
    triplets with ``z_t > -slack`` as :class:`~convexmetric.triplets.ActiveTriplets`
    (None unless asked); ``pairs`` the working set of impostor pairs (one
    :class:`PairSet`, or one per class for one metric per class) when asked, None
    when there were more than :data:`MAX_KEPT_PAIRS`; ``n_pairs`` how many there were.
    """

    loss: float
    hinge: float
    n_active: int
    weight_sum: float
    K: np.ndarray | None
    band: object | None
    pairs: object | None = None
    n_pairs: int = 0
    objective: float | None = None       # filled by LMNNProblem.evaluate
    smoothed: float | None = None
    gradient: np.ndarray | None = None


class EnumeratedSweep:
    """Visit a listed set of triplets (small problems, and working sets of large ones)."""

    def __init__(self, problem, triplets):
        self.problem = problem
        self.triplets = triplets

    def evaluate(self, emb, *, gamma=0.0, slack=None, gradient=False, anchors=None, keep_pairs=None,
                 pairs=None) -> Evaluation:
        from .triplets import ActiveTriplets
        if keep_pairs is not None or pairs is not None:
            raise ValueError("working sets of pairs are for implicit problems; a listed one is its own working set")
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
        self._run = sweep
        if getattr(problem, "executor", None) is not None:  # a Dask client: blocks become tasks
            from .distributed import DaskPass
            self._run = DaskPass(problem.executor, problem.labels, problem.X)

    def profile(self, emb, scales, anchors=None):
        """``(scales, count, delta_sum)`` along multiples of the metric (see ``sweep(scales=...)``)."""
        p = self.problem
        t = np.where(p.targets >= 0, p.target_sq_dists(emb), -np.inf)
        return self._run(emb.Z, t, p.labels, p.margin, rows=anchors, scales=scales, block_bytes=p.block_bytes,
                         search_dtype=p.search_dtype, workers=self.workers).scale_profile

    def evaluate(self, emb, *, gamma=0.0, slack=None, gradient=False, anchors=None, keep_pairs=None,
                 pairs=None) -> Evaluation:
        from .problem import _laplacian_product
        from .triplets import ActiveTriplets, TripletSet
        p = self.problem
        t = np.where(p.targets >= 0, p.target_sq_dists(emb), -np.inf)
        common = dict(gamma=gamma, slack=slack, rows=anchors, block_bytes=p.block_bytes, keep_pairs=keep_pairs,
                      search_dtype=p.search_dtype, workers=self.workers, X=p.X if gradient else None,
                      backend=p.backend, device=p.device)
        stacked = p.n_metrics > 1
        if stacked:
            runs = [(c, self._run(emb.Z[c], t, p.labels, p.margin, column_class=c,
                                  pairs=None if pairs is None else pairs[c], **common))
                    for c in range(p.n_metrics)]
        else:
            runs = [(None, self._run(emb.Z, t, p.labels, p.margin, pairs=pairs, **common))]
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
        kept = None
        if keep_pairs is not None:
            kept = tuple(r.pairs for _, r in runs) if stacked else runs[0][1].pairs
            if stacked and any(k is None for k in kept):  # one class over the cap: no working set
                kept = None
        return Evaluation(loss, hinge, n_active, wsum, K, band, kept, n_pairs=sum(r.n_pairs for _, r in runs))
