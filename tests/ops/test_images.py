"""The container images without a Docker engine: lint both Dockerfiles, check every file they
COPY exists, and run what the images run (Envoy on the baked bootstrap, its HEALTHCHECK command,
the control plane with the image's ENV and CMD)."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, TARGET, envoy_binary, tool

DOCKERFILES = ["Dockerfile.envoy", "Dockerfile.control"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stage(path: Path, index: int) -> list[tuple[str, str]]:
    """Instructions of the index-th build stage (negative counts from the end)."""
    stages: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            stages.append([])
        stages[-1].append(ins)
    return stages[index]


def one(ins: list[tuple[str, str]], name: str) -> str:
    found = [a for i, a in ins if i == name]
    assert len(found) == 1, f"expected one {name}, got {found}"
    return found[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hadolint_passes_both_dockerfiles():
    r = subprocess.run([tool("hadolint"), *DOCKERFILES], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_copy_source_exists_and_is_in_the_build_context():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = [l[1:].rstrip("/") for l in ignore if l.startswith("!")]
    for name in DOCKERFILES:
        for ins, args in instructions(ROOT / name):
            if ins != "COPY" or "--from=" in args:
                continue
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for src in parts[:-1]:
                built = TARGET / src.removeprefix("target/") if src.startswith("target/") else ROOT / src
                assert built.exists(), f"{name}: COPY source {src} missing (run ./dev build)"
                assert any(src == a or src.startswith(a + "/") for a in allowed), f"{name}: {src} excluded by .dockerignore"


def test_images_are_pinned_and_non_root():
    assert one(stage(ROOT / "Dockerfile.envoy", 0), "FROM") == "python:3.12-slim-bookworm AS bootstrap"
    envoy = stage(ROOT / "Dockerfile.envoy", -1)
    assert one(envoy, "FROM") == "envoyproxy/envoy:v1.40.0"
    wheel = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "1.40.0" in wheel, f"the tests' Envoy is not the image's release: {wheel}"
    assert one(envoy, "USER") not in ("0", "root", "0:0")
    control_runtime = stage(ROOT / "Dockerfile.control", -1)
    assert one(control_runtime, "FROM").startswith("gcr.io/distroless/cc-debian12")
    assert one(control_runtime, "USER") == "65532:65532"


def render_image_bootstrap(tmp_path: Path) -> Path:
    """Runs the bootstrap stage's RUN command (same script, same inputs) with the output in tmp_path."""
    build = stage(ROOT / "Dockerfile.envoy", 0)
    argv = shlex.split(one(build, "RUN"))
    out_in_image = argv[argv.index("--out") + 1]
    # The final stage copies exactly what the RUN wrote.
    copies = [x for i, x in stage(ROOT / "Dockerfile.envoy", -1) if i == "COPY" and "--from=bootstrap" in x]
    assert len(copies) == 1 and shlex.split(copies[0])[-2:] == [out_in_image, "/etc/envoy/envoy.json"]
    out = tmp_path / "image-envoy.json"
    argv[argv.index("--out") + 1] = str(out)
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return out


def test_container_bootstrap_binds_for_the_alb(tmp_path):
    doc = json.loads(render_image_bootstrap(tmp_path).read_text(encoding="utf-8"))
    assert doc["static_resources"]["listeners"][0]["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 10000}
    assert doc["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    assert "ai_gateway_control_plane" in clusters


def test_container_bootstrap_limits_slow_and_abusive_clients(tmp_path):
    """Issue 13 item 6: the image's Envoy bounds slow clients, connections and its heap."""
    sys.path.insert(0, str(ROOT / "ops"))
    sys.path.insert(0, str(ROOT / "envoy"))
    import container_bootstrap as cb  # noqa: E402
    import render  # noqa: E402

    doc = json.loads(render_image_bootstrap(tmp_path).read_text(encoding="utf-8"))
    listener = doc["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["request_headers_timeout"] == "10.000s"
    assert hcm["request_timeout"] == "120.000s"
    assert hcm["stream_idle_timeout"] == "300.000s"
    assert hcm["max_request_headers_kb"] == 32
    assert hcm["common_http_protocol_options"] == {"idle_timeout": "360.000s", "max_headers_count": 100}
    assert hcm["http2_protocol_options"]["max_concurrent_streams"] == 100
    # The ALB closes idle connections first (its timeout is shorter than Envoy's).
    edge = (ROOT / "terraform/modules/edge/main.tf").read_text(encoding="utf-8")
    alb_idle = int(re.search(r"idle_timeout\s*=\s*(\d+)", edge).group(1))
    assert alb_idle < float(hcm["common_http_protocol_options"]["idle_timeout"].rstrip("s"))
    assert alb_idle <= float(hcm["stream_idle_timeout"].rstrip("s"))
    runtime = doc["layered_runtime"]["layers"][0]["static_layer"]
    assert runtime[f"envoy.resource_limits.listener.{listener['name']}.connection_limit"] == render.MAX_CONNECTIONS
    om = doc["overload_manager"]
    monitors = {m["name"]: m["typed_config"] for m in om["resource_monitors"]}
    assert monitors["envoy.resource_monitors.global_downstream_max_connections"]["max_active_downstream_connections"] \
        == render.MAX_CONNECTIONS
    heap = monitors["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"]
    assert heap == cb.ENVOY_HEAP_MB * 1024 * 1024
    # The heap budget fits the task's memory, which terraform sets.
    compute = (ROOT / "terraform/modules/compute/main.tf").read_text(encoding="utf-8")
    envoy_task = compute[compute.index('resource "aws_ecs_task_definition" "envoy"'):]
    assert int(re.search(r"memory\s*=\s*(\d+)", envoy_task).group(1)) == cb.TASK_MEMORY_MB
    assert heap < cb.TASK_MEMORY_MB * 1024 * 1024
    # Free heap goes back to the OS after bursts (issue 13 item 11).
    assert doc["memory_allocator_manager"] == {"bytes_to_release": str(16 * 1024 * 1024), "memory_release_interval": "1s"}
    actions = {a["name"]: a["triggers"][0]["threshold"]["value"] for a in om["actions"]}
    assert actions == {"envoy.overload_actions.shrink_heap": 0.9, "envoy.overload_actions.stop_accepting_requests": 0.98}


def image_bootstrap(tmp_path: Path, port: int | None = None, admin: int | None = None) -> Path:
    """The image's bootstrap with only the Wasm path (and, to run it here, ports) pointed at this machine."""
    text = render_image_bootstrap(tmp_path).read_text(encoding="utf-8")
    wasm = TARGET / "ai_gateway_filter.wasm"
    assert wasm.exists(), "run ./dev build first"
    assert text.count("/etc/envoy/ai_gateway_filter.wasm") >= 1
    text = text.replace("/etc/envoy/ai_gateway_filter.wasm", str(wasm))
    doc = json.loads(text)
    if port is not None:
        sa = doc["static_resources"]["listeners"][0]["address"]["socket_address"]
        sa.update(address="127.0.0.1", port_value=port)  # only loopback on a shared machine
    if admin is not None:
        doc["admin"]["address"]["socket_address"]["port_value"] = admin
    out = tmp_path / "envoy.json"
    out.write_text(json.dumps(doc), encoding="utf-8")
    return out


def test_envoy_validates_the_image_bootstrap(tmp_path):
    cfg = image_bootstrap(tmp_path)
    r = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "OK" in r.stdout + r.stderr


def test_envoy_healthcheck_command_reports_ready(tmp_path):
    envoy_ins = instructions(ROOT / "Dockerfile.envoy")
    hc = one(envoy_ins, "HEALTHCHECK")
    argv = json.loads(hc[hc.index("CMD") + 3:].strip())
    admin = free_port()
    # The image's command, aimed at this run's admin port instead of 9901.
    argv = [a.replace("/127.0.0.1/9901", f"/127.0.0.1/{admin}") for a in argv]
    cmd = shlex.split(one(envoy_ins, "CMD").replace('"', "").strip("[]").replace(",", " "))
    assert cmd[:2] == ["-c", "/etc/envoy/envoy.json"]
    listener = free_port()
    cfg = image_bootstrap(tmp_path, listener, admin)
    env = dict(os.environ, OPENAI_API_KEY="x", ANTHROPIC_API_KEY="x", AI_GATEWAY_WATCH_TOKEN="x")
    before = subprocess.run(argv, capture_output=True, timeout=10)
    assert before.returncode != 0, "health check passed with no Envoy running"
    access_log = open(tmp_path / "stdout.log", "w+b")  # the image logs requests to stdout
    proc = subprocess.Popen([envoy_binary(), "-c", str(cfg), *cmd[2:], "--base-id", str(admin)],
                            env=env, stdout=access_log, stderr=subprocess.PIPE, start_new_session=True)
    stderr_text = ""
    try:
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run(argv, capture_output=True, timeout=10)
            if r.returncode == 0:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else "envoy exited"
            assert time.monotonic() < deadline, "Envoy never became ready"
            time.sleep(0.5)
        # The ALB target group's health check (terraform/modules/edge): GET /healthz answered
        # 404 by the listener itself, without calling a provider.
        req = urllib.request.Request(f"http://127.0.0.1:{listener}/healthz?ops-probe")
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("/healthz answered 2xx; the target group expects 404")
        except urllib.error.HTTPError as e:
            assert e.code == 404
            assert json.loads(e.read())["error"]["type"] == "invalid_request_error"
        # What the ADOT sidecar scrapes: the filter's counters on /stats/prometheus under the
        # names and labels terraform/modules/compute keeps and turns into EMF dimensions.
        body = json.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{listener}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("unknown model accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=5) as resp:
            prom = resp.read().decode()
        line = next((l for l in prom.splitlines() if l.startswith("ai_gateway_rejected_total{")), "")
        assert re.fullmatch(r'ai_gateway_rejected_total\{status="404",code="model_not_found"\} 1', line), line
        # The collector (deploy/otel-collector.yaml) keeps it and turns its labels into dimensions.
        from test_collector import collector_config, emf_dimensions_of
        scrape = collector_config()["receivers"]["prometheus"]["config"]["scrape_configs"][0]
        keep = scrape["metric_relabel_configs"][0]["regex"]
        assert re.fullmatch(keep, "ai_gateway_rejected_total") and re.fullmatch(keep, "ai_gateway_requests_total")
        labels = re.findall(r'(\w+)="', line)
        assert labels in emf_dimensions_of("ai_gateway_rejected_total"), labels
        # The saved Logs Insights queries read this JSON access log line's fields.
        from test_terraform import query_fields, saved_queries
        deadline = time.monotonic() + 10
        line = ""
        while "ops-probe" not in line:
            assert time.monotonic() < deadline, "no access log line for the probe"
            time.sleep(0.2)
            line = next((l for l in (tmp_path / "stdout.log").read_text(errors="replace").splitlines() if "ops-probe" in l), "")
        entry = json.loads(line)
        assert entry["log"] == "request"
        assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz?ops-probe", 404)
        assert entry["duration_ms"] >= 0 and "attempts" in entry
        # No provider answered: the filter-state fields are present and null.
        assert entry["provider"] is None and entry["input_tokens"] is None
        for name, query in saved_queries().items():
            assert query_fields(query) <= set(entry), (name, query_fields(query) - set(entry))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        access_log.close()
        if proc.stderr:
            stderr_text = proc.stderr.read().decode(errors="replace")
    # Envoy warns at start-up when nothing bounds downstream connections (issue 13 item 6).
    assert "no configured limit to the number of allowed active downstream connections" not in stderr_text


def control_plane_binary() -> Path:
    for profile in ("release", "debug"):
        p = TARGET / profile / "control-plane"
        if p.exists():
            return p
    pytest.fail("control-plane binary missing: run ./dev build")
    raise AssertionError


def test_control_plane_runs_with_the_image_env_and_cmd(tmp_path):
    ins = stage(ROOT / "Dockerfile.control", -1)
    env_line = one(ins, "ENV")
    image_env = dict(re.findall(r"(\w+)=(\S+)", env_line))
    assert image_env["CP_STORE"] == "dynamodb"
    cmd = json.loads(one(ins, "CMD"))
    rest, grpc = free_port(), free_port()
    # Same env and CMD; addresses moved to loopback and a DynamoDB endpoint nobody answers, so
    # the check is that the image's settings parse and the health endpoint serves without AWS.
    env = {"PATH": "/usr/bin:/bin", **image_env, "CP_LISTEN": f"127.0.0.1:{rest}", "CP_GRPC_LISTEN": f"127.0.0.1:{grpc}",
           "CP_DATA_DIR": str(tmp_path), "CP_ADMIN_TOKEN": "test-admin", "CP_DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
           "AWS_REGION": "us-east-1"}
    proc = subprocess.Popen([str(control_plane_binary()), *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest}/healthz", timeout=2) as resp:
                    assert resp.status == 200 and resp.read() == b"ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else "exited"
                assert time.monotonic() < deadline, "control plane /healthz never answered"
                time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
