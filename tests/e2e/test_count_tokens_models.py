"""`POST /v1/messages/count_tokens`, `GET /v1/models` and `HEAD /` through a real Envoy with the
official SDKs, and the allowlist of headers sent to providers (issue 12 items 6, 7, 9; issue 13
item 5).

One stack with the control plane, so virtual keys (allowlists, rpm, budgets) and the usage API
are the real ones; one provider of every kind behind the replay upstream.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
import recordings
from conftest import FIXTURES, WASM, replay_headers
from test_control_plane import WATCH_TOKEN
from test_rate_limits import away_from_window_edge
from test_usage import FIXTURE_OF, PROVIDERS, UsageEnv, wait_until_served

KINDS = list(PROVIDERS)  # openai, anthropic, bedrock, gemini, azure
PRICE = (3.0, 15.0)  # per million tokens: every route is priced, so a billed count would show a cost
COUNT_FIXTURE = "anthropic/test_anthropic_count_tokens_with_native_tools.yaml"
COUNT_RECORDED = 16  # input_tokens in that recording
COUNT_ERROR_FIXTURE = "anthropic/test_anthropic_count_tokens_error.yaml"
MESSAGE_FIXTURE = FIXTURE_OF[("anthropic", False)]
QUESTION = [{"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]}]
# Headers real clients send that no provider needs (SDK telemetry, agent session ids, billing
# selectors, cookies, proxies), plus whatever the SDKs add themselves (x-stainless-*, user-agent).
HOSTILE = {
    "OpenAI-Organization": "org-attacker",
    "OpenAI-Project": "proj-attacker",
    "Cookie": "session=stolen",
    "X-Forwarded-For": "203.0.113.9",
    "X-Claude-Code-Session-Id": "5b1c0e5e-session",
    "X-App": "cli",
    "X-Custom-Telemetry": "1",
    "User-Agent": "claude-cli/2.1.0 (external, cli)",
}
# What any provider request may carry: the built-in allowlist, the headers the gateway sets for
# every kind, and the test stack's own forwarded hooks (scripts/stack.py).
COMMON_ALLOWED = {"host", "content-type", "content-length", "accept", "x-request-id", "traceparent", "tracestate",
                  "x-test-id", "x-replay-fixture", "x-replay-interaction"}
KIND_ALLOWED = {
    "openai": {"authorization"},
    "azure": {"api-key"},
    "gemini": {"x-goog-api-key"},
    "anthropic": {"x-api-key", "anthropic-version", "anthropic-beta"},
    "bedrock": {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"},
}


CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
# Every recorded Anthropic count_tokens exchange, answers and errors.
RECORDED_COUNTS = [
    pytest.param(name, index, x, id=f"{name}#{index}")
    for name, cassette in sorted(CASSETTES.items()) if name.startswith("anthropic/")
    for index, x in enumerate(cassette.interactions) if x.path.endswith("/count_tokens")
]


def route(kind: str) -> str:
    return f"ct-{kind}"


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsageEnv]:
    workdir = tmp_path_factory.mktemp("count-tokens")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    running = stack_mod.start_stack(
        workdir, {"version": 1, "providers": [], "routes": []}, replay_clusters=[c for _spec, c in PROVIDERS.values()],
        envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN}, wasm=Path(os.environ.get("GATEWAY_WASM", WASM)),
        fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2, log_level="info",
        control_plane=f"http://127.0.0.1:{grpc_port}")
    e = UsageEnv(workdir, running, grpc_port, rest_port)
    e.start_cp()
    for kind, (spec, cluster) in PROVIDERS.items():
        e.api("POST", "/v1/providers", {"name": f"{kind}-ct", "cluster": cluster, **spec}, expect=201)
        e.api("POST", "/v1/routes", {"model": route(kind), "targets": [{"provider": f"{kind}-ct", "model": f"{kind}-target"}]},
              expect=201)
        e.api("POST", "/v1/prices", {"provider": f"{kind}-ct", "model": f"{kind}-target", "input_per_mtok": PRICE[0],
                                     "output_per_mtok": PRICE[1]}, expect=201)
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def new_key(env: UsageEnv, name: str, models: list[str] | None = None, **extra: Any) -> str:
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com",
                                          "allowed_models": models or [route(k) for k in KINDS], **extra}, expect=201)
    env.secrets.append(doc["secret"])
    wait_until_served(env, doc["secret"], route("openai"))
    return doc["secret"]


@pytest.fixture(scope="module")
def key(env: UsageEnv) -> str:
    return new_key(env, "ct-all")


def anthropic_client(env: UsageEnv, key: str):
    from anthropic import Anthropic

    return Anthropic(base_url=env.stack.base_url, api_key=key, max_retries=0, timeout=30)


def openai_client(env: UsageEnv, key: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)


def received(env: UsageEnv, test_id: str) -> list[dict[str, Any]]:
    status, body = stack_mod.http_get(f"{env.stack.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
    assert status == 200
    return json.loads(body)


def raw(env: UsageEnv, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", env.stack.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def simple_estimate(texts: list[str]) -> int:
    """The documented estimate (gateway_core::translate::count_tokens) for one user message made of
    text blocks: 7 + 3 per message + ceil(bytes / 4), block types not counted."""
    return 7 + 3 + math.ceil(sum(len(t.encode()) for t in texts) / 4)


# --- count_tokens -------------------------------------------------------------------------------


def test_count_tokens_passes_through_to_anthropic_with_the_recorded_count(env: UsageEnv, key: str) -> None:
    client = anthropic_client(env, key)
    test_id = uuid.uuid4().hex
    response = client.messages.with_raw_response.count_tokens(
        model=route("anthropic"), messages=QUESTION, extra_headers=replay_headers(test_id, COUNT_FIXTURE))
    assert response.parse().input_tokens == COUNT_RECORDED
    assert response.headers["x-ai-gateway-token-count"] == "exact"
    assert response.headers["x-ai-gateway-provider"] == "anthropic-ct"
    (sent,) = received(env, test_id)
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["json"] == {"model": "anthropic-target", "messages": QUESTION}
    # The client's anthropic-version is forwarded as it sent it.
    assert sent["headers"]["anthropic-version"] == response.http_request.headers["anthropic-version"]

    # The beta flavour (`?beta=true`, anthropic-beta) reaches the same endpoint with its betas.
    test_id = uuid.uuid4().hex
    beta = client.beta.messages.with_raw_response.count_tokens(
        model=route("anthropic"), messages=QUESTION, betas=["token-counting-2024-11-01"],
        extra_headers=replay_headers(test_id, COUNT_FIXTURE))
    assert beta.parse().input_tokens == COUNT_RECORDED
    (sent,) = received(env, test_id)
    assert sent["path"] == "/v1/messages/count_tokens"
    # Exactly the client's betas (the SDK repeats the counting beta itself).
    assert sent["headers"]["anthropic-beta"] == beta.http_request.headers["anthropic-beta"]
    assert "token-counting-2024-11-01" in sent["headers"]["anthropic-beta"]

    # `?beta=true`, as older SDKs and Claude Code send it: the same endpoint upstream.
    test_id = uuid.uuid4().hex
    status, headers, body = raw(env, "POST", "/v1/messages/count_tokens?beta=true",
                                {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json",
                                 **replay_headers(test_id, COUNT_FIXTURE)},
                                json.dumps({"model": route("anthropic"), "messages": QUESTION}).encode())
    assert (status, json.loads(body)) == (200, {"input_tokens": COUNT_RECORDED})
    assert headers["x-ai-gateway-token-count"] == "exact"
    (sent,) = received(env, test_id)
    assert sent["path"] == "/v1/messages/count_tokens" and sent["headers"]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("name,index,interaction", RECORDED_COUNTS)
def test_recorded_counts_reach_the_anthropic_sdk_exactly(env: UsageEnv, key: str, name: str, index: int, interaction) -> None:
    import anthropic

    body = dict(interaction.request_body)
    body.pop("model")
    test_id = uuid.uuid4().hex
    recorded = json.loads(interaction.body)
    client = anthropic_client(env, key)
    if interaction.status == 200:
        count = client.messages.count_tokens(model=route("anthropic"), extra_headers=replay_headers(test_id, name, index), **body)
        assert count.input_tokens == recorded["input_tokens"]
    else:
        with pytest.raises(anthropic.APIStatusError) as err:
            client.messages.count_tokens(model=route("anthropic"), extra_headers=replay_headers(test_id, name, index), **body)
        assert err.value.status_code == interaction.status
        assert err.value.body["error"] == recorded["error"]
    (sent,) = received(env, test_id)
    assert sent["json"] == dict(interaction.request_body, model="anthropic-target")


def test_anthropic_count_errors_reach_the_client_in_anthropics_shape(env: UsageEnv, key: str) -> None:
    import anthropic

    client = anthropic_client(env, key)
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.count_tokens(model=route("anthropic"), messages=[{"role": "user", "content": "hello"}],
                                     extra_headers=replay_headers(uuid.uuid4().hex, COUNT_ERROR_FIXTURE))
    assert err.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "anthropic"])
def test_other_providers_get_the_gateways_estimate_without_a_call(env: UsageEnv, key: str, kind: str) -> None:
    client = anthropic_client(env, key)
    test_id = uuid.uuid4().hex
    texts = ["Hello there, how many tokens is this sentence?", "And this one?"]
    messages = [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]}]
    response = client.messages.with_raw_response.count_tokens(model=route(kind), messages=messages,
                                                              extra_headers={"x-test-id": test_id})
    assert response.status_code == 200
    assert response.headers["x-ai-gateway-token-count"] == "estimate"
    assert response.parse().input_tokens == simple_estimate(texts)
    # Tools add their JSON and the hidden tool instructions.
    tools = [{"name": "get_weather", "description": "Weather for a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    with_tools = client.messages.count_tokens(model=route(kind), messages=messages, tools=tools,
                                              extra_headers={"x-test-id": test_id})
    assert with_tools.input_tokens > simple_estimate(texts) + 300
    assert received(env, test_id) == [], "the provider must not be called"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_count_tokens_validates_the_body_in_anthropics_shape(env: UsageEnv, key: str, kind: str) -> None:
    test_id = uuid.uuid4().hex
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "anthropic-version": "2023-06-01",
               "x-test-id": test_id}
    for body, param in [({"model": route(kind)}, "messages"), ({"model": route(kind), "messages": []}, "messages"),
                        ({"messages": QUESTION}, "model")]:
        status, _, reply = raw(env, "POST", "/v1/messages/count_tokens", headers, json.dumps(body).encode())
        assert status == 400, reply
        doc = json.loads(reply)
        assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error", doc
        assert param in doc["error"]["message"], doc
    status, _, reply = raw(env, "POST", "/v1/messages/count_tokens", headers, b"{not json")
    assert status == 400 and json.loads(reply)["type"] == "error"
    assert received(env, test_id) == []


def test_count_tokens_follows_the_keys_allowlist(env: UsageEnv) -> None:
    import anthropic

    limited = new_key(env, "ct-only-openai", [route("openai")])
    client = anthropic_client(env, limited)
    assert client.messages.count_tokens(model=route("openai"), messages=QUESTION).input_tokens > 0
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        client.messages.count_tokens(model=route("anthropic"), messages=QUESTION)
    assert err.value.body["error"]["type"] == "permission_error"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(env, "not-a-key").messages.count_tokens(model=route("openai"), messages=QUESTION)


def test_count_tokens_is_rate_limited_like_messages(env: UsageEnv) -> None:
    import anthropic

    limited = new_key(env, "ct-rpm-two", rpm=2)
    away_from_window_edge()
    client = anthropic_client(env, limited)
    first = client.messages.with_raw_response.count_tokens(model=route("openai"), messages=QUESTION)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    client.messages.count_tokens(model=route("anthropic"), messages=QUESTION,
                                 extra_headers=replay_headers(uuid.uuid4().hex, COUNT_FIXTURE))
    with pytest.raises(anthropic.RateLimitError) as err:
        client.messages.count_tokens(model=route("openai"), messages=QUESTION)
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "rate_limit_error"
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 60


def test_count_tokens_is_never_billed_and_reserves_no_budget(env: UsageEnv) -> None:
    import anthropic

    # A budget far below one message's reservation (max_tokens 1024 at $15/M is 1.5e-2 USD).
    broke = new_key(env, "ct-tiny-budget", budget={"limit_usd": 0.000001, "period": "day"})
    client = anthropic_client(env, broke)
    for kind in ("anthropic", "openai", "bedrock"):
        headers = replay_headers(uuid.uuid4().hex, COUNT_FIXTURE) if kind == "anthropic" else {}
        assert client.messages.count_tokens(model=route(kind), messages=QUESTION, extra_headers=headers).input_tokens > 0
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(model=route("anthropic"), max_tokens=1024, messages=QUESTION,
                               extra_headers=replay_headers(uuid.uuid4().hex, MESSAGE_FIXTURE))
    assert "budget" in refused.value.body["error"]["message"]

    # Usage: count calls first, then one message; once that message is reported, it is the only row.
    name = "ct-usage"
    counted = anthropic_client(env, new_key(env, name))
    for _ in range(3):
        counted.messages.count_tokens(model=route("anthropic"), messages=QUESTION,
                                      extra_headers=replay_headers(uuid.uuid4().hex, COUNT_FIXTURE))
        counted.messages.count_tokens(model=route("gemini"), messages=QUESTION)
    message = counted.messages.create(model=route("anthropic"), max_tokens=1024, messages=QUESTION,
                                      extra_headers=replay_headers(uuid.uuid4().hex, MESSAGE_FIXTURE))
    rows = env.wait_usage(name, 1)
    time.sleep(1.0)  # anything else reported by now would be a billed count
    rows = env.usage(name)
    assert sum(r["requests"] for r in rows) == 1, rows
    assert sum(r["input_tokens"] for r in rows) == message.usage.input_tokens, rows


# --- models -------------------------------------------------------------------------------------


def test_models_lists_what_the_key_may_use_in_both_sdks_shapes(env: UsageEnv, key: str) -> None:
    import anthropic
    import openai

    everything = sorted(route(k) for k in KINDS)
    assert [m.id for m in openai_client(env, key).models.list()] == everything
    listed = list(anthropic_client(env, key).models.list())
    assert [m.id for m in listed] == everything
    assert all(m.type == "model" and m.display_name == m.id for m in listed)

    two = sorted([route("openai"), route("gemini")])
    limited = new_key(env, "ct-models-two", two)
    oa = openai_client(env, limited)
    page = oa.models.list()
    assert [m.id for m in page] == two
    assert all(m.object == "model" and m.owned_by == "ai-gateway" for m in page)
    assert oa.models.retrieve(route("gemini")).id == route("gemini")
    with pytest.raises(openai.NotFoundError):
        oa.models.retrieve(route("anthropic"))  # exists, not allowed: the same 404 as unknown
    with pytest.raises(openai.NotFoundError):
        oa.models.retrieve("no-such-model")
    an = anthropic_client(env, limited)
    assert [m.id for m in an.models.list()] == two
    assert an.models.retrieve(route("openai")).id == route("openai")
    with pytest.raises(anthropic.NotFoundError) as err:
        an.models.retrieve(route("anthropic"))
    assert err.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(openai.AuthenticationError):
        openai_client(env, "not-a-key").models.list()
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(env, "not-a-key").models.list()

    # Raw shapes, exactly.
    status, _, body = raw(env, "GET", "/v1/models", {"authorization": f"Bearer {limited}", "anthropic-version": "2023-06-01"})
    assert status == 200
    assert json.loads(body) == {
        "data": [{"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"} for m in two],
        "has_more": False, "first_id": two[0], "last_id": two[-1]}
    status, _, body = raw(env, "GET", "/models", {"authorization": f"Bearer {limited}"})
    assert status == 200
    assert json.loads(body) == {"object": "list",
                                "data": [{"id": m, "object": "model", "created": 0, "owned_by": "ai-gateway"} for m in two]}
    status, _, body = raw(env, "POST", "/v1/models", {"authorization": f"Bearer {limited}"}, b"{}")
    assert status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed"


def test_head_and_get_root_answer_200_without_a_key(env: UsageEnv) -> None:
    """Claude Code sends `HEAD /` to the base URL at start-up."""
    status, headers, body = raw(env, "HEAD", "/")
    assert status == 200 and body == b""
    status, _, body = raw(env, "GET", "/")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    # Anything else unknown is still a 404.
    assert raw(env, "GET", "/v2/whatever")[0] == 404


# --- headers sent to providers ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_providers_receive_only_allowlisted_headers(env: UsageEnv, key: str, kind: str) -> None:
    test_id = uuid.uuid4().hex
    extra = {**replay_headers(test_id, FIXTURE_OF[(kind, False)]), **HOSTILE}
    openai_client(env, key).chat.completions.create(model=route(kind), messages=[{"role": "user", "content": "Say hello"}],
                                                   extra_headers=extra)
    (sent,) = received(env, test_id)
    names = set(sent["headers"])
    assert not {h.lower() for h in HOSTILE} & names, sorted(names)
    assert not any(n.startswith("x-stainless") for n in names), sorted(names)
    assert names <= COMMON_ALLOWED | KIND_ALLOWED[kind], sorted(names - COMMON_ALLOWED - KIND_ALLOWED[kind])
    assert key not in json.dumps(sent["headers"])


def test_anthropic_clients_keep_version_and_betas_and_lose_the_rest(env: UsageEnv, key: str) -> None:
    """Claude Code's own headers on /v1/messages to Anthropic: only anthropic-version/-beta cross."""
    test_id = uuid.uuid4().hex
    extra = {**replay_headers(test_id, MESSAGE_FIXTURE), **HOSTILE, "anthropic-beta": "interleaved-thinking-2025-05-14"}
    anthropic_client(env, key).messages.create(model=route("anthropic"), max_tokens=64, messages=QUESTION, extra_headers=extra)
    (sent,) = received(env, test_id)
    names = set(sent["headers"])
    assert sent["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent["headers"]["anthropic-version"]
    assert names <= COMMON_ALLOWED | KIND_ALLOWED["anthropic"], sorted(names - COMMON_ALLOWED - KIND_ALLOWED["anthropic"])
