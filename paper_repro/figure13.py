"""Figure 13 of Weinberger & Saul (JMLR 2009): 3-NN test error of low-rank LMNN metrics on MNIST.

The paper learns a rectangular map ``L`` (r x d) directly (LMNN-R) and compares it with
keeping the r leading eigenvectors of the full metric (LMNN-S) and with PCA to r
dimensions, for output dimensions r = 15 .. 50, on MNIST projected on its 350 leading
principal components. This script computes the three curves:

* **LMNN-R**: ``solve(problem, "factored", rank=r)``, the non-convex L-BFGS on ``L`` (r x d),
  started from the first r principal directions (the factored solver's "identity" start:
  the problem's coordinates are the principal components), one solve per r with a time limit;
  its certified gap is measured against the *full-rank* convex optimum;
* **LMNN-S**: the full convex metric at d = 350, solved once (``solve(problem)``, the default
  ``auto`` choice, certified), then truncated: ``L_r = components_from_metric(M)[:r]``;
* **PCA**: the first r principal components;

plus two references at full dimension: the Euclidean 3-NN error on the 350 components and
the full LMNN metric's error. Every classifier is the paper's 3-NN with its tie rule
(:func:`convexmetric.classify.knn_error`); targets are the Euclidean same-class 3-NN in the
350-dimensional PCA space (k = 3, mu = 0.5).

Inputs: the **raw** MNIST images (the paper's Fig. 13 used the raw images, not the deskewed
ones of Table 1; ``--deskew`` switches), scaled to [0, 1], the fixed 60 000 / 10 000 split,
PCA fitted on the training images.

Run from the repository root (data under ``$CONVEXMETRIC_DATA``)::

    python paper_repro/figure13.py            # full protocol: about 1 h 10 min on 2 cores
    python paper_repro/figure13.py --fast     # 5 000 / 2 000 images, r = 15 and 25: 1-2 min

It writes ``figure13.csv``, ``figure13.md``, ``figure13.png`` and ``figure13.json``
(arguments, versions, wall times) under ``paper_repro/results/`` (``--fast``:
``paper_repro/results/fast/``), and keeps every (method, r) result under
``cache/figure13/<key>/`` there, so an interrupted run resumes where it stopped; ``<key>``
hashes every input that changes a result (sizes, deskewing, PCA, seed, solver options,
fast mode, package version). As in the table's cache, each result records which code
computed it; results of other code are reused with a warning, or with ``--recompute``
computed again.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("paper_repro.figure13")

#: The paper's output dimensions.
RANKS = (15, 20, 25, 30, 35, 40, 45, 50)
#: LMNN-R test errors (%) read from the paper's text for Fig. 13.
PAPER_LMNN_R = {15: 2.38, 25: 1.76, 50: 1.84}
#: The paper's baseline test error (%) quoted with Fig. 13.
PAPER_BASELINE = 2.33

#: Settings of the full protocol and of ``--fast`` (each overridable on the command line).
FULL = dict(n_train=None, n_test=None, ranks=RANKS, pca_dims=350, time_limit_r=300.0, time_limit_s=900.0)
FAST = dict(n_train=5000, n_test=2000, ranks=(15, 25), pca_dims=350, time_limit_r=15.0, time_limit_s=30.0)

METHOD_NAMES = {"lmnn_r": "LMNN-R", "lmnn_s": "LMNN-S", "pca": "PCA", "euclidean": "Euclidean (all PCA dims)",
                "lmnn_full": "LMNN (full metric)"}

DEFAULT_OUT = "paper_repro/results"
DEFAULT_FAST_OUT = "paper_repro/results/fast"


def prepare(home=None, *, n_train=None, n_test=None, pca_dims=350, deskew=False, seed=0):
    """MNIST as Fig. 13 uses it: ``(X_train, y_train, X_test, y_test)`` in PCA coordinates.

    Images are scaled to [0, 1] (deskewed first with ``deskew``); ``n_train`` / ``n_test``
    keep a seeded random subset of that many rows (None: all); PCA to ``pca_dims`` is fitted
    on the training rows kept.
    """
    from convexmetric import datasets as D
    tr, ytr, te, yte = D.load_mnist(home)
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(ytr):
        keep = np.sort(rng.choice(len(ytr), int(n_train), replace=False))
        tr, ytr = tr[keep], ytr[keep]
    if n_test is not None and n_test < len(yte):
        keep = np.sort(rng.choice(len(yte), int(n_test), replace=False))
        te, yte = te[keep], yte[keep]
    tr, te = tr.astype(np.float64) / 255.0, te.astype(np.float64) / 255.0
    if deskew:
        tr, te = D.deskew(tr), D.deskew(te)
    Xtr, Xte = D.pca_reduce(tr.reshape(len(tr), -1), te.reshape(len(te), -1), int(pca_dims))
    return Xtr, ytr, Xte, yte


def cache_key(settings: dict, *, fast: bool, deskew: bool, seed: int) -> dict:
    """Every input that changes a cached result, as plain JSON values (ranks excepted: one file per r)."""
    from convexmetric import __version__
    fields = {k: v for k, v in settings.items() if k != "ranks"}
    key = {"figure": 13, "settings": fields, "deskew": bool(deskew), "seed": int(seed), "fast": bool(fast),
           "convexmetric": __version__}
    return json.loads(json.dumps(key, sort_keys=True))


def _error(Xtr, ytr, Xte, yte, L=None) -> float:
    """3-NN test error (%) after the linear map ``L`` (None: the identity)."""
    from convexmetric.classify import knn_error
    if L is None:
        return 100.0 * knn_error(Xtr, ytr, Xte, yte)
    return 100.0 * knn_error(Xtr @ L.T, ytr, Xte @ L.T, yte)


class _Run:
    """One run's data, problem and cache; computes each (method, r) result at most once."""

    def __init__(self, out: Path, settings: dict, *, fast: bool, deskew: bool, seed: int, home, progress: bool,
                 recompute: bool = False):
        from convexmetric.repro import _key_hash, _write_json
        self.settings, self.home, self.progress = settings, home, progress
        self.recompute, self.other_code = recompute, {}   # fingerprint -> cached results of other code kept
        self.deskew, self.seed = deskew, seed
        self.key = cache_key(settings, fast=fast, deskew=deskew, seed=seed)
        self.hash = _key_hash(self.key)
        self.cache = Path(out) / "cache" / "figure13" / self.hash
        _write_json(self.cache / "key.json", self.key)   # what the hash stands for, for people
        self._data = self._problem = self._metric = None

    def say(self, msg: str) -> None:
        logger.info(msg)
        if self.progress:
            print(f"[figure13] {msg}", file=sys.stderr, flush=True)

    @property
    def data(self):
        if self._data is None:
            t = time.perf_counter()
            s = self.settings
            self._data = prepare(self.home, n_train=s["n_train"], n_test=s["n_test"], pca_dims=s["pca_dims"],
                                 deskew=self.deskew, seed=self.seed)
            self.say(f"MNIST {'deskewed' if self.deskew else 'raw'}: {len(self._data[1])} training and "
                     f"{len(self._data[3])} test images on {self._data[0].shape[1]} principal components "
                     f"({time.perf_counter() - t:.1f} s)")
        return self._data

    @property
    def problem(self):
        if self._problem is None:
            from convexmetric import LMNNProblem
            self._problem = LMNNProblem(self.data[0], self.data[1], k=3, mu=0.5)
            self.say(repr(self._problem))
        return self._problem

    def full_metric(self):
        """The full convex LMNN metric (LMNN-S's source), solved once and kept in the cache."""
        from convexmetric import solve
        from convexmetric.repro import Solution, _lmnn_info, _read_solution, _write_solution, code_fingerprint
        if self._metric is None:
            path = self.cache / "lmnn_full_metric.npz"
            sol = _read_solution(path, self.key, code_fingerprint() if self.recompute else None)
            if sol is None:
                self.say(f"LMNN-S: the full metric at d = {self.data[0].shape[1]} (time limit "
                         f"{self.settings['time_limit_s']:g} s)")
                t = time.perf_counter()
                res = solve(self.problem, "auto", time_limit=self.settings["time_limit_s"], progress=self.progress)
                sol = Solution(res.M, res.M, _lmnn_info(res), time.perf_counter() - t)
                _write_solution(path, sol, self.key)
            self._metric = sol
        return self._metric

    def result(self, method: str, r: int) -> dict:
        """The cached record of ``method`` at output dimension ``r``, computing it if needed."""
        from convexmetric.repro import _other_code, _read_record, _write_json, code_fingerprint
        path = self.cache / f"{method}_r{r}.json"
        rec = _read_record(path, self.key)
        older = None if rec is None else _other_code(rec)
        if rec is not None and not (older and self.recompute):
            if older:
                self.other_code[older] = self.other_code.get(older, 0) + 1
            return rec
        t = time.perf_counter()
        info, made_by = {}, code_fingerprint()
        Xtr, ytr, Xte, yte = self.data
        if method == "euclidean":
            err = _error(Xtr, ytr, Xte, yte)
        elif method == "pca":
            err = _error(Xtr[:, :r], ytr, Xte[:, :r], yte)
        elif method in ("lmnn_s", "lmnn_full"):
            from convexmetric.psd import components_from_metric
            sol = self.full_metric()
            L = components_from_metric(sol.M)
            err = _error(Xtr, ytr, Xte, yte, L[:r] if method == "lmnn_s" else L)
            info = {**sol.info, "metric_wall_time": sol.wall_time, "metric_rank": int(L.shape[0])}
            made_by = sol.code or made_by     # a kept full metric's code counts
        elif method == "lmnn_r":
            from convexmetric import solve
            from convexmetric.repro import _lmnn_info
            self.say(f"LMNN-R: rank {r} (time limit {self.settings['time_limit_r']:g} s)")
            res = solve(self.problem, "factored", rank=int(r), time_limit=self.settings["time_limit_r"],
                        progress=self.progress)
            L = res.L[:r]           # M = L^T L has rank <= r: the same distances as the solver's factor
            err = _error(Xtr, ytr, Xte, yte, L)
            info = _lmnn_info(res)
            np.save(self.cache / f"lmnn_r_r{r}_L.npy", L)
        else:
            raise ValueError(f"unknown method {method!r}; known: {list(METHOD_NAMES)}")
        rec = {"method": method, "r": int(r), "error": float(err), **info,
               "wall_time": time.perf_counter() - t, "cache_key": self.key, "code": made_by}
        _write_json(path, rec)
        self.say(f"{METHOD_NAMES[method]}, r = {r}: {err:.2f} % ({rec['wall_time']:.1f} s)")
        return rec


def run(out, *, fast: bool = False, deskew: bool = False, seed: int = 0, home=None, progress: bool = True,
        recompute: bool = False, **overrides) -> list[dict]:
    """Compute (or read back from the cache) every point of Fig. 13 and write the outputs.

    Cached points computed by other code are reused with a warning, or with ``recompute``
    computed again (the full metric too).

    ``overrides`` replace entries of :data:`FULL` (or :data:`FAST` with ``fast``):
    ``n_train``, ``n_test``, ``ranks``, ``pca_dims``, ``time_limit_r``, ``time_limit_s``.
    Returns the table rows (dicts with ``method``, ``r``, ``error``, ``paper``, ...).
    """
    settings = dict(FAST if fast else FULL)
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise TypeError(f"unknown setting(s) {unknown}; known: {sorted(settings)}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["ranks"] = tuple(int(r) for r in settings["ranks"])
    if any(r < 1 or r > settings["pca_dims"] for r in settings["ranks"]):
        raise ValueError(f"ranks must lie in [1, pca_dims = {settings['pca_dims']}], got {settings['ranks']}")
    out = Path(out)
    t0 = time.perf_counter()
    job = _Run(out, settings, fast=fast, deskew=deskew, seed=seed, home=home, progress=progress, recompute=recompute)
    d = settings["pca_dims"]
    rows = [job.result("euclidean", d), job.result("lmnn_full", d)]
    for r in settings["ranks"]:
        rows.append(job.result("pca", r))
    for r in settings["ranks"]:
        rows.append(job.result("lmnn_s", r))
    for r in settings["ranks"]:
        rows.append(job.result("lmnn_r", r))
    table = [{"method": rec["method"], "r": rec["r"], "error": rec["error"],
              "paper": PAPER_LMNN_R.get(rec["r"]) if rec["method"] == "lmnn_r" else
              (PAPER_BASELINE if rec["method"] == "euclidean" else None),
              "relative_gap": rec.get("relative_gap"), "status": rec.get("status"),
              "wall_time": rec["wall_time"]} for rec in rows]
    from convexmetric.repro import _warn_other_code, code_fingerprint
    if job.other_code:
        _warn_other_code("Figure 13", job.other_code)
    write_outputs(out, table, settings, dict(fast=fast, deskew=deskew, seed=seed, cache_key=job.hash,
                                             wall_time_s=time.perf_counter() - t0, code=code_fingerprint(),
                                             cached_by_other_code=job.other_code))
    return table


def write_outputs(out: Path, table, settings, meta) -> None:
    """``figure13.csv``, ``figure13.md``, ``figure13.png`` and ``figure13.json`` under ``out``."""
    import csv
    out.mkdir(parents=True, exist_ok=True)
    fields = ["method", "r", "error", "paper", "relative_gap", "status", "wall_time"]
    with open(out / "figure13.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for row in table:
            w.writerow({k: ("" if row[k] is None else (f"{row[k]:.4g}" if isinstance(row[k], float) else row[k]))
                        for k in fields})
    by = {(row["method"], row["r"]): row for row in table}
    ranks = settings["ranks"]
    d = settings["pca_dims"]
    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["# Figure 13 of Weinberger & Saul (JMLR 2009), reproduced", "",
             f"3-NN test error (%) on MNIST ({'deskewed' if meta['deskew'] else 'raw'} images, "
             f"{'all' if settings['n_train'] is None else settings['n_train']} training / "
             f"{'all' if settings['n_test'] is None else settings['n_test']} test) projected on {d} principal "
             "components, against the output dimension r. LMNN-R: rank-r factored solver (non-convex, "
             f"time limit {settings['time_limit_r']:g} s per r); LMNN-S: the r leading eigenvectors of the "
             f"full convex metric (time limit {settings['time_limit_s']:g} s); PCA: the r leading components. "
             "Paper: the published LMNN-R values.", "",
             "| r | PCA | LMNN-S | LMNN-R | LMNN-R (paper) | LMNN-R gap to the full-rank optimum |",
             "|---|---|---|---|---|---|"]
    for r in ranks:
        rr = by[("lmnn_r", r)]
        gap = "" if rr["relative_gap"] is None else f"{rr['relative_gap']:.2g}"
        lines.append(f"| {r} | {fmt(by[('pca', r)]['error'])} | {fmt(by[('lmnn_s', r)]['error'])} "
                     f"| {fmt(rr['error'])} | {fmt(PAPER_LMNN_R.get(r))} | {gap} |")
    full = by[("lmnn_full", d)]
    lines += ["", f"Euclidean 3-NN on the {d} components: {by[('euclidean', d)]['error']:.2f} % "
              f"(the paper's baseline: {PAPER_BASELINE:.2f} %). Full LMNN metric at d = {d}: "
              f"{full['error']:.2f} % (certified relative gap {fmt(full['relative_gap']) or 'n/a'}, "
              f"status {full['status']}).", "",
              f"Wall time {meta['wall_time_s']:.0f} s for this invocation (cached results are read back)."]
    if meta.get("cached_by_other_code"):
        lines += ["", f"{sum(meta['cached_by_other_code'].values())} of these results were read from the cache and "
                  "computed by other code than this run's (code fingerprints in `figure13.json`; `--recompute` "
                  "computes them again)."]
    (out / "figure13.md").write_text("\n".join(lines) + "\n")
    _plot(out / "figure13.png", table, ranks, d)
    import scipy
    import sklearn

    from convexmetric import __version__
    meta = {**meta, "settings": {**settings, "ranks": list(ranks)}, "command": " ".join(sys.argv),
            "versions": {"convexmetric": __version__, "python": platform.python_version(), "numpy": np.__version__,
                         "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    (out / "figure13.json").write_text(json.dumps(meta, indent=1))


def _plot(path: Path, table, ranks, d) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by = {(row["method"], row["r"]): row["error"] for row in table}
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for method, style in (("pca", "s-"), ("lmnn_s", "^-"), ("lmnn_r", "o-")):
        ax.plot(ranks, [by[(method, r)] for r in ranks], style, label=f"{METHOD_NAMES[method]} (ours)")
    pr = sorted(r for r in PAPER_LMNN_R)
    ax.plot(pr, [PAPER_LMNN_R[r] for r in pr], "o", mfc="none", mec="k", ms=9, label="LMNN-R (paper)")
    ax.axhline(by[("euclidean", d)], color="gray", ls=":", label=f"Euclidean, {d} dims (ours)")
    ax.axhline(PAPER_BASELINE, color="k", ls="--", lw=0.8, label=f"baseline (paper) {PAPER_BASELINE:.2f} %")
    ax.axhline(by[("lmnn_full", d)], color="C1", ls=":", label=f"LMNN full metric, {d} dims (ours)")
    ax.set_xlabel("output dimension r")
    ax.set_ylabel("3-NN test error (%)")
    ax.set_title("MNIST: low-rank LMNN (JMLR 2009, Fig. 13)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="figure13", description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true",
                    help="5 000 training / 2 000 test images, r = 15 and 25, short time limits (1-2 min)")
    ap.add_argument("--out", default=None,
                    help=f"output directory (default {DEFAULT_OUT}, with --fast {DEFAULT_FAST_OUT})")
    ap.add_argument("--deskew", action="store_true", help="deskew the images first (the paper's Fig. 13 did not)")
    ap.add_argument("--ranks", type=int, nargs="+", default=None, help="output dimensions r")
    ap.add_argument("--n-train", type=int, default=None, help="random subset of the training images")
    ap.add_argument("--n-test", type=int, default=None, help="random subset of the test images")
    ap.add_argument("--pca-dims", type=int, default=None, help="principal components kept (default 350)")
    ap.add_argument("--time-limit-r", type=float, default=None, help="seconds per LMNN-R solve")
    ap.add_argument("--time-limit-s", type=float, default=None, help="seconds for the full metric (LMNN-S)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subsets")
    ap.add_argument("--data-home", default=None, help="directory of the data sets (default $CONVEXMETRIC_DATA)")
    ap.add_argument("--recompute", action="store_true",
                    help="compute again the cached results (and the full metric) that other code computed")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out or (DEFAULT_FAST_OUT if args.fast else DEFAULT_OUT))
    from convexmetric.datasets import DataFileError
    try:
        run(out, fast=args.fast, deskew=args.deskew, seed=args.seed, home=args.data_home, progress=not args.quiet,
            ranks=args.ranks, n_train=args.n_train, n_test=args.n_test, pca_dims=args.pca_dims,
            time_limit_r=args.time_limit_r, time_limit_s=args.time_limit_s, recompute=args.recompute)
    except DataFileError as exc:
        print(f"{ap.prog}: error: {exc}", file=sys.stderr)
        return 2
    print((out / "figure13.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
