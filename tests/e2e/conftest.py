"""Session fixtures: one replay upstream and one real Envoy running the built filter.

The stack is started with the same code as `./dev run` (scripts/stack.py), with a gateway config
made for the tests: routes to the replay upstream under distinct upstream model names, credentials
from environment variables of the Envoy process, a small body limit, and providers behind a
closed port for the failure cases.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as stack_mod  # noqa: E402
import recordings  # noqa: E402

# Client x backend outcomes for the compatibility matrix (docs/clients.md).
pytest_plugins = ["compat"]

FIXTURES = Path(os.environ.get("REPLAY_FIXTURES", REPO / "fixtures" / "recorded"))
WASM = Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM))

# Secrets the gateway must put on upstream requests (from Envoy's environment), and the client's
# own key, which must never reach a provider.
ANTHROPIC_KEY = "sk-ant-e2e-upstream-0123456789"
OPENAI_KEY = "sk-openai-e2e-upstream-0123456789"
CLIENT_KEY = "client-virtual-key-must-not-leak"

CLAUDE = "claude-e2e"
CLAUDE_UPSTREAM = "claude-sonnet-4-5-e2e"
GPT = "gpt-e2e"
GPT_UPSTREAM = "gpt-5-nano-e2e"
CLAUDE_TTFT = "claude-ttft-e2e"
CLAUDE_DOWN = "claude-down"
GPT_DOWN = "gpt-down"
CLAUDE_BAD_KEY = "claude-bad-key"
MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_TOKENS = 777


def gateway_config() -> dict[str, Any]:
    return {
        "version": 1,
        "providers": [
            {"name": "anthropic-replay", "kind": "anthropic", "cluster": "replay_anthropic",
             "credential": {"env": "E2E_ANTHROPIC_KEY"}},
            {"name": "openai-replay", "kind": "openai", "cluster": "replay_openai",
             "credential": {"env": "E2E_OPENAI_KEY"}},
            {"name": "anthropic-wrong-key", "kind": "anthropic", "cluster": "replay_anthropic_wrong_key",
             "credential": {"env": "E2E_WRONG_KEY"}},
            {"name": "anthropic-down", "kind": "anthropic", "cluster": "dead_anthropic",
             "credential": {"env": "E2E_ANTHROPIC_KEY"}},
            {"name": "openai-down", "kind": "openai", "cluster": "dead_openai",
             "credential": {"env": "E2E_OPENAI_KEY"}},
        ],
        "routes": [
            {"model": CLAUDE, "targets": [{"provider": "anthropic-replay", "model": CLAUDE_UPSTREAM}]},
            {"model": GPT, "targets": [{"provider": "openai-replay", "model": GPT_UPSTREAM}]},
            # Its own target model, so one test owns the metric series of this route.
            {"model": CLAUDE_TTFT, "targets": [{"provider": "anthropic-replay", "model": CLAUDE_TTFT}]},
            {"model": CLAUDE_BAD_KEY, "targets": [{"provider": "anthropic-wrong-key", "model": CLAUDE_UPSTREAM}]},
            {"model": CLAUDE_DOWN, "targets": [{"provider": "anthropic-down", "model": CLAUDE_UPSTREAM}]},
            {"model": GPT_DOWN, "targets": [{"provider": "openai-down", "model": GPT_UPSTREAM}]},
        ],
        "limits": {"max_request_bytes": MAX_REQUEST_BYTES},
        "defaults": {"max_tokens": DEFAULT_MAX_TOKENS},
    }


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def cassettes(fixtures_dir: Path) -> dict[str, Any]:
    return recordings.load(fixtures_dir)


@pytest.fixture(scope="session")
def gateway(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    workdir = Path(os.environ.get("E2E_WORKDIR") or tmp_path_factory.mktemp("stack"))
    dead_port = stack_mod.free_port()  # nothing listens there: connection refused
    running = stack_mod.start_stack(
        workdir,
        gateway_config(),
        replay_clusters=["replay_anthropic", "replay_openai", "replay_anthropic_wrong_key"],
        extra_clusters={"dead_anthropic": f"http://127.0.0.1:{dead_port}",
                        "dead_openai": f"http://127.0.0.1:{dead_port}"},
        envoy_env={"E2E_ANTHROPIC_KEY": ANTHROPIC_KEY, "E2E_OPENAI_KEY": OPENAI_KEY,
                   "E2E_WRONG_KEY": "sk-ant-wrong-key"},
        wasm=WASM,
        fixtures=fixtures_dir,
        chunk_delay=0.002,
        replay_keys={"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY},
        concurrency=2,
        log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "info"),
    )
    print(f"\ne2e stack: envoy {running.base_url}, admin {running.admin_url}, replay {running.replay_url}, logs in {workdir}")
    yield running
    running.stop()


class Upstream:
    """What the replay upstream received, filtered by the test's request id."""

    def __init__(self, replay_url: str):
        self.replay_url = replay_url

    def requests(self, test_id: str) -> list[dict[str, Any]]:
        status, body = stack_mod.http_get(f"{self.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
        assert status == 200
        return json.loads(body)

    def only(self, test_id: str) -> dict[str, Any]:
        received = self.requests(test_id)
        assert len(received) == 1, f"expected exactly one upstream request, got {len(received)}"
        return received[0]


@pytest.fixture(scope="session")
def upstream(gateway: stack_mod.Stack) -> Upstream:
    return Upstream(gateway.replay_url)


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="session")
def client(gateway: stack_mod.Stack):
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)


def replay_headers(test_id: str, fixture: str | None = None, interaction: int = 0, **extra: str) -> dict[str, str]:
    headers = {"x-test-id": test_id}
    if fixture is not None:
        headers["x-replay-fixture"] = fixture
        headers["x-replay-interaction"] = str(interaction)
    headers.update(extra)
    return headers


# --- Envoy log on failure ----------------------------------------------------------------------

_log_offsets: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _envoy_log_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    stack = request.session.__dict__.get("_e2e_stack")
    if stack is None and "gateway" in request.fixturenames:
        stack = request.getfixturevalue("gateway")
        request.session.__dict__["_e2e_stack"] = stack
    if stack is not None:
        log = stack.workdir / "envoy.log"
        _log_offsets[request.node.nodeid] = log.stat().st_size if log.exists() else 0
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    stack = item.session.__dict__.get("_e2e_stack")
    if report.when == "call" and report.failed and stack is not None:
        for name in ("envoy.log", "replay.log"):
            path = stack.workdir / name
            if not path.exists():
                continue
            data = path.read_bytes()
            start = _log_offsets.get(item.nodeid, 0) if name == "envoy.log" else max(0, len(data) - 4000)
            report.sections.append((f"{name} (during this test)", data[start:][-20000:].decode("utf-8", "replace")))


# --- raw HTTP, for what the SDK cannot send ------------------------------------------------------

def raw_request(gateway: stack_mod.Stack, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request to the gateway; returns status, lower-cased headers and body."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=timeout)
    try:
        all_headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"}
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def assert_openai_error(status: int, body: bytes, expected_status: int, code: str | None = None) -> dict[str, Any]:
    """Checks OpenAI's error shape and returns the inner error object."""
    assert status == expected_status, f"status {status}, body {body[:500]!r}"
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    error = doc["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if code is not None:
        assert error["code"] == code, error
    return error
