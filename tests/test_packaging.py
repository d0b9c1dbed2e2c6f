"""Packaging: README commands, CI script and metadata stay consistent."""
import configparser
import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path


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


def test_cli_main_job_runs_and_certifies():
    out = subprocess.run([sys.executable, "-m", "convexmetric.cli", "--dataset", "iris"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "status: optimal" in out.stdout
    rel = float(re.search(r"relative ([0-9.eE+-]+)\)", out.stdout).group(1))
    assert rel <= 1e-6


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
