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
import re
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
import recordings
from conftest import FIXTURES, WASM, replay_headers
from test_control_plane import ADMIN_TOKEN, WATCH_TOKEN
from test_rate_limits import away_from_window_edge
from test_usage import FIXTURE_OF, PROVIDERS, UsageEnv, wait_until_served

KINDS = list(PROVIDERS)  # openai, anthropic, bedrock, gemini, azure
PRICE = (3.0, 15.0)  # per million tokens: every route is priced, so a billed count would show a cost
COUNT_FIXTURE = "anthropic/test_anthropic_count_tokens_with_native_tools.yaml"
COUNT_RECORDED = 16  # input_tokens in that recording
COUNT_ERROR_FIXTURE = "anthropic/test_anthropic_count_tokens_error.yaml"
MESSAGE_FIXTURE = FIXTURE_OF[("anthropic", False)]
QUESTION = [{"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]}]
# Headers real clients send that no provider may see (issue 13 item 5): SDK telemetry, agent
# session ids, billing selectors, cookies, proxy and forwarding headers, browser headers,
# credentials and signing headers of every provider kind, provider-specific switches, and any x-*.
HOSTILE = {
    "OpenAI-Organization": "org-attacker",
    "OpenAI-Project": "proj-attacker",
    "OpenAI-Beta": "assistants=v2",
    "Cookie": "session=stolen",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Host": "evil.example",
    "X-Real-IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9",
    "Via": "1.1 evil-proxy",
    "Origin": "https://evil.example",
    "Referer": "https://evil.example/page",
    "X-Claude-Code-Session-Id": "5b1c0e5e-session",
    "X-App": "cli",
    "X-Custom-Telemetry": "1",
    "User-Agent": "claude-cli/2.1.0 (external, cli)",
    "Api-Key": "client-azure-key",
    "X-Goog-Api-Key": "client-gemini-key",
    "X-Goog-User-Project": "attacker-project",
    "X-Amz-Security-Token": "client-session-token",
    "X-Amz-Date": "20200101T000000Z",
    "Anthropic-Dangerous-Direct-Browser-Access": "true",
    "X-Envoy-Retry-On": "5xx",
    "X-Ai-Gateway-Cluster": "replay_openai",
    "Accept-Encoding": "gzip, br",
    "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
# Exactly what a provider request carries: the built-in allowlist (the client's trace context
# included), the headers the gateway sets for every kind, the test stack's own forwarded hooks
# (scripts/stack.py), and per kind its credential and what its API needs.
COMMON_SENT = {"host", "content-type", "content-length", "accept", "x-request-id", "traceparent",
               "x-test-id", "x-replay-fixture", "x-replay-interaction"}
KIND_SENT = {
    "openai": {"authorization", "openai-organization", "openai-project"},
    "azure": {"api-key"},
    "gemini": {"x-goog-api-key"},
    "anthropic": {"x-api-key", "anthropic-version"},
    "bedrock": {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"},
}
# The OpenAI provider of this module bills these; only configuration sets them.
OPENAI_BILLING = {"organization": "org-platform", "project": "proj_platform"}
PROVIDER_KEYS = {"openai": "sk-platform-openai", "azure": "platform-azure-key", "gemini": "platform-gemini-key",
                 "anthropic": "sk-ant-platform"}
AWS_SECRET = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "platform-aws-secret",
              "session_token": "platform-session-token"}
# The control plane resolves `env:` credentials from its own environment (names with the
# provider prefix) and pushes the secrets to Envoy in the snapshot.
CREDENTIAL_ENV = {**{f"AI_GATEWAY_PROVIDER_CT_{kind.upper()}": secret for kind, secret in PROVIDER_KEYS.items()},
                  "AI_GATEWAY_PROVIDER_CT_BEDROCK": json.dumps(AWS_SECRET)}
BEDROCK_INVOKE_MODEL = "anthropic.claude-sonnet-4-20250514-v1:0"
BEDROCK_INVOKE_COUNT_FIXTURE = "bedrock-invoke/test_anthropic_bedrock_count_tokens_real_api.yaml"
BEDROCK_INVOKE_FIXTURE = "bedrock-invoke/test_anthropic_cache_bedrock_real_api.yaml"


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
        envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
        wasm=Path(os.environ.get("GATEWAY_WASM", WASM)),
        fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2, log_level="info",
        control_plane=f"http://127.0.0.1:{grpc_port}")
    e = UsageEnv(workdir, running, grpc_port, rest_port)
    e.cp = stack_mod.start_control_plane(
        workdir / "cp-data", workdir / "control-plane.log", admin_token=ADMIN_TOKEN, watch_token=WATCH_TOKEN,
        env={**CREDENTIAL_ENV, "CP_LOG": "info"}, rest_port=rest_port, grpc_port=grpc_port)
    for kind, (spec, cluster) in PROVIDERS.items():
        spec = {**spec, "credential": f"env:AI_GATEWAY_PROVIDER_CT_{kind.upper()}"}
        if kind == "openai":
            spec["settings"] = {"openai": OPENAI_BILLING}
        e.api("POST", "/v1/providers", {"name": f"{kind}-ct", "cluster": cluster, **spec}, expect=201)
        e.api("POST", "/v1/routes", {"model": route(kind), "targets": [{"provider": f"{kind}-ct", "model": f"{kind}-target"}]},
              expect=201)
        e.api("POST", "/v1/prices", {"provider": f"{kind}-ct", "model": f"{kind}-target", "input_per_mtok": PRICE[0],
                                     "output_per_mtok": PRICE[1]}, expect=201)
    # Claude on Bedrock goes through InvokeModel (Anthropic's body, SigV4).
    e.api("POST", "/v1/routes", {"model": "ct-bedrock-invoke", "targets": [{"provider": "bedrock-ct", "model": BEDROCK_INVOKE_MODEL}]},
          expect=201)
    # A provider whose cluster this Envoy was not rendered with (issue 13 item 10).
    e.api("POST", "/v1/providers", {"name": "ghost-ct", "kind": "openai", "cluster": "no_such_cluster"}, expect=201)
    e.api("POST", "/v1/routes", {"model": "ct-ghost", "targets": [{"provider": "ghost-ct", "model": "gpt-ghost"}]}, expect=201)
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


@pytest.fixture(scope="module")
def wide_key(env: UsageEnv) -> str:
    """Every route, plus Claude on Bedrock's InvokeModel and the route to a missing cluster."""
    return new_key(env, "ct-wide", [route(k) for k in KINDS] + ["ct-bedrock-invoke", "ct-ghost"])


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


def assert_exact_headers(sent: dict[str, Any], kind: str, api_needs: set[str] = frozenset(), key: str = "") -> None:
    """The provider saw exactly the allowlist for its kind: nothing hostile, nothing missing."""
    names = set(sent["headers"])
    expected = COMMON_SENT | KIND_SENT[kind] | set(api_needs)
    assert names == expected, f"extra: {sorted(names - expected)}, missing: {sorted(expected - names)}"
    text = json.dumps(sent["headers"])
    for value in HOSTILE.values():
        if value != HOSTILE["Traceparent"] and len(value) >= 8:  # short ones ("1", "cli") occur anywhere
            assert value not in text, value
    assert sent["headers"]["traceparent"] == HOSTILE["Traceparent"]
    if key:
        assert key not in text
    if kind == "openai":
        assert sent["headers"]["openai-organization"] == OPENAI_BILLING["organization"]
        assert sent["headers"]["openai-project"] == OPENAI_BILLING["project"]
        assert sent["headers"]["authorization"] == f"Bearer {PROVIDER_KEYS['openai']}"
    elif kind == "bedrock":
        assert sent["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert sent["headers"]["x-amz-security-token"] == AWS_SECRET["session_token"]
        assert sent["headers"]["x-amz-date"] != HOSTILE["X-Amz-Date"]
    else:
        header = next(iter(KIND_SENT[kind] - {"anthropic-version"}))
        assert sent["headers"][header] == PROVIDER_KEYS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_providers_receive_exactly_the_allowlisted_headers_for_chat(env: UsageEnv, wide_key: str, kind: str) -> None:
    key = wide_key
    test_id = uuid.uuid4().hex
    extra = {**replay_headers(test_id, FIXTURE_OF[(kind, False)]), **HOSTILE}
    openai_client(env, key).chat.completions.create(model=route(kind), messages=[{"role": "user", "content": "Say hello"}],
                                                   extra_headers=extra)
    (sent,) = received(env, test_id)
    assert_exact_headers(sent, kind, key=key)


@pytest.mark.parametrize("kind", KINDS)
def test_providers_receive_exactly_the_allowlisted_headers_for_messages(env: UsageEnv, wide_key: str, kind: str) -> None:
    key = wide_key
    """Anthropic's Messages API to every kind: passthrough to Anthropic, translated elsewhere."""
    test_id = uuid.uuid4().hex
    fixture = MESSAGE_FIXTURE if kind == "anthropic" else FIXTURE_OF[(kind, False)]
    extra = {**replay_headers(test_id, fixture), **HOSTILE, "anthropic-beta": "interleaved-thinking-2025-05-14"}
    anthropic_client(env, key).messages.create(model=route(kind), max_tokens=64, messages=QUESTION, extra_headers=extra)
    (sent,) = received(env, test_id)
    # Anthropic clients' betas go to Anthropic only.
    assert_exact_headers(sent, kind, {"anthropic-beta"} if kind == "anthropic" else set(), key=key)
    if kind == "anthropic":
        assert sent["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14"
        assert sent["headers"]["anthropic-version"]


def test_bedrock_invoke_model_receives_exactly_the_allowlisted_headers(env: UsageEnv, wide_key: str) -> None:
    key = wide_key
    """Claude on Bedrock: InvokeModel and count-tokens, SigV4 over exactly these headers."""
    test_id = uuid.uuid4().hex
    client = anthropic_client(env, key)
    client.messages.create(model="ct-bedrock-invoke", max_tokens=64, messages=QUESTION,
                           extra_headers={**replay_headers(test_id, BEDROCK_INVOKE_FIXTURE), **HOSTILE})
    client.messages.count_tokens(model="ct-bedrock-invoke", messages=QUESTION,
                                 extra_headers={**replay_headers(test_id, BEDROCK_INVOKE_COUNT_FIXTURE), **HOSTILE})
    invoke, count = received(env, test_id)
    assert invoke["path"].endswith("/invoke") and count["path"].endswith("/count-tokens")
    for sent in (invoke, count):
        assert_exact_headers(sent, "bedrock", key=key)


def test_count_tokens_and_embeddings_send_exactly_the_allowlisted_headers(env: UsageEnv, wide_key: str) -> None:
    key = wide_key
    test_id = uuid.uuid4().hex
    anthropic_client(env, key).messages.count_tokens(
        model=route("anthropic"), messages=QUESTION,
        extra_headers={**replay_headers(test_id, COUNT_FIXTURE), **HOSTILE, "anthropic-beta": "token-counting-2024-11-01"})
    (sent,) = received(env, test_id)
    assert sent["path"].endswith("/count_tokens")
    assert_exact_headers(sent, "anthropic", {"anthropic-beta"}, key=key)
    for kind in ("openai", "azure"):
        test_id = uuid.uuid4().hex
        openai_client(env, key).embeddings.create(model=route(kind), input="hello",
                                                  extra_headers={**replay_headers(test_id, "openai/embeddings-basic.yaml"),
                                                                 **HOSTILE})
        (sent,) = received(env, test_id)
        assert sent["path"].endswith("/embeddings"), sent["path"]
        assert_exact_headers(sent, kind, key=key)


def test_models_listing_never_reaches_a_provider(env: UsageEnv, wide_key: str) -> None:
    key = wide_key
    test_id = uuid.uuid4().hex
    status, _, _ = raw(env, "GET", "/v1/models", {"authorization": f"Bearer {key}", "x-test-id": test_id, **HOSTILE})
    assert status == 200
    assert received(env, test_id) == []


# --- Envoy's own answers (issue 13 item 10) ---------------------------------------------------


def prometheus(env: UsageEnv) -> str:
    status, body = stack_mod.http_get(f"{env.stack.admin_url}/stats/prometheus", timeout=5)
    assert status == 200
    return body.decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_missing_cluster_is_a_503_with_a_message_and_a_metric(env: UsageEnv, wide_key: str) -> None:
    key = wide_key
    before = metric_value(prometheus(env), "ai_gateway_local_replies_total", status="503", code="cluster_not_found")
    body = json.dumps({"model": "ct-ghost", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, headers, answer = raw(env, "POST", "/v1/chat/completions",
                                  {"authorization": f"Bearer {key}", "content-type": "application/json"}, body)
    assert status == 503, answer
    error = json.loads(answer)["error"]
    assert error["code"] == "cluster_not_found" and error["type"] == "server_error"
    assert "cluster is not configured" in error["message"]
    # Anthropic clients get Anthropic's shape with the same message.
    body = json.dumps({"model": "ct-ghost", "max_tokens": 16, "messages": QUESTION}).encode()
    status, _, answer = raw(env, "POST", "/v1/messages", {"x-api-key": key, "content-type": "application/json",
                                                          "anthropic-version": "2023-06-01"}, body)
    assert status == 503, answer
    doc = json.loads(answer)
    assert doc["type"] == "error" and "cluster is not configured" in doc["error"]["message"], doc
    after = metric_value(prometheus(env), "ai_gateway_local_replies_total", status="503", code="cluster_not_found")
    assert after - before == 2


@pytest.mark.parametrize("path,shape", [("/v1/chat/completions#frag", "openai"), ("/v1/messages#frag", "anthropic"),
                                        ("/v1/chat/completions?x=1#frag", "openai")])
def test_a_fragment_in_the_path_is_a_400_with_a_message(env: UsageEnv, wide_key: str, path: str, shape: str) -> None:
    key = wide_key
    conn = http.client.HTTPConnection("127.0.0.1", env.stack.port, timeout=10)
    try:
        # http.client would not send a fragment; putrequest sends the path as given.
        conn.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in {"authorization": f"Bearer {key}", "content-type": "application/json", "content-length": "2"}.items():
            conn.putheader(name, value)
        conn.endheaders(b"{}")
        resp = conn.getresponse()
        status, answer = resp.status, resp.read()
    finally:
        conn.close()
    assert status == 400, answer
    doc = json.loads(answer)
    if shape == "anthropic":
        assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    else:
        assert doc["error"]["code"] == "invalid_path" and doc["error"]["param"] is None
    assert "fragment" in doc["error"]["message"]


def test_token_counters_are_exact_where_the_histogram_sum_is_not(env: UsageEnv) -> None:
    """ai_gateway_tokens_total counts every token; gen_ai_client_token_usage is a histogram whose
    _sum Envoy derives from bucketed, approximated values (docs/operations.md, Metrics)."""
    # The route first: the key's snapshot (waited for) then holds it too.
    env.api("POST", "/v1/routes", {"model": "ct-tokens-route", "targets": [{"provider": "openai-ct", "model": "tokens-target"}]},
            expect=201)
    secret = new_key(env, "ct-tokens", [route("openai"), "ct-tokens-route"])
    client = openai_client(env, secret)
    r = client.chat.completions.create(model="ct-tokens-route", messages=[{"role": "user", "content": "Say hello"}],
                                       extra_headers=replay_headers(uuid.uuid4().hex, FIXTURE_OF[("openai", False)]))
    seen_in, seen_out = r.usage.prompt_tokens, r.usage.completion_tokens
    # Enough requests for at least 100 output tokens (the case: 100 tokens read 102.44).
    rounds = max(1, math.ceil(100 / max(1, seen_out))) - 1
    for _ in range(rounds):
        r = client.chat.completions.create(model="ct-tokens-route", messages=[{"role": "user", "content": "Say hello"}],
                                           extra_headers=replay_headers(uuid.uuid4().hex, FIXTURE_OF[("openai", False)]))
        seen_in += r.usage.prompt_tokens
        seen_out += r.usage.completion_tokens
    deadline = time.monotonic() + 5
    while True:
        text = prometheus(env)
        got_in = metric_value(text, "ai_gateway_tokens_total", model="tokens-target", type="input")
        got_out = metric_value(text, "ai_gateway_tokens_total", model="tokens-target", type="output")
        if (got_in, got_out) == (seen_in, seen_out) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (got_in, got_out) == (seen_in, seen_out), text[:2000]
    assert float(got_out).is_integer()
