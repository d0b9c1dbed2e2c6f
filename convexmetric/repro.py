"""Reproduce Table 1 of Weinberger & Saul, JMLR 10 (2009): 3-NN test error by method.

Run ``convexmetric-repro`` (or ``python -m paper_repro`` from the repository) to write

* ``results/table1.csv``: one row per (data set, method) with our mean and standard
  deviation over splits, the paper's number and the difference;
* ``results/table1.md``: the same as a markdown table, with notes;
* ``results/run.json``: versions, seeds, protocol, arguments and wall times;
* ``results/splits.csv``: every (data set, split, method) result;
* ``results/cache/<dataset>/<key>/<split>/<method>.json`` (``cache/fast/...`` in fast
  mode): each result as it is computed, so an interrupted run resumes where it stopped.

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

Protocol (the paper's, see ``shared/reference/README.md``): k = 3, mu = 0.5, 70/30
random splits (100 for bal, wine, iris and oFaces; 10 for letters, 20news and yFaces),
fixed splits for MNIST and Isolet, PCA before LMNN where the paper used it.

Two choices are ours and stated in the table's notes:

* Without PCA, LMNN is solved in *standardised* coordinates with the target neighbours
  chosen in the paper's (raw) input space. A linear change of variables ``x -> D x`` maps the
  problem onto itself (``M = D M' D``), so the optimum and every kNN decision are the
  same; only the numerical conditioning improves (raw Wine: 13 s, standardised: 1 s).
* The convex problem has one optimum, so the paper's validation split (used there to
  stop the non-convex solver early) is not needed; we train on the whole training part.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    """How one data set is split, preprocessed and solved."""

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
    "isolet": Protocol("isolet", 1, pca_dims=172, fixed_split=True, solver="fista",
                       solver_options={"tol": 1e-3, "time_limit": 240}, multi_solver="fista",
                       multi_options={"tol": 1e-3, "time_limit": 400}, fast_train=1000, fast_test=500,
                       fast_splits=1),
    "mnist": Protocol("mnist", 1, pca_dims=164, fixed_split=True, solver="fista",
                      solver_options={"tol": 1e-3, "time_limit": 3600}, multi_solver="fista",
                      multi_options={"tol": 1e-3, "time_limit": 3600}, fast_train=2000, fast_test=1000,
                      fast_splits=1),
    "ofaces": Protocol("ofaces", 100, pca_dims=200, solver="fista", solver_options={"tol": 1e-3},
                       multi_solver="fista", multi_options={"tol": 1e-3, "time_limit": 120}),
}


def load_raw(name: str, home=None, download: bool = False):
    """``(X, y)`` or ``(X_train, y_train, X_test, y_test)`` for a fixed split, as the paper's inputs.

    ``download`` fetches missing files from their public source (where one exists; not
    Isolet) into the data home.
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


class SplitData:
    """One split, with the features each method needs computed once and shared."""

    def __init__(self, proto: Protocol, Xtr, ytr, Xte, yte):
        from .datasets import pca_reduce
        self.proto, self.ytr, self.yte = proto, ytr, yte
        self.raw = (Xtr, Xte)
        if proto.pca_dims:
            self.pca = pca_reduce(Xtr, Xte, proto.pca_dims, proto.pca_drop)
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
        self._single = None

    def problem(self, targets=None, multi=False):
        from .multimetric import MultiMetricProblem
        from .neighbors import select_targets
        from .problem import LMNNProblem
        labels = np.unique(self.ytr, return_inverse=True)[1]
        if targets is None:  # the paper's targets: Euclidean neighbours in its input space
            targets = select_targets(self.pca[0], labels, 3)
        cls = MultiMetricProblem if multi else LMNNProblem
        return cls(self.std[0], self.ytr, k=3, mu=0.5, targets=targets)

    def single(self):
        """The single-metric LMNN result (solved once per split, shared by four methods)."""
        from .solvers import solve
        if self._single is None:
            p = self.problem()
            self._single = (p, solve(p, self.proto.solver, **self.proto.solver_options))
        return self._single


def _lmnn_info(res) -> dict:
    return {"objective": res.fun, "relative_gap": res.relative_gap, "status": res.status,
            "solver": res.solver, "nit": res.nit, "solve_time": res.solve_time}


def run_method(method: str, data: SplitData) -> dict:
    """Test error (%) of one method on one split, with details."""
    from .classify import energy_predict, knn_error
    Xtr_s, Xte_s = data.std
    ytr, yte = data.ytr, data.yte
    info = {}
    if method == "knn_euclidean":
        err = knn_error(data.raw[0], ytr, data.raw[1], yte)
    elif method == "knn_pca":
        err = knn_error(data.pca[0], ytr, data.pca[1], yte)
    elif method == "knn_lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=1e-4).fit(data.pca[0], ytr)
        err = knn_error(lda.transform(data.pca[0]), ytr, lda.transform(data.pca[1]), yte)
    elif method == "lmnn":
        p, res = data.single()
        err = knn_error(Xtr_s, ytr, Xte_s, yte, res.M)
        info = _lmnn_info(res)
    elif method == "lmnn_energy":
        p, res = data.single()
        pred = energy_predict(Xtr_s, ytr, Xte_s, res.M, p.targets, k=3, mu=0.5)
        err = float(np.mean(pred != yte))
    elif method == "lmnn_multipass":
        from .neighbors import select_targets
        from .psd import components_from_metric
        from .solvers import solve
        p, res = data.single()
        labels = np.unique(ytr, return_inverse=True)[1]
        passes = 1
        for _ in range(2):  # passes 2 and 3: targets recomputed in the learned space
            targets = select_targets(Xtr_s @ components_from_metric(res.M).T, labels, 3)
            if np.array_equal(targets, p.targets):
                break
            p = data.problem(targets)
            res = solve(p, data.proto.solver, warm_start=res.M, **data.proto.solver_options)
            passes += 1
        err = knn_error(Xtr_s, ytr, Xte_s, yte, res.M)
        info = {**_lmnn_info(res), "passes": passes}
    elif method == "lmnn_multimetric":
        from .solvers import solve
        _, single = data.single()
        p = data.problem(multi=True)
        res = solve(p, data.proto.multi_solver, warm_start=single.M, **data.proto.multi_options)
        err = knn_error(Xtr_s, ytr, Xte_s, yte, res.M)
        info = _lmnn_info(res)
    elif method == "svm_multiclass":
        from sklearn.model_selection import GridSearchCV
        from sklearn.svm import SVC
        if len(ytr) <= 2000:
            svm = GridSearchCV(SVC(kernel="rbf"), {"C": [1, 10, 100], "gamma": ["scale", 0.1, 0.01]}, cv=3)
        else:  # one fit: cross-validating 9 settings would dominate the run
            svm = SVC(kernel="rbf", C=10, gamma="scale")
        err = float(np.mean(svm.fit(Xtr_s, ytr).predict(Xte_s) != yte))
    else:
        raise ValueError(f"unknown method {method!r}; known: {list(METHODS)}")
    return {"error": 100.0 * float(err), **info}


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


def cache_key(name: str, *, seed: int, fast: bool) -> dict:
    """Every input that changes one cached result of data set ``name``, as plain JSON values.

    The protocol as it runs (fast mode caps the solvers' time limits), the base seed,
    fast mode and the package version; fast-mode subsampling sizes only in fast mode.
    """
    from . import __version__
    from dataclasses import asdict
    proto = PROTOCOLS[name].fast_version() if fast else PROTOCOLS[name]
    fields = {k: v for k, v in asdict(proto).items() if k not in _NOT_IN_KEY}
    if not fast:
        fields.pop("fast_train"), fields.pop("fast_test")
    key = {"dataset": name, "protocol": fields, "seed": int(seed), "fast": bool(fast),
           "convexmetric": __version__}
    return json.loads(json.dumps(key, sort_keys=True, default=repr))  # as it reads back from a record


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
        progress=True, download=False):
    """Run (or resume) the reproduction; return the summary rows.

    Results cached under ``out_dir/cache`` with the same inputs (see :func:`cache_key`)
    are reused; missing, damaged or stale ones are computed. ``download`` fetches
    missing data files from their public source.
    """
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    walls, keys = {}, {}
    for name in datasets:
        proto = PROTOCOLS[name]
        key = cache_key(name, seed=seed, fast=fast)
        cache = _cache_dir(out_dir, name, key)
        keys[name] = {"hash": _key_hash(key), "inputs": key}
        splits = n_splits or (proto.fast_splits if fast else proto.n_splits)
        raw = None
        t0 = time.perf_counter()
        for split in range(splits):
            todo = [m for m in methods if _read_record(cache / str(split) / f"{m}.json", key) is None]
            if not todo:
                continue
            if raw is None:
                raw = load_raw(name, home, download)
                _write_json(cache / "key.json", key)   # what the hash stands for, for people
            data = SplitData(proto if not fast else proto.fast_version(), *make_split(proto, raw, split, seed, fast))
            for m in todo:
                t = time.perf_counter()
                rec = run_method(m, data)
                rec.update(dataset=name, split=split, method=m, seed=seed + split, fast=fast,
                           n_train=int(len(data.ytr)), n_test=int(len(data.yte)),
                           wall_time=time.perf_counter() - t, cache_key=key)
                _write_json(cache / str(split) / f"{m}.json", rec)
                msg = f"[{name}] split {split + 1}/{splits} {m}: {rec['error']:.2f} % ({rec['wall_time']:.1f} s)"
                logger.info(msg)
                if progress:
                    print(msg, file=sys.stderr, flush=True)
        walls[name] = time.perf_counter() - t0
    rows = summarize(out_dir, datasets, methods, fast, n_splits, reference or _default_reference(home), seed=seed)
    write_outputs(out_dir, rows, dict(datasets=list(datasets), methods=list(methods), fast=fast,
                                      n_splits=n_splits, seed=seed, cache_keys=keys),
                  walls, time.perf_counter() - t_start)
    return rows


def summarize(out_dir, datasets, methods, fast, n_splits, reference=None, *, seed=0):
    """Mean and standard deviation over the cached splits of this seed and protocol, beside the paper's number."""
    paper = read_paper(reference)
    rows, all_records = [], []
    for name in datasets:
        proto = PROTOCOLS[name]
        key = cache_key(name, seed=seed, fast=fast)
        splits = n_splits or (proto.fast_splits if fast else proto.n_splits)
        for m in methods:
            recs = []
            for split in range(splits):
                rec = _read_record(_cache_dir(out_dir, name, key) / str(split) / f"{m}.json", key)
                if rec is not None:
                    recs.append(rec)
            if not recs:
                continue
            all_records.extend(recs)
            errs = np.array([r["error"] for r in recs])
            ref = paper.get((PAPER_ROW.get(m, m), PAPER_COLUMN[name]))
            gaps = [r["relative_gap"] for r in recs if "relative_gap" in r]
            rows.append({
                "dataset": name, "method": m, "mean": float(errs.mean()),
                "std": float(errs.std(ddof=1)) if errs.size > 1 else 0.0, "splits": int(errs.size),
                "paper": ref, "diff": None if ref is None else float(errs.mean() - ref),
                "max_relative_gap": float(np.max(gaps)) if gaps else None,
                "mean_time": float(np.mean([r["wall_time"] for r in recs])),
                "n_train": recs[0]["n_train"], "n_test": recs[0]["n_test"]})
    _write_split_records(Path(out_dir), all_records)
    return rows


def _write_split_records(out_dir: Path, records) -> None:
    """Every cached (data set, split, method) result in one CSV (``splits.csv``)."""
    fields = ["dataset", "split", "method", "error", "objective", "relative_gap", "status", "solver", "nit",
              "wall_time", "seed", "n_train", "n_test", "fast"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "splits.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in fields})


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
    notes = [f"- {p.name}: {p.note}" for p in PROTOCOLS.values() if p.note and p.name in args["datasets"]]
    if notes:
        lines += ["", "Data notes:"] + notes
    lines += ["", "Rows more than 1.5 points from the paper are discussed, with evidence, in "
              "`paper_repro/README.md` (from `paper_repro/explain_differences.py`)."]
    (out_dir / "table1.md").write_text("\n".join(lines) + "\n")
    meta = {"args": args, "command": " ".join(sys.argv), "wall_time_s": total, "dataset_wall_time_s": walls,
            "versions": {"convexmetric": __version__, "python": platform.python_version(),
                         "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                         "cvxpy": cvxpy.__version__},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "protocols": {n: {k: v for k, v in vars(p).items()} for n, p in PROTOCOLS.items()
                          if n in args["datasets"]}}
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
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out or (DEFAULT_FAST_OUT if args.fast else DEFAULT_OUT))
    from .datasets import DataFileError
    try:
        rows = run(args.datasets, args.methods, out, fast=args.fast, n_splits=args.splits, seed=args.seed,
                   home=args.data_home, reference=args.reference, progress=not args.quiet,
                   download=args.download)
    except DataFileError as exc:  # missing, damaged or not downloadable: one line, not a traceback
        print(f"{ap.prog}: error: {exc}", file=sys.stderr)
        return 2
    print((out / "table1.md").read_text())
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
