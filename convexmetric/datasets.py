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


class DataFileError(FileNotFoundError):
    """A data file is missing or does not match its published checksum."""


#: sha256 of the stored files (from the data set's SHA256SUMS), by relative path.
CHECKSUMS = {
    "iris/iris.data.gz": "3b4e644f8d953ba8909ea610e25b23b0834b62e4cd452649defc877515e4b1db",
    "wine/wine.data.gz": "326545a6b8f307d66c73ba40f1f0ab948af15d3b429596ef012a7272424d8e10",
    "balance-scale/balance-scale.data.gz": "a208aa596e4204b74541cf7a330ca3639746d59d049dfe32197fb748b1cbf559",
    "letter/letter-recognition.data.gz": "727e9a5fa1cd942b5df985f3ebf1fca0c3be4137c057613c475d004b51e7165e",
    "isolet/Isolet1.mat": "f643c3cbd2669e1e9a6110943fcf538cfc209db384f3387d33acbbe550376765",
    "isolet/Isolet2.mat": "f69ca6b76d196a5778d1883ec7f18a2b97c620507675cd229c4e65fbb28c9037",
    "isolet/Isolet3.mat": "1d1f991f0a1b9e9decd73779ff595d7f66e4da47cac655f71fd350d2028106b7",
    "isolet/Isolet4.mat": "c676e6d11ef3b6ca17cd38c3cd9a44299fb5681a5ed8460adf821074d0af4fcd",
    "isolet/isolet5.mat": "a3849f6c0a9d0e0ed55dde15eb8ae8f4ba94df79b9fc260d00c28b8695d48600",
}


def data_file(relpath: str, home=None, verify: bool = True) -> Path:
    """Path of a data file under the data home, checked against its sha256.

    Raises :class:`DataFileError` naming the file and where to put it.
    """
    import hashlib
    path = data_home(home) / relpath
    if not path.is_file():
        raise DataFileError(
            f"missing data file {path}; put the paper's data sets there or set CONVEXMETRIC_DATA "
            f"to the directory that holds '{relpath}'")
    if verify and relpath in CHECKSUMS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != CHECKSUMS[relpath]:
            raise DataFileError(f"{path} does not match its sha256 {CHECKSUMS[relpath]}: corrupt or a "
                                "different version")
    return path


def load_letter(home=None):
    """UCI Letter Recognition: 20 000 x 16 integer features, 26 classes.

    Returns ``(X_train, y_train, X_test, y_test)`` with the usual split used by the
    paper's protocol here: the first 14 000 rows train, the last 6 000 test.
    """
    import gzip
    path = data_file("letter/letter-recognition.data.gz", home)
    with gzip.open(path, "rt") as fh:
        rows = [line.rstrip("\n").split(",") for line in fh if line.strip()]
    y = np.array([r[0] for r in rows])
    X = np.array([[float(v) for v in r[1:]] for r in rows])
    return X[:14000], y[:14000], X[14000:], y[14000:]


def load_isolet(home=None):
    """UCI ISOLET, canonical split: 6 238 training (isolet1-4) and 1 559 test (isolet5) rows, 617 features.

    Returns ``(X_train, y_train, X_test, y_test)``; labels are 1..26.
    """
    from scipy.io import loadmat
    parts = [loadmat(data_file(f"isolet/Isolet{i}.mat", home)) for i in (1, 2, 3, 4)]
    Xtr = np.vstack([m["fea"] for m in parts]).astype(np.float64)
    ytr = np.concatenate([m["gnd"].ravel() for m in parts]).astype(np.int64)
    te = loadmat(data_file("isolet/isolet5.mat", home))
    return Xtr, ytr, te["fea"].astype(np.float64), te["gnd"].ravel().astype(np.int64)
