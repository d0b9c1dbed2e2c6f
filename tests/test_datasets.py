"""Loaders for the paper's data sets, checksums, downloads (loopback only), preprocessing."""
import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from convexmetric import datasets as D


def test_every_loader_returns_the_documented_shapes(data_home):
    X, y = D.load_iris_uci(data_home)
    assert X.shape == (150, 4) and len(set(y)) == 3
    X, y = D.load_wine_uci(data_home)
    assert X.shape == (178, 13) and np.bincount(np.unique(y, return_inverse=True)[1]).tolist() == [59, 71, 48]
    X, y = D.load_balance(data_home)
    assert X.shape == (625, 4) and sorted(np.unique(y, return_counts=True)[1]) == [49, 288, 288]
    Xtr, ytr, Xte, yte = D.load_letter(data_home)
    assert Xtr.shape == (14000, 16) and Xte.shape == (6000, 16) and len(set(ytr)) == 26
    Xtr, ytr, Xte, yte = D.load_isolet(data_home)
    assert Xtr.shape == (6238, 617) and Xte.shape == (1559, 617)
    assert set(ytr) == set(range(1, 27)) and np.bincount(ytr)[6] == 238
    tr, ytr, te, yte = D.load_mnist(data_home)
    assert tr.shape == (60000, 28, 28) and te.shape == (10000, 28, 28) and set(ytr) == set(range(10))
    assert abs(tr.mean() / 255 - 0.1307) < 1e-3
    docs_tr, ytr, docs_te, yte = D.load_20newsgroups(data_home)
    assert len(docs_tr) == 11314 and len(docs_te) == 7532 and len(set(ytr)) == 20
    imgs, y = D.load_olivetti(data_home)
    assert imgs.shape == (400, 64, 64) and imgs.min() == 0 and imgs.max() == 1


@pytest.mark.slow
def test_yale_loader(data_home):
    X, y = D.load_yale(data_home)
    assert X.shape == (2414, 96, 84) and len(set(y)) == 38


def test_wine_file_equals_scikit_learn(data_home):
    from sklearn.datasets import load_wine
    X, y = D.load_wine_uci(data_home)
    ref = load_wine()
    np.testing.assert_array_equal(X, ref.data)
    np.testing.assert_array_equal(np.unique(y, return_inverse=True)[1], ref.target)


def test_missing_or_corrupt_data_file_is_named(tmp_path):
    with pytest.raises(D.DataFileError, match="letter-recognition.data.gz.*download=True"):
        D.load_letter(tmp_path)
    (tmp_path / "letter").mkdir()
    (tmp_path / "letter" / "letter-recognition.data.gz").write_bytes(b"not the file")
    with pytest.raises(D.DataFileError, match="sha256"):
        D.load_letter(tmp_path)
    with pytest.raises(D.DataFileError, match="no public source"):
        D.download("yale/CroppedYale.tar.xz", tmp_path)


@pytest.fixture
def loopback_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_from_a_mirror_is_verified_and_loaded(data_home, loopback_server, tmp_path):
    www, url = loopback_server
    # the UCI file is served uncompressed; the loader gzips it and checks its content hash
    with gzip.open(Path(data_home, "iris/iris.data.gz"), "rb") as fh:
        (www / "iris.data").write_bytes(fh.read())
    home = tmp_path / "home"
    path = D.data_file("iris/iris.data.gz", home, download_if_missing=True, base_url=url)
    assert path.is_file()
    X, y = D.load_iris_uci(home)
    np.testing.assert_array_equal(X, D.load_iris_uci(data_home)[0])
    # a file served as-is (olivetti) must match the stored sha256 byte for byte
    shutil.copy(Path(data_home, "olivetti/olivettifaces.mat"), www / "olivettifaces.mat")
    D.download("olivetti/olivettifaces.mat", home, base_url=url)
    assert D.load_olivetti(home)[0].shape == (400, 64, 64)


def test_download_with_wrong_content_is_refused(loopback_server, tmp_path):
    www, url = loopback_server
    (www / "wine.data").write_text("1,2,3\n")
    with pytest.raises(D.DataFileError, match="does not match"):
        D.download("wine/wine.data.gz", tmp_path / "home", base_url=url)
    assert not (tmp_path / "home" / "wine" / "wine.data.gz").exists()


@pytest.mark.parametrize("checked", [True, False], ids=["with-checksum", "without-checksum"])
def test_bit_flipped_gzip_names_the_file_and_says_it_is_damaged(data_home, tmp_path, monkeypatch, checked):
    src = Path(data_home, "iris/iris.data.gz").read_bytes()
    X_ref, y_ref = D.load_iris_uci(data_home)
    if not checked:  # a file without a known checksum is only read: the reader must name it too
        monkeypatch.delitem(D.CHECKSUMS, "iris/iris.data.gz")
    n_damaged = 0
    for pos in range(0, len(src), 11):
        for bit in (0, 5):
            home = tmp_path / f"h{pos}-{bit}"
            (home / "iris").mkdir(parents=True)
            flipped = bytearray(src)
            flipped[pos] ^= 1 << bit
            path = home / "iris" / "iris.data.gz"
            path.write_bytes(bytes(flipped))
            try:
                X, y = D.load_iris_uci(home)
            except D.DamagedDataFileError as exc:   # never a bare zlib.error, EOFError or BadGzipFile
                assert str(path) in str(exc) and "damaged" in str(exc) and "fetch it again" in str(exc)
                assert isinstance(exc, OSError)
                n_damaged += 1
            else:   # a flip in the gzip header's free fields leaves the content intact
                np.testing.assert_array_equal(X, X_ref)
                np.testing.assert_array_equal(y, y_ref)
    assert n_damaged >= 0.9 * 2 * len(range(0, len(src), 11))


def test_truncated_mnist_file_is_named(data_home, tmp_path, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.delitem(D.CHECKSUMS, f"mnist/{name}")
    (tmp_path / "mnist").mkdir()
    for f in Path(data_home, "mnist").glob("*-ubyte.gz"):
        if f.name != name:
            (tmp_path / "mnist" / f.name).symlink_to(f)
    src = Path(data_home, "mnist", name).read_bytes()
    (tmp_path / "mnist" / name).write_bytes(src[: len(src) // 2])
    with pytest.raises(D.DamagedDataFileError, match=f"{tmp_path / 'mnist' / name} is damaged.*EOFError"):
        D.load_mnist(tmp_path)


def test_download_http_error_names_url_and_status(loopback_server, tmp_path):
    www, url = loopback_server          # serves nothing: every request is a 404
    with pytest.raises(D.DownloadError) as err:
        D.download("wine/wine.data.gz", tmp_path / "home", base_url=url)
    msg = str(err.value)
    assert f"{url}/wine.data" in msg and "HTTP 404" in msg and "wine/wine.data.gz" in msg
    assert "by hand" in msg                                    # and what to do about it
    assert err.value.status == 404 and err.value.url == f"{url}/wine.data"
    assert isinstance(err.value, D.DataFileError)              # one family for every data-file problem
    assert not (tmp_path / "home" / "wine" / "wine.data.gz").exists()


def test_download_from_an_unreachable_server_is_named(tmp_path):
    import socket
    with socket.socket() as sock:                              # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(D.DownloadError, match=rf"could not download 'iris/iris.data.gz' from "
                                              rf"http://127.0.0.1:{port}/iris.data: .*refused") as err:
        D.download("iris/iris.data.gz", tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
    assert err.value.status is None


def test_deskew_straightens_a_sheared_bar():
    img = np.zeros((1, 28, 28))
    for r in range(4, 24):
        img[0, r, 10 + (r - 4) // 2] = 1.0      # a slanted stroke
    out = D.deskew(img)[0]
    cols = [np.average(np.arange(28), weights=out[r]) for r in range(6, 22) if out[r].sum() > 0]
    assert np.ptp(cols) < 1.5                   # nearly vertical after deskewing (was 10 columns)
    assert out.sum() == pytest.approx(img.sum(), rel=0.05)


def test_pca_reduce_drops_leading_components():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8)) * np.arange(8, 0, -1)
    full, _ = D.pca_reduce(X, None, 5)
    dropped, _ = D.pca_reduce(X, None, 5, drop_leading=2)
    assert dropped.shape == (50, 3)
    np.testing.assert_allclose(np.abs(dropped), np.abs(full[:, 2:]), atol=1e-8)


def test_bag_of_words_keeps_the_most_common_words_ties_alphabetical():
    rng = np.random.default_rng(3)
    words = [f"w{i:04d}" for i in range(600)]
    counts = dict(zip(words, rng.integers(1, 4, len(words)).tolist()))   # many ties at every count
    bag = [w for w in words for _ in range(counts[w])]
    rng.shuffle(bag)
    docs = [" ".join(bag[i:i + 50]) for i in range(0, len(bag), 50)]
    n_words = 250                                                      # cuts through a tied group
    want = sorted(sorted(words, key=lambda w: (-counts[w], w))[:n_words])
    tr, te = D.bag_of_words(docs, [" ".join(words)], n_words=n_words)
    np.testing.assert_array_equal(np.asarray(tr.sum(axis=0)).ravel(), [counts[w] for w in want])
    assert te.toarray().sum() == n_words                                # each kept word once in the test doc
    # the same vocabulary whatever the order of the documents
    shuffled = [docs[i] for i in rng.permutation(len(docs))]
    np.testing.assert_array_equal(D.bag_of_words(shuffled, docs, n_words=n_words)[1].toarray(),
                                  D.bag_of_words(docs, docs, n_words=n_words)[1].toarray())
    with pytest.raises(ValueError, match="n_words"):
        D.bag_of_words(docs, docs, n_words=0)


def test_bag_of_words_tfidf_uses_training_document_frequencies():
    train = ["apple apple banana", "banana cherry", "apple banana banana"]
    test = ["cherry apple", "banana banana durian"]
    counts_tr, counts_te = D.bag_of_words(train, test, n_words=10)
    tr, te = D.bag_of_words(train, test, n_words=10, weighting="tfidf")
    df = np.asarray((counts_tr > 0).sum(axis=0)).ravel()
    assert df.tolist() == [2, 3, 1]                                    # apple, banana, cherry: idf differ
    idf = 1 + np.log((1 + 3) / (1 + df))
    for got, counts in ((tr, counts_tr), (te, counts_te)):
        want = counts.toarray() * idf
        want /= np.linalg.norm(want, axis=1, keepdims=True)
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-12)
    assert te.shape == (2, 3)                                          # "durian" is not a training word
    # sublinear: each count c becomes 1 + ln c before the idf and the unit length
    tr, te = D.bag_of_words(train, test, n_words=10, weighting="tfidf-sublinear")
    for got, counts in ((tr, counts_tr), (te, counts_te)):
        c = counts.toarray()
        want = np.where(c > 0, 1 + np.log(np.maximum(c, 1)), 0) * idf
        want /= np.linalg.norm(want, axis=1, keepdims=True)
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-12)
    assert not np.allclose(tr.toarray(), D.bag_of_words(train, test, n_words=10, weighting="tfidf")[0].toarray())
    with pytest.raises(ValueError, match="word weighting"):
        D.bag_of_words(train, test, weighting="binary")


def test_keep_header_lines_cuts_the_header_and_nothing_else():
    doc = ("From: a@b.edu (A)\nSubject: Re: bikes\n  folded subject line\nOrganization: B\nLines: 3\n"
           "\nbody line\nFrom: quoted in the body\n\nLines: also body\n")
    assert D.keep_header_lines([doc]) == [
        "From: a@b.edu (A)\nSubject: Re: bikes\n\nbody line\nFrom: quoted in the body\n\nLines: also body\n"]
    # another choice of prefixes, a header with no kept line, a document with no header at all
    assert D.keep_header_lines([doc], ["Lines:"]) == ["Lines: 3" + doc[doc.index("\n\n"):]]
    assert D.keep_header_lines(["Organization: B\n\nbody"]) == ["\n\nbody"]
    assert D.keep_header_lines(["one paragraph, no blank line"]) == ["one paragraph, no blank line"]
    # one string would become per-character prefixes, a generator is used up by the check, a set's
    # order changes between processes
    for bad in ("From:", (), ("From:", ""), [b"From:"], (p for p in ["From:"]), {"From:", "Subject:"}):
        with pytest.raises(ValueError, match="prefixes"):
            D.keep_header_lines([doc], bad)


def test_20news_documents_cut_to_from_and_subject(data_home):
    docs = D.load_20newsgroups(data_home)[0]
    cut = D.keep_header_lines(docs)
    heads = [d.partition("\n\n")[0].split("\n") for d in docs]
    assert sum(any(line.startswith("Lines:") for line in h) for h in heads) > 0.9 * len(docs)
    for doc, new, head in zip(docs, cut, heads):
        new_head, sep, body = new.partition("\n\n")
        assert sep and body == doc.partition("\n\n")[2]
        assert new_head.split("\n") == [line for line in head if line.startswith(("From:", "Subject:"))]
