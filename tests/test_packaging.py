"""Packaging: README commands, CI script and metadata stay consistent."""
import configparser
import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np


ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands_that_ci_runs():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert "pip install ." in cmds[0] and cmds[0].endswith("convexmetric")
    assert 'pip install ".[test]"' in cmds[1] and cmds[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for cmd in cmds:
        assert cmd in ci, f"README command not run verbatim by .ci/run: {cmd}"
    assert "CONVEXMETRIC_DATA" in "\n".join(ci) and "CONVEXMETRIC_REQUIRE_DATA=1" in "\n".join(ci)


def test_setup_cfg_duplicates_nothing_in_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert not {"metadata", "options", "options.extras_require", "options.entry_points"} & set(cfg.sections()), \
        "setup.cfg must not repeat package metadata held in pyproject.toml"
    tools = set(py.get("tool", {}))
    for section in cfg.sections():
        name = section.split(":")[-1].split(".")[0]
        assert name not in tools, f"[{section}] in setup.cfg duplicates [tool.{name}] in pyproject.toml"
    deps = py["project"]["dependencies"]
    for required in ("cvxpy", "scs", "numpy", "scipy", "matplotlib", "scikit-learn"):
        assert any(d.startswith(required) for d in deps), required
    assert py["project"]["scripts"]["convexmetric"] == "convexmetric.cli:main"


def run_cli(*args, cwd=None):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "convexmetric.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": path})


def test_cli_main_job_runs_and_certifies():
    out = run_cli("--dataset", "iris")
    assert out.returncode == 0, out.stderr
    assert "status: optimal" in out.stdout
    rel = float(re.search(r"relative ([0-9.eE+-]+)\)", out.stdout).group(1))
    assert rel <= 1e-6
    # the setting is spelled out: problem, scaling, split, the solver and why, then what next
    text = out.stdout
    assert "k = 3 target neighbours, mu = 0.5, margin = 1" in text
    assert "StandardScaler fitted on the training split" in text
    assert "stratified train/test, test fraction 0.3, seed 0: 105 training, 45 held-out" in text
    assert "solver: hybrid, chosen by 'auto'\n  because d = 4 <= 16" in text
    steps = text[text.index("next steps:"):]
    assert "--solver band-ipm" in steps and "convexmetric.estimator.LMNN" in steps and "convexmetric-repro" in steps
    assert out.stderr == ""


def test_cli_verbose_logs_ours_only_and_saves(tmp_path):
    out = run_cli("--dataset", "iris", "-v", "--save", "metric", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "convexmetric.solvers: fista it 0" in out.stderr and "active-set it 1" in out.stderr
    for banner in ("CVXPY", "Clarabel", "CLARABEL"):   # no backend output with -v
        assert banner not in out.stdout + out.stderr, banner
    M = np.load(tmp_path / "metric.npy")
    assert M.shape == (4, 4) and np.allclose(M, M.T)
    assert "saved to metric.npy" in out.stdout
    bad = run_cli("--dataset", "iris", "--save", str(tmp_path / "no" / "such" / "dir" / "m.npy"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_shared_data_checksums(data_home):
    """The paper's data home is present and its small files match SHA256SUMS."""
    sums = Path(data_home, "SHA256SUMS").read_text().split("\n")
    checked = 0
    for line in filter(None, sums):
        digest, name = line.split()
        path = Path(data_home, name)
        if path.stat().st_size < 2_000_000:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
            checked += 1
    assert checked >= 5
