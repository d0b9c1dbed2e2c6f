"""The Table 1 reproduction: fast mode end to end, caching and resuming."""
import csv
import json

import pytest

from convexmetric import repro


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
    assert (out / "cache" / "fast" / "iris" / "0" / "lmnn.json").is_file()
    assert not (out / "cache" / "iris").exists()     # a full run never reuses fast results
    assert "| iris | LMNN |" in (out / "table1.md").read_text()
