"""Table 1's large data sets (20news, yFaces, oFaces, MNIST) and Figure 13, on tiny fast-mode data.

The full protocols run for hours (see ``paper_repro/README.md``); these tests check the
pieces on a few hundred rows: splits and preprocessing, the sparse 3-NN, validation
early stopping, the cached single-metric solution, and Fig. 13's script end to end.
"""
import csv
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sparse

from convexmetric import repro
from convexmetric.classify import knn_error, knn_predict

ROOT = Path(__file__).resolve().parents[1]


def _figure13():
    spec = importlib.util.spec_from_file_location("figure13", ROOT / "paper_repro" / "figure13.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- the sparse 3-NN -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_sparse_knn_equals_the_dense_rule_on_counts_with_ties(seed):
    rng = np.random.default_rng(seed)
    # a small bag of words: many zeros, small integer counts, so many distances tie exactly
    X = rng.poisson(0.3, size=(120, 40)).astype(float)
    y = rng.integers(0, 4, size=120)
    Xtr, ytr, Xte = X[:80], y[:80], X[80:]
    dense = knn_predict(Xtr, ytr, Xte)
    got = repro.knn_predict_sparse(sparse.csr_matrix(Xtr), ytr, sparse.csr_matrix(Xte), block_rows=7)
    np.testing.assert_array_equal(got, dense)
    assert repro.knn_predict_sparse(Xtr, ytr, Xte).tolist() == dense.tolist()   # dense input too
    # ties do occur here, so the index order and the shrink-k rule are exercised
    D = ((Xte[:, None, :] - Xtr[None]) ** 2).sum(-1)
    s = np.sort(D, axis=1)
    assert np.any(s[:, 2] == s[:, 3])


def test_sparse_knn_equals_the_dense_rule_on_real_values_and_k():
    rng = np.random.default_rng(7)
    Xtr, Xte = rng.standard_normal((60, 5)), rng.standard_normal((25, 5))
    ytr = np.array(list("abc") * 20)
    for k in (1, 3, 5):
        np.testing.assert_array_equal(repro.knn_predict_sparse(sparse.csr_matrix(Xtr), ytr, Xte, k=k),
                                      knn_predict(Xtr, ytr, Xte, k=k))
    err = repro.knn_error_sparse(Xtr, ytr, Xte, ytr[:25])
    assert err == pytest.approx(np.mean(knn_predict(Xtr, ytr, Xte) != ytr[:25]))


def test_sparse_knn_rejects_bad_input():
    X = sparse.csr_matrix(np.eye(4))
    with pytest.raises(ValueError, match="features"):
        repro.knn_predict_sparse(X, [0, 1, 0, 1], sparse.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="labels"):
        repro.knn_predict_sparse(X, [0, 1], X)
    with pytest.raises(ValueError, match="k must"):
        repro.knn_predict_sparse(X, [0, 1, 0, 1], X, k=0)


def test_a_protocols_patience_stops_its_solves_early_and_keeps_the_best_iterate():
    """``Protocol.patience`` reaches the solver through ``SplitData.solve``: the same solve without
    it runs to its iteration limit."""
    from dataclasses import replace
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 40)
    X = np.column_stack([y + 1.0 * rng.standard_normal(120), 5 * rng.standard_normal((120, 4))])
    base = repro.Protocol("toy", 1, validation=0.3, solver="fista",
                          solver_options={"max_iter": 3000, "tol": 1e-300})
    infos = {}
    for patience in (None, 1.5):
        data = repro.SplitData(replace(base, patience=patience), X[:90], y[:90], X[90:], y[90:])
        _, sol = data.single()
        infos[patience] = sol.info
    full, short = infos[None], infos[1.5]
    assert full["nit"] == 3000                                  # ran to its iteration limit
    assert short["nit"] < 1000 and short["val_evaluations"] < full["val_evaluations"]
    assert short["val_error"] <= short["val_error_final"]      # the kept iterate is the validation best


def test_a_protocols_passes_bound_multipass_lmnn():
    """``Protocol.passes`` is the most passes multi-pass LMNN makes: one pass is the single metric,
    and a larger bound is used where the targets keep changing."""
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(3), 30)
    X = np.column_stack([y + 0.8 * rng.standard_normal(90), 3 * rng.standard_normal((90, 3))])
    runs = {}
    for passes in (1, 2, 6):
        data = repro.SplitData(repro.Protocol("toy", 1, passes=passes), X[:60], y[:60], X[60:], y[60:])
        runs[passes] = (repro.run_method("lmnn", data)["error"], repro.run_method("lmnn_multipass", data))
    assert runs[1][1]["passes"] == 1 and runs[1][1]["error"] == runs[1][0]
    assert runs[2][1]["passes"] == 2
    assert 2 < runs[6][1]["passes"] <= 6
    # one pass at a time: each later pass's targets are the previous metric's, and they changed
    data = repro.SplitData(repro.Protocol("toy", 1, passes=6), X[:60], y[:60], X[60:], y[60:])
    steps = list(repro.multipass_solutions(data))
    assert [n for n, _, _ in steps] == list(range(1, runs[6][1]["passes"] + 1))
    for (_, p, sol), (_, q, _) in zip(steps, steps[1:]):
        np.testing.assert_array_equal(q.targets, p.targets_in_metric(sol.M))
        assert not np.array_equal(q.targets, p.targets)
    assert len(list(repro.multipass_solutions(data, passes=2))) == 2
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="passes"):
            next(repro.multipass_solutions(data, passes=bad))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="passes"):
            repro.Protocol("toy", 1, passes=bad)


# -- cache keys --------------------------------------------------------------------------------
def test_new_protocol_fields_leave_the_other_data_sets_keys_alone():
    old_fields = {"name", "pca_dims", "pca_drop", "fixed_split", "solver", "solver_options", "multi_solver",
                  "multi_options"}
    for name in ("bal", "wine", "iris", "letters", "isolet"):
        assert set(repro.cache_key(name, seed=0, fast=False)["protocol"]) == old_fields
    assert repro.cache_key("yfaces", seed=0, fast=False)["protocol"]["validation"] == 0.3
    assert repro.cache_key("20news", seed=0, fast=False)["protocol"]["bag_of_words"] == 20000
    assert repro.cache_key("20news", seed=0, fast=False)["protocol"]["word_weighting"] == "tfidf-sublinear"
    # only a bag of words has a vocabulary rule in its key (its results changed with the rule)
    assert repro.cache_key("20news", seed=0, fast=False)["vocabulary"] == "most common, ties alphabetical"
    assert all("vocabulary" not in repro.cache_key(name, seed=0, fast=False) for name in repro.PROTOCOLS if name != "20news")


def test_20news_headers_are_in_its_key_and_the_whole_documents_keep_their_old_key(monkeypatch):
    # the paper's 20news-18828 headers: in 20news's key, so by-date results are never read for them
    cut = repro.cache_key("20news", seed=0, fast=False)
    assert cut["protocol"]["header_lines"] == ["From:", "Subject:"]
    proto = repro.PROTOCOLS["20news"]
    assert proto.fast_version().header_lines == proto.header_lines
    assert replace(proto, header_lines=["From:", "Subject:"]) == proto      # a list is the same protocol
    # the by-date documents whole: the key of the table run before the cut, so its caches stay valid
    monkeypatch.setitem(repro.PROTOCOLS, "20news", replace(proto, header_lines=None))
    whole = repro.cache_key("20news", seed=0, fast=False)
    assert whole["protocol"] == {k: v for k, v in cut["protocol"].items() if k != "header_lines"}
    assert {k: v for k, v in whole.items() if k != "protocol"} == {k: v for k, v in cut.items() if k != "protocol"}
    for bad in ("From:", (), {"From:"}):
        with pytest.raises(ValueError, match="prefixes"):
            replace(proto, header_lines=bad)
    with pytest.raises(ValueError, match="bag_of_words"):
        repro.Protocol("toy", 1, header_lines=("From:",))


def test_sections_on_the_whole_20news_documents_keep_their_own_cache(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from paper_repro import explain_differences as ed
    made = []
    monkeypatch.setattr(ed, "make_split", lambda proto, raw, split, seed, fast: ("Xtr", "ytr", "Xte", "yte"))
    monkeypatch.setattr(ed, "SplitData", lambda proto, *arrays, **kw: made.append((proto, kw)))
    ed.table_split("20news", 3, raw="raw", proto=ed.NEWS_BYDATE)
    ed.table_split("20news", 3, raw="raw", proto=repro.PROTOCOLS["20news"])
    ed.table_split("20news", 3, raw="raw")
    # the whole documents: a cache of their own, under their own key, never the table's
    bydate_key = repro.cache_key("20news", seed=0, fast=False, proto=ed.NEWS_BYDATE)
    assert made[0][0] is ed.NEWS_BYDATE and made[0][1]["key"] == bydate_key
    assert made[0][1]["store"] == repro._cache_dir(ed.table_cache("20news")[1].parents[2], "20news", bydate_key) / "3"
    assert made[0][1]["store"].parent != ed.table_cache("20news")[1] and bydate_key != made[1][1]["key"]
    for proto, kw in made[1:]:
        assert proto is repro.PROTOCOLS["20news"]
        assert kw["store"] == ed.table_cache("20news")[1] / "3"
        assert kw["key"] == repro.cache_key("20news", seed=0, fast=False)


def test_large_protocols_use_the_default_solver_with_time_limits():
    for name in ("mnist", "20news", "yfaces", "ofaces"):
        p = repro.PROTOCOLS[name]
        assert p.solver == "auto" and p.multi_solver == "auto"
        assert 0 < p.solver_options["time_limit"] <= 300 and 0 < p.multi_options["time_limit"] <= 1800
        fast = p.fast_version()
        assert fast.solver_options["time_limit"] <= 20 and fast.multi_options["time_limit"] <= 20
    assert repro.PROTOCOLS["yfaces"].pca_dims == 300 and repro.PROTOCOLS["yfaces"].pca_drop == 5
    assert repro.PROTOCOLS["ofaces"].validation == 0.3 and repro.PROTOCOLS["ofaces"].n_splits == 100


# -- the data sets, tiny ------------------------------------------------------------------------
def _tiny(monkeypatch, name, **changes):
    monkeypatch.setitem(repro.PROTOCOLS, name, replace(repro.PROTOCOLS[name], **changes))
    return repro.PROTOCOLS[name]


def test_20news_bag_of_words_pca_and_sparse_euclidean_row(data_home, monkeypatch):
    proto = _tiny(monkeypatch, "20news", fast_train=300, fast_test=120)
    raw = repro.load_raw("20news", data_home)
    assert len(raw[0]) == 18846 and np.unique(raw[1]).size == 20 and isinstance(raw[0][0], str)
    split = repro.make_split(proto, raw, 0, 0, True)
    data = repro.SplitData(proto, *split)
    Btr, Bte = data.raw
    assert sparse.issparse(Btr) and Btr.shape == (300, 20000) and Bte.shape == (120, 20000)
    assert Btr.data.min() > 0                                                        # tf-idf weights
    np.testing.assert_allclose(np.sqrt(Btr.multiply(Btr).sum(axis=1)), 1.0)           # unit-length rows
    assert data.pca[0].shape == (300, 200) and data.pca[1].shape == (120, 200)
    assert data.std is data.pca and data.val is None and data.fit.size == 300
    rec = repro.run_method("knn_euclidean", data)
    dense = np.mean(knn_predict(Btr.toarray(), data.ytr, Bte.toarray()) != data.yte)
    assert rec["error"] == pytest.approx(100 * dense)
    # the words are those of the documents cut to From: and Subject:, not of the whole documents
    from convexmetric.datasets import bag_of_words, keep_header_lines
    cut = bag_of_words(keep_header_lines(split[0]), keep_header_lines(split[2]), 20000, proto.word_weighting)
    whole = bag_of_words(list(split[0]), list(split[2]), 20000, proto.word_weighting)
    assert (Btr != cut[0]).nnz == 0 and (Bte != cut[1]).nnz == 0
    assert Btr.shape != whole[0].shape or (Btr != whole[0]).nnz > 0


def test_yfaces_drops_five_components_and_holds_out_validation(data_home, monkeypatch):
    from convexmetric.datasets import pca_reduce
    proto = _tiny(monkeypatch, "yfaces", fast_train=420, fast_test=100)
    raw = repro.load_raw("yfaces", data_home)
    assert raw[0].shape == (2414, 96 * 84) and np.unique(raw[1]).size == 38
    split = repro.make_split(proto, raw, 0, 0, True)
    data = repro.SplitData(proto, *split, seed=0)
    assert data.pca[0].shape == (420, 300)
    full = pca_reduce(split[0], split[2], 305)[0]
    np.testing.assert_allclose(np.abs(data.pca[0][:, 0]), np.abs(full[:, 5]), rtol=1e-6, atol=1e-8)
    assert data.val.size == 126 and data.fit.size == 294 and np.intersect1d(data.fit, data.val).size == 0
    p = data.problem()
    assert p.n == 294 and p.d == 300


def test_ofaces_validation_early_stopping_svm_choice_and_cached_solution(data_home, tmp_path, monkeypatch):
    _tiny(monkeypatch, "ofaces", solver_options={"time_limit": 3, "max_iter": 60})
    out = tmp_path / "out"
    rows = repro.run(["ofaces"], ["knn_pca", "lmnn", "svm_multiclass"], out, n_splits=1, home=data_home,
                     progress=False)
    assert [r["method"] for r in rows] == ["knn_pca", "lmnn", "svm_multiclass"]
    [lmnn] = [json.loads(p.read_text()) for p in out.glob("cache/**/0/lmnn.json")]
    assert lmnn["n_train"] == 280 and lmnn["n_fit"] == 196 and lmnn["n_test"] == 120
    assert 0 <= lmnn["val_error"] <= lmnn["val_error_final"] and "test_error_final" in lmnn
    assert lmnn["relative_gap"] >= lmnn["relative_gap_final"] - 1e-12 or lmnn["stopped_at"] == "final"
    assert lmnn["wall_time"] >= lmnn["solve_wall_time"] > 0
    [svm] = [json.loads(p.read_text()) for p in out.glob("cache/**/0/svm_multiclass.json")]
    assert svm["C"] in (1.0, 10.0, 100.0) and svm["gamma_scale_factor"] in (0.25, 1.0, 4.0)
    assert list(out.glob("cache/**/0/single.npz"))
    # a resumed run reads the single metric back: energy needs no solve
    import convexmetric.solvers as solvers
    monkeypatch.setattr(solvers, "solve", lambda *a, **k: pytest.fail("solved again"))
    rows = repro.run(["ofaces"], ["lmnn", "lmnn_energy"], out, n_splits=1, home=data_home, progress=False)
    assert rows[1]["method"] == "lmnn_energy" and 0 <= rows[1]["mean"] <= 100
    with open(out / "splits.csv") as fh:   # the first run's other rows are kept, in the table's order
        assert [r["method"] for r in csv.DictReader(fh)] == ["knn_pca", "lmnn", "lmnn_energy", "svm_multiclass"]


def test_estimator_validation_fraction_reproduces_the_ofaces_protocol(data_home):
    """``LMNN(validation_fraction=0.3)`` on a split's training part holds out the protocol's rows
    and keeps the same metric as the table's LMNN row (full protocol; on split 1 that metric is
    an early iterate, not the solver's last). With 200 PCA features and 196 rows learned from,
    the estimator learns in the rows' span, where the two metrics agree; the protocol's keeps
    its starting weight on the other directions, which moves no k-NN ranking."""
    import warnings

    from convexmetric.classify import knn_error
    from convexmetric.estimator import LMNN
    proto, split = repro.PROTOCOLS["ofaces"], 1
    parts = repro.make_split(proto, repro.load_raw("ofaces", data_home), split, 0, False)
    data = repro.SplitData(proto, *parts, seed=split)
    (Xtr, Xte), ytr, yte = data.std, data.ytr, data.yte
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the target differences")
        _, sol = data.single()
        est = LMNN(time_limit=proto.solver_options["time_limit"], validation_fraction=proto.validation,
                   random_state=split).fit(Xtr, ytr)
    held, learn = est.validation_rows_, data.fit
    assert np.array_equal(held, data.val)
    assert est.solver_ == "factored" and est.result_.status == "user_limit"     # stopped by the patience
    from convexmetric.span import DataSpan
    U = DataSpan.of(Xtr[learn]).basis
    assert est.result_.info["data_span"]["dim"] == U.shape[1] < Xtr.shape[1]
    np.testing.assert_allclose(U.T @ est.metric_ @ U, U.T @ sol.M @ U, rtol=1e-6, atol=1e-9 * np.abs(sol.M).max())
    np.testing.assert_allclose(est.metric_, U @ U.T @ est.metric_ @ U @ U.T, atol=1e-12 * np.abs(sol.M).max())
    assert knn_error(Xtr, ytr, Xte, yte, est.metric_) == knn_error(Xtr, ytr, Xte, yte, sol.M)
    assert est.validation_error_ == pytest.approx(sol.info["val_error"] / 100)
    final = knn_error(Xtr[learn], ytr[learn], Xtr[held], ytr[held], est.result_.M)
    assert est.validation_error_ < final                                        # an earlier iterate won


def test_damaged_cached_solution_is_solved_again(tmp_path, caplog):
    sol = repro.Solution(np.eye(2), np.eye(2), {"objective": 1.0}, 0.5)
    path = tmp_path / "single.npz"
    repro._write_solution(path, sol, {"k": 1})
    back = repro._read_solution(path, {"k": 1})
    assert back.cached and np.array_equal(back.M, sol.M) and back.info == sol.info and back.wall_time == 0.5
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert repro._read_solution(path, {"k": 2}) is None
        path.write_bytes(path.read_bytes()[:40])
        assert repro._read_solution(path, {"k": 1}) is None
    assert any("other inputs" in r.getMessage() for r in caplog.records)
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_cached_solution_of_other_code_is_reused_only_when_any_code_will_do(tmp_path):
    sol = repro.Solution(np.eye(2), np.eye(2), {"objective": 1.0}, 0.5)
    path = tmp_path / "single.npz"
    repro._write_solution(path, sol, {"k": 1})
    now = repro.code_fingerprint()
    assert repro._read_solution(path, {"k": 1}, now).cached
    assert repro._read_solution(path, {"k": 1}, "another0code") is None
    assert repro._read_solution(path, {"k": 1}).cached             # None: whatever code computed it


def test_mnist_fast_split_is_deskewed_pca164(data_home, monkeypatch):
    proto = _tiny(monkeypatch, "mnist", fast_train=300, fast_test=100)
    raw = repro.load_raw("mnist", data_home)
    assert raw[0].shape == (60000, 784) and raw[2].shape == (10000, 784)
    data = repro.SplitData(proto, *repro.make_split(proto, raw, 0, 0, True))
    assert data.pca[0].shape == (300, 164) and data.fit.size == 300
    assert 0 <= repro.run_method("knn_pca", data)["error"] <= 30


# -- Figure 13 ----------------------------------------------------------------------------------
def _check_figure13(out, ranks, d):
    with open(out / "figure13.csv") as fh:
        rows = list(csv.DictReader(fh))
    got = {(r["method"], int(r["r"])) for r in rows}
    assert got == ({("euclidean", d), ("lmnn_full", d)} | {(m, r) for m in ("pca", "lmnn_s", "lmnn_r") for r in ranks})
    assert all(0 <= float(r["error"]) <= 100 for r in rows)
    md = (out / "figure13.md").read_text()
    assert "| r | PCA | LMNN-S | LMNN-R | LMNN-R (paper) |" in md and "2.33" in md
    assert (out / "figure13.png").stat().st_size > 1000
    return rows


def test_figure13_tiny_run_writes_its_table_and_resumes(data_home, tmp_path, monkeypatch):
    fig = _figure13()
    out = tmp_path / "fig"
    kw = dict(n_train=600, n_test=200, ranks=(5, 10), pca_dims=40, time_limit_r=2, time_limit_s=4)
    table = fig.run(out, fast=True, home=data_home, progress=False, **kw)
    rows = _check_figure13(out, (5, 10), 40)
    assert len(table) == len(rows) == 8
    assert json.loads((out / "figure13.json").read_text())["settings"]["ranks"] == [5, 10]
    # resumed: every point comes from the cache, nothing is loaded or solved
    class Loaded(Exception):
        pass

    def refuse(*args, **kwargs):
        raise Loaded

    prepare = fig.prepare
    monkeypatch.setattr(fig, "prepare", refuse)
    assert fig.run(out, fast=True, home=data_home, progress=False, **kw) == table
    assert "other code" not in (out / "figure13.md").read_text()
    # another time limit computes its own results
    with pytest.raises(Loaded):
        fig.run(out, fast=True, home=data_home, progress=False, **{**kw, "time_limit_r": 3})
    # after an edit of the package the cached points are reused but flagged, or with recompute redone
    now = repro.code_fingerprint()
    monkeypatch.setattr(repro, "code_fingerprint", lambda: "edited0code00")
    assert fig.run(out, fast=True, home=data_home, progress=False, **kw) == table
    assert json.loads((out / "figure13.json").read_text())["cached_by_other_code"] == {now: 8}
    assert "8 of these results were read from the cache and computed by other code" in (out / "figure13.md").read_text()
    with pytest.raises(Loaded):
        fig.run(out, fast=True, home=data_home, progress=False, recompute=True, **kw)
    # a point computed now from the full metric kept from the other code is that code's too
    monkeypatch.setattr(fig, "prepare", prepare)
    [point] = out.glob("cache/figure13/*/lmnn_s_r5.json")
    point.unlink()
    fig.run(out, fast=True, home=data_home, progress=False, **kw)
    assert json.loads(point.read_text())["code"] == now


def test_figure13_rejects_ranks_above_the_dimension(tmp_path):
    fig = _figure13()
    with pytest.raises(ValueError, match="ranks"):
        fig.run(tmp_path, fast=True, ranks=(400,), progress=False)
    with pytest.raises(TypeError, match="unknown setting"):
        fig.run(tmp_path, fast=True, rank=3, progress=False)


@pytest.mark.slow
def test_figure13_fast_mode_cli(data_home, tmp_path):
    fig = _figure13()
    out = tmp_path / "fast"
    assert fig.main(["--fast", "--out", str(out), "--data-home", data_home, "-q"]) == 0
    rows = _check_figure13(out, (15, 25), 350)
    lmnn_r = {int(r["r"]): float(r["paper"]) for r in rows if r["method"] == "lmnn_r"}
    assert lmnn_r == {15: 2.38, 25: 1.76}


def test_every_explain_differences_section_is_listed_where_people_look(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root))
    from paper_repro import explain_differences as ed
    listed = next(line for line in (root / "paper_repro" / "README.md").read_text().splitlines()
                  if line.startswith("# sections: "))
    assert listed.split()[2:] == list(ed.SECTIONS)                   # the README's list, in the run order
    for name in ed.SECTIONS:
        assert f"``{name}``" in ed.__doc__, name                     # and each is described in the module doc


def test_news_more_passes_prints_each_pass_until_the_targets_settle(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from paper_repro import explain_differences as ed
    rng = np.random.default_rng(0)            # targets settle after 4 passes; M errs less than the identity
    y = np.tile(np.arange(3), 30)
    X = np.column_stack([2 * y + rng.standard_normal(90), rng.standard_normal((90, 1))])
    proto = repro.Protocol("toy", 1, solver_options={"time_limit": 30})
    data = repro.SplitData(proto, X[:60], y[:60], X[60:], y[60:])
    monkeypatch.setattr(ed, "table_split", lambda name, split: data)
    paper = {("lmnn", "20news"): 14.98, ("lmnn_multipass", "20news"): 13.83}
    monkeypatch.setattr(repro, "read_paper", lambda: paper)
    monkeypatch.setattr(repro, "PAPER_COLUMN", {"20news": "20news"})
    monkeypatch.setattr(repro, "PAPER_ROW", {"lmnn": "lmnn"})
    ed.news_more_passes_rows()
    out = capsys.readouterr().out.splitlines()
    rows = [line.split(" | ") for line in out if line[:3] in {f"| {i}" for i in range(7)}]
    steps = list(repro.multipass_solutions(data, ed.NEWS_MORE_PASSES))
    assert [int(r[0][2:]) for r in rows] == [n for n, _, _ in steps] and 3 <= len(rows) < ed.NEWS_MORE_PASSES
    assert rows[0][1] == ""
    for r, (_, p, sol), (_, q, _) in zip(rows[1:], steps, steps[1:]):      # the share changed since the last pass
        changed = 100 * np.mean(np.any(np.sort(q.targets, 1) != np.sort(p.targets, 1), axis=1))
        assert changed > 0 and float(r[1].rstrip(" %")) == pytest.approx(changed, abs=0.05)
    errors = [100 * knn_error(data.std[0], data.ytr, data.std[1], data.yte, sol.M) for _, _, sol in steps]
    assert errors[0] != 100 * knn_error(data.std[0], data.ytr, data.std[1], data.yte)
    np.testing.assert_allclose([float(r[4]) for r in rows], errors, atol=0.01)
