"""Anthropic SDK clients on `POST /v1/messages`, and OpenAI SDK clients on `POST /v1/embeddings`.

Served by Anthropic (passthrough): every recorded Anthropic request is sent with the official
`anthropic` SDK; the replay answers with the recording; the SDK must parse exactly what was
recorded, the client must receive the recorded bytes unchanged, and the provider must receive the
client's body with only the model changed (and the gateway's credential, never the client's).

Served by an OpenAI model: requests derived from the recorded OpenAI requests are sent with the
`anthropic` SDK (`messages.create` and `messages.stream`); the replay answers with the OpenAI
recording; the SDK must see the recording's text, tool calls, stop reason and usage, and the
provider must receive an OpenAI request equivalent to the recorded one.

Expected values always come from the recordings.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

import recordings
from conftest import (ANTHROPIC_KEY, CLAUDE, CLAUDE_DOWN, CLAUDE_UPSTREAM, CLIENT_KEY, FIXTURES, GPT, GPT_UPSTREAM,
                      MAX_REQUEST_BYTES, OPENAI_KEY, raw_request, replay_headers)

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}


def _cases(prefix: str, path_suffix: str) -> list[tuple[str, int, Any]]:
    return [
        (name, index, x)
        for name, cassette in sorted(CASSETTES.items())
        if name.startswith(prefix)
        for index, x in enumerate(cassette.interactions)
        if x.path.endswith(path_suffix) and isinstance(x.request_body, dict)
    ]


ANTHROPIC = _cases("anthropic/", "/v1/messages")
A_JSON = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in ANTHROPIC if x.status == 200 and not x.is_stream]
A_STREAM = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in ANTHROPIC if x.status == 200 and x.is_stream]
A_ERROR = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in ANTHROPIC if x.status != 200]
OPENAI = _cases("openai/", "/v1/chat/completions")
O_JSON = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in OPENAI if x.status == 200 and not x.is_stream]
O_STREAM = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in OPENAI if x.status == 200 and x.is_stream]
O_ERROR = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in OPENAI if x.status != 200]


class Captured:
    """The exact request bytes the SDK put on the wire (httpx event hook)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> None:
        request.read()
        self.bodies.append(request.content)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})


def sdk(gateway, captured: Captured | None = None) -> anthropic.Anthropic:
    hooks = {"request": [captured]} if captured else {}
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60,
                               http_client=httpx.Client(event_hooks=hooks, timeout=60))


def params_from(recorded: dict[str, Any]) -> dict[str, Any]:
    """SDK keyword arguments for a recorded Anthropic request, with the gateway's model name."""
    params = {k: v for k, v in recorded.items() if k not in ("model", "stream")}
    params["model"] = CLAUDE
    return params


def test_recordings_present():
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert A_JSON and A_STREAM and A_ERROR and O_JSON and O_STREAM and O_ERROR


# --- served by Anthropic: passthrough ---------------------------------------------------------

def check_passthrough_request(received: dict[str, Any], client_body: bytes, client_headers: dict[str, str]) -> None:
    """The provider got the client's bytes with only the model replaced, and our credential."""
    old, new = json.dumps(CLAUDE).encode(), json.dumps(CLAUDE_UPSTREAM).encode()
    assert client_body.count(old) == 1
    import base64
    assert base64.b64decode(received["body_b64"]) == client_body.replace(old, new)
    assert received["path"] == "/v1/messages"
    headers = received["headers"]
    assert headers.get("x-api-key") == ANTHROPIC_KEY
    assert "authorization" not in headers
    assert CLIENT_KEY not in json.dumps(headers)
    assert headers.get("anthropic-version") == client_headers.get("anthropic-version")


def as_client_model(body: bytes) -> bytes:
    """The recorded answer as the client must get it: Anthropic's bytes with only the first `model`
    value (the message's, or message_start's in a stream) naming the model the client asked for,
    since Claude Code drops its thinking blocks when the answer names another model."""
    return re.sub(rb'("model"\s*:\s*)"[^"]*"', lambda m: m.group(1) + json.dumps(CLAUDE).encode(), body, count=1)


@pytest.mark.parametrize("name,index,interaction", A_JSON)
def test_passthrough_json(gateway, upstream, test_id, name, index, interaction):
    captured = Captured()
    raw = sdk(gateway, captured).messages.with_raw_response.create(
        **params_from(interaction.request_body), extra_headers=replay_headers(test_id, name, index))
    assert raw.http_response.content == as_client_model(interaction.body), "only the model may change"
    message = raw.parse()
    expected = anthropic.types.Message.model_validate(dict(json.loads(interaction.body), model=CLAUDE))
    assert message.model_dump() == expected.model_dump()
    assert raw.headers["x-ai-gateway-model"] == CLAUDE_UPSTREAM
    check_passthrough_request(upstream.only(test_id), captured.bodies[0], captured.headers[0])


@pytest.mark.parametrize("name,index,interaction", A_STREAM)
def test_passthrough_stream(gateway, upstream, test_id, name, index, interaction):
    captured = Captured()
    client = sdk(gateway, captured)
    with client.messages.stream(**params_from(interaction.request_body),
                                extra_headers=replay_headers(test_id, name, index, **{"x-replay-chunking": "split"})) as stream:
        final = stream.get_final_message()
    # What the SDK accumulates from the recording itself, without the gateway.
    events = [json.loads(data) for _name, data in recordings.sse_events(interaction.body)]
    start = events[0]["message"]
    delta = next(e for e in events if e["type"] == "message_delta")
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    thinking = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
    assert "".join(b.text for b in final.content if b.type == "text") == text
    assert "".join(b.thinking for b in final.content if b.type == "thinking") == thinking
    assert final.id == start["id"] and final.model == CLAUDE != start["model"]
    assert final.stop_reason == delta["delta"]["stop_reason"]
    assert final.usage.input_tokens == start["usage"]["input_tokens"]
    assert final.usage.output_tokens == delta["usage"]["output_tokens"]
    check_passthrough_request(upstream.only(test_id), captured.bodies[0], captured.headers[0])


@pytest.mark.parametrize("name,index,interaction", A_STREAM)
def test_passthrough_stream_bytes_unchanged(gateway, test_id, name, index, interaction):
    body = dict(interaction.request_body, model=CLAUDE, stream=True)
    status, headers, got = raw_request(gateway, "POST", "/v1/messages", json.dumps(body).encode(),
                                       headers={**replay_headers(test_id, name, index, **{"x-replay-chunking": "bytes:7"}),
                                                "anthropic-version": "2023-06-01"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert got == as_client_model(interaction.body)


@pytest.mark.parametrize("name,index,interaction", A_ERROR)
def test_passthrough_provider_error(gateway, upstream, test_id, name, index, interaction):
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk(gateway).messages.create(**params_from(interaction.request_body), extra_headers=replay_headers(test_id, name, index))
    recorded = json.loads(interaction.body)
    assert info.value.status_code == interaction.status
    assert info.value.body == recorded
    assert info.value.response.content == interaction.body


def test_anthropic_headers_reach_anthropic_only(gateway, upstream, test_id):
    name, index, x = next((n, i, x) for n, i, x in ANTHROPIC if x.status == 200 and not x.is_stream)
    beta = "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    sdk(gateway).messages.create(**params_from(x.request_body),
                                 extra_headers=replay_headers(test_id, name, index, **{"anthropic-beta": beta, "anthropic-version": "2023-06-01"}))
    headers = upstream.only(test_id)["headers"]
    assert headers.get("anthropic-beta") == beta
    assert headers.get("anthropic-version") == "2023-06-01"

    other = test_id + "-openai"
    sdk(gateway).messages.create(model=GPT, max_tokens=50, messages=[{"role": "user", "content": "Hello!"}],
                                 extra_headers=replay_headers(other, "openai/chat-basic.yaml", 0, **{"anthropic-beta": beta}))
    headers = upstream.only(other)["headers"]
    assert "anthropic-beta" not in headers and "anthropic-version" not in headers
    assert headers.get("authorization") == f"Bearer {OPENAI_KEY}"
    assert CLIENT_KEY not in json.dumps(headers)


# --- served by an OpenAI model --------------------------------------------------------------------

def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def anthropic_params_from_openai(recorded: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic request an application would send to get the recorded OpenAI request."""
    system = [_text(m["content"]) for m in recorded["messages"] if m["role"] in ("system", "developer")]
    messages = []
    for m in recorded["messages"]:
        if m["role"] in ("system", "developer"):
            continue
        if m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": _text(m.get("content") or "")}
            if messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            blocks = [{"type": "text", "text": _text(m["content"])}] if m.get("content") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["function"]["name"],
                        "input": json.loads(c["function"]["arguments"] or "{}")} for c in m["tool_calls"]]
            messages.append({"role": "assistant", "content": blocks})
            continue
        content = m["content"]
        if isinstance(content, list):
            blocks = []
            for p in content:
                if p["type"] == "text":
                    blocks.append({"type": "text", "text": p["text"]})
                elif p["type"] == "image_url":
                    url = p["image_url"]["url"]
                    if url.startswith("data:"):
                        media, data = url[5:].split(";base64,", 1)
                        blocks.append({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
                    else:
                        blocks.append({"type": "image", "source": {"type": "url", "url": url}})
            content = blocks
        messages.append({"role": m["role"], "content": content})
    if not messages:
        # Only a system/developer prompt: Anthropic needs a user turn, so it becomes one.
        messages, system = [{"role": "user", "content": "\n".join(system)}], []
    params: dict[str, Any] = {"model": GPT, "messages": messages,
                              "max_tokens": recorded.get("max_completion_tokens") or recorded.get("max_tokens") or 1000}
    if system:
        params["system"] = "\n".join(system)
    if "temperature" in recorded:
        # This SDK version has no `temperature` argument any more; the API still takes it.
        params["extra_body"] = {"temperature": recorded["temperature"]}
    if recorded.get("tools"):
        params["tools"] = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
                            "input_schema": t["function"].get("parameters") or {"type": "object"}} for t in recorded["tools"]]
        choice = recorded.get("tool_choice")
        if isinstance(choice, dict):
            params["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
        elif choice:
            params["tool_choice"] = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
        if recorded.get("parallel_tool_calls") is False:
            params["tool_choice"]["disable_parallel_tool_use"] = True
    return params


def normalize_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of an OpenAI request that decide the answer, in one canonical form."""
    only_system = all(m["role"] in ("system", "developer") for m in body["messages"])

    def message(m: dict[str, Any]) -> dict[str, Any]:
        role = "system" if m["role"] in ("system", "developer") else m["role"]
        if only_system:
            role = "user"
        content = m.get("content")
        if isinstance(content, list) and all(p.get("type") == "text" for p in content):
            content = _text(content)
        out = {"role": role, "content": content or None}
        if m.get("tool_calls"):
            out["tool_calls"] = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"] or "{}")) for c in m["tool_calls"]]
        if m.get("tool_call_id"):
            out["tool_call_id"] = m["tool_call_id"]
        return out

    tools = [{"name": t["function"]["name"], "description": t["function"].get("description") or "",
              "parameters": t["function"].get("parameters") or {"type": "object"}} for t in body.get("tools") or []]
    choice = body.get("tool_choice")
    return {
        "messages": [message(m) for m in body["messages"]],
        "tools": tools,
        "tool_choice": choice if tools else None,
        "parallel_tool_calls": body.get("parallel_tool_calls") is False,
        "stream": bool(body.get("stream")),
    }


def expected_from_openai(interaction) -> dict[str, Any]:
    """Text, tool calls, stop reason and usage an Anthropic client must see for an OpenAI answer."""
    finish, usage, text, calls = None, {}, "", {}
    if interaction.is_stream:
        for data in recordings.openai_sse_data(interaction.body):
            if data == "[DONE]":
                continue
            chunk = json.loads(data)
            usage = chunk.get("usage") or usage
            for c in chunk.get("choices", []):
                d = c.get("delta", {})
                text += d.get("content") or ""
                for tc in d.get("tool_calls") or []:
                    slot = calls.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    slot["name"] = (tc.get("function") or {}).get("name") or slot["name"]
                    slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
                finish = c.get("finish_reason") or finish
    else:
        doc = json.loads(interaction.body)
        message = doc["choices"][0]["message"]
        text = message.get("content") or ""
        for i, tc in enumerate(message.get("tool_calls") or []):
            calls[i] = {"id": tc["id"], "name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
        finish, usage = doc["choices"][0]["finish_reason"], doc["usage"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "text": text,
        "tool_calls": [(c["id"], c["name"], json.loads(c["arguments"] or "{}")) for _, c in sorted(calls.items())],
        "stop_reason": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}[finish],
        # Recordings made without stream_options.include_usage have no usage: zero is then right.
        "input_tokens": usage.get("prompt_tokens", 0) - cached,
        "output_tokens": usage.get("completion_tokens", 0),
        "cache_read": cached,
    }


def check_message(message, exp: dict[str, Any]) -> None:
    assert "".join(b.text for b in message.content if b.type == "text") == exp["text"]
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == exp["tool_calls"]
    assert message.stop_reason == exp["stop_reason"]
    assert message.usage.input_tokens == exp["input_tokens"]
    assert message.usage.output_tokens == exp["output_tokens"]
    assert (message.usage.cache_read_input_tokens or 0) == exp["cache_read"]
    assert message.role == "assistant" and message.type == "message"


def check_openai_upstream(received: dict[str, Any], recorded: dict[str, Any], stream: bool) -> None:
    assert received["path"] == "/v1/chat/completions"
    headers = received["headers"]
    assert headers.get("authorization") == f"Bearer {OPENAI_KEY}"
    assert "x-api-key" not in headers and CLIENT_KEY not in json.dumps(headers)
    body = received["json"]
    assert body["model"] == GPT_UPSTREAM
    if stream:
        assert body["stream_options"] == {"include_usage": True}
    assert normalize_openai_request(body) == normalize_openai_request(dict(recorded, stream=stream))


@pytest.mark.parametrize("name,index,interaction", O_JSON)
def test_openai_served_json(gateway, upstream, test_id, name, index, interaction):
    params = anthropic_params_from_openai(interaction.request_body)
    message = sdk(gateway).messages.create(**params, extra_headers=replay_headers(test_id, name, index))
    check_message(message, expected_from_openai(interaction))
    check_openai_upstream(upstream.only(test_id), interaction.request_body, stream=False)


@pytest.mark.parametrize("chunking", ["events", "split", "bytes:5"])
@pytest.mark.parametrize("name,index,interaction", O_STREAM)
def test_openai_served_stream(gateway, upstream, test_id, name, index, interaction, chunking):
    params = anthropic_params_from_openai(interaction.request_body)
    events = []
    with sdk(gateway).messages.stream(**params, extra_headers=replay_headers(test_id, name, index, **{"x-replay-chunking": chunking})) as stream:
        for event in stream:
            events.append(event)
        final = stream.get_final_message()
    check_message(final, expected_from_openai(interaction))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    # Block indexes count from 0 and every started block is stopped.
    starts = [e.index for e in events if e.type == "content_block_start"]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert starts == list(range(len(starts))) and stops == starts
    check_openai_upstream(upstream.only(test_id), interaction.request_body, stream=True)


@pytest.mark.parametrize("name,index,interaction", O_ERROR)
def test_openai_served_provider_error(gateway, test_id, name, index, interaction):
    # The recorded requests were made invalid on purpose (null content, max_tokens 0), which the
    # gateway itself rejects for Anthropic clients; a valid request gets the recorded answer.
    params = {"model": GPT, "max_tokens": 50, "messages": [{"role": "user", "content": "Hello!"}]}
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk(gateway).messages.create(**params, extra_headers=replay_headers(test_id, name, index))
    assert info.value.status_code == interaction.status
    recorded = json.loads(interaction.body)["error"]
    assert info.value.body == {"type": "error", "error": {"type": info.value.body["error"]["type"], "message": recorded["message"]}}
    expected_class = {400: anthropic.BadRequestError, 401: anthropic.AuthenticationError, 404: anthropic.NotFoundError}
    assert isinstance(info.value, expected_class[interaction.status])


@pytest.mark.parametrize("name,index,interaction", A_JSON + A_STREAM)
def test_anthropic_requests_served_by_openai(gateway, upstream, test_id, name, index, interaction):
    """Each recorded Anthropic request, sent to an OpenAI model: translated, answered, parsed."""
    recorded = interaction.request_body
    fixture = "openai/chat-streaming.yaml" if interaction.is_stream else "openai/chat-basic.yaml"
    params = dict(params_from(recorded), model=GPT)
    client = sdk(gateway)
    headers = replay_headers(test_id, fixture, 0)
    if interaction.is_stream:
        with client.messages.stream(**params, extra_headers=headers) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**params, extra_headers=headers)
    answer = CASSETTES[fixture].interactions[0]
    check_message(message, expected_from_openai(answer))
    body = upstream.only(test_id)["json"]
    assert body["model"] == GPT_UPSTREAM
    assert body["max_completion_tokens"] == recorded["max_tokens"]
    # Every user and assistant turn is there, tool results as tool messages right after the calls.
    calls = [b["id"] for m in recorded["messages"] if isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_use"]
    results = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
    assert results == calls
    for i, m in enumerate(body["messages"]):
        if m["role"] == "tool":
            previous = next(p for p in reversed(body["messages"][:i]) if p["role"] != "tool")
            assert m["tool_call_id"] in [c["id"] for c in previous.get("tool_calls", [])]
    if recorded.get("system"):
        assert body["messages"][0]["role"] == "system"
    assert [t["function"]["name"] for t in body.get("tools", [])] == [t["name"] for t in recorded.get("tools", [])]


# --- errors the gateway produces, in Anthropic's shape --------------------------------------------

def assert_anthropic_error(status: int, body: bytes, expected_status: int, error_type: str) -> str:
    assert status == expected_status, (status, body[:300])
    doc = json.loads(body)
    assert set(doc) == {"type", "error"} and doc["type"] == "error", doc
    assert doc["error"]["type"] == error_type, doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    return doc["error"]["message"]


def test_unknown_model_is_anthropic_not_found(gateway, upstream, test_id):
    with pytest.raises(anthropic.NotFoundError) as info:
        sdk(gateway).messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                     extra_headers={"x-test-id": test_id})
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "not_found_error"
    assert upstream.requests(test_id) == []


@pytest.mark.parametrize("body,fragment", [
    ({"model": CLAUDE, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": CLAUDE, "max_tokens": 5, "messages": []}, "messages"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
])
def test_invalid_requests_are_anthropic_400(gateway, upstream, test_id, body, fragment):
    status, _, got = raw_request(gateway, "POST", "/v1/messages", json.dumps(body).encode(), headers={"x-test-id": test_id})
    assert fragment in assert_anthropic_error(status, got, 400, "invalid_request_error")
    assert upstream.requests(test_id) == []


@pytest.mark.parametrize("extra,dropped", [
    ({"container": "c"}, "container"),
    ({"mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]}, "mcp_servers"),
    ({"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}, "context_management"),
    # A server tool OpenAI cannot run: the client tools array is an extra the Chat codec drops.
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools"),
])
def test_anthropic_only_fields_are_dropped_and_named_on_openai(gateway, upstream, test_id, extra, dropped):
    """Were 400s through Chat Completions; the conversation model drops what OpenAI cannot take
    and names it in `x-ai-gateway-dropped`, and the answer names the client's model."""
    body = {"model": GPT, "max_tokens": 5, "messages": [{"role": "user", "content": "Hello!"}], **extra}
    status, headers, got = raw_request(gateway, "POST", "/v1/messages", json.dumps(body).encode(),
                                       headers=replay_headers(test_id, "openai/chat-basic.yaml", 0))
    assert status == 200, got[:300]
    assert dropped in [n.strip() for n in headers.get("x-ai-gateway-dropped", "").split(",")], headers
    assert json.loads(got)["model"] == GPT
    assert headers.get("x-ai-gateway-model") == GPT_UPSTREAM
    sent = upstream.only(test_id)["json"]
    assert not set(extra) & set(sent) or sent.get("tools") in (None, []), sent


def test_bad_json_and_sdk_exception(gateway, test_id):
    status, _, got = raw_request(gateway, "POST", "/v1/messages", b'{"model": ', headers={"x-test-id": test_id})
    assert_anthropic_error(status, got, 400, "invalid_request_error")
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(gateway).messages.create(model=GPT, max_tokens=5, messages=[{"role": "user", "content": [
            # A text document is now text for OpenAI; a PDF by URL it cannot take.
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}],
            extra_headers={"x-test-id": test_id})
    assert info.value.body["error"]["type"] == "invalid_request_error"


def test_count_tokens_passes_through_with_the_gateways_credential(gateway, upstream, test_id):
    name = "anthropic/test_anthropic_count_tokens_with_native_tools.yaml"
    recorded = CASSETTES[name].interactions[0]
    count = sdk(gateway).messages.with_raw_response.count_tokens(
        model=CLAUDE, messages=recorded.request_body["messages"], extra_headers=replay_headers(test_id, name, 0))
    assert count.parse().input_tokens == json.loads(recorded.body)["input_tokens"]
    assert count.headers["x-ai-gateway-token-count"] == "exact"
    sent = upstream.only(test_id)
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["json"]["model"] == CLAUDE_UPSTREAM and "max_tokens" not in sent["json"]
    assert sent["headers"].get("x-api-key") == ANTHROPIC_KEY
    assert CLIENT_KEY not in json.dumps(sent["headers"])


def test_wrong_method_and_too_large(gateway, test_id):
    status, _, got = raw_request(gateway, "GET", "/v1/messages", None, headers={"x-test-id": test_id})
    assert_anthropic_error(status, got, 405, "invalid_request_error")
    big = json.dumps({"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "x" * (MAX_REQUEST_BYTES + 10)}]})
    status, _, got = raw_request(gateway, "POST", "/v1/messages", big.encode(), headers={"x-test-id": test_id})
    assert_anthropic_error(status, got, 413, "request_too_large")


def test_upstream_down_is_anthropic_error(gateway, test_id):
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk(gateway).messages.create(model=CLAUDE_DOWN, max_tokens=5, messages=[{"role": "user", "content": "x"}],
                                     extra_headers={"x-test-id": test_id})
    assert info.value.status_code >= 500
    assert info.value.body["type"] == "error", info.value.body
    assert info.value.body["error"]["type"] in ("api_error", "overloaded_error", "timeout_error")


# --- embeddings -----------------------------------------------------------------------------------

def test_embeddings_openai_passthrough(gateway, client, upstream, test_id):
    name = "openai/embeddings-basic.yaml"
    x = CASSETTES[name].interactions[0]
    recorded_request, recorded = x.request_body, json.loads(x.body)
    resp = client.embeddings.create(model=GPT, input=recorded_request["input"], encoding_format=recorded_request["encoding_format"],
                                    extra_headers=replay_headers(test_id, name, 0))
    assert [d.embedding for d in resp.data] == [d["embedding"] for d in recorded["data"]]
    assert resp.usage.prompt_tokens == recorded["usage"]["prompt_tokens"]
    assert resp.usage.total_tokens == recorded["usage"]["total_tokens"]
    assert resp.model == recorded["model"]
    received = upstream.only(test_id)
    assert received["path"] == "/v1/embeddings"
    assert received["json"] == dict(recorded_request, model=GPT_UPSTREAM)
    assert received["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"


def test_embeddings_errors_are_openai_shaped(gateway, upstream, test_id):
    status, _, got = raw_request(gateway, "POST", "/v1/embeddings", json.dumps({"model": GPT}).encode(), headers={"x-test-id": test_id})
    assert status == 400 and json.loads(got)["error"]["param"] == "input"
    status, _, got = raw_request(gateway, "POST", "/v1/embeddings", json.dumps({"model": CLAUDE, "input": "x"}).encode(),
                                 headers={"x-test-id": test_id})
    assert status == 400 and json.loads(got)["error"]["code"] == "unsupported_provider"
    assert upstream.requests(test_id) == []
