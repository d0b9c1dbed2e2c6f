"""Data sets: seeded synthetic problems and bundled loaders.

(The paper's data sets under ``CONVEXMETRIC_DATA`` are read by :func:`data_home`
and the loaders below.)

A data file that cannot be used raises a :class:`DataFileError` (an ``OSError``) whose
message names the file and what to do: missing or not matching its checksum
(:class:`DataFileError` itself), present but unreadable, e.g. a broken gzip stream
(:class:`DamagedDataFileError`), or not downloadable, with the URL and HTTP status
(:class:`DownloadError`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


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
    """A data file is missing or does not match its published checksum.

    The base of every data-file error here (an ``OSError``): catch it to handle any
    data file that is not usable, whatever the reason.
    """


class DamagedDataFileError(DataFileError):
    """A data file exists but cannot be read: a broken gzip stream, a truncated file, a
    MATLAB or tar file that does not parse. The message names the file and says to
    delete it and fetch it again."""


class DownloadError(DataFileError):
    """A data file could not be downloaded. The message names the file and the URL and,
    for an HTTP error, the status; ``url`` and ``status`` (None when the server never
    answered) are kept as attributes."""

    def __init__(self, message: str, url: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


def _damaged(path: Path, exc: BaseException) -> DamagedDataFileError:
    """The error for a file that exists but does not read, with what to do about it."""
    return DamagedDataFileError(
        f"{path} is damaged and cannot be read ({type(exc).__name__}: {exc}); delete it and fetch it "
        "again (the loader's download=True, command line --download, where a public source exists; else copy "
        "it from the data set's source, see the data README)")


def _read_errors() -> tuple:
    """What decompressing or parsing a damaged file raises: ``zlib.error`` (broken deflate
    stream), ``EOFError`` (truncated), ``gzip.BadGzipFile`` (an OSError; bad header),
    ``ValueError`` (unparsable content), and the MATLAB and tar readers' errors."""
    import tarfile
    import zlib
    from scipy.io.matlab import MatReadError
    return (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError, MatReadError, tarfile.TarError)


class _reading:
    """Context manager turning a read failure of ``path`` into :class:`DamagedDataFileError`."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and not isinstance(exc, DataFileError) and isinstance(exc, _read_errors()):
            raise _damaged(self.path, exc) from exc
        return False


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
    "mnist/train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "20newsgroups/20news-bydate.tar.gz": "92b1be51b55cd2d2a3b055827a753b9479a9a56a15dfdd8e2cac3c45fdc99b72",
    "olivetti/olivettifaces.mat": "b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d",
    "yale/CroppedYale.tar.xz": "ea0f1f7e3272c31241ce3c739ae9449225ccffdf4440641f1ed87a40c6553fd2",
}

#: sha256 of the *uncompressed* content of gzipped files: a file downloaded from the
#: original source and gzipped here has other bytes but the same content.
CONTENT_CHECKSUMS = {
    "iris/iris.data.gz": "6f608b71a7317216319b4d27b4d9bc84e6abd734eda7872b71a458569e2656c0",
    "wine/wine.data.gz": "6be6b1203f3d51df0b553a70e57b8a723cd405683958204f96d23d7cd6aea659",
    "balance-scale/balance-scale.data.gz": "5611187ef7345d807aa8ae22615945ade52a190537c0b1434bd44c3e877c5bb4",
    "letter/letter-recognition.data.gz": "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2",
    "mnist/train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
}

_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
#: Public sources, by relative path: (url, whether the download must be gzipped here).
#: Files without an entry (the Isolet .mat split, CroppedYale) have no stable public URL.
SOURCES = {
    "iris/iris.data.gz": (_UCI + "iris/iris.data", True),
    "wine/wine.data.gz": (_UCI + "wine/wine.data", True),
    "balance-scale/balance-scale.data.gz": (_UCI + "balance-scale/balance-scale.data", True),
    "letter/letter-recognition.data.gz": (_UCI + "letter-recognition/letter-recognition.data", True),
    "mnist/train-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", False),
    "mnist/train-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", False),
    "mnist/t10k-images-idx3-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", False),
    "mnist/t10k-labels-idx1-ubyte.gz": ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", False),
    "20newsgroups/20news-bydate.tar.gz": ("http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz", False),
    "olivetti/olivettifaces.mat": ("https://cs.nyu.edu/~roweis/data/olivettifaces.mat", False),
}


def _sha256(path: Path, gunzip: bool = False) -> str:
    import gzip
    import hashlib
    h = hashlib.sha256()
    with (gzip.open(path, "rb") if gunzip else open(path, "rb")) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, relpath: str) -> None:
    if relpath not in CHECKSUMS or _sha256(path) == CHECKSUMS[relpath]:
        return
    if relpath in CONTENT_CHECKSUMS:
        try:
            if _sha256(path, gunzip=True) == CONTENT_CHECKSUMS[relpath]:
                return
        except _read_errors() as exc:
            raise DamagedDataFileError(
                f"{path} does not match its sha256 {CHECKSUMS[relpath]} and is damaged: it does not "
                f"decompress ({type(exc).__name__}: {exc}); delete it and fetch it again (download=True, "
                "or copy it from the data set's source)") from exc
    raise DataFileError(f"{path} does not match its sha256 {CHECKSUMS[relpath]}: corrupt or a "
                        "different version; delete it and fetch it again (download=True, or copy it from the "
                        "data set's source)")


def download(relpath: str, home=None, base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch one data file from its public source into the data home and verify it.

    ``base_url`` replaces the source's directory (a mirror; tests use a loopback
    server). The file is written atomically and checked before it is kept.

    Raises
    ------
    DownloadError
        The server answered with an HTTP error (the message holds the URL and status),
        could not be reached, or the transfer broke off.
    DataFileError
        No public source is known, or the download does not match its checksum.
    """
    import gzip
    import http.client
    import urllib.error
    import urllib.request
    if relpath not in SOURCES:
        raise DataFileError(f"no public source is known for '{relpath}': copy it into "
                            f"{data_home(home) / relpath} by hand (see the data README)")
    url, compress = SOURCES[relpath]
    if base_url is not None:
        url = base_url.rstrip("/") + "/" + url.rsplit("/", 1)[1]
    dest = data_home(home) / relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    logger.info("downloading %s -> %s", url, dest)
    todo = f"check the address and your network, or copy the file into {dest} by hand (see the data README)"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"could not download '{relpath}' from {url}: the server answered HTTP {exc.code} "
                            f"{exc.reason}; {todo}", url, exc.code) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download '{relpath}' from {url}: {reason}; {todo}", url) from exc
    tmp.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    try:
        _verify(tmp, relpath)
    except DataFileError:
        tmp.unlink()
        raise DataFileError(f"the file downloaded from {url} does not match its published checksum")
    tmp.replace(dest)
    return dest


def data_file(relpath: str, home=None, verify: bool = True, download_if_missing: bool = False,
              base_url: str | None = None) -> Path:
    """Path of a data file under the data home, checked against its sha256.

    A missing file is downloaded from its public source when ``download_if_missing``
    (and one exists); otherwise :class:`DataFileError` names the file and where to put it.
    """
    path = data_home(home) / relpath
    if not path.is_file():
        if download_if_missing:
            return download(relpath, home, base_url)
        hint = " or download it: download=True (command line: --download)" if relpath in SOURCES else ""
        raise DataFileError(
            f"missing data file {path}; put the paper's data sets there or set CONVEXMETRIC_DATA "
            f"to the directory that holds '{relpath}'{hint}")
    if verify:
        _verify(path, relpath)
    return path


def _read_csv_gz(path: Path, label_col: int):
    import gzip
    with _reading(path), gzip.open(path, "rt") as fh:
        rows = [line.strip().split(",") for line in fh if line.strip()]
        y = np.array([r[label_col] for r in rows])
        X = np.array([[float(v) for i, v in enumerate(r) if i != label_col] for r in rows])
    return X, y


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat
    with _reading(path):
        return loadmat(path)


def load_iris_uci(home=None, download: bool = False):
    """UCI Iris as in the paper's era (150 x 4, 3 classes, UCI order and values)."""
    return _read_csv_gz(data_file("iris/iris.data.gz", home, download_if_missing=download), label_col=4)


def load_wine_uci(home=None, download: bool = False):
    """UCI Wine (178 x 13, 3 classes; identical to scikit-learn's copy)."""
    return _read_csv_gz(data_file("wine/wine.data.gz", home, download_if_missing=download), label_col=0)


def load_balance(home=None, download: bool = False):
    """UCI Balance Scale ("bal"): 625 x 4, classes L, B, R."""
    return _read_csv_gz(data_file("balance-scale/balance-scale.data.gz", home, download_if_missing=download),
                        label_col=0)


def load_letter(home=None, download: bool = False):
    """UCI Letter Recognition: 20 000 x 16 integer features, 26 classes.

    Returns ``(X_train, y_train, X_test, y_test)`` with the usual split used by the
    paper's protocol here: the first 14 000 rows train, the last 6 000 test.
    """
    X, y = _read_csv_gz(data_file("letter/letter-recognition.data.gz", home, download_if_missing=download),
                        label_col=0)
    return X[:14000], y[:14000], X[14000:], y[14000:]


def load_isolet(home=None):
    """UCI ISOLET, canonical split: 6 238 training (isolet1-4) and 1 559 test (isolet5) rows, 617 features.

    Returns ``(X_train, y_train, X_test, y_test)``; labels are 1..26.
    """
    parts = [_loadmat(data_file(f"isolet/Isolet{i}.mat", home)) for i in (1, 2, 3, 4)]
    Xtr = np.vstack([m["fea"] for m in parts]).astype(np.float64)
    ytr = np.concatenate([m["gnd"].ravel() for m in parts]).astype(np.int64)
    te = _loadmat(data_file("isolet/isolet5.mat", home))
    return Xtr, ytr, te["fea"].astype(np.float64), te["gnd"].ravel().astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    import gzip
    with _reading(path), gzip.open(path, "rb") as fh:
        data = fh.read()
    magic, n = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic == 2051:
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(data, np.uint8, offset=8)
    raise DataFileError(f"{path} is not an IDX image or label file (magic {magic})")


def load_mnist(home=None, download: bool = False):
    """MNIST, canonical split: 60 000 / 10 000 images of 28 x 28 (uint8), labels 0..9.

    Returns ``(images_train, y_train, images_test, y_test)``; see :func:`deskew` and
    :func:`pca_reduce` for the paper's preprocessing.
    """
    get = lambda f: _read_idx(data_file(f"mnist/{f}", home, download_if_missing=download))  # noqa: E731
    return (get("train-images-idx3-ubyte.gz"), get("train-labels-idx1-ubyte.gz").astype(np.int64),
            get("t10k-images-idx3-ubyte.gz"), get("t10k-labels-idx1-ubyte.gz").astype(np.int64))


def load_20newsgroups(home=None, download: bool = False):
    """20 Newsgroups (by date): raw documents (latin-1) and group labels.

    Returns ``(docs_train, y_train, docs_test, y_test)`` with 11 314 / 7 532 documents;
    see :func:`bag_of_words` for the paper's preprocessing.
    """
    import tarfile
    path = data_file("20newsgroups/20news-bydate.tar.gz", home, download_if_missing=download)
    out = {"train": ([], []), "test": ([], [])}
    with _reading(path), tarfile.open(path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3:
                continue
            split = parts[0].rsplit("-", 1)[-1]
            if split in out:
                out[split][0].append((parts[1], parts[2], tar.extractfile(member).read().decode("latin-1")))
    res = []
    for split in ("train", "test"):
        items = sorted(out[split][0], key=lambda t: (t[0], int(t[1]) if t[1].isdigit() else t[1]))
        res += [[t[2] for t in items], np.array([t[0] for t in items])]
    return tuple(res)


#: The header lines the 20news-18828 version keeps (the paper's 18 827 documents).
NEWS_18828_HEADER_LINES = ("From:", "Subject:")


def header_prefixes(prefixes) -> tuple:
    """``prefixes`` as a tuple of header-line prefixes.

    ValueError unless a non-empty list or tuple of non-empty strings: one string would make
    each of its characters a prefix, a generator would be used up by the check, and a set's
    order changes between processes (and with it a cache key built from the prefixes).
    """
    if not isinstance(prefixes, (list, tuple)) or not prefixes \
            or not all(isinstance(p, str) and p for p in prefixes):
        raise ValueError("header-line prefixes must be a non-empty list or tuple of non-empty strings, "
                         f"got {prefixes!r}")
    return tuple(prefixes)


def keep_header_lines(docs, prefixes=NEWS_18828_HEADER_LINES) -> list:
    """The documents with their headers cut to the lines that start with one of ``prefixes``.

    A document's header is everything before its first blank line; documents without one
    are returned whole. Other header lines, continuation lines included, are dropped, and the
    body is kept as it is. With the default, the by-date documents of
    :func:`load_20newsgroups` get the headers of the 20news-18828 version, whose size the
    paper reports: by-date headers also carry Lines:, Organization:, NNTP-Posting-Host: and
    others, which move every 20news row of Table 1 (``paper_repro``'s ``20news-headers``).
    """
    prefixes = header_prefixes(prefixes)
    out = []
    for doc in docs:
        head, sep, body = doc.partition("\n\n")
        if sep:
            doc = "\n".join(line for line in head.split("\n") if line.startswith(prefixes)) + sep + body
        out.append(doc)
    return out


def load_olivetti(home=None, download: bool = False):
    """AT&T / Olivetti faces: 400 images of 64 x 64 in [0, 1] (as scikit-learn), 40 subjects."""
    f = _loadmat(data_file("olivetti/olivettifaces.mat", home, download_if_missing=download))["faces"]
    f = f.T.astype(np.float64)
    f = (f - f.min()) / (f.max() - f.min())
    return f.reshape(400, 64, 64).transpose(0, 2, 1), np.repeat(np.arange(40), 10)


def load_yale(home=None, downsample: int = 2):
    """Extended Yale B, cropped: 2 414 images of 192 x 168 of 38 subjects.

    ``downsample`` averages ``s x s`` blocks (2 gives the paper's 96 x 84 = 8 064 pixels).
    Returns ``(images, y)`` with ``y`` the subject number.
    """
    import tarfile
    path = data_file("yale/CroppedYale.tar.xz", home)
    imgs, ys = [], []
    with _reading(path), tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name
            if not member.isfile() or not name.endswith(".pgm") or "Ambient" in name:
                continue
            b = tar.extractfile(member).read()
            imgs.append(np.frombuffer(b[-32256:], np.uint8).reshape(192, 168))
            ys.append(int(name.split("/")[-2][len("yaleB"):]))
    X = np.stack(imgs).astype(np.float64) / 255.0
    s = int(downsample)
    if s > 1:
        X = X[:, : X.shape[1] // s * s, : X.shape[2] // s * s]
        X = X.reshape(X.shape[0], X.shape[1] // s, s, X.shape[2] // s, s).mean(axis=(2, 4))
    return X, np.array(ys)


# -- the paper's preprocessing ---------------------------------------------------------
def deskew(images: np.ndarray) -> np.ndarray:
    """Deskew digit images by their second moments (the usual MNIST preprocessing).

    Each image is sheared horizontally so that its principal axis is vertical, about
    its centre of mass, by bilinear interpolation; one vectorised resampling for all.
    """
    from scipy.ndimage import map_coordinates
    imgs = np.asarray(images, dtype=np.float64)
    n, h, w = imgs.shape
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    mass = imgs.sum(axis=(1, 2))
    mass = np.where(mass > 0, mass, 1.0)
    mr = (imgs * r).sum(axis=(1, 2)) / mass
    mc = (imgs * c).sum(axis=(1, 2)) / mass
    var_r = (imgs * (r - mr[:, None, None]) ** 2).sum(axis=(1, 2)) / mass
    cov = (imgs * (r - mr[:, None, None]) * (c - mc[:, None, None])).sum(axis=(1, 2)) / mass
    alpha = np.where(var_r > 0, cov / np.where(var_r > 0, var_r, 1.0), 0.0)
    # output pixel (r, c) reads input (r, c + alpha (r - r0)) with r0 = h / 2 shifted to the centre of mass
    src_c = c[None] + alpha[:, None, None] * (r[None] - mr[:, None, None]) + (mc[:, None, None] - (w - 1) / 2)
    src_r = r[None] + (mr[:, None, None] - (h - 1) / 2)
    k = np.broadcast_to(np.arange(n)[:, None, None], (n, h, w))
    out = map_coordinates(imgs, [k.ravel(), src_r.ravel(), src_c.ravel()], order=1, mode="constant")
    return out.reshape(n, h, w)


def pca_reduce(X_train, X_test=None, n_components: int = 100, drop_leading: int = 0, seed: int = 0):
    """PCA fitted on the training rows; keep components ``drop_leading .. n_components - 1``.

    ``drop_leading`` drops the leading components (the paper drops 5 for Yale faces,
    where they mostly encode lighting). Sparse input is centred implicitly.
    Returns ``(Z_train, Z_test)`` (``Z_test`` None when ``X_test`` is).
    """
    from sklearn.decomposition import PCA
    import scipy.sparse as sparse
    n_components = int(min(n_components, min(X_train.shape)))
    solver = "arpack" if sparse.issparse(X_train) else "auto"
    pca = PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit(X_train)
    tr = pca.transform(X_train)[:, drop_leading:]
    te = None if X_test is None else pca.transform(X_test)[:, drop_leading:]
    return tr, te


#: Word weightings :func:`bag_of_words` knows.
WORD_WEIGHTINGS = ("counts", "tfidf", "tfidf-sublinear")


def bag_of_words(docs_train, docs_test, n_words: int = 20000, weighting: str = "counts"):
    """Sparse bag of words over the ``n_words`` most common words of the training documents.

    ``weighting``: ``"counts"``, the word counts; ``"tfidf"``, the counts times the smoothed
    inverse document frequency ``1 + ln((1 + n) / (1 + df))`` of the training documents, each
    row then scaled to unit length (scikit-learn's ``TfidfTransformer`` defaults), so that
    long documents and common words do not dominate Euclidean distances;
    ``"tfidf-sublinear"``, the same with each count ``c`` replaced by ``1 + ln c``, so that a
    word repeated in one document counts less.

    Words are ranked by their total count in the training documents, ties in alphabetical
    order, so the vocabulary is the same on every machine. (scikit-learn's ``max_features``
    breaks ties with an unstable sort whose order depends on the CPU: on split 0 of 20news,
    1 103 words share the count at the 20 000th place.) Columns are in alphabetical order.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    if weighting not in WORD_WEIGHTINGS:
        raise ValueError(f"unknown word weighting {weighting!r}; known: {list(WORD_WEIGHTINGS)}")
    if int(n_words) < 1:
        raise ValueError(f"n_words must be a positive integer, got {n_words!r}")
    vec = CountVectorizer(dtype=np.float64)
    tr = vec.fit_transform(docs_train).tocsc()         # columns: every training word, alphabetical
    totals = np.asarray(tr.sum(axis=0)).ravel()
    keep = np.sort(np.argsort(-totals, kind="stable")[:int(n_words)])
    tr, te = tr[:, keep].tocsr(), vec.transform(docs_test).tocsc()[:, keep].tocsr()
    if weighting.startswith("tfidf"):
        tfidf = TfidfTransformer(sublinear_tf=weighting == "tfidf-sublinear").fit(tr)
        tr, te = tfidf.transform(tr), tfidf.transform(te)
    return tr, te
