# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # LMNN is convex in M, not in L
#
# LMNN learns a metric $M \succeq 0$ so that each point's $k$ same-class *target*
# neighbours are closer than any differently-labelled point by a unit margin:
#
# $$f(M) = (1-\mu)\sum_{i \to j} \langle C_{ij}, M\rangle
#   + \mu \sum_{(i,j,l)} \big[1 + \langle C_{ij}, M\rangle - \langle C_{il}, M\rangle\big]_+ ,
#   \qquad C_{ab} = (x_a - x_b)(x_a - x_b)^\top .$$
#
# Every term is linear in $M$ or a hinge of a linear function, so $f$ is convex on the PSD
# cone: a semidefinite program with one global optimum. Most libraries optimise the factor
# $L$ (with $M = L^\top L$) instead, and $f(L^\top L)$ is *not* convex in $L$.
# This notebook shows both facts numerically, then what the duality-gap certificate says.
#
# Set `CONVEXMETRIC_FAST=1` for a quick run (the tests do).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from convexmetric import LMNNProblem, solve
from convexmetric.convexity import find_nonconvex_segment, midpoint_violation
from convexmetric.plotting import plot_segment, plot_spectrum

FAST = os.environ.get("CONVEXMETRIC_FAST") == "1"
rng = np.random.default_rng(0)
X, y = load_wine(return_X_y=True)
if FAST:  # a smaller problem: every third point
    X, y = X[::3], y[::3]
X = StandardScaler().fit_transform(X)
problem = LMNNProblem(X, y, k=3, mu=0.5)
problem

# %% [markdown]
# ## 1. The midpoint test on random pairs
#
# Convexity means $f\big(\tfrac{A+B}{2}\big) \le \tfrac{f(A) + f(B)}{2}$ for every pair.
# We draw random PSD pairs $A, B$ and random factor pairs $L_A, L_B$ and record the
# violation $f(\text{midpoint}) - \text{average of the ends}$ (positive = not convex).

# %%
def random_factor(r, d):
    return rng.standard_normal((r, d)) / np.sqrt(d) * rng.uniform(0.2, 3.0)


def random_metric(d):
    F = random_factor(d, d)
    return F.T @ F


pairs = 20 if FAST else 100
d = problem.d
viol_M = [midpoint_violation(problem, random_metric(d), random_metric(d), "M") for _ in range(pairs)]
viol_L = [midpoint_violation(problem, random_factor(2, d), random_factor(2, d), "L") for _ in range(pairs)]
print(f"segments in M: {pairs} pairs, largest violation {max(viol_M):.3g} (never positive: convex)")
print(f"segments in L: {sum(v > 0 for v in viol_L)} of {pairs} pairs violate convexity, "
      f"largest by {max(viol_L):.3g}")

# %% [markdown]
# ## 2. A segment in L along which f is not convex
#
# `find_nonconvex_segment` searches random factor pairs (rank 2 here): independent pairs,
# and pairs $L_B = Q L_A$ with a random rotation $Q$, which define the *same* metric at both
# ends while the midpoint's metric is shrunk. It keeps the pair whose midpoint lies furthest
# above the chord. Nothing is hard-coded: the segment below is whatever the search found.
# On the right, for contrast, $f$ along a segment in $M$ (from the Euclidean metric to the
# end metric $L_A^\top L_A$) stays below its chord, as convexity demands.

# %%
seg = find_nonconvex_segment(problem, rank=2, seed=1, tries=30 if FAST else 200)
assert seg is not None and seg.violation > 0, "no non-convex segment found"
print(f"found after {seg.tries} tries: midpoint above the chord by {seg.violation:.4g} "
      f"({100 * seg.relative_violation:.1f} % of the chord)")
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_segment(problem, seg.L_A, seg.L_B, "L", n=41 if FAST else 101, ax=axes[0])
axes[0].set_title("segment in L: f is not convex")
plot_segment(problem, np.eye(d), seg.L_A.T @ seg.L_A, "M", n=41 if FAST else 101, ax=axes[1])
axes[1].set_title("segment in M (Euclidean to L_A^T L_A): convex")
plt.tight_layout()

# %% [markdown]
# ## 3. Random restarts: the factored solver lands on different values, convex solvers on one
#
# The factored solver (L-BFGS on a rank-1 $L$, as the other libraries do for a
# low-dimensional embedding) is started from several random $L$. The convex solvers (`fista`, then the exact `hybrid`) are started
# from several random metrics $M$.

# %%
starts = 3 if FAST else 6
factored = [solve(problem, "factored", rank=1, init="random", seed=s, max_iter=300).fun for s in range(starts)]
convex = [solve(problem, "hybrid", warm_start=random_metric(d)).fun for _ in range(starts)]
print("factored, rank 1:", np.round(factored, 3))
print("convex (hybrid): ", np.round(convex, 6))
print(f"spread: factored {np.ptp(factored):.3g}, convex {np.ptp(convex):.3g}")
assert np.ptp(convex) <= 1e-6 * min(convex)

# %% [markdown]
# ## 4. The SDP, its dual, and what the certificate means
#
# The dual of LMNN is
#
# $$\max_{0 \le \alpha \le 1} \; \mu \sum_t \alpha_t
#   \quad \text{s.t.} \quad S(\alpha) = (1-\mu) P + \mu \sum_t \alpha_t (C_{ij} - C_{il}) \succeq 0 .$$
#
# Any $\alpha$ in the box, repaired to satisfy the PSD constraint, gives a **lower bound** on
# the optimum. So for any candidate $M$, `problem.certificate(M)` returns $f(M)$, a proven
# lower bound and their gap: an upper bound on how far $M$ is from the global optimum.
# Below: the exact optimum, a short first-order run, and the Euclidean metric.

# %%
exact = solve(problem, "hybrid")
short = solve(problem, "fista", max_iter=30)
for name, M in [("exact (hybrid)", exact.M), ("fista, 30 iterations", short.M), ("Euclidean", np.eye(d))]:
    c = problem.certificate(M)
    print(f"{name:22s} f = {c.objective:10.4f}  lower bound = {c.lower_bound:10.4f}  "
          f"gap <= {c.gap:.3g} (relative {c.relative_gap:.2e})")
print(f"true suboptimality of the short run: {short.fun - exact.fun:.4g} <= certified gap {short.gap:.4g}")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
plot_spectrum([exact.M, short.M], labels=["exact", "fista, 30 iterations"], ax=ax)
ax.set_title("eigenvalues of the learned metrics")
