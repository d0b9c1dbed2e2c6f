"""The Table 1 reproduction: fast mode end to end, caching and resuming."""
import csv
import json

import pytest

from convexmetric import repro

from test_datasets import loopback_server  # noqa: F401  (a loopback HTTP server fixture)


def test_fast_run_writes_tables_and_resumes_from_cache(data_home, tmp_path, monkeypatch):
    ref = tmp_path / "ref.csv"
    ref.write_text("method,iris\nknn_euclidean,4.87\nlmnn_pca,4.37\nlmnn_energy,3.68\n")
    methods = ["knn_euclidean", "lmnn", "lmnn_energy"]
    rows = repro.run(["iris"], methods, tmp_path / "out", n_splits=2, home=data_home, reference=ref,
                     progress=False)
    assert [r["method"] for r in rows] == methods and all(r["splits"] == 2 for r in rows)
    lmnn = rows[1]
    assert lmnn["paper"] == 4.37 and lmnn["diff"] == pytest.approx(lmnn["mean"] - 4.37)
    assert lmnn["max_relative_gap"] <= 1e-6                # every LMNN solve is certified
    with open(tmp_path / "out" / "splits.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    with open(tmp_path / "out" / "table1.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    assert "| iris | LMNN |" in (tmp_path / "out" / "table1.md").read_text()
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "scikit-learn" in meta["versions"]
    # a second run computes nothing: every result comes from the cache
    monkeypatch.setattr(repro, "run_method", lambda *a: pytest.fail("recomputed a cached result"))
    again = repro.run(["iris"], methods, tmp_path / "out", n_splits=2, home=data_home, reference=ref,
                      progress=False)
    assert again == rows


def test_cli_rejects_unknown_data_set(capsys):
    with pytest.raises(SystemExit):
        repro.main(["--datasets", "nope"])


def test_cli_fast_mode_keeps_its_cache_apart(data_home, tmp_path):
    out = tmp_path / "out"
    assert repro.main(["--fast", "--datasets", "iris", "--methods", "knn_euclidean", "lmnn", "--out", str(out),
                       "--data-home", data_home, "-q"]) == 0
    key = repro.cache_key("iris", seed=0, fast=True)
    assert (out / "cache" / "fast" / "iris" / repro._key_hash(key) / "0" / "lmnn.json").is_file()
    assert not (out / "cache" / "iris").exists()     # a full run never reuses fast results
    assert repro.cache_key("iris", seed=0, fast=False) != key
    assert "| iris | LMNN |" in (out / "table1.md").read_text()


def _split_seeds(out):
    with open(out / "splits.csv") as fh:
        return [(r["method"], int(r["seed"])) for r in csv.DictReader(fh)]


def _counting(monkeypatch):
    calls = []
    real = repro.run_method

    def counted(method, data):
        calls.append(method)
        return real(method, data)
    monkeypatch.setattr(repro, "run_method", counted)
    return calls


def test_another_seed_computes_its_own_results(data_home, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ["--datasets", "iris", "--methods", "knn_euclidean", "--splits", "2", "--out", str(out),
            "--data-home", data_home, "-q"]
    assert repro.main(args) == 0
    table0 = capsys.readouterr().out
    assert _split_seeds(out) == [("knn_euclidean", 0), ("knn_euclidean", 1)]
    calls = _counting(monkeypatch)
    assert repro.main(args + ["--seed", "1"]) == 0
    table1 = capsys.readouterr().out
    assert calls == ["knn_euclidean"] * 2              # seed 1 was computed, not read from seed 0's cache
    assert _split_seeds(out) == [("knn_euclidean", 1), ("knn_euclidean", 2)]
    assert json.loads((out / "run.json").read_text())["args"]["seed"] == 1
    with open(out / "splits.csv") as fh:
        mean1 = sum(float(r["error"]) for r in csv.DictReader(fh)) / 2
    assert f"| {mean1:.2f} ± " in table1               # the printed table is seed 1's
    assert repro.main(args) == 0 and calls == ["knn_euclidean"] * 2   # seed 0 is still cached beside it
    assert capsys.readouterr().out == table0


def test_other_solver_options_or_version_are_recomputed(data_home, tmp_path, monkeypatch):
    from dataclasses import replace

    import convexmetric
    run = lambda: repro.run(["iris"], ["lmnn"], tmp_path / "out", n_splits=1, home=data_home,  # noqa: E731
                            progress=False)
    first = run()
    calls = _counting(monkeypatch)
    assert run() == first and calls == []
    monkeypatch.setitem(repro.PROTOCOLS, "iris", replace(repro.PROTOCOLS["iris"], solver="fista",
                                                         solver_options={"tol": 1e-2}))
    coarse = run()
    assert calls == ["lmnn"] and coarse[0]["max_relative_gap"] > first[0]["max_relative_gap"]
    monkeypatch.setattr(convexmetric, "__version__", "99.0")
    run()
    assert calls == ["lmnn", "lmnn"]


def test_damaged_or_foreign_cache_entry_is_recomputed_with_a_warning(data_home, tmp_path, monkeypatch, caplog):
    out = tmp_path / "out"
    run = lambda: repro.run(["iris"], ["knn_euclidean"], out, n_splits=2, home=data_home,  # noqa: E731
                            progress=False)
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "mean_time"} for r in rows]  # noqa: E731
    first = timeless(run())
    [entry] = out.glob("cache/**/1/knn_euclidean.json")
    good = entry.read_text()
    entry.write_text(good[: len(good) // 2])           # truncated by a crash or a full disk
    calls = _counting(monkeypatch)
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert timeless(run()) == first
    assert calls == ["knn_euclidean"]
    assert any(str(entry) in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    # a record computed with other inputs, copied to this key's path, is not trusted either
    rec = json.loads(entry.read_text())
    rec["cache_key"]["seed"], rec["error"] = 7, 99.0
    entry.write_text(json.dumps(rec))
    caplog.clear()
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert timeless(run()) == first
    assert calls == ["knn_euclidean"] * 2
    assert any(str(entry) in r.getMessage() and "other inputs" in r.getMessage() and "seed" in r.getMessage()
               for r in caplog.records)


def test_fast_cli_never_writes_the_committed_results_by_default(data_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                        # as if run from the repository root
    committed = tmp_path / "paper_repro" / "results"
    committed.mkdir(parents=True)
    (committed / "splits.csv").write_text("the committed full-protocol results\n")
    assert repro.main(["--fast", "--datasets", "iris", "--methods", "knn_euclidean", "--data-home", data_home,
                       "-q"]) == 0
    assert (committed / "splits.csv").read_text() == "the committed full-protocol results\n"
    assert not (committed / "table1.md").exists() and not (committed / "run.json").exists()
    assert "| iris | kNN Euclidean |" in (committed / "fast" / "table1.md").read_text()


def test_cli_without_data_prints_one_line_saying_what_and_where(tmp_path, capsys):
    empty = tmp_path / "nodata"
    empty.mkdir()
    code = repro.main(["--datasets", "iris", "--methods", "knn_euclidean", "--out", str(tmp_path / "out"),
                       "--data-home", str(empty), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(empty / "iris" / "iris.data.gz") in err and "--download" in err and "CONVEXMETRIC_DATA" in err
    assert not (tmp_path / "out").exists()


def test_cli_download_fetches_missing_data(data_home, loopback_server, tmp_path, monkeypatch):
    import gzip
    from pathlib import Path

    from convexmetric import datasets as D
    www, url = loopback_server
    with gzip.open(Path(data_home, "iris/iris.data.gz"), "rb") as fh:
        (www / "iris.data").write_bytes(fh.read())
    monkeypatch.setitem(D.SOURCES, "iris/iris.data.gz", (url + "/iris.data", True))   # loopback only
    home = tmp_path / "home"
    assert repro.main(["--datasets", "iris", "--methods", "knn_euclidean", "--splits", "1", "--out",
                       str(tmp_path / "out"), "--data-home", str(home), "--download", "-q"]) == 0
    assert (home / "iris" / "iris.data.gz").is_file()
    assert "| iris | kNN Euclidean |" in (tmp_path / "out" / "table1.md").read_text()


def test_summaries_grow_one_data_set_at_a_time(data_home, tmp_path):
    """A run keeps the other data sets' rows and split records from the summary files it finds
    (same seed and mode), rewrites its own, and keeps nothing across seeds or from damaged files."""
    out = tmp_path / "out"
    common = ["--methods", "knn_euclidean", "knn_lda", "--splits", "2", "--out", str(out), "--data-home", data_home,
              "-q"]
    assert repro.main(["--datasets", "iris"] + common) == 0
    first = (out / "table1.csv").read_text()
    assert repro.main(["--datasets", "wine"] + common) == 0
    with open(out / "table1.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["dataset"], r["method"]) for r in rows] == [("iris", "knn_euclidean"), ("iris", "knn_lda"),
                                                           ("wine", "knn_euclidean"), ("wine", "knn_lda")]
    assert first.splitlines()[1:] == (out / "table1.csv").read_text().splitlines()[1:3]  # iris's rows as they were
    assert sorted({d for d, _ in _dataset_seeds(out)}) == ["iris", "wine"] and len(_dataset_seeds(out)) == 8
    md = (out / "table1.md").read_text()
    assert "| iris | kNN Euclidean |" in md and "Rows of iris were kept" in md
    assert json.loads((out / "run.json").read_text())["args"]["kept_from_earlier_runs"] == ["iris"]
    # rerunning iris rewrites its rows in place (first in the table) and keeps wine's
    assert repro.main(["--datasets", "iris"] + common) == 0
    with open(out / "table1.csv") as fh:
        assert [r["dataset"] for r in csv.DictReader(fh)] == ["iris", "iris", "wine", "wine"]
    # ... and the order holds through the next run, which reads it back from splits.csv
    assert repro.main(["--datasets", "wine"] + common) == 0
    with open(out / "table1.csv") as fh:
        assert [r["dataset"] for r in csv.DictReader(fh)] == ["iris", "iris", "wine", "wine"]
    assert [d for d, _ in _dataset_seeds(out)] == ["iris"] * 4 + ["wine"] * 4
    # another base seed keeps nothing from seed 0
    assert repro.main(["--datasets", "wine", "--seed", "1"] + common) == 0
    assert {d for d, _ in _dataset_seeds(out)} == {"wine"}
    assert "kept" not in (out / "table1.md").read_text()
    # a damaged summary is reported and dropped, not guessed from
    (out / "splits.csv").write_text("dataset,split,method,error\nnope,0,knn_euclidean,x\n")
    (out / "run.json").write_text(json.dumps({"args": {"seed": 1, "fast": False}}))
    assert repro.main(["--datasets", "iris", "--seed", "1"] + common) == 0
    with open(out / "table1.csv") as fh:
        assert {r["dataset"] for r in csv.DictReader(fh)} == {"iris"}


def test_a_run_of_some_methods_keeps_the_data_sets_other_rows(data_home, tmp_path):
    """Rerunning one method of a data set (MNIST's multi-metric row alone costs half an hour)
    rewrites that row and keeps the data set's other rows, in the table's method order."""
    out = tmp_path / "out"
    common = ["--splits", "2", "--out", str(out), "--data-home", data_home, "-q"]
    assert repro.main(["--datasets", "iris", "wine", "--methods", "knn_euclidean", "knn_lda"] + common) == 0
    with open(out / "table1.csv") as fh:
        before = {(r["dataset"], r["method"]): r for r in csv.DictReader(fh)}
    assert repro.main(["--datasets", "iris", "--methods", "knn_euclidean"] + common) == 0
    with open(out / "table1.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["dataset"], r["method"]) for r in rows] == [("iris", "knn_euclidean"), ("iris", "knn_lda"),
                                                           ("wine", "knn_euclidean"), ("wine", "knn_lda")]
    assert all(r == before[(r["dataset"], r["method"])] for r in rows)   # same splits, same results
    with open(out / "splits.csv") as fh:
        recs = [(r["dataset"], r["method"], r["split"]) for r in csv.DictReader(fh)]
    assert recs == [(d, m, s) for d in ("iris", "wine") for m in ("knn_euclidean", "knn_lda") for s in "01"]
    md = (out / "table1.md").read_text()
    assert "Rows of iris, wine were kept" in md and "this run computed iris (kNN Euclidean)." in md
    assert json.loads((out / "run.json").read_text())["args"]["datasets"] == ["iris"]


def _dataset_seeds(out):
    with open(out / "splits.csv") as fh:
        return [(r["dataset"], int(r["seed"])) for r in csv.DictReader(fh)]


def test_source_digest_sees_every_edit_new_file_and_rename(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    first = repro._source_digest(tmp_path)
    assert len(first) == 12 and repro._source_digest(tmp_path) == first
    (tmp_path / "notes.txt").write_text("not code")
    assert repro._source_digest(tmp_path) == first            # only Python sources count
    (tmp_path / "a.py").write_text("x = 2\n")
    assert repro._source_digest(tmp_path) != first
    (tmp_path / "a.py").write_text("x = 1\n")
    assert repro._source_digest(tmp_path) == first
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")
    assert repro._source_digest(tmp_path) != first            # same content under another name
    (tmp_path / "sub" / "c.py").rename(tmp_path / "sub" / "b.py")
    (tmp_path / "sub" / "d.py").write_text("")
    assert repro._source_digest(tmp_path) != first            # an empty new module


def test_results_of_other_code_are_flagged_and_recompute_redoes_them(data_home, tmp_path, monkeypatch, caplog):
    out = tmp_path / "out"
    methods = ["lmnn", "knn_euclidean"]
    run = lambda **kw: repro.run(["iris"], methods, out, n_splits=1, home=data_home,  # noqa: E731
                                 progress=False, **kw)
    first = run()
    now = repro.code_fingerprint()
    assert {json.loads(p.read_text())["code"] for p in out.glob("cache/**/0/*.json")} == {now}
    solves = []
    real_solve = repro.SplitData.solve
    monkeypatch.setattr(repro.SplitData, "solve", lambda self, *a: solves.append(1) or real_solve(self, *a))
    calls = _counting(monkeypatch)
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        run()
    assert calls == [] and not caplog.records                  # same code: nothing to say
    assert "other code" not in (out / "table1.md").read_text()
    monkeypatch.setattr(repro, "code_fingerprint", lambda: "edited0code00")   # the package was edited
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        again = run()
    assert calls == [] and again == first                      # reused, not recomputed ...
    said = "2 results of iris kept from the cache or splits.csv"
    assert any(said in r.getMessage() and now in r.getMessage() for r in caplog.records)
    assert "computed by other code than this run's" in (out / "table1.md").read_text()   # ... but flagged
    assert json.loads((out / "run.json").read_text())["args"]["cached_by_other_code"] == {"iris": {now: 2}}
    # a result computed now from a single solution kept from the other code is that code's too
    [lmnn], [knn] = out.glob("cache/**/0/lmnn.json"), out.glob("cache/**/0/knn_euclidean.json")
    lmnn.unlink(), knn.unlink(), (out / "splits.csv").unlink()   # the summary holds them too
    run()
    assert calls == methods and solves == [] and json.loads(lmnn.read_text())["code"] == now
    assert json.loads(knn.read_text())["code"] == "edited0code00"   # computed after it, using no solution
    calls.clear()
    run(recompute=True)
    assert calls == ["lmnn"] and solves == [1]                 # the kept single solution is not reused
    caplog.clear()
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        run()
    assert calls == ["lmnn"] and not caplog.records
    assert "other code" not in (out / "table1.md").read_text()
    assert {json.loads(p.read_text())["code"] for p in out.glob("cache/**/0/*.json")} == {"edited0code00"}


def test_kept_rows_computed_under_another_protocol_are_named(data_home, tmp_path, monkeypatch, caplog):
    """splits.csv records each row's cache key; a run that keeps rows whose protocol has changed
    since names them, by method (table1.md, run.json, a warning), until they are computed again."""
    from dataclasses import replace
    out = tmp_path / "out"
    common = ["--splits", "1", "--out", str(out), "--data-home", data_home, "-q"]
    both = ["--methods", "knn_euclidean", "knn_lda"]
    assert repro.main(["--datasets", "iris", "wine"] + both + common) == 0
    with open(out / "splits.csv") as fh:
        keys = {r["dataset"]: r["cache_key"] for r in csv.DictReader(fh)}
    assert keys == {n: repro._key_hash(repro.cache_key(n, seed=0, fast=False)) for n in ("iris", "wine")}
    assert repro.main(["--datasets", "wine"] + both + common) == 0           # same protocol: nothing to say
    md = (out / "table1.md").read_text()
    assert "Rows of iris were kept" in md and "other inputs" not in md
    monkeypatch.setitem(repro.PROTOCOLS, "iris", replace(repro.PROTOCOLS["iris"], pca_dims=2))
    now = repro._key_hash(repro.cache_key("iris", seed=0, fast=False))
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert repro.main(["--datasets", "wine"] + both + common) == 0
    md = (out / "table1.md").read_text()
    said = (f"kept rows of iris (kNN Euclidean, kNN LDA) were computed under other inputs (cache key {keys['iris']}) "
            f"than this code gives now ({now}: ")
    assert said in md and "`--datasets iris --methods knn_euclidean knn_lda` computes them again" in md
    assert "kept rows of wine" not in md and any(said in r.getMessage() for r in caplog.records)
    assert json.loads((out / "run.json").read_text())["args"]["kept_under_other_inputs"] == {
        "iris": {"methods": ["knn_euclidean", "knn_lda"], "recorded": [keys["iris"]], "now": now}}
    with open(out / "splits.csv") as fh:                                      # carried forward, not replaced
        assert {r["dataset"]: r["cache_key"] for r in csv.DictReader(fh)}["iris"] == keys["iris"]
    # one method computed again: the other is still named, with the command for it alone
    assert repro.main(["--datasets", "iris", "--methods", "knn_euclidean"] + common) == 0
    md = (out / "table1.md").read_text()
    assert "kept rows of iris (kNN LDA) were" in md and "`--datasets iris --methods knn_lda` computes" in md
    assert repro.main(["--datasets", "iris"] + both + common) == 0            # both computed again: settled
    assert "other inputs" not in (out / "table1.md").read_text()
    # rows from summaries older than the column are kept, not checked
    with open(out / "splits.csv") as fh:
        rows = list(csv.DictReader(fh))
    with open(out / "splits.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[f for f in rows[0] if f != "cache_key"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    monkeypatch.setitem(repro.PROTOCOLS, "iris", replace(repro.PROTOCOLS["iris"], pca_dims=3))
    assert repro.main(["--datasets", "wine"] + both + common) == 0
    md = (out / "table1.md").read_text()
    assert "Rows of iris were kept" in md and "other inputs" not in md


def test_the_command_for_stale_rows_keeps_the_runs_seed_and_mode():
    found = {"methods": list(repro.METHODS), "recorded": ["abc"], "now": "def"}
    assert "`--datasets bal` computes" in repro._stale_message("bal", found, seed=0, fast=False)
    assert "`--datasets bal --fast --seed 3` computes" in repro._stale_message("bal", found, seed=3, fast=True)


def test_a_fresh_clone_resumes_from_the_committed_summary(data_home, tmp_path, monkeypatch, caplog):
    """The cache is not committed, splits.csv is: a run without a cache takes the results
    splits.csv holds under the same cache key, computes only the missing ones, takes nothing
    computed under other inputs, and flags (or with --recompute redoes) other code's."""
    import shutil
    from dataclasses import replace
    out = tmp_path / "out"
    common = ["--datasets", "iris", "--methods", "knn_euclidean", "knn_lda", "--out", str(out), "--data-home",
              data_home, "-q"]
    assert repro.main(common + ["--splits", "2"]) == 0
    table, splits = (out / "table1.csv").read_text(), (out / "splits.csv").read_text()
    with open(out / "splits.csv") as fh:
        assert {r["code"] for r in csv.DictReader(fh)} == {repro.code_fingerprint()}
    shutil.rmtree(out / "cache")                                 # a fresh clone of the repository
    calls = _counting(monkeypatch)
    assert repro.main(common + ["--splits", "2"]) == 0
    assert calls == [] and (out / "table1.csv").read_text() == table and (out / "splits.csv").read_text() == splits
    assert json.loads((out / "run.json").read_text())["args"]["read_from_summary"] == {"iris": 4}
    assert repro.main(common + ["--splits", "3"]) == 0            # one more split: only it is computed
    assert calls == ["knn_euclidean", "knn_lda"]
    assert [(r[0], r[1]) for r in _split_rows(out)] == [(m, s) for m in ("knn_euclidean", "knn_lda") for s in "012"]
    assert [r for r in _split_rows(out) if r[1] != "2"] == [r for r in _split_rows(out, splits) if r[1] != "2"]
    # a result the summary holds under other inputs is computed again, never taken
    shutil.rmtree(out / "cache")
    calls.clear()
    monkeypatch.setitem(repro.PROTOCOLS, "iris", replace(repro.PROTOCOLS["iris"], pca_dims=2))
    assert repro.main(common + ["--splits", "2"]) == 0
    assert calls == ["knn_euclidean", "knn_lda"] * 2
    # taken from the summary but computed by other code: flagged, and --recompute computes it again
    shutil.rmtree(out / "cache")
    calls.clear()
    (out / "splits.csv").write_text((out / "splits.csv").read_text().replace(repro.code_fingerprint(), "edited0code00"))
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert repro.main(common + ["--splits", "2"]) == 0
    said = "4 results of iris kept from the cache or splits.csv"
    assert calls == [] and any(said in r.getMessage() and "edited0code00" in r.getMessage() for r in caplog.records)
    assert "computed by other code than this run's" in (out / "table1.md").read_text()
    assert repro.main(common + ["--splits", "2", "--recompute"]) == 0
    assert calls == ["knn_euclidean", "knn_lda"] * 2
    with open(out / "splits.csv") as fh:
        assert {r["code"] for r in csv.DictReader(fh)} == {repro.code_fingerprint()}


def _split_rows(out, text=None):
    """``(method, split, error, cache_key)`` of each row of ``out/splits.csv`` (or of ``text``)."""
    rows = csv.DictReader((text if text is not None else (out / "splits.csv").read_text()).splitlines())
    return [(r["method"], r["split"], r["error"], r["cache_key"]) for r in rows]


def test_an_interrupted_run_leaves_its_finished_splits_in_the_summary(data_home, tmp_path, monkeypatch, caplog):
    """The summary is rewritten after each split, so a run stopped in split 3 leaves splits 1
    and 2 in splits.csv for a fresh clone, which then computes split 3 alone; a shorter run
    says which of the summary's splits it leaves out, and an inconsistent summary is not used."""
    import shutil
    out = tmp_path / "out"
    common = ["--datasets", "iris", "--methods", "knn_euclidean", "knn_lda", "--out", str(out), "--data-home",
              data_home, "-q"]
    real = repro.run_method

    def stopped(method, data):
        if data.seed == 2 and method == "knn_lda":
            raise RuntimeError("the session ended")     # during split 3
        return real(method, data)
    monkeypatch.setattr(repro, "run_method", stopped)
    with pytest.raises(RuntimeError, match="session ended"):
        repro.main(common + ["--splits", "3"])
    monkeypatch.setattr(repro, "run_method", real)
    assert [(m, s) for m, s, *_ in _split_rows(out)] == [(m, s) for m in ("knn_euclidean", "knn_lda") for s in "01"]
    shutil.rmtree(out / "cache")
    calls = _counting(monkeypatch)
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert repro.main(common + ["--splits", "3"]) == 0
    assert calls == ["knn_euclidean", "knn_lda"] and not caplog.records
    full = (out / "splits.csv").read_text()
    # a shorter run leaves split 3 out of the summary, and says so
    shutil.rmtree(out / "cache")
    with caplog.at_level("WARNING", logger="convexmetric.repro"):
        assert repro.main(common + ["--splits", "2"]) == 0
    assert any("splits 3, beyond the 2 of this run" in r.getMessage() for r in caplog.records)
    assert len(_split_rows(out)) == 4
    # a row whose seed is not its split's is computed again; a repeated row or an error that is
    # no percentage makes the whole summary unreadable: reported, and every result computed
    rows = list(csv.DictReader(full.splitlines()))
    cases = {"seed": (lambda rs: rs[0].update(seed="7"), ["knn_euclidean"]),
             "repeated": (lambda rs: rs.append(dict(rs[0])), ["knn_euclidean", "knn_lda"] * 3),
             "no percentage": (lambda rs: rs[0].update(error="nan"), ["knn_euclidean", "knn_lda"] * 3)}
    for what, (spoil, computed) in cases.items():
        bad = [dict(r) for r in rows]
        spoil(bad)
        with open(out / "splits.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(bad)
        shutil.rmtree(out / "cache", ignore_errors=True)    # the shorter run computed nothing
        calls.clear()
        assert repro.main(common + ["--splits", "3"]) == 0
        assert calls == computed, what
