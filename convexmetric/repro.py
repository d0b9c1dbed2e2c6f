"""Reproduce Table 1 of Weinberger & Saul, JMLR 10 (2009): 3-NN test error by method.

Run ``convexmetric-repro`` (or ``python -m paper_repro`` from the repository) to write

* ``results/table1.csv``: one row per (data set, method) with our mean and standard
  deviation over splits, the paper's number and the difference;
* ``results/table1.md``: the same as a markdown table, with notes;
* ``results/run.json``: versions, seeds, protocol, arguments and wall times;
* ``results/splits.csv``: every (data set, split, method) result;
* ``results/cache/<dataset>/<key>/<split>/<method>.json`` (``cache/fast/...`` in fast
  mode): each result as it is computed, so an interrupted run resumes where it stopped.

The cache is not committed, but ``splits.csv`` is, with each result's cache key and code
fingerprint, and a run rewrites it after each split: where the cache has no file, a run takes
a result from ``splits.csv`` computed under the same key (same seed and mode), so a fresh
clone resumes a long run from the committed summary instead of computing it again.

``--fast`` writes to ``results/fast/`` unless ``--out`` says otherwise, so a quick look
never overwrites the committed full-protocol tables.

The cache key
-------------
``<key>`` is a short hash of every input that changes a result: the data set's protocol
(PCA, split kind, solver and solver options, multi-metric solver and options, fast-mode
subsampling), the seed, fast mode and the package version (see :func:`cache_key`). Each
record also stores the inputs themselves and is checked against them when read: a record
computed with other inputs, or a damaged file (e.g. truncated JSON), is recomputed with a
warning naming the file. A run with another seed or other options therefore computes
its own results instead of reporting stale ones. Caches written before the key existed
(``cache/<dataset>/<split>/...``) are ignored, not deleted.

The key does not hold the code, so a cached result survives an edit of the package
(a long run can resume after a fix to its reporting). Each record stores which code computed
it instead: :func:`code_fingerprint`, a hash of the package's Python sources (a result
computed from a kept solution of older code takes that code's). A run that reads
results computed by other code says so (a warning, and a line under the table);
``--recompute`` recomputes those results, and the single-metric solutions kept beside them.

Protocol (the paper's, see ``shared/reference/README.md``): k = 3, mu = 0.5, 70/30
random splits (100 for bal, wine, iris and oFaces; 10 for letters, 20news and yFaces),
fixed splits for MNIST and Isolet, PCA before LMNN where the paper used it: MNIST
(deskewed) 164, Isolet 172, 20news 200 (over a bag of words of the 20 000 most common
training words), yFaces 300 (after dropping the 5 leading components), oFaces 200.

Choices that are ours, stated in ``paper_repro/README.md``:

* Without PCA, LMNN is solved in *standardised* coordinates with the target neighbours
  chosen in the paper's (raw) input space. A linear change of variables ``x -> D x`` maps the
  problem onto itself (``M = D M' D``), so the optimum and every kNN decision are the
  same; only the numerical conditioning improves (raw Wine: 13 s, standardised: 1 s).
* Where the paper held out a validation set (30 % of the training part, the two face
  sets) we do the same (:attr:`Protocol.validation`): the metric is learned on the other
  70 %, the solver's path is followed and the iterate with the lowest validation 3-NN error
  is kept (early stopping, :class:`ValidationStopper`), the SVM's ``C`` and ``gamma`` are
  chosen on the validation part; test points are then classified against the whole
  training part. Elsewhere the convex problem has one optimum and no validation is needed;
  we train on the whole training part.
* 20news's words are weighted by sublinear tf-idf (1 + ln count, unit-length rows; the paper
  says only "bag of words"), and its Euclidean row is a 3-NN on the sparse weighted words
  (:func:`knn_predict_sparse`, the same tie rule as :func:`~convexmetric.classify.knn_predict`);
  the 18 846 by-date documents are pooled and split at random (the paper: 18 827 documents),
  their headers cut to From: and Subject: as in the 20news-18828 version whose size the paper
  reports (:attr:`Protocol.header_lines`).
"""
from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._checks import check_int
from .datasets import NEWS_18828_HEADER_LINES
from .validation import ValidationStopper, validation_split  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

#: Table 1 rows we reproduce, in the paper's order, with their reference-CSV names.
METHODS = {
    "knn_euclidean": "kNN Euclidean",
    "knn_pca": "kNN PCA",
    "knn_lda": "kNN LDA",
    "lmnn": "LMNN",
    "lmnn_energy": "LMNN energy",
    "lmnn_multipass": "LMNN multiple passes",
    "lmnn_multimetric": "LMNN multiple metrics",
    "svm_multiclass": "multiclass SVM",
}
#: The reference CSV's row for each of our methods.
PAPER_ROW = {"lmnn": "lmnn_pca"}
#: Column of each data set in the reference CSV.
PAPER_COLUMN = {"bal": "bal", "wine": "wine", "iris": "iris", "letters": "letters", "isolet": "isolet",
                "mnist": "mnist", "20news": "20news", "ofaces": "oFaces", "yfaces": "yFaces"}


@dataclass
class Protocol:
    """How one data set is split, preprocessed and solved.

    Attributes
    ----------
    name : str
        The data set (a key of :data:`PROTOCOLS`).
    n_splits : int
        Random 70/30 splits in the full protocol (1 for a fixed split).
    pca_dims : int or None
        Dimensions kept by PCA (fitted on the training part), after dropping ``pca_drop``
        leading components; None: no PCA.
    pca_drop : int
        Leading principal components dropped (yFaces: 5, mostly lighting).
    fixed_split : bool
        The data set comes with its own train/test split.
    bag_of_words : int or None
        The inputs are documents: a sparse bag of words over this many most common training
        words (20news), then PCA.
    word_weighting : str
        How the bag of words weighs the words (:func:`convexmetric.datasets.bag_of_words`):
        ``"counts"``, ``"tfidf"`` or ``"tfidf-sublinear"``.
    header_lines : tuple of str or None
        With a bag of words: keep only the header lines that start with these prefixes
        (:func:`convexmetric.datasets.keep_header_lines`; 20news: From: and Subject:, as in
        the paper's 20news-18828 version); None keeps the documents whole.
    validation : float
        Fraction of the training part held out for early stopping and model choice (the
        paper's 30 % on the face sets; 0: none).
    patience : float or None
        With validation: stop each solve once the call count reaches this multiple of the
        call of the last strict improvement of the validation error
        (:class:`ValidationStopper`); None: every solve runs to its limits.
    solver, solver_options : str, dict
        How the single metric is solved (also each pass of multi-pass LMNN).
    multi_solver, multi_options : str, dict
        How the multi-metric problem is solved (warm-started from the single metric).
    passes : int
        Most passes of multi-pass LMNN, the first included; each later pass recomputes the
        targets in the learned space and stops the sequence when they no longer change.
    fast_train, fast_test, fast_splits : int or None, int or None, int
        ``--fast``: training and test rows kept (None: all) and the number of splits.
    note : str
        A data note printed under the table.
    """

    name: str
    n_splits: int
    pca_dims: int | None = None
    pca_drop: int = 0
    fixed_split: bool = False
    solver: str = "hybrid"
    solver_options: dict = field(default_factory=dict)
    multi_solver: str = "active-set"
    multi_options: dict = field(default_factory=dict)
    fast_train: int | None = None      # --fast: subsample the training part to this size
    fast_test: int | None = None
    fast_splits: int = 2
    note: str = ""
    bag_of_words: int | None = None
    validation: float = 0.0
    patience: float | None = None
    word_weighting: str = "counts"
    passes: int = 3
    header_lines: tuple | None = None

    def __post_init__(self):
        self.passes = check_int("passes", self.passes)
        if self.header_lines is not None:
            from .datasets import header_prefixes
            if not self.bag_of_words:
                raise ValueError("header_lines cuts documents' headers: it needs bag_of_words")
            self.header_lines = header_prefixes(self.header_lines)

    def fast_version(self) -> "Protocol":
        """The same protocol with solver time limits capped at 20 s (for ``--fast``)."""
        from dataclasses import replace
        cap = lambda o: {**o, "time_limit": min(o.get("time_limit") or 20, 20)}  # noqa: E731
        return replace(self, solver_options=cap(self.solver_options), multi_options=cap(self.multi_options))


PROTOCOLS = {
    "bal": Protocol("bal", 100, note="UCI file: 625 points, the paper used 535"),
    "wine": Protocol("wine", 100, note="UCI file: 178 points, the paper used 152"),
    "iris": Protocol("iris", 100, note="UCI file: 150 points, the paper used 128"),
    "letters": Protocol("letters", 10, solver="fista", solver_options={"tol": 1e-3, "time_limit": 110},
                        multi_solver="fista", multi_options={"tol": 1e-3, "time_limit": 100},
                        fast_train=1500, fast_test=1000, fast_splits=1),
    # auto: band-ipm at d = 172, certified to 1e-3 (measured: 186 s, gap 7.4e-4; FISTA stopped
    # at its 240 s limit with 1.1e-2). Multi-metric: FISTA (26 blocks), reported with its gap
    "isolet": Protocol("isolet", 1, pca_dims=172, fixed_split=True, solver="auto",
                       solver_options={"tol": 1e-3, "time_limit": 240}, multi_solver="fista",
                       multi_options={"tol": 1e-3, "time_limit": 400}, fast_train=1000, fast_test=500,
                       fast_splits=1),
    # auto: factored L-BFGS on working sets of impostor pairs (n^2 d = 4.4e11), certified; about
    # 3-5 min to a 1.4-1.6 % metric on 2 cores, so 300 s per solve (each multi-pass pass is
    # warm-started from the previous metric). Multi-metric: auto picks FISTA (no working sets
    # for 10 metrics), each full pass ~16-30 s: a 30-minute budget, reported with its gap.
    "mnist": Protocol("mnist", 1, pca_dims=164, fixed_split=True, solver="auto",
                      solver_options={"time_limit": 300}, multi_solver="auto",
                      multi_options={"time_limit": 1800}, fast_train=2000, fast_test=1000,
                      fast_splits=1),
    # 18 846 by-date documents pooled and re-split at random (the paper: 18 827 documents), their
    # headers cut to From: and Subject: as in the 20news-18828 version the paper's count points to
    # (the other header lines move every row: explain_differences.py 20news-headers-splits);
    # sublinear tf-idf: on raw counts PCA-200 3-NN errs 60 % (paper 18 %), on tf-idf 30 %, on
    # sublinear tf-idf 23 %, the closest of six weightings (explain_differences.py
    # 20news-weighting); auto: band-ipm at d = 200
    "20news": Protocol("20news", 10, pca_dims=200, bag_of_words=20000, word_weighting="tfidf-sublinear",
                       header_lines=NEWS_18828_HEADER_LINES, solver="auto",
                       solver_options={"time_limit": 300}, multi_solver="auto",
                       multi_options={"time_limit": 300}, fast_train=1200, fast_test=400, fast_splits=1,
                       note="20news-bydate, 18 846 documents pooled and re-split (the paper: 18 827), headers cut to "
                            "From: and Subject: as in the 20news-18828 version"),
    # 2 414 images of 96 x 84 = 8 064 pixels (the paper's size), PCA 305 -> drop 5 -> 300
    "yfaces": Protocol("yfaces", 10, pca_dims=300, pca_drop=5, validation=0.3, solver="auto",
                       solver_options={"time_limit": 120}, multi_solver="auto",
                       multi_options={"time_limit": 240}, fast_train=500, fast_test=200, fast_splits=1,
                       note="one metric a class, learned from about 31 images in 300 dimensions, has optimal "
                            "objective 0 on every split, so the multi-metric gap of 1.0 is exact "
                            "(explain_differences.py faces-optimum-all)"),
    # 196 fit points in 200 dimensions: the pull matrix is singular, auto runs factored to an
    # iteration budget; multi-metric FISTA with 40 metrics gets 30 s per split. The validation
    # error bottoms out early (split 0: iterate 94 of 500, 48 of 314 in a later pass), so each
    # solve stops at twice the call of the last strict improvement (patience 2)
    "ofaces": Protocol("ofaces", 100, pca_dims=200, validation=0.3, patience=2.0, solver="auto",
                       solver_options={"time_limit": 60}, multi_solver="auto",
                       multi_options={"time_limit": 30},
                       note="on the 196 images a metric is learned from (200 dimensions) the optimal objective, "
                            "of one metric or of 40, is 0 on every split, so the LMNN gaps of 1.0 are exact "
                            "(explain_differences.py faces-optimum-all)"),
}


def load_raw(name: str, home=None, download: bool = False):
    """``(X, y)`` or ``(X_train, y_train, X_test, y_test)`` for a fixed split, as the paper's inputs.

    ``X`` holds one row per example: features, flattened images, or (20news) the raw
    documents as an object array of strings. ``download`` fetches missing files from
    their public source (where one exists; not Isolet or Yale) into the data home.
    """
    from . import datasets as D
    if name == "bal":
        return D.load_balance(home, download=download)
    if name == "wine":
        return D.load_wine_uci(home, download=download)
    if name == "iris":
        return D.load_iris_uci(home, download=download)
    if name == "letters":
        Xtr, ytr, Xte, yte = D.load_letter(home, download=download)
        return np.vstack([Xtr, Xte]), np.concatenate([ytr, yte])
    if name == "isolet":
        return D.load_isolet(home)
    if name == "mnist":
        tr, ytr, te, yte = D.load_mnist(home, download=download)
        tr, te = D.deskew(tr), D.deskew(te)
        return tr.reshape(len(tr), -1), ytr, te.reshape(len(te), -1), yte
    if name == "20news":   # the paper split the pooled corpus at random: pool the by-date halves
        dtr, ytr, dte, yte = D.load_20newsgroups(home, download=download)
        docs = np.empty(len(dtr) + len(dte), dtype=object)
        docs[:] = list(dtr) + list(dte)
        return docs, np.concatenate([ytr, yte])
    if name == "yfaces":
        imgs, y = D.load_yale(home, downsample=2)
        return imgs.reshape(len(imgs), -1), y
    if name == "ofaces":
        imgs, y = D.load_olivetti(home, download=download)
        return imgs.reshape(len(imgs), -1), y
    raise ValueError(f"unknown data set {name!r}; known: {sorted(PROTOCOLS)}")


def make_split(proto: Protocol, raw, split: int, seed: int, fast: bool):
    """Train/test arrays for one split (stratified 70/30, seeded), subsampled in fast mode."""
    from sklearn.model_selection import train_test_split
    if proto.fixed_split:
        Xtr, ytr, Xte, yte = raw
    else:
        X, y = raw
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed + split, stratify=y)
    if fast and proto.fast_train:
        rng = np.random.default_rng(seed + split)
        tr = np.sort(rng.choice(len(ytr), min(proto.fast_train, len(ytr)), replace=False))
        te = np.sort(rng.choice(len(yte), min(proto.fast_test, len(yte)), replace=False))
        Xtr, ytr, Xte, yte = Xtr[tr], ytr[tr], Xte[te], yte[te]
    return Xtr, ytr, Xte, yte


def knn_predict_sparse(X_train, y_train, X_test, k: int = 3, block_rows: int = 256):
    """Euclidean k-NN labels for sparse (or dense) rows, with the paper's tie rule.

    The same rule as :func:`convexmetric.classify.knn_predict` with ``metric=None``:
    neighbours ordered by squared distance ``|q|^2 + |x|^2 - 2 q.x``, then by training index;
    a tied vote drops the farthest neighbour, down to one. Test rows go in blocks: a
    block is made dense (``block_rows x d``) and multiplied by the sparse training
    matrix, so memory stays at a few ``block_rows x n_train`` arrays. On integer counts
    (a bag of words) every distance is exact, so the neighbours are exactly those of the
    dense rule.

    Parameters
    ----------
    X_train : sparse or dense array (n, d)
    y_train : array (n,)
    X_test : sparse or dense array (m, d)
    k : int
        Neighbours (the paper: 3).
    block_rows : int
        Test rows per block.

    Returns
    -------
    ndarray (m,) of labels from ``y_train``.
    """
    import scipy.sparse as sparse
    from .classify import nearest_by_distance_then_index, vote_with_tie_breaking
    k = check_int("k", k)
    Xtr = sparse.csr_matrix(X_train, dtype=np.float64)
    Xte = sparse.csr_matrix(X_test, dtype=np.float64)
    if Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(f"X_test has {Xte.shape[1]} features, X_train {Xtr.shape[1]}")
    classes, codes = np.unique(np.asarray(y_train), return_inverse=True)
    if codes.size != Xtr.shape[0]:
        raise ValueError(f"y_train has {codes.size} labels for {Xtr.shape[0]} training rows")
    kk = min(int(k), codes.size)
    sq_tr = np.asarray(Xtr.multiply(Xtr).sum(axis=1)).ravel()
    sq_te = np.asarray(Xte.multiply(Xte).sum(axis=1)).ravel()
    out = np.empty(Xte.shape[0], dtype=np.int64)
    for s in range(0, Xte.shape[0], int(block_rows)):
        rows = np.arange(s, min(Xte.shape[0], s + int(block_rows)))
        G = np.asarray(Xtr @ Xte[rows].toarray().T).T                 # (block, n) inner products
        D = sq_te[rows, None] + sq_tr[None, :] - 2.0 * G
        np.maximum(D, 0.0, out=D)
        out[rows] = vote_with_tie_breaking(codes[nearest_by_distance_then_index(D, kk)], classes.size)
    return classes[out]


def knn_error_sparse(X_train, y_train, X_test, y_test, k: int = 3) -> float:
    """Test error (fraction) of :func:`knn_predict_sparse`."""
    return float(np.mean(knn_predict_sparse(X_train, y_train, X_test, k) != np.asarray(y_test)))


@dataclass
class Solution:
    """A metric the table reports, with what is known about it.

    ``M`` is the metric used (the validation-chosen iterate where the protocol has a
    validation split, else the solver's result); ``M_final`` the solver's own result
    (the same array without validation); ``info`` the solver's record (objective,
    certified gap, status, ...); ``wall_time`` the seconds the solve took when it was
    computed; ``cached`` whether it was read back from the cache, and ``code`` the fingerprint
    of the code that computed it there (:func:`code_fingerprint`; None: this code).
    """

    M: np.ndarray
    M_final: np.ndarray
    info: dict
    wall_time: float
    cached: bool = False
    code: str | None = None


def _lmnn_info(res) -> dict:
    return {"objective": res.fun, "relative_gap": res.relative_gap, "status": res.status,
            "solver": res.solver, "nit": res.nit, "solve_time": res.solve_time}


class SplitData:
    """One split, with the features each method needs computed once and shared.

    Parameters
    ----------
    proto : Protocol
    Xtr, ytr, Xte, yte : arrays
        The split as :func:`make_split` returns it (documents for a bag-of-words protocol).
    seed : int
        Seed of the validation split.
    store : path or None
        Folder where the single-metric solution is kept (``single.npz``), so that a
        resumed run does not solve again; with ``key``, the cache key it must match.
    code : str or None
        With a ``store``: a kept solution is reused only if this code fingerprint computed
        it (see :func:`code_fingerprint`); None reuses it whatever code computed it.
    progress : bool
        Show the solvers' progress on standard error.
    """

    def __init__(self, proto: Protocol, Xtr, ytr, Xte, yte, *, seed: int = 0, store=None, key=None,
                 progress: bool = False, code: str | None = None):
        from .datasets import bag_of_words, keep_header_lines, pca_reduce
        self.proto, self.ytr, self.yte = proto, np.asarray(ytr), np.asarray(yte)
        self.seed, self.store, self.key, self.progress = int(seed), store, key, bool(progress)
        self.code = code
        self.single_code = None   # set by single(): the code behind the solution it handed out
        if proto.header_lines is not None:
            Xtr, Xte = keep_header_lines(Xtr, proto.header_lines), keep_header_lines(Xte, proto.header_lines)
        if proto.bag_of_words:
            Xtr, Xte = bag_of_words(list(Xtr), list(Xte), proto.bag_of_words, proto.word_weighting)
        self.raw = (Xtr, Xte)
        if proto.pca_dims:   # sparse counts are centred implicitly (ARPACK; seconds at 20news size)
            self.pca = pca_reduce(Xtr, Xte, proto.pca_dims + proto.pca_drop, proto.pca_drop)
        else:
            self.pca = (Xtr, Xte)
        # the solver's coordinates: standardised raw features (an exact reparametrisation, see
        # the module doc), or the PCA coordinates as they are: standardising those would blow
        # the noise components up to unit variance and start the solver far from the optimum
        if proto.pca_dims:
            self.std = self.pca
        else:
            mean, scale = self.pca[0].mean(0), self.pca[0].std(0)
            scale = np.where(scale > 0, scale, 1.0)
            self.std = ((self.pca[0] - mean) / scale, (self.pca[1] - mean) / scale)
        if proto.validation:
            self.fit, self.val = validation_split(self.ytr, proto.validation, self.seed)
        else:
            self.fit, self.val = np.arange(self.ytr.size), None
        self._single = None

    def labels(self, rows=None) -> np.ndarray:
        """Class codes ``0..C-1`` of the training rows ``rows`` (default: the fit rows)."""
        y = self.ytr[self.fit if rows is None else rows]
        return np.unique(y, return_inverse=True)[1]

    def problem(self, targets=None, multi=False):
        """The LMNN problem on the fit rows (all training rows without validation).

        Targets default to the paper's: Euclidean same-class neighbours in its input
        space (the PCA coordinates, or the raw features).
        """
        from .multimetric import MultiMetricProblem
        from .neighbors import select_targets
        from .problem import LMNNProblem
        if targets is None:
            targets = select_targets(self.pca[0][self.fit], self.labels(), 3)
        cls = MultiMetricProblem if multi else LMNNProblem
        return cls(self.std[0][self.fit], self.ytr[self.fit], k=3, mu=0.5, targets=targets)

    def reference_targets(self) -> np.ndarray:
        """Euclidean same-class 3-NN of every training row in the input space (the energy rule's)."""
        from .neighbors import select_targets
        return select_targets(self.pca[0], self.labels(np.arange(self.ytr.size)), 3)

    def solve(self, problem, solver, options, warm_start=None) -> Solution:
        """Solve ``problem``; with a validation split, keep the iterate of lowest validation error.

        The reported relative gap is that of the metric kept: its objective against the
        lower bound the solver certified (valid for any metric), so an early-stopped
        metric shows how far from the convex optimum it stopped.
        """
        from .certificate import gap_floor, relative_gap
        from .solvers import solve
        opts = dict(options)
        if warm_start is not None:
            opts["warm_start"] = warm_start
        if self.progress:
            opts.setdefault("progress", True)
        t = time.perf_counter()
        if self.val is None:
            res = solve(problem, solver, **opts)
            return Solution(res.M, res.M, _lmnn_info(res), time.perf_counter() - t)
        Xs = self.std[0]
        stopper = ValidationStopper(Xs[self.fit], self.ytr[self.fit], Xs[self.val], self.ytr[self.val],
                                    patience=self.proto.patience)
        res = solve(problem, solver, callback=stopper, **opts)
        final_err = stopper.consider(res.M)
        info = _lmnn_info(res)
        info.update(relative_gap_final=res.relative_gap, objective_final=res.fun, val_error=100 * stopper.best_error,
                    val_error_final=100 * final_err, stopped_at=str(stopper.best_at),
                    val_evaluations=len(stopper.trace))
        M = stopper.best_M
        if stopper.best_at != "final":
            f = problem.objective(M)
            info.update(objective=f, relative_gap=relative_gap(f - res.lower_bound, f, gap_floor(problem)))
        return Solution(M, res.M, info, time.perf_counter() - t)

    def single(self):
        """``(problem, Solution)``: the single-metric LMNN, solved once per split and shared by four methods.

        With a ``store``, the solution is read from ``single.npz`` there when it was
        computed with the same cache key, and written there after solving.
        """
        if self._single is None:
            p = self.problem()
            path = None if self.store is None else Path(self.store) / "single.npz"
            sol = None if path is None else _read_solution(path, self.key, self.code)
            if sol is None:
                sol = self.solve(p, self.proto.solver, self.proto.solver_options)
                if path is not None:
                    _write_solution(path, sol, self.key)
            self._single = (p, sol)
        self.single_code = self._single[1].code
        return self._single


def _write_solution(path: Path, sol: Solution, key) -> None:
    """Keep a solution as ``.npz`` (metric, final metric, record and key as JSON), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    meta = json.dumps({"info": sol.info, "wall_time": sol.wall_time, "cache_key": key, "code": code_fingerprint()},
                      default=repr)
    with open(tmp, "wb") as fh:
        np.savez(fh, M=sol.M, M_final=sol.M_final, meta=np.array(meta))
    tmp.replace(path)


def _read_solution(path: Path, key, code: str | None = None) -> Solution | None:
    """The solution kept at ``path`` if it reads and was computed with ``key``'s inputs (and, given
    ``code``, by the code of that fingerprint), else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            M, M_final, meta = z["M"], z["M_final"], json.loads(str(z["meta"]))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is recomputed
        logger.warning("cached solution %s is damaged (%s: %s); solving again", path, type(exc).__name__, exc)
        return None
    if meta.get("cache_key") != key:
        logger.warning("cached solution %s was computed with other inputs; solving again", path)
        return None
    if code is not None and meta.get("code") != code:
        logger.info("cached solution %s was computed by other code (%s, now %s); solving again",
                    path, meta.get("code"), code)
        return None
    made_by = meta.get("code") or "not recorded"
    return Solution(M, M_final, meta["info"], float(meta["wall_time"]), cached=True,
                    code=None if made_by == code_fingerprint() else made_by)


def _svm_error(data: SplitData):
    """Test error and details of the multiclass RBF SVM on the LMNN inputs.

    With a validation split, ``C`` and ``gamma`` (a multiple of scikit-learn's "scale")
    are chosen by validation error on the fit rows, then the SVM is refitted on the whole
    training part; up to 2 000 training rows, by 3-fold cross-validation; above, one fixed
    setting (C = 10, gamma = "scale").
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC
    Xtr, Xte = data.std
    ytr, yte = data.ytr, data.yte
    info = {}
    if data.val is not None:
        Xf, yf, Xv, yv = Xtr[data.fit], ytr[data.fit], Xtr[data.val], ytr[data.val]
        base = 1.0 / (Xf.shape[1] * Xf.var())
        best = None
        for C in (1.0, 10.0, 100.0):
            for g in (0.25, 1.0, 4.0):
                err = float(np.mean(SVC(kernel="rbf", C=C, gamma=g * base).fit(Xf, yf).predict(Xv) != yv))
                if best is None or err < best[0]:
                    best = (err, C, g)
        err_v, C, g = best
        svm = SVC(kernel="rbf", C=C, gamma=g / (Xtr.shape[1] * Xtr.var()))
        info = {"C": C, "gamma_scale_factor": g, "val_error": 100 * err_v}
    elif len(ytr) <= 2000:
        svm = GridSearchCV(SVC(kernel="rbf"), {"C": [1, 10, 100], "gamma": ["scale", 0.1, 0.01]}, cv=3)
    else:  # one fit: cross-validating 9 settings would dominate the run
        svm = SVC(kernel="rbf", C=10, gamma="scale", cache_size=2000)
    err = float(np.mean(svm.fit(Xtr, ytr).predict(Xte) != yte))
    return err, info


def lda_coordinates(Xtr, ytr, Xte):
    """The table's LDA map (eigen solver, shrinkage 1e-4: well posed with fewer rows than
    dimensions) fitted on ``Xtr``, as ``(Xtr, Xte)`` in its coordinates."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=1e-4).fit(Xtr, ytr)
    return lda.transform(Xtr), lda.transform(Xte)


def run_method(method: str, data: SplitData) -> dict:
    """Test error (%) of one method on one split, with details.

    Every method classifies the test rows by 3-NN against the whole training part; the
    metric itself is learned on the fit rows (all of them without a validation split).
    """
    from .classify import energy_predict, knn_error
    Xtr_s, Xte_s = data.std
    ytr, yte = data.ytr, data.yte
    info = {}
    if method == "knn_euclidean":
        if data.proto.bag_of_words:
            err = knn_error_sparse(data.raw[0], ytr, data.raw[1], yte)
        else:
            err = knn_error(data.raw[0], ytr, data.raw[1], yte)
    elif method == "knn_pca":
        err = knn_error(data.pca[0], ytr, data.pca[1], yte)
    elif method == "knn_lda":
        Ltr, Lte = lda_coordinates(data.pca[0], ytr, data.pca[1])
        err = knn_error(Ltr, ytr, Lte, yte)
    elif method == "lmnn":
        p, sol = data.single()
        err = knn_error(Xtr_s, ytr, Xte_s, yte, sol.M)
        info = {**sol.info, "solve_wall_time": sol.wall_time, "solution_cached": sol.cached}
        if data.val is not None:
            info["test_error_final"] = 100 * knn_error(Xtr_s, ytr, Xte_s, yte, sol.M_final)
    elif method == "lmnn_energy":
        p, sol = data.single()
        targets = p.targets if data.val is None else data.reference_targets()
        pred = energy_predict(Xtr_s, ytr, Xte_s, sol.M, targets, k=3, mu=0.5)
        err = float(np.mean(pred != yte))
    elif method == "lmnn_multipass":
        for passes, _, sol in multipass_solutions(data):
            pass
        err = knn_error(Xtr_s, ytr, Xte_s, yte, sol.M)
        info = {**sol.info, "passes": passes}
    elif method == "lmnn_multimetric":
        _, single = data.single()
        p = data.problem(multi=True)
        sol = data.solve(p, data.proto.multi_solver, data.proto.multi_options, warm_start=single.M)
        err = knn_error(Xtr_s, ytr, Xte_s, yte, sol.M)
        info = dict(sol.info)
    elif method == "svm_multiclass":
        err, info = _svm_error(data)
    else:
        raise ValueError(f"unknown method {method!r}; known: {list(METHODS)}")
    return {"error": 100.0 * float(err), **info}


def multipass_solutions(data: SplitData, passes: int | None = None):
    """Multi-pass LMNN, one pass at a time: yield ``(pass, problem, solution)``.

    Pass 1 is the single metric; each later pass recomputes the targets in the previous
    pass's metric and solves again, warm-started from it, until the targets no longer change
    or ``passes`` (default: the protocol's) passes are done.
    """
    passes = data.proto.passes if passes is None else check_int("passes", passes)
    p, sol = data.single()
    yield 1, p, sol
    for n in range(2, passes + 1):
        targets = p.targets_in_metric(sol.M)
        if np.array_equal(targets, p.targets):
            return
        p = data.problem(targets)
        sol = data.solve(p, data.proto.solver, data.proto.solver_options, warm_start=sol.M)
        yield n, p, sol


def read_paper(path=None) -> dict:
    """The paper's Table 1 as ``{(row, column): value}`` (``None`` for N/A)."""
    path = Path(path) if path else _default_reference()
    out = {}
    if path is None or not path.is_file():
        return out
    with open(path) as fh:
        for row in csv.DictReader(fh):
            for col, v in row.items():
                if col != "method":
                    try:
                        out[(row["method"], col)] = float(v)
                    except ValueError:
                        out[(row["method"], col)] = None
    return out


def _default_reference(home=None):
    from .datasets import data_home
    cand = data_home(home).parent / "reference" / "jmlr2009_table1.csv"
    return cand if cand.is_file() else None


#: Protocol fields that never change a cached result (how many splits, the table note).
_NOT_IN_KEY = ("n_splits", "fast_splits", "note")
#: Fields added after results were first cached, with their defaults: in the key only
#: where a protocol sets them, so the keys (and caches) of the other data sets stay valid.
_KEY_IF_SET = {"bag_of_words": None, "validation": 0.0, "patience": None, "word_weighting": "counts",
               "passes": 3, "header_lines": None}


def cache_key(name: str, *, seed: int, fast: bool, proto: Protocol | None = None) -> dict:
    """Every input that changes one cached result of data set ``name``, as plain JSON values.

    The protocol as it runs (fast mode caps the solvers' time limits), the base seed,
    fast mode and the package version; fast-mode subsampling sizes only in fast mode.
    ``proto`` keys another protocol for the same data set (default: the table's,
    ``PROTOCOLS[name]``), whose results then have a cache folder of their own.
    """
    from . import __version__
    from dataclasses import asdict
    proto = PROTOCOLS[name] if proto is None else proto
    proto = proto.fast_version() if fast else proto
    fields = {k: v for k, v in asdict(proto).items()
              if k not in _NOT_IN_KEY and not (k in _KEY_IF_SET and v == _KEY_IF_SET[k])}
    if not fast:
        fields.pop("fast_train"), fields.pop("fast_test")
    key = {"dataset": name, "protocol": fields, "seed": int(seed), "fast": bool(fast),
           "convexmetric": __version__}
    if proto.bag_of_words:   # results before this rule took scikit-learn's CPU-dependent order of tied words
        key["vocabulary"] = "most common, ties alphabetical"
    return json.loads(json.dumps(key, sort_keys=True, default=repr))  # as it reads back from a record


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """Which code computes a result: 12 hex digits of SHA-256 over the package's Python sources.

    Stored in each cached record, not in the cache key, so that an edit does not orphan a
    long run's cache; a run says when it reads results computed by other code.
    """
    return _source_digest(Path(__file__).resolve().parent)


def _source_digest(root: Path) -> str:
    """SHA-256 (12 hex digits) of every ``.py`` file under ``root``, by relative path and content:
    any edit, new, removed or renamed file changes it."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix().encode()
        body = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(rel), rel, len(body)) + body)
    return digest.hexdigest()[:12]


def _other_code(rec: dict) -> str | None:
    """None if this code computed the cached ``rec``; else the fingerprint of the code that did
    (``"not recorded"`` for records written before fingerprints)."""
    return None if rec.get("code") == code_fingerprint() else (rec.get("code") or "not recorded")


def _warn_other_code(what: str, counts: dict, source: str = "the cache") -> None:
    """Say that ``sum(counts.values())`` results of ``what`` kept from ``source`` came from other code,
    by fingerprint."""
    logger.warning("%d results of %s kept from %s were computed by other code than this run's (%s) and are "
                   "reported as they are (code fingerprints: %s); --recompute computes them again",
                   sum(counts.values()), what, source, code_fingerprint(),
                   ", ".join(f"{c}: {n}" for c, n in counts.items()))


def _key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _cache_dir(out_dir, name: str, key: dict) -> Path:
    """``cache/<dataset>/<hash>`` (``cache/fast/...`` in fast mode): one folder per set of inputs."""
    return Path(out_dir) / "cache" / ("fast" if key["fast"] else "") / name / _key_hash(key)


def _read_record(path: Path, key: dict) -> dict | None:
    """The cached record at ``path`` if it exists, parses and was computed with ``key``'s inputs.

    A damaged file or one computed with other inputs is reported (a warning naming the
    file) and None is returned, so the caller recomputes and overwrites it.
    """
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("cache entry %s is damaged (%s: %s); recomputing it", path, type(exc).__name__, exc)
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("error"), (int, float)):
        logger.warning("cache entry %s does not hold a result; recomputing it", path)
        return None
    if rec.get("cache_key") != key:
        got = rec.get("cache_key")
        if isinstance(got, dict):
            diff = sorted(k for k in set(key) | set(got) if got.get(k) != key.get(k))
        else:
            diff = ["no key stored"]
        logger.warning("cache entry %s was computed with other inputs (differs in %s); recomputing it",
                       path, ", ".join(diff))
        return None
    return rec


def _write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (a crash leaves the old file or none, never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def run(datasets, methods, out_dir, *, fast=False, n_splits=None, seed=0, home=None, reference=None,
        progress=True, download=False, recompute=False):
    """Run (or resume) the reproduction; return the summary rows.

    Results cached under ``out_dir/cache`` with the same inputs (see :func:`cache_key`)
    are reused, and where the cache has no file, the rows of ``splits.csv`` computed with
    them (:func:`_resumable`); missing, damaged or stale ones are computed. The summary
    files are rewritten after each split that computed a result, so an interrupted run
    leaves every finished split in ``splits.csv`` (a split goes in when all of ``methods`` are
    done on it). Kept results computed by other code (:func:`code_fingerprint`) are reused
    with a warning, or with ``recompute`` computed again. ``download`` fetches missing data
    files from their public source.
    """
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    walls, keys, other_code, summarised = {}, {}, {}, {}
    every, order = _summary_records(out_dir, seed=seed, fast=fast)
    kept_records = [r for r in every if not (r["dataset"] in datasets and r["method"] in methods)]
    resumed = _resumable(every, datasets, methods, seed=seed, fast=fast)
    reference = reference or _default_reference(home)
    order = list(dict.fromkeys(list(order) + list(datasets)))    # the earlier table's, then new data sets
    kept_rows = _kept_rows(kept_records, reference)
    kept = list(dict.fromkeys(r["dataset"] for r in kept_rows))
    stale = _kept_under_other_inputs(kept_records, seed=seed, fast=fast)

    def write_summary():
        rows = summarize(out_dir, datasets, methods, fast, n_splits, reference, seed=seed,
                         kept_records=kept_records, order=order, resumed=resumed)
        write_outputs(out_dir, _in_table_order(order, kept_rows + rows), dict(
            datasets=list(datasets), methods=list(methods), fast=fast, n_splits=n_splits, seed=seed,
            cache_keys=keys, kept_from_earlier_runs=kept, kept_under_other_inputs=stale, code=code_fingerprint(),
            read_from_summary={n: c for n, c in summarised.items() if c},
            cached_by_other_code={n: c for n, c in other_code.items() if c}), walls, time.perf_counter() - t_start)
        return rows

    for name in datasets:
        proto = PROTOCOLS[name]
        key = cache_key(name, seed=seed, fast=fast)
        cache = _cache_dir(out_dir, name, key)
        keys[name] = {"hash": _key_hash(key), "inputs": key}
        splits = n_splits or (proto.fast_splits if fast else proto.n_splits)
        raw = None
        t0 = time.perf_counter()
        reused = other_code[name] = {}     # fingerprint of the code that computed it -> kept results
        beyond = sorted({s for n, s, _ in resumed if n == name and s >= splits})
        if beyond:
            logger.warning("splits.csv holds results of %s's splits %s, beyond the %d of this run, under its "
                           "inputs; the summary written now leaves them out", name,
                           ", ".join(str(s + 1) for s in beyond), splits)
        for split in range(splits):
            found = {m: _cached_or_summarised(cache / str(split) / f"{m}.json", key, resumed, (name, split, m))
                     for m in methods}
            older = {m: _other_code(rec) for m, rec in found.items() if rec is not None}
            todo = [m for m in methods if found[m] is None or (recompute and older[m])]
            summarised[name] = summarised.get(name, 0) + sum("from_summary" in found[m] for m in methods
                                                             if m not in todo)
            if not recompute:
                for c in filter(None, older.values()):
                    reused[c] = reused.get(c, 0) + 1
            if not todo:
                continue
            if raw is None:
                raw = load_raw(name, home, download)
                _write_json(cache / "key.json", key)   # what the hash stands for, for people
            t = time.perf_counter()
            data = SplitData(proto if not fast else proto.fast_version(), *make_split(proto, raw, split, seed, fast),
                             seed=seed + split, store=cache / str(split), key=key, progress=progress,
                             code=code_fingerprint() if recompute else None)
            prep = time.perf_counter() - t   # split, bag of words, PCA: kept apart from the methods' times
            if progress:
                print(f"[{name}] split {split + 1}/{splits}: {len(data.ytr)} training rows ({len(data.fit)} to "
                      f"learn on), {len(data.yte)} test, {data.std[0].shape[1]} dimensions; prepared in {prep:.1f} s",
                      file=sys.stderr, flush=True)
            for m in todo:
                t = time.perf_counter()
                data.single_code = None
                rec = run_method(m, data)
                wall = time.perf_counter() - t
                if rec.get("solution_cached"):   # the single solve ran in an earlier, interrupted run
                    wall += rec["solve_wall_time"]
                rec.update(dataset=name, split=split, method=m, seed=seed + split, fast=fast,
                           n_train=int(len(data.ytr)), n_test=int(len(data.yte)), n_fit=int(len(data.fit)),
                           wall_time=wall, prep_time=prep, cache_key=key,
                           code=data.single_code or code_fingerprint())   # a kept solution's code counts
                _write_json(cache / str(split) / f"{m}.json", rec)
                msg = f"[{name}] split {split + 1}/{splits} {m}: {rec['error']:.2f} % ({rec['wall_time']:.1f} s)"
                logger.info(msg)
                if progress:
                    print(msg, file=sys.stderr, flush=True)
            write_summary()
        walls[name] = time.perf_counter() - t0
        if reused:
            _warn_other_code(name, reused, "the cache or splits.csv")
        if summarised[name]:
            msg = f"[{name}] {summarised[name]} results read from {out_dir / 'splits.csv'} (the cache has none)"
            logger.info(msg)
            if progress:
                print(msg, file=sys.stderr, flush=True)
    if kept:
        logger.info("kept the results of %s from the summary files in %s (not recomputed)", ", ".join(kept), out_dir)
    for name, found in stale.items():
        logger.warning("%s", _stale_message(name, found, seed=seed, fast=fast))
    return write_summary()


def _summary_records(out_dir, *, seed: int, fast: bool):
    """``(records, order)``: every split record of the summary files in ``out_dir`` (strings).

    The summaries grow one data set (or method) at a time (MNIST alone takes an hour): a
    run rewrites the rows of its own data sets and methods and keeps every other row's
    split records (``splits.csv``, from which those rows are recomputed), provided they
    were made with the same base seed and mode (``run.json``); see also :func:`_resumable`.
    ``order`` lists every data set of the earlier table in its order. Anything unreadable
    is reported and dropped, never guessed.
    """
    out_dir = Path(out_dir)
    meta, table = out_dir / "run.json", out_dir / "splits.csv"
    if not (meta.is_file() and table.is_file()):
        return [], []
    try:
        args = json.loads(meta.read_text()).get("args", {})
        if int(args.get("seed", 0)) != int(seed) or bool(args.get("fast")) != bool(fast):
            return [], []
        with open(table, newline="") as fh:
            every = list(csv.DictReader(fh))
        for r in every:
            if r["dataset"] not in PROTOCOLS or r["method"] not in METHODS:
                raise ValueError(f"unknown data set or method in {r}")
            int(r["split"]), int(r["seed"]), float(r["wall_time"]), int(r["n_train"]), int(r["n_test"])
            float(r["relative_gap"] or 0.0)
            if not 0.0 <= float(r["error"]) <= 100.0:
                raise ValueError(f"error {r['error']!r} is not a percentage in {r}")
        twice = {k: n for k, n in Counter((r["dataset"], r["split"], r["method"]) for r in every).items() if n > 1}
        if twice:
            raise ValueError(f"(data set, split, method) given more than once: {sorted(twice)}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        logger.warning("the summary files in %s cannot be read back (%s): only this run's data sets are "
                       "written", out_dir, exc)
        return [], []
    order = list(dict.fromkeys(r["dataset"] for r in every))
    return every, order


def _resumable(records, datasets, methods, *, seed: int, fast: bool) -> dict:
    """``{(dataset, split, method): record}``: the summary's records of this run's data sets and
    methods computed under the cache key this code gives now (:func:`cache_key`), which a run
    takes where its cache has no record: the cache is not committed, ``splits.csv`` is. Records
    without a key (older summaries) are not taken."""
    now = {name: _key_hash(cache_key(name, seed=seed, fast=fast)) for name in datasets}
    return {(r["dataset"], int(r["split"]), r["method"]): dict(_as_record(r), from_summary=True)
            for r in records if r["dataset"] in now and r["method"] in methods
            and r.get("cache_key") == now[r["dataset"]] and int(r["seed"]) == seed + int(r["split"])}


def _cached_or_summarised(path: Path, key: dict, resumed: dict, at: tuple) -> dict | None:
    """The cached record at ``path`` (:func:`_read_record`), else, only where the cache has no file,
    the summary's record ``resumed[at]`` (:func:`_resumable`): a damaged or foreign file is
    recomputed, as its warning says, and then overwritten."""
    rec = _read_record(path, key)
    return resumed.get(at) if rec is None and not path.exists() else rec


def _as_record(row: dict) -> dict:
    """A ``splits.csv`` row (strings) with the fields a table row is computed from as numbers."""
    return dict(row, error=float(row["error"]), wall_time=float(row["wall_time"]),
                relative_gap=float(row["relative_gap"]) if row.get("relative_gap") else None,
                n_train=int(row["n_train"]), n_test=int(row["n_test"]))


def _kept_under_other_inputs(records, *, seed: int, fast: bool) -> dict:
    """``{dataset: {"methods": [...], "recorded": [hashes], "now": hash}}`` for the kept split
    records (read back from ``splits.csv``) whose recorded cache key differs from the key this
    code gives now (:func:`cache_key`: the protocol, seed, mode and package version), e.g. rows
    a protocol change left behind. Records without one (older summaries) are not checked."""
    now, stale = {}, {}
    for r in records:
        name, recorded = r["dataset"], r.get("cache_key") or ""
        if name not in now:
            now[name] = _key_hash(cache_key(name, seed=seed, fast=fast))
        if recorded and recorded != now[name]:
            found = stale.setdefault(name, {"methods": set(), "recorded": set(), "now": now[name]})
            found["methods"].add(r["method"])
            found["recorded"].add(recorded)
    return {name: {"methods": [m for m in METHODS if m in s["methods"]], "recorded": sorted(s["recorded"]),
                   "now": s["now"]} for name, s in stale.items()}


def _stale_message(name: str, found: dict, *, seed: int, fast: bool) -> str:
    """What to say about data set ``name``'s kept rows that :func:`_kept_under_other_inputs` found,
    with the command that computes them again under this run's seed and mode."""
    rows = ", ".join(METHODS[m] for m in found["methods"])
    command = f"--datasets {name}" + (f" --methods {' '.join(found['methods'])}"
                                      if set(found["methods"]) != set(METHODS) else "")
    command += (" --fast" if fast else "") + (f" --seed {seed}" if seed else "")
    return (f"The kept rows of {name} ({rows}) were computed under other inputs (cache key "
            f"{', '.join(found['recorded'])}) than this code gives now ({found['now']}: the protocol, seed, "
            f"mode or package version changed since); `{command}` computes them again")


def _in_table_order(order, items):
    """``items`` (rows or split records) with their data sets in ``order`` and their methods in the
    order of :data:`METHODS`; stable, so splits keep theirs. ``splits.csv`` is written in this order
    too, so the next run reads it back."""
    rank = {m: i for i, m in enumerate(METHODS)}
    return sorted(items, key=lambda r: (order.index(r["dataset"]), rank[r["method"]]))


def summarize(out_dir, datasets, methods, fast, n_splits, reference=None, *, seed=0, kept_records=(), order=None,
              resumed=None):
    """Mean and standard deviation over the cached splits of this seed and protocol, beside the paper's number.

    ``splits.csv`` gets every cached record of these data sets, else their record in
    ``resumed`` (from the summary, see :func:`_resumable`), and ``kept_records`` (other rows'
    records from an earlier run, see :func:`_summary_records`), data sets in ``order``
    (default: the kept ones first).
    """
    resumed = resumed or {}
    paper = read_paper(reference)
    rows, all_records = [], []
    for name in datasets:
        proto = PROTOCOLS[name]
        key = cache_key(name, seed=seed, fast=fast)
        splits = n_splits or (proto.fast_splits if fast else proto.n_splits)
        for m in methods:
            recs = []
            for split in range(splits):
                rec = _cached_or_summarised(_cache_dir(out_dir, name, key) / str(split) / f"{m}.json", key,
                                            resumed, (name, split, m))
                if rec is not None:
                    recs.append(rec)
            if recs:
                all_records.extend(recs)
                rows.append(_summary_row(name, m, recs, paper))
    records = list(kept_records) + all_records
    if order is not None:
        records = _in_table_order(order, records)
    _write_split_records(Path(out_dir), records)
    return rows


def _summary_row(name: str, method: str, recs, paper: dict) -> dict:
    """One table row from the records of one (data set, method): mean, spread, largest gap, time."""
    errs = np.array([r["error"] for r in recs])
    ref = paper.get((PAPER_ROW.get(method, method), PAPER_COLUMN[name]))
    gaps = [r["relative_gap"] for r in recs if r.get("relative_gap") is not None]
    return {"dataset": name, "method": method, "mean": float(errs.mean()),
            "std": float(errs.std(ddof=1)) if errs.size > 1 else 0.0, "splits": int(errs.size),
            "paper": ref, "diff": None if ref is None else float(errs.mean() - ref),
            "max_relative_gap": float(np.max(gaps)) if gaps else None,
            "mean_time": float(np.mean([r["wall_time"] for r in recs])),
            "n_train": recs[0]["n_train"], "n_test": recs[0]["n_test"]}


def _kept_rows(records, reference=None) -> list:
    """Table rows of split records read back from ``splits.csv`` (strings), in their order."""
    paper = read_paper(reference)
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], r["method"]), []).append(_as_record(r))
    return [_summary_row(name, m, recs, paper) for (name, m), recs in groups.items()]


def _write_split_records(out_dir: Path, records) -> None:
    """Every cached (data set, split, method) result in one CSV (``splits.csv``), each with the hash
    of the cache key it was computed under (:func:`_kept_under_other_inputs` and :func:`_resumable`
    compare it) and the fingerprint of the code that computed it."""
    fields = ["dataset", "split", "method", "error", "objective", "relative_gap", "status", "solver", "nit",
              "wall_time", "seed", "n_train", "n_test", "fast", "n_fit", "prep_time", "val_error",
              "test_error_final", "relative_gap_final", "cache_key", "code"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "splits.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in records:
            row = {k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in fields}
            key = r.get("cache_key")   # a cached record's key, or the hash a kept row read back
            row["cache_key"] = _key_hash(key) if isinstance(key, dict) else (key or "")
            w.writerow(row)


def write_outputs(out_dir, rows, args, walls, total):
    import cvxpy
    import scipy
    import sklearn
    from . import __version__
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ["dataset", "method", "mean", "std", "splits", "paper", "diff", "max_relative_gap", "mean_time",
              "n_train", "n_test"]
    with open(out_dir / "table1.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else (f"{r[k]:.4g}" if isinstance(r[k], float) else r[k]))
                        for k in fields})
    lines = ["# Table 1 of Weinberger & Saul (JMLR 2009), reproduced", "",
             "3-NN test error in % (mean ± std over splits); paper = the published number; "
             "diff = ours − paper; gap = largest certified relative duality gap of the LMNN solutions.", "",
             "| data | method | ours | paper | diff | splits | gap | s / split |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        paper = "N/A" if r["paper"] is None else f"{r['paper']:.2f}"
        diff = "" if r["diff"] is None else f"{r['diff']:+.2f}"
        gap = "" if r["max_relative_gap"] is None else f"{r['max_relative_gap']:.1e}"
        lines.append(f"| {r['dataset']} | {METHODS[r['method']]} | {r['mean']:.2f} ± {r['std']:.2f} | {paper} "
                     f"| {diff} | {r['splits']} | {gap} | {r['mean_time']:.1f} |")
    shown = {r["dataset"] for r in rows}
    notes = [f"- {p.name}: {p.note}" for p in PROTOCOLS.values() if p.note and p.name in shown]
    if notes:
        lines += ["", "Data notes:"] + notes
    if args.get("kept_from_earlier_runs"):
        computed = ", ".join(args["datasets"])
        if set(args["methods"]) != set(METHODS):
            computed += f" ({', '.join(METHODS[m] for m in METHODS if m in args['methods'])})"
        lines += ["", f"Rows of {', '.join(args['kept_from_earlier_runs'])} were kept from an earlier run's "
                  f"summary files (same seed and mode); this run computed {computed}."]
    for name, found in args.get("kept_under_other_inputs", {}).items():
        lines += ["", f"**{_stale_message(name, found, seed=args['seed'], fast=args['fast'])}.**"]
    older = {n: sum(c.values()) for n, c in args.get("cached_by_other_code", {}).items()}
    if older:
        lines += ["", "Kept from the cache or `splits.csv`, computed by other code than this run's "
                  "(code fingerprints in "
                  "`run.json`; `--recompute` computes them again): "
                  + ", ".join(f"{n} results of {name}" for name, n in older.items()) + "."]
    lines += ["", "Rows more than 1 point from the paper are discussed, with evidence, in "
              "`paper_repro/README.md` (from `paper_repro/explain_differences.py`)."]
    (out_dir / "table1.md").write_text("\n".join(lines) + "\n")
    meta = {"args": args, "command": " ".join(sys.argv), "wall_time_s": total, "dataset_wall_time_s": walls,
            "versions": {"convexmetric": __version__, "python": platform.python_version(),
                         "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                         "cvxpy": cvxpy.__version__},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "protocols": {n: {k: v for k, v in vars(p).items()} for n, p in PROTOCOLS.items() if n in shown}}
    (out_dir / "run.json").write_text(json.dumps(meta, indent=1, default=str))


#: Where the CLI writes: the committed full-protocol results, and a separate folder for
#: ``--fast`` runs so that a quick look never overwrites them.
DEFAULT_OUT = "paper_repro/results"
DEFAULT_FAST_OUT = "paper_repro/results/fast"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convexmetric-repro", description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["bal", "wine", "iris"], choices=sorted(PROTOCOLS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", default=None,
                    help=f"output directory (default {DEFAULT_OUT}, with --fast {DEFAULT_FAST_OUT})")
    ap.add_argument("--fast", action="store_true",
                    help="few splits and subsampled large sets: minutes, for CI and a first look")
    ap.add_argument("--download", action="store_true",
                    help="download missing data files from their public source into the data home")
    ap.add_argument("--splits", type=int, default=None, help="override the number of splits")
    ap.add_argument("--seed", type=int, default=0, help="split s uses random_state seed + s")
    ap.add_argument("--data-home", default=None, help="directory of the data sets (default $CONVEXMETRIC_DATA)")
    ap.add_argument("--reference", default=None, help="the paper's Table 1 CSV (default: beside the data home)")
    ap.add_argument("--recompute", action="store_true",
                    help="compute again the cached results (and solutions) that other code computed")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out or (DEFAULT_FAST_OUT if args.fast else DEFAULT_OUT))
    from .datasets import DataFileError
    try:
        rows = run(args.datasets, args.methods, out, fast=args.fast, n_splits=args.splits, seed=args.seed,
                   home=args.data_home, reference=args.reference, progress=not args.quiet,
                   download=args.download, recompute=args.recompute)
    except DataFileError as exc:  # missing, damaged or not downloadable: one line, not a traceback
        print(f"{ap.prog}: error: {exc}", file=sys.stderr)
        return 2
    print((out / "table1.md").read_text())
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
