"""The full pass on a Dask LocalCluster against the single-process pass.

Run from the repository root (the paper's data under $CONVEXMETRIC_DATA):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/dask_pass.py > benchmarks/dask_pass.txt

1. Full MNIST (deskewed, PCA 164, 60 000 points, k = 3): one exact pass (objective and
   subgradient over every impostor triplet) at the best multiple of the identity, in
   this process (two threads) and on a ``LocalCluster`` of two single-thread worker
   processes; their agreement and time ratio (bar: 1e-12 and at most 1.3x).
2. A 200 000 x 32 synthetic problem whose rows are generated chunk by chunk as a
   ``dask.array`` (10 classes): one full pass and a 3-iteration FISTA solve on the cluster,
   with wall times and the peak memory of the client and of every worker (bar: 20 GB
   in total).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import numpy as np


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def synthetic_chunk(i, rows, d, n_classes, seed):
    """Rows ``[i * rows, (i + 1) * rows)`` of the synthetic set: Gaussian classes around fixed centres."""
    centres = np.random.default_rng(seed).normal(scale=2.0, size=(n_classes, d))
    rng = np.random.default_rng([seed, i])
    y = (np.arange(i * rows, (i + 1) * rows) % n_classes)
    return centres[y] + rng.normal(size=(rows, d)), y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=["mnist", "synthetic"])
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args(argv)
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from convexmetric import LMNNProblem, datasets, solve
    from convexmetric.solvers.first_order import best_multiple

    print(f"# Dask pass, {time.strftime('%Y-%m-%d %H:%M')}, {platform.platform()}, {os.cpu_count()} CPUs")
    print("# command: " + " ".join(["python"] + sys.argv))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    client = Client(cluster)
    print(f"# cluster: {len(client.nthreads())} worker processes x 1 thread")

    if "mnist" not in args.skip:
        tr, ytr, _, _ = datasets.load_mnist()
        Xtr = datasets.pca_reduce(datasets.deskew(tr).reshape(len(tr), -1), None, 164)[0]
        local = LMNNProblem(Xtr, ytr, triplets="implicit").normalized()
        remote = LMNNProblem(Xtr, ytr, triplets="implicit", executor=client).normalized()
        s0 = best_multiple(local, np.eye(local.d))
        M = s0 * np.eye(local.d)
        remote.objective(np.eye(local.d) * 1e3)         # scatter the data once (not timed); few candidates at 1e3 I
        t = time.perf_counter()
        f0, G0 = local.objective_and_subgradient(M)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        f1, G1 = remote.objective_and_subgradient(M)
        t_remote = time.perf_counter() - t
        print("\n## 1. Full MNIST, one exact pass at the best multiple of the identity\n")
        print("| where | s | objective |\n|---|---|---|")
        print(f"| this process, 2 threads | {t_local:.2f} | {f0:.15g} |")
        print(f"| LocalCluster, 2 workers x 1 thread | {t_remote:.2f} | {f1:.15g} |")
        print(f"\nrelative difference: objective {abs(f1 - f0) / f0:.1e}, subgradient "
              f"{np.abs(G1 - G0).max() / np.abs(G0).max():.1e}; cluster / single process = {t_remote / t_local:.2f} "
              "(bars: 1e-12 and 1.3)")

    if "synthetic" not in args.skip:
        n, d, C = args.n, 32, 10
        rows = 20_000
        parts = [dask.delayed(synthetic_chunk)(i, rows, d, C, 0) for i in range(n // rows)]
        X = da.concatenate([da.from_delayed(p[0], shape=(rows, d), dtype=float) for p in parts])
        y = da.concatenate([da.from_delayed(p[1], shape=(rows,), dtype=int) for p in parts])
        print(f"\n## 2. Synthetic {n} x {d}, {C} classes, rows generated chunk by chunk ({X.numblocks[0]} chunks)\n")
        t = time.perf_counter()
        p = LMNNProblem(X, y, triplets="implicit", executor=client, search_dtype="float32")
        t_setup = time.perf_counter() - t
        t = time.perf_counter()
        f, _ = p.objective_and_subgradient(np.eye(d))
        t_pass = time.perf_counter() - t
        t = time.perf_counter()
        # FISTA, not auto's factored working sets: on these overlapping classes a working-set
        # round can shrink the metric far past the pairs it holds, and the next full pass then
        # meets billions of active triplets (more than 20 minutes; see the closing note of stop 17)
        r = solve(p, "fista", max_iter=3)
        t_solve = time.perf_counter() - t
        workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9)
        print(f"{p!r}\n")
        print("| step | s |\n|---|---|")
        print(f"| problem (gather rows, targets, pull matrix) | {t_setup:.1f} |")
        print(f"| one full pass (objective + subgradient) at the identity | {t_pass:.1f} |")
        print(f"| solve(problem, \"fista\", max_iter=3) -> {r.solver}, {r.nit} iterations, certified gap "
              f"{r.relative_gap:.2e} | {t_solve:.1f} |")
        total = peak_gb() + sum(workers.values())
        print(f"\npeak memory: client {peak_gb():.2f} GB, workers "
              + ", ".join(f"{v:.2f}" for v in workers.values()) + f" GB; total {total:.2f} GB (bar: 20 GB)")
        print(f"objective at the identity {f:.10g}; after the solve {r.fun:.10g}")
    client.close()
    cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
