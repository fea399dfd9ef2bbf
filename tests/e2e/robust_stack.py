"""Shared pieces of the bad-input and upstream-fault suites: a one-worker Envoy in front of the
fault-injecting upstream (tests/faults/server.py), raw HTTP helpers and health checks.

One worker (`--concurrency 1`) so "the next request succeeds" is checked on the very worker that
just handled the bad case.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stack as stack_mod

REPO = Path(__file__).resolve().parents[2]
FAULT_SERVER = REPO / "tests" / "faults" / "server.py"

CLAUDE = "claude-faults"
GPT = "gpt-faults"
CLAUDE_REFUSED = "claude-refused"
GPT_REFUSED = "gpt-refused"
MODELS = {"anthropic": CLAUDE, "openai": GPT}
ROUTE_TIMEOUT_S = 2
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the schema's default, so a 10 MB body is in range
HELLO = [{"role": "user", "content": "Hello!"}]


def start_faults(log_path: Path, timeout: float = 10.0) -> tuple[stack_mod.Proc, int]:
    port_file = log_path.with_suffix(".port")
    with contextlib.suppress(FileNotFoundError):
        port_file.unlink()
    proc = stack_mod.spawn("faults", [sys.executable, str(FAULT_SERVER), "--port", "0", "--port-file", str(port_file)],
                           log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"fault server exited early:\n{proc.log_tail()}")
        if port_file.exists():
            port = int(port_file.read_text())
            with contextlib.suppress(OSError):
                if stack_mod.http_get(f"http://127.0.0.1:{port}/__faults/health")[0] == 200:
                    return proc, port
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError("fault server did not come up")


def gateway_config() -> dict[str, Any]:
    return {
        "version": 1,
        "providers": [
            {"name": "anthropic-faults", "kind": "anthropic", "cluster": "faults_anthropic",
             "credential": {"env": "FAULTS_ANTHROPIC_KEY"}},
            {"name": "openai-faults", "kind": "openai", "cluster": "faults_openai",
             "credential": {"env": "FAULTS_OPENAI_KEY"}},
            {"name": "anthropic-refused", "kind": "anthropic", "cluster": "refused_anthropic"},
            {"name": "openai-refused", "kind": "openai", "cluster": "refused_openai"},
        ],
        "routes": [
            {"model": CLAUDE, "targets": [{"provider": "anthropic-faults", "model": "claude-upstream"}]},
            {"model": GPT, "targets": [{"provider": "openai-faults", "model": "gpt-upstream"}]},
            {"model": CLAUDE_REFUSED, "targets": [{"provider": "anthropic-refused", "model": "claude-upstream"}]},
            {"model": GPT_REFUSED, "targets": [{"provider": "openai-refused", "model": "gpt-upstream"}]},
        ],
        "limits": {"max_request_bytes": MAX_REQUEST_BYTES},
        "defaults": {"max_tokens": 256},
    }


@dataclass
class FaultStack:
    """Envoy (one worker) + fault upstream; `stack` is the usual Stack (its replay is unused)."""

    stack: stack_mod.Stack
    faults: stack_mod.Proc
    faults_port: int

    @property
    def port(self) -> int:
        return self.stack.port

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def workdir(self) -> Path:
        return self.stack.workdir

    def envoy_alive(self) -> bool:
        return self.stack.proc("envoy").alive()

    def stop(self) -> None:
        self.stack.stop()
        self.faults.stop()


def start(workdir: Path, wasm: Path, concurrency: int = 1, route_timeout: str = f"{ROUTE_TIMEOUT_S}s",
          log_level: str = "info", render_args: list[str] | None = None) -> FaultStack:
    workdir.mkdir(parents=True, exist_ok=True)
    faults, faults_port = start_faults(workdir / "faults.log")
    refused_port = stack_mod.free_port()
    try:
        running = stack_mod.start_stack(
            workdir, gateway_config(), replay_clusters=[],
            extra_clusters={"faults_anthropic": f"http://127.0.0.1:{faults_port}",
                            "faults_openai": f"http://127.0.0.1:{faults_port}",
                            "refused_anthropic": f"http://127.0.0.1:{refused_port}",
                            "refused_openai": f"http://127.0.0.1:{refused_port}"},
            envoy_env={"FAULTS_ANTHROPIC_KEY": "sk-ant-faults", "FAULTS_OPENAI_KEY": "sk-openai-faults"},
            wasm=wasm, concurrency=concurrency, log_level=log_level, route_timeout=route_timeout,
            render_args=render_args,
        )
    except BaseException:
        faults.stop()
        raise
    return FaultStack(running, faults, faults_port)


# --- HTTP helpers -------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    error: Exception | None = None  # a transport error after the headers (truncated body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def sse_data(self) -> list[str]:
        return [line[len("data: "):] for line in self.text.splitlines() if line.startswith("data: ")]


def post(port: int, body: bytes | dict, headers: dict[str, str] | None = None, path: str = "/v1/chat/completions",
         timeout: float = 15.0) -> Reply:
    """One HTTP/1.1 POST; a body cut short after the headers is returned with `error` set."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = {"content-type": "application/json", "authorization": "Bearer client-key"}
        all_headers.update(headers or {})
        conn.request("POST", path, body=body, headers=all_headers)
        resp = conn.getresponse()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        chunks: list[bytes] = []
        error: Exception | None = None
        try:
            while True:
                piece = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                if not piece:
                    break
                chunks.append(piece)
        except (http.client.IncompleteRead, ConnectionError, OSError) as err:
            error = err
        return Reply(resp.status, hdrs, b"".join(chunks), error)
    finally:
        conn.close()


def chat(model: str, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, "stream": stream, **extra}


def assert_openai_error(reply: Reply, status: int, error_type: str | None = None, code: str | None = None) -> dict:
    assert reply.status == status, f"status {reply.status}, body {reply.body[:400]!r}"
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    doc = reply.json()
    assert set(doc) == {"error"}, doc
    error = doc["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    if error_type is not None:
        assert error["type"] == error_type, error
    if code is not None:
        assert error["code"] == code, error
    assert "127.0.0.1" not in error["message"], "upstream addresses must not reach clients"
    return error


def assert_good_completion(reply: Reply) -> None:
    assert reply.status == 200, f"status {reply.status}, body {reply.body[:400]!r}"
    doc = reply.json()
    assert doc["object"] == "chat.completion", doc
    assert doc["choices"][0]["message"]["content"] == "Hello from the fault server.", doc


def assert_good_stream(reply: Reply) -> None:
    assert reply.status == 200, f"status {reply.status}, body {reply.body[:400]!r}"
    assert reply.error is None, reply.error
    data = reply.sse_data()
    assert data and data[-1] == "[DONE]", reply.text[-400:]
    text = "".join((json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for d in data[:-1])
    assert text == "Hello from the fault server.", reply.text


def assert_healthy(fs: FaultStack) -> None:
    """The one worker still serves both providers, JSON and streams, and nothing panicked."""
    assert fs.envoy_alive(), "envoy died"
    for model in (CLAUDE, GPT):
        assert_good_completion(post(fs.port, chat(model)))
        assert_good_stream(post(fs.port, chat(model, stream=True)))
    assert_no_panic(fs.workdir / "envoy.log")


def assert_no_panic(log_path: Path) -> None:
    log = log_path.read_text(errors="replace")
    assert "panicked" not in log, "the filter panicked (see envoy.log)"
    assert "Wasm VM failed" not in log and "wasm vm crashed" not in log.lower()


# --- the bad-input stack: one worker in front of the validating replay upstream ----------------

REPLAY_CLAUDE = "claude-bad-input"
REPLAY_GPT = "gpt-bad-input"
REPLAY_MODELS = {"anthropic": REPLAY_CLAUDE, "openai": REPLAY_GPT}
REPLAY_ANTHROPIC_KEY = "sk-ant-bad-input"
REPLAY_OPENAI_KEY = "sk-openai-bad-input"


def replay_gateway_config() -> dict[str, Any]:
    return {
        "version": 1,
        "providers": [
            {"name": "anthropic-replay", "kind": "anthropic", "cluster": "replay_anthropic",
             "credential": {"env": "BAD_INPUT_ANTHROPIC_KEY"}},
            {"name": "openai-replay", "kind": "openai", "cluster": "replay_openai",
             "credential": {"env": "BAD_INPUT_OPENAI_KEY"}},
        ],
        "routes": [
            {"model": REPLAY_CLAUDE, "targets": [{"provider": "anthropic-replay", "model": "claude-upstream"}]},
            {"model": REPLAY_GPT, "targets": [{"provider": "openai-replay", "model": "gpt-upstream"}]},
        ],
        # No limits: the schema's default (16 MiB) is what deployments get.
        "defaults": {"max_tokens": 256},
    }


def start_replay_stack(workdir: Path, wasm: Path, fixtures: Path) -> stack_mod.Stack:
    return stack_mod.start_stack(
        workdir, replay_gateway_config(), replay_clusters=["replay_anthropic", "replay_openai"],
        envoy_env={"BAD_INPUT_ANTHROPIC_KEY": REPLAY_ANTHROPIC_KEY, "BAD_INPUT_OPENAI_KEY": REPLAY_OPENAI_KEY},
        wasm=wasm, fixtures=fixtures, chunk_delay=0.001,
        replay_keys={"anthropic": REPLAY_ANTHROPIC_KEY, "openai": REPLAY_OPENAI_KEY},
        concurrency=1, log_level="info",
    )
