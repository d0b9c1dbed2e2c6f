"""The full pass on a Dask cluster: blocks of anchors as tasks, the client sums.

:class:`DaskPass` is called like :func:`convexmetric.sweep.sweep` and returns the same.
Per pass it scatters the embedded points ``Z`` and the target distances (class-sorted,
to every worker, once); the data ``X`` and the labels go once per problem. Each task
runs the same NumPy pass on a range of anchors against all points and returns its
partial sums: loss, hinge, counts, the ``d x d`` impostor matrix, its anchors' target
weights, and the band, pairs or scale profile when asked. Nothing else crosses the
network. Solvers, certificates and results do not know where the pass ran.

Per pass, the network carries ``n r`` (``Z``) plus ``n k`` (target distances) floats to
each worker and about ``d^2 + rows k`` floats back per task; memory per worker is
``Z``, ``X`` and one block's buffers (``block_bytes``).

A task whose worker dies is run again elsewhere by the scheduler (the scattered data
lives on every worker), so a pass neither hangs nor loses a block: its sums are exact. A
worker that dies while the pass sends its data fails that broadcast or loses the only copy
of an array; then the whole pass is sent and run again (:data:`PASS_ATTEMPTS` in all).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import CancelledError

import numpy as np

from .sweep import MAX_KEPT_PAIRS, PairSet, PassResult, _class_order, sweep

logger = logging.getLogger(__name__)

#: Tasks per worker thread in one pass: a few, so that a slow or lost worker's share
#: is small, and few enough that per-task overhead stays negligible.
TASKS_PER_THREAD = 2

#: Attempts at one pass: a worker that dies while the pass sends its data fails the
#: broadcast (a closed connection, an ``OSError``) or loses an array before it reached
#: every worker (the tasks are cancelled); the scheduler needs a moment to drop it.
PASS_ATTEMPTS = 3


def _broadcast(client, array):
    """Scatter ``array`` to every worker."""
    return client.scatter(array, broadcast=True, hash=False)


def _task(Zs, ts, lab, Xs, margin, lo, hi, rows_mask, kw):
    """One range of class-sorted anchors ``[lo, hi)`` (runs on a worker)."""
    rows = np.arange(lo, hi) if rows_mask is None else lo + np.flatnonzero(rows_mask)
    res = sweep(Zs, ts, lab, margin, X=Xs, rows=rows, workers=1, **kw)
    res.target_weights = res.target_weights[lo:hi]  # the other rows are zero: do not send them
    return res


class DaskPass:
    """:func:`convexmetric.sweep.sweep` with its blocks of anchors as tasks on a Dask cluster.

    One instance serves one problem: its labels and data ``X`` (fixed) are scattered to
    every worker once, on first use; each pass scatters ``Z`` and the target distances.
    Call it like ``sweep``; the result is the same to round-off (sums in another order).
    Working sets of pairs (``pairs=``) are evaluated on the client: they cost a fraction
    of a pass.
    """

    def __init__(self, client, labels, X):
        self.client = client
        self.order, lab, _, _ = _class_order(np.asarray(labels))
        self._X = np.asarray(X, dtype=np.float64)
        self._lab = lab
        self._futures = None

    def _static(self):
        if self._futures is None:  # once per problem: labels and data, class-sorted, on every worker
            self._futures = (_broadcast(self.client, self._lab),
                             _broadcast(self.client, np.ascontiguousarray(self._X[self.order])))
        return self._futures

    def __call__(self, Z, t, labels, margin, *, X=None, rows=None, **kw) -> PassResult:
        if kw.get("pairs") is not None:
            return sweep(Z, t, labels, margin, X=X, rows=rows, **kw)
        for key in ("workers", "backend", "device"):
            kw.pop(key, None)
        for attempt in range(1, PASS_ATTEMPTS + 1):
            try:
                return self._run(Z, t, margin, X, rows, kw)
            except (OSError, CancelledError) as exc:   # distributed's CommClosedError is an OSError
                if attempt == PASS_ATTEMPTS:
                    raise
                logger.warning("a pass on the cluster failed (%s: %s), probably a worker died; sending it "
                               "again (attempt %d of %d)", type(exc).__name__, exc, attempt + 1, PASS_ATTEMPTS)
                self._futures = None   # the labels and X may be lost too
                time.sleep(0.5 * attempt)

    def _run(self, Z, t, margin, X, rows, kw) -> PassResult:
        """One attempt at the pass: scatter ``Z`` and the target distances, run the tasks, sum."""
        client, order, n = self.client, self.order, len(self.order)
        k = np.shape(t)[1]
        lab_f, X_f = self._static()
        Zs = _broadcast(client, np.ascontiguousarray(np.asarray(Z, dtype=np.float64)[order]))
        ts = _broadcast(client, np.ascontiguousarray(np.asarray(t, dtype=np.float64)[order]))
        keep = None
        if rows is not None:
            keep = np.zeros(n, bool)
            keep[np.asarray(rows, dtype=np.int64)] = True
            keep = keep[order]
        threads = max(1, sum(client.nthreads().values()))
        cuts = np.linspace(0, n, TASKS_PER_THREAD * threads + 1).astype(int)
        ranges = [(int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]
        futures = [client.submit(_task, Zs, ts, lab_f, X_f if X is not None else None, float(margin), lo, hi,
                                 None if keep is None else keep[lo:hi], kw, pure=False) for lo, hi in ranges]
        parts = client.gather(futures)
        return _combine(parts, ranges, order, n, k, X is not None, kw)


def _combine(parts, ranges, order, n, k, gradient, kw) -> PassResult:
    """Sum the tasks' partial results; map class-sorted indices back to the caller's."""
    c = np.zeros((n, k))
    for (lo, hi), p in zip(ranges, parts):
        c[order[lo:hi]] = p.target_weights
    imp = sum(p.impostor_matrix for p in parts) if gradient else None
    band = None
    if kw.get("slack") is not None:
        a, s, l, z = (np.concatenate([p.band[q] for p in parts]) for q in range(4))
        band = (order[a], s, order[l], z)
    res = PassResult(loss=sum(p.loss for p in parts), hinge=sum(p.hinge for p in parts),
                     n_active=sum(p.n_active for p in parts), weight_sum=sum(p.weight_sum for p in parts),
                     target_weights=c, impostor_matrix=imp, band=band,
                     n_candidates=sum(p.n_candidates for p in parts))
    if kw.get("keep_pairs") is not None:  # the tasks' indices are class-sorted already: the pass's order
        res.n_pairs = sum(p.n_pairs for p in parts)
        cap = MAX_KEPT_PAIRS if kw.get("max_pairs") is None else int(kw["max_pairs"])
        if res.n_pairs <= cap and all(p.pairs is not None for p in parts):
            res.pairs = PairSet(np.concatenate([p.pairs.anchor for p in parts]),
                                np.concatenate([p.pairs.impostor for p in parts]), order, float(kw["keep_pairs"]))
    if kw.get("scales") is not None:
        s0 = parts[0].scale_profile[0]
        res.scale_profile = (s0, sum(p.scale_profile[1] for p in parts), sum(p.scale_profile[2] for p in parts))
    return res
