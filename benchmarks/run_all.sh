#!/usr/bin/env bash
# Re-run every benchmark, one after the other (never concurrently: timings compare
# within one run on a quiet machine), writing each table beside its script.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONVEXMETRIC_DATA="${CONVEXMETRIC_DATA:-$(cd .. && pwd)/shared/data}"
python benchmarks/exact_solvers.py > benchmarks/exact_solvers.txt
python benchmarks/scale.py > benchmarks/scale.txt
python benchmarks/limits.py > benchmarks/limits.txt
python benchmarks/defaults.py > benchmarks/defaults.txt
python benchmarks/certificates.py > benchmarks/certificates.txt
python benchmarks/mnist.py > benchmarks/mnist.txt
python benchmarks/dask_pass.py > benchmarks/dask_pass.txt
python benchmarks/sdp_memory.py > benchmarks/sdp_memory.txt
python benchmarks/fista_checks.py --against 9bd5de5 > benchmarks/fista_checks.txt
python benchmarks/backend_child.py --against de16477 > benchmarks/backend_child.txt
python benchmarks/hybrid_handover.py > benchmarks/hybrid_handover.txt
python benchmarks/band_ipm_polish.py > benchmarks/band_ipm_polish.txt
python benchmarks/sdp_scaling.py --against cc3064b > benchmarks/sdp_scaling.txt
python benchmarks/knn_ties.py --against dc380ab > benchmarks/knn_ties.txt
python benchmarks/band_ipm_whiten.py --repeats 2 > benchmarks/band_ipm_whiten.txt
python benchmarks/hybrid_whiten.py > benchmarks/hybrid_whiten.txt
python benchmarks/blas_threads.py > benchmarks/blas_threads.txt
python benchmarks/data_span.py > benchmarks/data_span.txt
python benchmarks/factored_embed.py --against 7db41d7 > benchmarks/factored_embed.txt
python benchmarks/blas_threads_first_order.py > benchmarks/blas_threads_first_order.txt
python benchmarks/zero_optimum_bound.py --against 59dc5a3 > benchmarks/zero_optimum_bound.txt
python benchmarks/psd_factor.py --against 18321be > benchmarks/psd_factor.txt
python benchmarks/first_order_whiten.py > benchmarks/first_order_whiten.txt
python benchmarks/pass_workers.py --against 3a44587 > benchmarks/pass_workers.txt
python benchmarks/subset_pairs.py --against c17e88a --repeats 4 > benchmarks/subset_pairs.txt
