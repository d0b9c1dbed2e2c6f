"""Run a benchmark case in a fresh process on this tree or on an older revision.

Benchmarks that compare two revisions import this (run them from the repository root):
:func:`worktree` checks a revision out into a temporary git worktree, and
:func:`run_case` runs a script in a fresh interpreter with that tree first on the path,
so both revisions are measured alternately in one run on one machine.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: One BLAS thread everywhere: timings then compare code, not thread scheduling.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def head() -> str:
    """This tree's short commit id."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


@contextlib.contextmanager
def worktree(ref: str | None):
    """The package as of git revision ``ref`` in a temporary worktree (None: yield None)."""
    if ref is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), ref], cwd=ROOT, check=True)
        try:
            yield other
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=True)


def run_case(tree: Path, script: str, args, env: dict | None = None, timeout: float | None = None) -> dict:
    """Run ``script`` with ``args`` in a fresh process importing the package from ``tree``;
    return the JSON object it prints on its last line (``subprocess.TimeoutExpired`` after
    ``timeout`` seconds)."""
    env = dict(os.environ, PYTHONPATH=str(tree), **(env or {}))
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, check=True,
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of_trees(other: Path, script: str, args, repeats: int, env: dict | None = None) -> tuple:
    """Run ``script`` with ``args`` on ``other`` and on this tree alternately, ``repeats`` times
    each, in fresh processes; return ``(old, new)``: each tree's fastest run (its JSON object)."""
    best = {}
    for _ in range(repeats):
        for label, tree in (("old", other), ("new", ROOT)):
            r = run_case(tree, script, args, env)
            if label not in best or r["wall"] < best[label]["wall"]:
                best[label] = r
    return best["old"], best["new"]


def case_table(name: str, args, columns, cases, child, cells) -> None:
    """Print benchmark ``name``'s two-tree table on one BLAS thread: two comment lines (machine,
    this tree, the command), then a Markdown table of ``columns``, one row per case of ``cases``.
    ``child`` runs the case on ``args.against`` and on this tree alternately
    (:func:`best_of_trees`), and ``cells(case, old, new)`` gives the row's cells from the two
    best runs."""
    import platform
    print(f"# {name}, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread; this tree: {head()} "
          "(+ working changes)")
    print(f"# command: python benchmarks/{name}.py --against {args.against} --repeats {args.repeats}\n")
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    with worktree(args.against) as other:
        for case in cases:
            old, new = best_of_trees(other, child, case, args.repeats, ONE_THREAD)
            print("| " + " | ".join(cells(case, old, new)) + " |", flush=True)


def against_parser(doc: str, repeats: int = 2):
    """The argument parser of a two-tree table: ``--against REF`` and ``--repeats``."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--against", required=True, help="git revision to compare with (run alternately)")
    ap.add_argument("--repeats", type=int, default=repeats, help=f"runs of each tree, best kept (default {repeats})")
    return ap


@contextlib.contextmanager
def blas_threads_of(classes, threads):
    """Set ``blas_threads`` on each solver class in ``classes`` for the block, then restore it."""
    missing = object()
    saved = [c.__dict__.get("blas_threads", missing) for c in classes]
    for c in classes:
        c.blas_threads = threads
    try:
        yield
    finally:
        for c, value in zip(classes, saved):
            if value is missing:
                del c.blas_threads          # inherited again
            else:
                c.blas_threads = value


def header(script: str, argv) -> str:
    """The two comment lines an in-process benchmark's table starts with: versions, cores, date,
    and the command that wrote it."""
    import platform

    import numpy as np

    import convexmetric
    return (f"# convexmetric {convexmetric.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
            f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}\n"
            f"# command: {' '.join(['python', f'benchmarks/{script}', *argv])}")


def alternate(runs: dict, repeats: int):
    """Call each of ``runs`` (name -> no-argument callable) in turn, ``repeats`` rounds, in this
    process; return ``(best, last)``: each name's best wall time in seconds and last result."""
    best, last = {}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            last[name] = run()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
    return best, last


def wine_table1_splits(n_splits: int):
    """Yield ``(label, problem)`` for Wine's Table 1 training splits: stratified 70/30 split
    ``random_state = s``, targets in the raw features, the problem standardised."""
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convexmetric import LMNNProblem
    from convexmetric.neighbors import select_targets
    X, y = load_wine(return_X_y=True)
    for s in range(n_splits):
        Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=s)
        targets = select_targets(Xtr, np.unique(ytr, return_inverse=True)[1], 3)
        yield f"wine split {s}", LMNNProblem(StandardScaler().fit_transform(Xtr), ytr, targets=targets)


def ab_parser(doc: str, repeats: int = 2, splits: bool = False):
    """The argument parser of an in-process A/B table: ``--repeats`` (and ``--splits`` of Wine);
    warnings are silenced for the run (backends' accuracy notes would interleave the table)."""
    import argparse
    import warnings
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if splits:
        ap.add_argument("--splits", type=int, default=10, help="wine training splits (default 10)")
    ap.add_argument("--repeats", type=int, default=repeats, help=f"runs of each setting, best kept (default {repeats})")
    return ap
