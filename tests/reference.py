"""Plain-loop reference implementation of LMNN, written for clarity, not speed.

Tests compare the vectorised package against these loops on small problems.
"""
import numpy as np


def ref_targets(X, y, k):
    """Same-class k nearest neighbours by (squared distance, index), by loops."""
    n = len(X)
    out = np.full((n, k), -1)
    for i in range(n):
        cands = []
        for j in range(n):
            if j != i and y[j] == y[i]:
                diff = X[i] - X[j]
                cands.append((float(np.sum(diff * diff)), j))
        cands.sort()
        for s, (_, j) in enumerate(cands[:k]):
            out[i, s] = j
    return out


def ref_triplets(y, targets):
    trip = []
    for i in range(len(y)):
        for j in targets[i]:
            if j < 0:
                continue
            for l in range(len(y)):
                if y[l] != y[i]:
                    trip.append((i, j, l))
    return trip


def ref_margins(X, M, triplets, margin=1.0):
    z = []
    for i, j, l in triplets:
        dij = (X[i] - X[j]) @ M @ (X[i] - X[j])
        dil = (X[i] - X[l]) @ M @ (X[i] - X[l])
        z.append(margin + dij - dil)
    return np.array(z)


def ref_objective_and_subgradient(X, targets, triplets, M, mu, margin=1.0):
    d = X.shape[1]
    P = np.zeros((d, d))
    for i in range(len(X)):
        for j in targets[i]:
            if j >= 0:
                v = X[i] - X[j]
                P += np.outer(v, v)
    z = ref_margins(X, M, triplets, margin)
    f = (1 - mu) * np.sum(P * M)
    G = (1 - mu) * P
    for (i, j, l), zt in zip(triplets, z):
        if zt > 0:
            f += mu * zt
            a, b = X[i] - X[j], X[i] - X[l]
            G += mu * (np.outer(a, a) - np.outer(b, b))
    return f, G


def ref_multimetric_objective_and_subgradient(X, y, targets, triplets, Ms, mu, margin=1.0):
    """Multi-metric LMNN by loops: distance to x_j in the metric of x_j's class."""
    C, d = Ms.shape[0], X.shape[1]
    f = 0.0
    G = np.zeros((C, d, d))
    for i in range(len(X)):
        for j in targets[i]:
            if j >= 0:
                v = X[i] - X[j]
                f += (1 - mu) * v @ Ms[y[j]] @ v
                G[y[j]] += (1 - mu) * np.outer(v, v)
    for i, j, l in triplets:
        a, b = X[i] - X[j], X[i] - X[l]
        z = margin + a @ Ms[y[j]] @ a - b @ Ms[y[l]] @ b
        if z > 0:
            f += mu * z
            G[y[j]] += mu * np.outer(a, a)
            G[y[l]] -= mu * np.outer(b, b)
    return f, G
