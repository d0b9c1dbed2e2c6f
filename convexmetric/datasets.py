"""Data sets: seeded synthetic problems and bundled loaders.

(The paper's data sets under ``CONVEXMETRIC_DATA`` are read by :func:`data_home`
and the loaders below.)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def make_synthetic(n: int = 300, d: int = 10, n_classes: int = 3, n_informative: int | None = None,
                   seed: int = 0, standardize: bool = True):
    """Gaussian classes in a few informative directions, hidden among noisy ones.

    Class centres are drawn in ``n_informative`` dimensions (default ``min(d, 4)``) with
    unit-variance noise around them; the other ``d - n_informative`` dimensions are pure
    noise with scales drawn from [0.5, 3], so the Euclidean metric is poor and a learned
    metric helps. A random rotation mixes all dimensions. Classes are balanced.

    Returns
    -------
    X : ndarray (n, d), standardised columns unless ``standardize=False``
    y : ndarray (n,) of int in ``range(n_classes)``
    """
    if n < 2 * n_classes or n_classes < 2 or d < 1:
        raise ValueError(f"need n >= 2 * n_classes, n_classes >= 2, d >= 1 (got n={n}, d={d}, "
                         f"n_classes={n_classes})")
    rng = np.random.default_rng(seed)
    k = min(d, 4) if n_informative is None else int(n_informative)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    centres = rng.normal(0.0, 1.5, size=(n_classes, k))
    X = np.empty((n, d))
    X[:, :k] = centres[y] + rng.normal(size=(n, k))
    X[:, k:] = rng.normal(size=(n, d - k)) * rng.uniform(0.5, 3.0, size=d - k)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = X @ Q
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
    return X, y


def data_home(path: str | os.PathLike | None = None) -> Path:
    """Directory of the paper's data sets: ``path``, else ``$CONVEXMETRIC_DATA``,
    else ``~/convexmetric_data``."""
    if path is None:
        path = os.environ.get("CONVEXMETRIC_DATA") or Path.home() / "convexmetric_data"
    return Path(path).expanduser()
