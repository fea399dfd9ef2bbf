"""Codex CLI itself, through Envoy + the filter, on every backend (issue 14, "Tests").

The real npm client (`@openai/codex`, pinned in tests/clients/package-lock.json with its native
linux-x64 package, installed by `./dev setup`) runs `codex exec` non-interactively with a
temporary CODEX_HOME whose `config.toml` defines a custom model provider pointing at the gateway
(`wire_api = "responses"`, the key in the variable `env_key` names), approvals and sandbox off (the
test is the sandbox). The gateway's only provider is a scripted model upstream (tests/scripted/):
the Responses API itself for openai and azure_openai (the passthrough), the provider's own API for
the others (translated through the conversation model). The model answers the first turn with
reasoning (signed in the provider's form) and an `exec_command` call that writes a nonce into a
file in Codex's working directory, then checks the provider's rules on the turn that carries the
tool output (on Claude: the thinking block with its exact signature) and answers final text.

The model name in `config.toml` is one Codex's catalog does not know (as any Claude or Gemini name
a user routes through the gateway): Codex then offers its tools as top-level function tools. Two
more runs on the openai passthrough: Codex's default model (in its catalog: tools offered in an
`additional_tools` input item, shell commands through the `exec` code-mode tool, which the
passthrough must keep byte for byte), and the provider's WebSocket transport on
(`supports_websockets = true`), where the gateway's 426 must send Codex to HTTP at its first attempt.

One Envoy per run, all runs concurrent in one module fixture (each is about a second of Codex),
each test asserts one run.
Outcomes go to `.run/compat/` for docs/clients.md.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import REPO, WASM
from test_claude_code import AWS, BACKENDS, PROVIDER_KEY, THINKING_BACKENDS, scripted, start_envoy
from script import CODE_MODE_TOOL, FINAL_TEXT, RESULT_FILE, Upstream  # noqa: E402 (tests/scripted, on the path via test_claude_code)

CLIENTS = REPO / "tests" / "clients"
CODEX = CLIENTS / "node_modules" / ".bin" / "codex"
CODEX_VERSION = json.loads((CLIENTS / "package.json").read_text())["dependencies"]["@openai/codex"]
# The public model name Codex asks the gateway for; each backend's route maps it to that provider's model.
CODEX_MODEL = "gpt-5.1-codex"
# Codex 0.171.0's default model when config.toml names none (measured against a capturing server).
CODEX_DEFAULT_MODEL = "gpt-6.2-sol"
CLIENT_KEY = "codex-gateway-key-must-not-reach-a-provider"
RUN_TIMEOUT = 60  # seconds for one Codex run; each takes about one when all is well
TASK = f"Create a file named {RESULT_FILE} in the current directory that contains the nonce you are given."
WEBSOCKET = "openai+websocket"  # the openai backend with Codex's WebSocket transport on
DEFAULT_MODEL = "openai+default-model"  # the openai backend, Codex's default model and settings


def codex_config(base_url: str, websocket: bool = False, default_model: bool = False) -> str:
    """CODEX_HOME/config.toml: the gateway as a custom provider, as the README shows it."""
    model = "" if default_model else f"""model = "{CODEX_MODEL}"
# Reasoning on: on Claude backends the gateway asks for thinking, and its signature must come back.
model_reasoning_effort = "medium"
model_reasoning_summary = "auto"
"""
    return f"""{model}model_provider = "gateway"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.gateway]
name = "AI gateway"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "AI_GATEWAY_KEY"
# A failure must show in the test, not be retried away.
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000
supports_websockets = {"true" if websocket else "false"}
"""


@dataclass
class Run:
    """One backend's run: what Codex did and what its upstream saw."""

    case: str
    workdir: Path
    nonce: str
    upstream: Upstream | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    setup_error: str | None = None
    logs: dict[str, str] = field(default_factory=dict)

    def events(self) -> list[dict[str, Any]]:
        """`codex exec --json` events, one JSON object a line."""
        out = []
        for line in self.stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [e["item"] for e in self.events() if e.get("type") == "item.completed"
                and isinstance(e.get("item"), dict) and e["item"].get("type") == kind]

    def explain(self) -> str:
        lines = [f"{self.case}: exit {self.returncode} after {self.seconds:.1f}s"]
        if self.setup_error:
            lines.append(f"setup failed: {self.setup_error}")
        if self.upstream is not None:
            lines.append("upstream saw:\n  " + "\n  ".join(json.dumps(r) for r in self.upstream.summary()))
        lines.append(f"codex stdout: {self.stdout[-4000:]}")
        lines.append(f"codex stderr: {self.stderr[-3000:]}")
        for name, text in self.logs.items():
            lines.append(f"--- {name} (tail) ---\n{text}")
        return "\n".join(lines)


def codex_env(home: Path, codex_home: Path) -> dict[str, str]:
    """A clean environment: nothing of the caller's OpenAI/Codex settings or proxies leaks in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "SHELL")}
    env.update({"HOME": str(home), "CODEX_HOME": str(codex_home), "AI_GATEWAY_KEY": CLIENT_KEY,
                "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
                "NO_PROXY": "127.0.0.1,localhost", "RUST_LOG": "error"})
    return env


def run_case(case: str, root: Path) -> Run:
    backend = "openai" if case in (WEBSOCKET, DEFAULT_MODEL) else case
    workdir = root / case.replace("+", "-")
    run = Run(case, workdir / "project", "codex-" + secrets.token_hex(8))
    run.workdir.mkdir(parents=True)
    home, codex_home = workdir / "home", workdir / "codex-home"
    home.mkdir()
    codex_home.mkdir()
    envoy = None
    try:
        run.upstream = scripted.build(backend, run.nonce, PROVIDER_KEY, AWS, responses=True).start()
        envoy = start_envoy(workdir, backend, run.upstream, (CODEX_MODEL, CODEX_DEFAULT_MODEL))
        base_url = f"http://127.0.0.1:{envoy.port}"  # type: ignore[attr-defined]
        (codex_home / "config.toml").write_text(codex_config(base_url, case == WEBSOCKET, case == DEFAULT_MODEL))
        started = time.monotonic()
        try:
            done = subprocess.run(
                [str(CODEX), "exec", "--json", "--ephemeral", "--strict-config", "--skip-git-repo-check",
                 "--dangerously-bypass-approvals-and-sandbox", "-C", str(run.workdir), f"{TASK} The nonce is {run.nonce}."],
                cwd=run.workdir, env=codex_env(home, codex_home), capture_output=True, text=True, timeout=RUN_TIMEOUT,
                stdin=subprocess.DEVNULL)
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
    """Every selected backend's run, concurrently (each is a second or two of one Codex process)."""
    if not WASM.exists():
        raise RuntimeError(f"{WASM} is missing: ./dev build")
    install = subprocess.run([str(CLIENTS / "install.sh")], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, f"tests/clients/install.sh failed:\n{install.stdout}\n{install.stderr}"
    selected = sorted({item.callspec.params["backend"] for item in request.session.items
                       if getattr(item, "originalname", "") == "test_codex" and hasattr(item, "callspec")})
    names = {getattr(item, "originalname", "") for item in request.session.items}
    if "test_codex_websocket_attempt_falls_back_at_once" in names:
        selected.append(WEBSOCKET)
    if "test_codex_default_model_on_the_passthrough" in names:
        selected.append(DEFAULT_MODEL)
    root = tmp_path_factory.mktemp("codex")
    with ThreadPoolExecutor(max_workers=min(len(selected), 4) or 1) as pool:
        results = dict(zip(selected, pool.map(lambda c: run_case(c, root), selected)))
    for case, run in results.items():  # shown with -s / -rP: how long each Codex run took
        print(f"codex on {case}: exit {run.returncode} in {run.seconds:.1f}s, "
              f"{len(run.upstream.records) if run.upstream else 0} upstream requests")
    yield results


def assert_completed(run: Run) -> None:
    """Codex ran the shell command, the file holds the nonce, and the model's final text reached it."""
    assert run.setup_error is None, run.explain()
    assert run.returncode == 0, run.explain()
    commands = run.items("command_execution")
    assert commands and commands[0].get("exit_code") == 0 and RESULT_FILE in str(commands[0].get("command")), run.explain()
    messages = [m.get("text") for m in run.items("agent_message")]
    assert messages and messages[-1] == FINAL_TEXT, run.explain()
    result_file = run.workdir / RESULT_FILE
    assert result_file.is_file(), f"{RESULT_FILE} was not written\n{run.explain()}"
    assert result_file.read_text().strip() == run.nonce
    assert [e for e in run.events() if e.get("type") == "turn.completed"], run.explain()


@pytest.mark.compat("Codex CLI", CODEX_VERSION)
@pytest.mark.timeout(300)  # the first test also runs the module fixture: install, eight Envoys, eight runs
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_codex(backend: str, runs: dict[str, Run]) -> None:
    """Codex CLI completes a shell-tool task through the gateway, reasoning and signatures intact."""
    run = runs[backend]
    assert_completed(run)
    assert run.upstream is not None
    records = run.upstream.records
    refused = [f"{r.status} {r.error}" for r in records if r.error is not None]
    assert not refused, f"the provider refused requests the gateway sent: {refused}\n{run.explain()}"
    calls = [r for r in records if r.kind == "call"]
    results = [r for r in records if r.kind == "result"]
    assert calls and results and records.index(calls[0]) < records.index(results[0]), run.explain()
    assert calls[0].call_tool == "exec_command", run.explain()
    turn2 = results[0]
    assert len(turn2.tool_result_ids) == 1, run.explain()
    assert calls[0].thinking_requested, f"the gateway did not ask the provider for reasoning\n{run.explain()}"
    # OpenAI/Azure: the reasoning item's encrypted_content came back as issued (passthrough);
    # Claude: the thinking block with its original signature; Gemini: the thoughtSignature.
    assert turn2.signature_back is True, f"the reasoning/thinking signature did not come back\n{run.explain()}"
    if backend in THINKING_BACKENDS:
        assert run.items("reasoning"), f"Codex saw no reasoning summary\n{run.explain()}"
    # Codex's gateway key never reaches a provider.
    assert all(CLIENT_KEY not in json.dumps(r.headers) for r in records)


@pytest.mark.timeout(300)
def test_codex_default_model_on_the_passthrough(runs: dict[str, Run]) -> None:
    """Codex's default model and settings on OpenAI: code mode (`exec`) and `additional_tools` kept as sent."""
    run = runs[DEFAULT_MODEL]
    assert_completed(run)
    assert run.upstream is not None
    records = run.upstream.records
    refused = [f"{r.status} {r.error}" for r in records if r.error is not None]
    assert not refused, f"the provider refused requests the gateway sent: {refused}\n{run.explain()}"
    calls = [r for r in records if r.kind == "call"]
    results = [r for r in records if r.kind == "result"]
    assert calls and results and calls[0].call_tool == CODE_MODE_TOOL, run.explain()
    assert any(isinstance(i, dict) and i.get("type") == "additional_tools" for i in calls[0].body["input"]), run.explain()
    assert calls[0].body["model"] == BACKENDS["openai"][1], run.explain()  # only the model changed on the way
    assert results[0].signature_back is True, run.explain()


@pytest.mark.timeout(300)
def test_codex_websocket_attempt_falls_back_at_once(runs: dict[str, Run]) -> None:
    """With the provider's WebSocket transport on, the gateway's 426 sends Codex to HTTP after one try.

    Codex 0.171.0 tries the WebSocket twice on a 403/404 and gives up the turn on a 400; after a
    426 it makes no second attempt (measured against a scripted server answering each status).
    """
    run = runs[WEBSOCKET]
    assert_completed(run)
    assert run.upstream is not None
    assert all(r.headers.get("upgrade", "").lower() != "websocket" for r in run.upstream.records), run.explain()
    attempts = run.stderr.count("failed to connect to Responses WebSocket")
    assert attempts == 1, f"Codex tried the WebSocket {attempts} times (1 after a 426)\n{run.explain()}"
