"""The project's own Python under a security linter and a type checker (`./dev ops pycheck`):
ruff's S rules (flake8-bandit, ruff.toml) and mypy (mypy.ini) pass, every exception is justified
where it is made, and both tools really fail on a planted problem."""
from __future__ import annotations

import re
import subprocess
import tomllib

from conftest import ROOT, tool


def test_dev_ops_pycheck_passes():
    r = subprocess.run([str(ROOT / "dev"), "ops", "pycheck"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert r.stderr.count("\x1b[0m mypy: ") == 3, r.stderr  # all three runs happened


def test_ruff_selects_the_bandit_rules_on_the_whole_tree():
    cfg = tomllib.loads((ROOT / "ruff.toml").read_text())
    assert cfg["lint"]["select"] == ["S"]
    assert "exclude" not in cfg and "exclude" not in cfg["lint"]  # nothing hidden from the scan
    # Every per-file exception is explained by a comment right above it.
    lines = (ROOT / "ruff.toml").read_text().splitlines()
    start = lines.index("[lint.per-file-ignores]")
    for i, line in enumerate(lines[start + 1:], start + 1):
        if line and not line.startswith("#"):
            above = lines[i - 1]
            assert above.startswith("#") or lines[i - 1].startswith('"'), f"ruff.toml:{i + 1} has no reason"
    # Tests may skip S101 (pytest asserts) and friends, project code only where a comment says why.
    for path, codes in cfg["lint"]["per-file-ignores"].items():
        if not path.startswith("tests/"):
            assert set(codes) <= {"S603", "S607", "S105"}, (path, codes)
    noqas = 0
    for line in subprocess.run(["git", "grep", "-nE", "# noqa: S[0-9]", "--", "*.py"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines():
        path, no, text = line.split(":", 2)
        before = (ROOT / path).read_text().splitlines()[int(no) - 2]
        noqas += 1
        assert re.search(r"noqa: S\d+\s+#\s*\S", text) or before.lstrip().startswith("#"), f"{path}:{no}: {text}"
    assert noqas == 6, "a new inline exception: justify it and update this count"


def test_ruff_flags_a_shell_injection_outside_the_tests(tmp_path):
    bad = tmp_path / "scripts" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("import subprocess\n\ndef run(cmd: str) -> None:\n    subprocess.run(cmd, shell=True)\n")
    r = subprocess.run([tool("ruff"), "check", "--no-cache", "--config", str(ROOT / "ruff.toml"), "--output-format",
                        "concise", str(bad)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "S602" in r.stdout, r.stdout + r.stderr


def test_mypy_flags_a_planted_type_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def port() -> int:\n    return '10000'\n")
    r = subprocess.run([tool("mypy"), "--config-file", str(ROOT / "mypy.ini"), str(bad)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "[return-value]" in r.stdout, r.stdout + r.stderr
