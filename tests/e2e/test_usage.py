"""Usage accounting end to end: a real Envoy (two workers) calls every provider kind through the
replay upstream, the singleton Wasm service reports usage to the real control-plane binary over
gRPC `ReportUsage`, and `GET /v1/usage` must serve exactly the token counts of the replayed
recordings, with cost = tokens x the configured price, for JSON and streamed responses.

Killing the control plane during traffic and starting it again must lose nothing: the singleton
keeps the usage pending and resends the same batch until it is acknowledged.

Expected numbers are derived from the recordings, never written here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

import recordings
import stack as stack_mod
from conftest import FIXTURES, WASM
from test_control_plane import ADMIN_TOKEN, PROPAGATION_LIMIT_S, WATCH_TOKEN, Env

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
PUSD_PER_USD = 10**12


def pusd_per_token(usd_per_mtok: float) -> int:
    """The control plane's and the filter's conversion (`usd_per_mtok_to_pusd_per_token`)."""
    return round(usd_per_mtok * 1_000_000)


def usd_string(pusd: int) -> str:
    """`gateway_core::pricing::pusd_to_usd_string`."""
    whole, frac = divmod(pusd, PUSD_PER_USD)
    return str(whole) if frac == 0 else f"{whole}.{frac:012d}".rstrip("0")


def bedrock_frames(body: bytes) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """AWS event-stream frames: (headers, JSON payload)."""
    import struct

    out, i = [], 0
    while i + 12 <= len(body):
        total, hlen = struct.unpack(">II", body[i:i + 8])
        headers, j = {}, i + 12
        while j < i + 12 + hlen:
            n = body[j]
            name = body[j + 1:j + 1 + n].decode()
            j += 1 + n + 1  # name, then the value type (7: string)
            length = struct.unpack(">H", body[j:j + 2])[0]
            headers[name] = body[j + 2:j + 2 + length].decode()
            j += 2 + length
        out.append((headers, json.loads(body[i + 12 + hlen:i + total - 4])))
        i += total
    return out


def recorded_usage(interaction) -> tuple[int, int]:
    """(input tokens including cached ones, output tokens) the provider reported in a recording."""
    family = recordings.replay.family_of_path(interaction.path)
    body = interaction.body
    if family == "anthropic":
        exp = recordings.expected_from_anthropic(interaction)
        return exp.prompt_tokens, exp.completion_tokens
    if family in ("openai", "azure"):
        if interaction.is_stream:
            chunks = [json.loads(d) for d in recordings.openai_sse_data(body) if d.strip() != "[DONE]"]
            usage = [c["usage"] for c in chunks if c.get("usage")][-1]
        else:
            usage = json.loads(body)["usage"]
        return usage["prompt_tokens"], usage["completion_tokens"]
    if family == "bedrock":
        if interaction.is_stream:
            usage = [p["usage"] for h, p in bedrock_frames(body) if h.get(":event-type") == "metadata"][-1]
        else:
            usage = json.loads(body)["usage"]
        prompt = usage.get("inputTokens", 0) + usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
        return prompt, usage.get("outputTokens", 0)
    if family == "gemini":
        events = [json.loads(d) for _n, d in recordings.sse_events(body)] if interaction.is_stream else [json.loads(body)]
        usage: dict[str, int] = {}
        for event in events:
            usage.update(event.get("usageMetadata") or {})
        return (usage.get("promptTokenCount", 0) + usage.get("toolUsePromptTokenCount", 0),
                usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0))
    raise AssertionError(f"no usage reader for {family}")


@dataclass(frozen=True)
class Case:
    """One provider kind and response mode, with its own route, price and key."""

    kind: str
    stream: bool
    fixture: str
    provider: str
    cluster: str
    input_per_mtok: float
    output_per_mtok: float
    # Which SDK calls the gateway: `openai` (/v1/chat/completions) or `anthropic` (/v1/messages).
    client: str = "openai"

    @property
    def name(self) -> str:
        api = "-messages" if self.client == "anthropic" else ""
        return f"{self.kind}{api}-{'stream' if self.stream else 'json'}"

    @property
    def model(self) -> str:
        """The public model name, also the key name."""
        return f"usage-{self.name}"

    @property
    def target_model(self) -> str:
        # Azure puts the deployment in the path; every target model is unique per case, so each
        # case owns its price row and its usage rows.
        return f"{self.name}-target"

    def interaction(self):
        return CASSETTES[self.fixture].interactions[0]


PROVIDERS = {
    "openai": ({"kind": "openai"}, "replay_openai"),
    "anthropic": ({"kind": "anthropic"}, "replay_anthropic"),
    "bedrock": ({"kind": "bedrock", "settings": {"bedrock": {"region": "us-east-1"}}}, "replay_bedrock"),
    "gemini": ({"kind": "gemini"}, "replay_gemini"),
    "azure": ({"kind": "azure_openai", "settings": {"azure": {"url_form": "deployment", "api_version": "2024-12-01-preview"}}},
              "replay_azure"),
}
FIXTURE_OF = {
    ("openai", False): "openai/chat-basic.yaml",
    ("openai", True): "openai/chat-streaming-detailed-usage.yaml",
    ("anthropic", False): "anthropic/test_anthropic_model_instructions.yaml",
    ("anthropic", True): "anthropic/test_request_stream_fallback_for_high_max_tokens.yaml",
    ("bedrock", False): "bedrock/test_bedrock_model.yaml",
    ("bedrock", True): "bedrock/test_bedrock_model_stream.yaml",
    ("gemini", False): "gemini/test_google_model.yaml",
    ("gemini", True): "gemini/test_google_model_stream.yaml",
    ("azure", False): "openai/azure-chat-basic.yaml",
    # Azure speaks OpenAI's wire format; the replay answers Azure paths with OpenAI streams.
    ("azure", True): "openai/chat-streaming-detailed-usage.yaml",
}
# Distinct prices per case, so a row attributed to the wrong provider model shows in the cost.
PRICES = {"openai": (0.15, 0.6), "anthropic": (3.0, 15.0), "bedrock": (0.035, 0.14), "gemini": (0.1, 0.4), "azure": (1.1, 4.4)}
CASES = [
    Case(kind, stream, FIXTURE_OF[(kind, stream)], f"{kind}-usage", PROVIDERS[kind][1],
         PRICES[kind][0] * (2 if stream else 1), PRICES[kind][1] * (2 if stream else 1))
    for kind in PROVIDERS for stream in (False, True)
] + [
    # Anthropic's own API and SDK, passed through to an Anthropic provider.
    Case("anthropic", stream, FIXTURE_OF[("anthropic", stream)], "anthropic-usage", PROVIDERS["anthropic"][1],
         0.8 * (2 if stream else 1), 4.0 * (2 if stream else 1), client="anthropic")
    for stream in (False, True)
]


# target model -> (input tokens, output tokens, cost in pUSD) of the responses checked above.
COSTS: dict[str, tuple[int, int, int]] = {}


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class UsageEnv(Env):
    """Env plus the usage API and per-case keys."""

    def usage(self, key_name: str, period: str = "day") -> list[dict[str, Any]]:
        day = today()
        start = day if period == "day" else day[:7]
        _, doc = self.api("GET", f"/v1/usage?key={key_name}&period={period}&from={start}&to={start}", expect=200)
        return doc["data"]

    def wait_usage(self, key_name: str, requests: int, limit_s: float = 30.0) -> list[dict[str, Any]]:
        """Polls until the control plane holds `requests` requests for the key (usage arrives
        within about a second of the response, later after a control-plane outage)."""
        deadline = time.monotonic() + limit_s
        while True:
            rows = self.usage(key_name)
            got = sum(r["requests"] for r in rows)
            if got >= requests:
                return rows
            assert time.monotonic() < deadline, f"{key_name}: {got} of {requests} requests reported: {rows}"
            time.sleep(0.2)


def wait_until_served(env: Env, key: str, model: str) -> None:
    """Waits for the snapshot holding `key`: a model the key may not call is a 403 once it is
    known (401 before), and spends nothing."""
    deadline = time.monotonic() + 10 * PROPAGATION_LIMIT_S
    while env.chat("not-allowed-model", key)[0] != 403:
        assert time.monotonic() < deadline, "key never reached the data plane"
        time.sleep(0.02)
    for _ in range(10):  # both workers
        assert env.chat("not-allowed-model", key)[0] == 403


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsageEnv]:
    workdir = tmp_path_factory.mktemp("usage")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    boot = {"version": 1, "providers": [], "routes": []}
    # No provider keys: this module is about accounting; credentials are covered elsewhere.
    running = stack_mod.start_stack(
        workdir, boot, replay_clusters=[c for _spec, c in PROVIDERS.values()], envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
        wasm=Path(os.environ.get("GATEWAY_WASM", WASM)), fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2,
        log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}", access_log=workdir / "access.log")
    e = UsageEnv(workdir, running, grpc_port, rest_port)
    e.start_cp()
    for kind, (spec, cluster) in PROVIDERS.items():
        e.api("POST", "/v1/providers", {"name": f"{kind}-usage", "cluster": cluster, **spec}, expect=201)
    for case in CASES:
        e.api("POST", "/v1/routes", {"model": case.model, "targets": [{"provider": case.provider, "model": case.target_model}]}, expect=201)
        e.api("POST", "/v1/prices", {"provider": case.provider, "model": case.target_model,
                                     "input_per_mtok": case.input_per_mtok, "output_per_mtok": case.output_per_mtok}, expect=201)
    print(f"\nusage e2e: envoy {running.base_url}, control plane {rest_port}, logs in {workdir}")
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def call(env: Env, key: str, case: Case) -> tuple[int, int]:
    """One request with the case's SDK; returns the usage the client saw."""
    from openai import OpenAI

    headers = {"x-replay-fixture": case.fixture, "x-replay-interaction": "0"}
    messages = [{"role": "user", "content": "Say hello"}]
    if case.client == "anthropic":
        from anthropic import Anthropic

        anthropic = Anthropic(base_url=env.stack.base_url, api_key=key, max_retries=0, timeout=30)
        if case.stream:
            with anthropic.messages.stream(model=case.model, max_tokens=1024, messages=messages, extra_headers=headers) as s:
                message = s.get_final_message()
        else:
            message = anthropic.messages.create(model=case.model, max_tokens=1024, messages=messages, extra_headers=headers)
        u = message.usage
        return u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0), u.output_tokens
    client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
    if not case.stream:
        r = client.chat.completions.create(model=case.model, messages=messages, extra_headers=headers)
        assert r.usage is not None
        return r.usage.prompt_tokens, r.usage.completion_tokens
    usage = None
    for chunk in client.chat.completions.create(model=case.model, messages=messages, stream=True,
                                                stream_options={"include_usage": True}, extra_headers=headers):
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None, "the stream carried no usage"
    return usage.prompt_tokens, usage.completion_tokens


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reported_usage_equals_the_recording_and_cost_is_tokens_times_price(env: UsageEnv, case: Case) -> None:
    expected_in, expected_out = recorded_usage(case.interaction())
    assert expected_in > 0 and expected_out > 0, f"{case.fixture} reports no usage: pick another recording"
    _, doc = env.api("POST", "/v1/keys", {"name": case.model, "owner": "e2e@example.com", "allowed_models": [case.model]}, expect=201)
    key = doc["secret"]
    env.secrets.append(key)
    wait_until_served(env, key, case.model)

    seen = call(env, key, case)
    assert seen == (expected_in, expected_out), "the client's usage differs from the recording"

    rows = env.wait_usage(case.model, 1)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["provider"], row["model"], row["period"]) == (case.provider, case.target_model, today()), row
    assert row["requests"] == 1, row
    assert (row["input_tokens"], row["output_tokens"]) == (expected_in, expected_out), row
    cost = expected_in * pusd_per_token(case.input_per_mtok) + expected_out * pusd_per_token(case.output_per_mtok)
    assert row["cost_pusd"] == cost, row
    assert row["cost_usd"] == usd_string(cost), row

    COSTS[case.target_model] = (expected_in, expected_out, cost)


def test_access_log_has_the_same_cost(env: UsageEnv) -> None:
    """The JSON access log's `cost_usd` (filter state `wasm.ai_gateway.cost_usd`) is the same
    exact decimal as the control plane's, for every provider kind and mode above."""
    if not COSTS:  # selected alone (-k): make the traffic the usage tests above would have made
        for case in CASES:
            test_reported_usage_equals_the_recording_and_cost_is_tokens_times_price(env, case)
    log = env.workdir / "access.log"
    # Envoy flushes access-log files every 10 s by default.
    deadline = time.monotonic() + 20
    while True:
        # Only whole lines: Envoy may be writing the last one while we read.
        text = log.read_text() if log.exists() else ""
        lines = [json.loads(raw) for raw in text[:text.rfind("\n") + 1].splitlines() if raw.startswith("{")]
        mine = {e["model"]: e for e in lines if e.get("log") == "request" and e.get("model") in COSTS}
        if len(mine) == len(COSTS) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(mine) == set(COSTS), f"access-log lines missing for {set(COSTS) - set(mine)}"
    for model, (tokens_in, tokens_out, cost) in COSTS.items():
        entry = mine[model]
        assert entry["cost_usd"] == usd_string(cost), entry
        assert (entry["input_tokens"], entry["output_tokens"]) == (str(tokens_in), str(tokens_out)), entry


def test_a_control_plane_outage_during_traffic_loses_nothing(env: UsageEnv) -> None:
    """The control plane is killed (SIGKILL) and restarted while requests flow; the usage of
    every successful response still arrives exactly once (batches are resent unchanged and the
    control plane counts a batch id once)."""
    case = next(c for c in CASES if c.kind == "openai" and not c.stream)
    name = "usage-outage"
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": [case.model]}, expect=201)
    key = doc["secret"]
    env.secrets.append(key)
    wait_until_served(env, key, case.model)

    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                seen.append(call(env, key, case))
            except BaseException as err:  # noqa: BLE001 (reported below)
                errors.append(err)
                return
            time.sleep(0.02)

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(1.5)
    env.kill_cp()
    # Long enough for several failed ReportUsage calls and a backoff.
    time.sleep(3.0)
    during_outage = len(seen)
    env.start_cp()
    time.sleep(1.5)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    assert not errors, errors
    assert len(seen) > during_outage > 0, "traffic must flow before, during and after the outage"

    rows = env.wait_usage(name, len(seen), limit_s=40)
    assert sum(r["requests"] for r in rows) == len(seen), rows
    assert sum(r["input_tokens"] for r in rows) == sum(i for i, _ in seen), rows
    assert sum(r["output_tokens"] for r in rows) == sum(o for _, o in seen), rows
    # Nothing counted twice, even a moment later (a late duplicate would show up here).
    time.sleep(2.5)
    assert sum(r["requests"] for r in env.usage(name)) == len(seen)
    assert ADMIN_TOKEN not in (env.workdir / "envoy.log").read_text()
