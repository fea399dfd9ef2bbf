"""Claude Code itself, through Envoy + the filter, on every backend (issue 12, "Tests").

The real npm client (`@anthropic-ai/claude-code`, pinned in tests/clients/package-lock.json,
installed by `./dev setup`) runs non-interactively with its default model and settings (thinking
on, betas on) against a gateway whose only provider is a scripted model upstream
(tests/scripted/) for one provider API. The scripted model answers the first turn with thinking
(signed in the provider's own form) and a `Bash` tool call that writes a nonce into a file in
Claude Code's working directory, then enforces the provider's documented rules on the turn that
carries the tool result and answers final text only if they hold.

One Envoy per backend (the same public model names route to a different provider in each), all
backends run concurrently in one module fixture, each test asserts one backend's run. Outcomes go
to `.run/compat/` (see compat.py) for `scripts/clients_matrix.py`, which writes docs/clients.md.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
from conftest import REPO, WASM

sys.path.insert(0, str(REPO / "tests" / "scripted"))
import upstreams as scripted  # noqa: E402
from script import FINAL_TEXT, RESULT_FILE, Upstream  # noqa: E402

CLIENTS = REPO / "tests" / "clients"
CLAUDE = CLIENTS / "node_modules" / ".bin" / "claude"
CLAUDE_VERSION = json.loads((CLIENTS / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]

# The model ids Claude Code 2.1.332 sends with default settings, measured against a capturing
# server (`claude -p` with this task: only the main model). The test also checks that the run's
# `modelUsage` names no other model, so a new default cannot slip past the routes.
CLAUDE_CODE_MODELS = ("claude-opus-5-5",)
CLIENT_KEY = "cc-client-key-must-not-reach-a-provider"
PROVIDER_KEY = "provider-key-for-claude-code-e2e-0123456789"
REGION = "us-east-1"
AWS_HOST = f"bedrock-runtime.{REGION}.amazonaws.com"
AWS = {"access_key_id": "AKIDCLAUDECODEE2E001", "secret_access_key": "claude/code+e2e/secret/0123456789abcdef",
       "session_token": "IQoJb3JpZ2luX2VjE-claude-code-e2e-session"}
RUN_TIMEOUT = 60  # seconds for one Claude Code run; each takes a few seconds when all is well
TASK = (f"Create a file named {RESULT_FILE} in the current directory that contains the nonce you are given. "
        "Use the Bash tool.")

# backend -> (provider entry without name/cluster, upstream model every Claude Code model routes to)
BACKENDS: dict[str, tuple[dict[str, Any], str]] = {
    # A dated snapshot behind the alias: the answer must still name the model Claude Code asked for.
    "anthropic": ({"kind": "anthropic", "credential": {"env": "CC_PROVIDER_KEY"}}, "claude-opus-5-5-20260301"),
    # Claude model id on a bedrock provider: InvokeModel by default (settings.bedrock.api auto).
    "bedrock-invoke": ({"kind": "bedrock", "credential": {"aws": {
        "access_key_id_env": "CC_AWS_ACCESS_KEY_ID", "secret_access_key_env": "CC_AWS_SECRET_ACCESS_KEY",
        "session_token_env": "CC_AWS_SESSION_TOKEN"}}, "settings": {"bedrock": {"region": REGION}}},
        "us.anthropic.claude-opus-5-5-v1:0"),
    "bedrock-converse": ({"kind": "bedrock", "credential": {"aws": {
        "access_key_id_env": "CC_AWS_ACCESS_KEY_ID", "secret_access_key_env": "CC_AWS_SECRET_ACCESS_KEY",
        "session_token_env": "CC_AWS_SESSION_TOKEN"}}, "settings": {"bedrock": {"region": REGION, "api": "converse"}}},
        "us.anthropic.claude-opus-5-5-v1:0"),
    "openai": ({"kind": "openai", "credential": {"env": "CC_PROVIDER_KEY"}}, "gpt-5.1"),
    "azure_openai": ({"kind": "azure_openai", "credential": {"env": "CC_PROVIDER_KEY"},
                      "settings": {"azure": {"url_form": "deployment", "api_version": "2025-04-01-preview"}}}, "gpt-5-1-prod"),
    "gemini": ({"kind": "gemini", "credential": {"env": "CC_PROVIDER_KEY"}}, "gemini-3-pro-preview"),
}
THINKING_BACKENDS = {"anthropic", "bedrock-invoke", "bedrock-converse", "gemini"}


def gateway_config(backend: str, models: tuple[str, ...] = CLAUDE_CODE_MODELS) -> dict[str, Any]:
    """One provider (the backend's scripted upstream) and a route from each public model in `models` to it."""
    provider, target = BACKENDS[backend]
    return {
        "version": 1,
        "providers": [dict(provider, name=f"scripted-{backend}", cluster="scripted")],
        "routes": [{"model": m, "targets": [{"provider": f"scripted-{backend}", "model": target}]} for m in models],
    }


@dataclass
class Run:
    """One backend's run: what Claude Code did and what its upstream saw."""

    backend: str
    workdir: Path
    nonce: str
    upstream: Upstream | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    setup_error: str | None = None
    logs: dict[str, str] = field(default_factory=dict)

    def output(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.stdout.strip().splitlines()[-1]) if self.stdout.strip() else {}
        except ValueError:
            doc = {}
        return doc if isinstance(doc, dict) else {}

    def explain(self) -> str:
        lines = [f"backend {self.backend}: exit {self.returncode} after {self.seconds:.1f}s"]
        if self.setup_error:
            lines.append(f"setup failed: {self.setup_error}")
        if self.upstream is not None:
            lines.append("upstream saw:\n  " + "\n  ".join(json.dumps(r) for r in self.upstream.summary()))
        lines.append(f"claude stdout: {self.stdout[-3000:]}")
        lines.append(f"claude stderr: {self.stderr[-3000:]}")
        for name, text in self.logs.items():
            lines.append(f"--- {name} (tail) ---\n{text}")
        return "\n".join(lines)


def start_envoy(workdir: Path, backend: str, upstream: Upstream,
                models: tuple[str, ...] = CLAUDE_CODE_MODELS) -> stack_mod.Proc:
    """Envoy for one backend's config, its one cluster pointing at the scripted upstream."""
    config = workdir / "gateway.json"
    config.write_text(json.dumps(gateway_config(backend, models), indent=2))
    url = upstream.url + (f"#{AWS_HOST}" if backend.startswith("bedrock") else "")
    env = dict(os.environ, CC_PROVIDER_KEY=PROVIDER_KEY, CC_AWS_ACCESS_KEY_ID=AWS["access_key_id"],
               CC_AWS_SECRET_ACCESS_KEY=AWS["secret_access_key"], CC_AWS_SESSION_TOKEN=AWS["session_token"])
    last: Exception | None = None
    for _ in range(3):  # a port picked as free can be taken before Envoy binds it
        port, admin = stack_mod.free_port(), stack_mod.free_port()
        bootstrap = stack_mod.render_envoy(config, {"scripted": url}, port, admin, WASM, workdir / "envoy.yaml")
        try:
            proc = stack_mod.start_envoy(bootstrap, admin, workdir / "envoy.log", env=env, concurrency=1,
                                         log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "warning"))
        except RuntimeError as err:
            last = err
            continue
        proc.port = port  # type: ignore[attr-defined]
        return proc
    raise RuntimeError(f"envoy failed to start: {last}")


def claude_env(base_url: str, home: Path) -> dict[str, str]:
    """A clean environment: nothing of the caller's Claude/Anthropic/AWS settings or proxies leaks in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "SHELL")}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": CLIENT_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "NO_PROXY": "127.0.0.1,localhost",
    })
    return env


def run_backend(backend: str, root: Path) -> Run:
    workdir = root / backend
    run = Run(backend, workdir / "project", "cc-" + secrets.token_hex(8))
    run.workdir.mkdir(parents=True)
    (workdir / "home").mkdir()
    envoy = None
    try:
        run.upstream = scripted.build(backend, run.nonce, PROVIDER_KEY, AWS).start()
        envoy = start_envoy(workdir, backend, run.upstream)
        started = time.monotonic()
        try:
            done = subprocess.run(
                [str(CLAUDE), "-p", f"{TASK} The nonce is {run.nonce}.", "--allowedTools", "Bash,Write",
                 "--output-format", "json"],
                cwd=run.workdir, env=claude_env(f"http://127.0.0.1:{envoy.port}", workdir / "home"),  # type: ignore[attr-defined]
                capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
            run.returncode, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as err:
            run.returncode = -1
            run.stdout = (err.stdout or b"").decode("utf-8", "replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
            run.stderr = f"timed out after {RUN_TIMEOUT}s"
        run.seconds = time.monotonic() - started
    except Exception as err:  # reported by the backend's test, not by the fixture
        run.setup_error = repr(err)
    finally:
        if envoy is not None:
            envoy.stop()
            run.logs["envoy.log"] = envoy.log_tail(6000)
        if run.upstream is not None:
            run.upstream.stop()
    return run


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every selected backend's run, concurrently (each is a few seconds of one Claude Code process)."""
    if not WASM.exists():
        raise RuntimeError(f"{WASM} is missing: ./dev build")
    install = subprocess.run([str(CLIENTS / "install.sh")], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, f"tests/clients/install.sh failed:\n{install.stdout}\n{install.stderr}"
    selected = sorted({item.callspec.params["backend"] for item in request.session.items
                       if getattr(item, "originalname", "") == "test_claude_code" and hasattr(item, "callspec")})
    root = tmp_path_factory.mktemp("claude-code")
    with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
        results = dict(zip(selected, pool.map(lambda b: run_backend(b, root), selected)))
    for backend, run in results.items():  # shown with -s / -rP: how long each Claude Code run took
        print(f"claude code on {backend}: exit {run.returncode} in {run.seconds:.1f}s, "
              f"{len(run.upstream.records) if run.upstream else 0} upstream requests")
    yield results


@pytest.mark.compat("Claude Code", CLAUDE_VERSION)
@pytest.mark.timeout(420)  # the first test also runs the module fixture: install, six Envoys, six runs
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_claude_code(backend: str, runs: dict[str, Run]) -> None:
    """Claude Code completes a tool task through the gateway, thinking and signatures intact."""
    run = runs[backend]
    assert run.setup_error is None, run.explain()
    output = run.output()
    assert run.returncode == 0 and output.get("is_error") is False, run.explain()
    assert output.get("result") == FINAL_TEXT, run.explain()
    assert set(output.get("modelUsage") or {}) <= set(CLAUDE_CODE_MODELS), \
        f"Claude Code used models the routes do not cover: {sorted(output.get('modelUsage') or {})}"
    result_file = run.workdir / RESULT_FILE
    assert result_file.is_file(), f"{RESULT_FILE} was not written\n{run.explain()}"
    assert result_file.read_text().strip() == run.nonce

    assert run.upstream is not None
    records = run.upstream.records
    # Claude Code retries some 400s without the feature named in them; the gateway still must
    # never send what the provider refuses.
    refused = [f"{r.status} {r.error}" for r in records if r.error is not None and r.method == "POST"]
    assert not refused, f"the provider refused requests the gateway sent: {refused}\n{run.explain()}"
    calls = [r for r in records if r.kind == "call"]
    results = [r for r in records if r.kind == "result"]
    assert calls and results, run.explain()
    assert records.index(calls[0]) < records.index(results[0])
    turn2 = results[0]
    # One tool result, answering the call the model made (the upstream checked the id; the name on Gemini).
    assert len(turn2.tool_result_ids) == 1, run.explain()
    if backend in THINKING_BACKENDS:
        assert calls[0].thinking_requested, f"the gateway did not ask the provider for thinking\n{run.explain()}"
        assert turn2.signature_back is True, f"the thinking block and its signature did not come back\n{run.explain()}"
    # Claude Code's own key never reaches a provider.
    assert all(CLIENT_KEY not in json.dumps(r.headers) for r in records)
