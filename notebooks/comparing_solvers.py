# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Comparing LMNN solvers
#
# Every solver in the registry returns the same `LMNNResult`, certified by the same
# problem object. On a small problem the plain SDP gives the reference optimum; on a larger
# one the duality-gap certificate is the reference: it bounds every solver's distance to
# the optimum without knowing it.
#
# Set `CONVEXMETRIC_FAST=1` for a quick run (the tests do).

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from convexmetric import LMNNProblem, available_solvers, solve
from convexmetric.datasets import make_synthetic
from convexmetric.plotting import plot_convergence

FAST = os.environ.get("CONVEXMETRIC_FAST") == "1"
print("available solvers:", available_solvers())

# %% [markdown]
# ## 1. A small problem, where the full SDP is the reference
#
# Standardised Iris (150 points, 4 features, 45 000 triplets). Each solver gets the same
# time limit; the table gives its objective, its distance to the SDP optimum and the gap
# its own certificate proves.

# %%
X, y = load_iris(return_X_y=True)
if FAST:
    X, y = X[::2], y[::2]
X = StandardScaler().fit_transform(X)
small = LMNNProblem(X, y)
reference = solve(small, "sdp-clarabel")
print(f"SDP optimum (CLARABEL): {reference.fun:.8f}, certified relative gap {reference.relative_gap:.1e}")

limit = 5 if FAST else 10
runs = {}
for name in available_solvers():
    if name.startswith("sdp-"):
        continue
    opts = {"time_limit": limit}
    if name == "factored":
        opts["max_iter"] = 500
    t = time.perf_counter()
    runs[name] = solve(small, name, **opts)
    runs[name].info["wall"] = time.perf_counter() - t

print(f"{'solver':12s} {'f':>14s} {'f - f*':>10s} {'certified gap':>14s} {'wall s':>7s}  status")
for name, r in runs.items():
    print(f"{name:12s} {r.fun:14.8f} {r.fun - reference.fun:10.2e} {r.gap:14.2e} {r.info['wall']:7.2f}  {r.status}")
    assert r.fun - reference.fun <= r.gap + 1e-6 * reference.fun, "a certified gap must bound the error"

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
iterative = [r for n, r in runs.items() if n in ("fista", "subgradient", "stochastic", "factored")]
plot_convergence(iterative, quantity="objective", optimum=reference.fun, ax=axes[0])
axes[0].set_title("relative suboptimality (SDP optimum known)")
plot_convergence([r for r in iterative if np.isfinite(r.history_array("relative_gap")).any()],
                 quantity="gap", ax=axes[1])
axes[1].set_title("certified relative gap (what a user sees)")
plt.tight_layout()

# %% [markdown]
# ## 2. A larger problem, where the certificate is the only reference
#
# Synthetic data with a few informative directions hidden among noisy ones. Its triplets
# are kept implicit (found by a blockwise impostor search). No SDP solves it directly, but
# every result carries a proven bound. `hybrid` and `band-ipm` are the exact solvers (the
# second, built for d > 30, runs the factored solver first, then an interior point on the
# triplets near the margin).

# %%
n, d = (300, 10) if FAST else (1000, 20)
Xs, ys = make_synthetic(n=n, d=d, n_classes=4, seed=0)
large = LMNNProblem(Xs, ys, triplets="implicit")
print(large)
limit = 10 if FAST else 30
big = {name: solve(large, name, time_limit=limit)
       for name in ("hybrid", "band-ipm", "fista", "subgradient", "stochastic")}
best_lb = max(r.lower_bound for r in big.values())
for name, r in big.items():
    print(f"{name:12s} f = {r.fun:12.4f}  certified gap {r.relative_gap:.2e}  "
          f"(against the best lower bound of all runs: {(r.fun - best_lb) / r.fun:.2e})  {r.status}")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
plot_convergence([r for r in big.values() if np.isfinite(r.history_array("relative_gap")).any()],
                 quantity="gap", ax=ax)
ax.set_title(f"synthetic n={n}, d={d}: certified gap against time")
