"""Every recorded Anthropic exchange, replayed behind the gateway and called with the OpenAI SDK.

For each interaction the test builds the OpenAI request an application would send, lets the
replay upstream answer with the recording, and checks that the SDK sees the recording's text,
tool calls, finish reason and token counts, and that the provider received an Anthropic request
equivalent to the recorded one (target model, configured credential, nothing of the client's).
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import openai
import pytest

import recordings
from conftest import (ANTHROPIC_KEY, CLAUDE, CLAUDE_UPSTREAM, CLIENT_KEY, FIXTURES, assert_openai_error,
                      replay_headers)

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
CASES = [
    (name, index, interaction)
    for name, cassette in sorted(CASSETTES.items())
    if name.startswith("anthropic/")
    for index, interaction in enumerate(cassette.interactions)
    if interaction.path.endswith("/v1/messages")  # count_tokens answers are not messages
]
JSON_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and not x.is_stream]
STREAM_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and x.is_stream]
ERROR_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status != 200]


def test_recordings_present():
    """The parametrised tests below are only meaningful if the recordings were found."""
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert JSON_CASES and STREAM_CASES and ERROR_CASES


def _create(client, interaction, headers: dict[str, str], **overrides: Any):
    request = recordings.openai_request_from_anthropic(interaction.request_body)
    messages = request.pop("messages")
    request.update(overrides)
    return client.chat.completions.create(model=CLAUDE, messages=messages, extra_headers=headers, **request)


def check_upstream_request(received: dict[str, Any], recorded: dict[str, Any], stream: bool) -> None:
    """The provider got an Anthropic request equivalent to the recorded one, with our credential."""
    assert received["method"] == "POST"
    assert received["path"] == "/v1/messages"
    headers = received["headers"]
    assert headers.get("x-api-key") == ANTHROPIC_KEY
    assert "authorization" not in headers, "the client's Authorization header reached the provider"
    assert headers.get("anthropic-version"), "anthropic-version header missing"
    assert CLIENT_KEY not in json.dumps(headers) and CLIENT_KEY not in received["body"]
    body = received["json"]
    assert isinstance(body, dict), f"upstream body is not JSON: {received['body'][:300]!r}"
    assert body["model"] == CLAUDE_UPSTREAM
    assert bool(body.get("stream")) is stream
    got = recordings.normalize_anthropic_request(body)
    want = recordings.normalize_anthropic_request(dict(recorded, stream=stream))
    assert got == want


def check_message(message, finish_reason: str, usage, exp: recordings.Expected) -> None:
    assert (message.content or "") == exp.text
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in (message.tool_calls or [])]
    assert calls == exp.tool_calls
    for call in message.tool_calls or []:
        assert call.type == "function"
        assert isinstance(call.function.arguments, str)
    assert finish_reason == exp.finish_reason
    assert usage is not None
    assert usage.prompt_tokens == exp.prompt_tokens
    assert usage.completion_tokens == exp.completion_tokens
    assert usage.total_tokens == exp.total_tokens
    if usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens is not None:
        assert usage.prompt_tokens_details.cached_tokens == exp.cached_tokens


@pytest.mark.parametrize("name,index,interaction", JSON_CASES)
def test_json_response(client, upstream, test_id, name, index, interaction):
    resp = _create(client, interaction, replay_headers(test_id, name, index))
    exp = recordings.expected_from_anthropic(interaction)
    assert resp.object == "chat.completion"
    assert len(resp.choices) == 1 and resp.choices[0].index == 0
    assert resp.choices[0].message.role == "assistant"
    assert isinstance(resp.created, int) and resp.created > 0
    assert resp.id
    check_message(resp.choices[0].message, resp.choices[0].finish_reason, resp.usage, exp)
    check_upstream_request(upstream.only(test_id), interaction.request_body, stream=False)


def _collect_stream(stream) -> dict[str, Any]:
    text, reasoning, finish, usage_chunks, chunks = "", "", None, [], []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in stream:
        chunks.append(chunk)
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage_chunks.append(chunk)
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            extra = getattr(delta, "model_extra", None) or {}
            reasoning += extra.get("reasoning_content") or ""
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
            if choice.finish_reason:
                assert finish is None, "finish_reason sent twice"
                finish = choice.finish_reason
    tool_calls = [(c["id"], c["name"], json.loads(c["arguments"] or "{}")) for _, c in sorted(calls.items())]
    return {"text": text, "reasoning": reasoning, "finish": finish, "usage_chunks": usage_chunks,
            "tool_calls": tool_calls, "chunks": chunks}


@pytest.mark.parametrize("include_usage,chunking", [
    (True, "events"), (False, "events"), (True, "split"), (True, "bytes:7"), (False, "bytes:1"),
])
@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream(client, upstream, test_id, name, index, interaction, include_usage, chunking):
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    headers = replay_headers(test_id, name, index, **{"x-replay-chunking": chunking, "x-replay-chunk-delay": "0"})
    got = _collect_stream(_create(client, interaction, headers, **extra))
    exp = recordings.expected_from_anthropic(interaction)
    assert got["text"] == exp.text
    assert got["tool_calls"] == exp.tool_calls
    if exp.reasoning:
        assert got["reasoning"] == exp.reasoning
    assert got["finish"] == exp.finish_reason
    if include_usage:
        assert len(got["usage_chunks"]) == 1, "exactly one usage chunk expected"
        last = got["chunks"][-1]
        assert last is got["usage_chunks"][0], "the usage chunk must be the last one"
        assert last.choices == []
        usage = last.usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
            exp.prompt_tokens, exp.completion_tokens, exp.total_tokens)
    else:
        assert got["usage_chunks"] == [], "usage chunk sent although the client did not ask"
    ids = {c.id for c in got["chunks"]}
    assert len(ids) == 1, "all chunks of one completion share an id"
    received = upstream.only(test_id)
    check_upstream_request(received, interaction.request_body, stream=True)
    assert "stream_options" not in received["json"]


@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream_raw_arrives_incrementally_and_ends_with_done(gateway, test_id, name, index, interaction):
    """Raw SSE as a curl user sees it: chunks arrive as the provider sends them, then [DONE]."""
    upstream_events = len(recordings.sse_events(interaction.body))
    # About two seconds per stream whatever its length, so the arrival times are measurable.
    delay = max(0.02, min(0.2, 2.0 / upstream_events))
    request = recordings.openai_request_from_anthropic(interaction.request_body)
    request.update(model=CLAUDE, stream=True)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        headers = {"content-type": "application/json", **replay_headers(test_id, name, index),
                   "x-replay-chunk-delay": str(delay)}
        conn.request("POST", "/v1/chat/completions", body=json.dumps(request), headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        assert resp.getheader("content-length") is None
        arrivals: list[tuple[float, bytes]] = []
        start = time.monotonic()
        while True:
            data = resp.read1(65536)
            if not data:
                break
            arrivals.append((time.monotonic() - start, data))
    finally:
        conn.close()
    body = b"".join(d for _, d in arrivals)
    data = recordings.openai_sse_data(body)
    assert data[-1] == "[DONE]"
    assert all(json.loads(d)["object"] == "chat.completion.chunk" for d in data[:-1])
    total = upstream_events * delay
    # Translated chunks must reach the client while the provider is still sending.
    assert arrivals[0][0] < total - 2 * delay, f"first bytes after {arrivals[0][0]:.2f}s of ~{total:.2f}s"
    assert len(arrivals) >= 3


@pytest.mark.parametrize("name,index,interaction", ERROR_CASES)
def test_provider_error(client, upstream, test_id, name, index, interaction):
    recorded_error = json.loads(interaction.body)["error"]
    with pytest.raises(openai.APIStatusError) as info:
        _create(client, interaction, replay_headers(test_id, name, index))
    err = info.value
    assert err.status_code == interaction.status
    error = assert_openai_error(err.status_code, err.response.content, interaction.status)
    assert recorded_error["message"] in error["message"]
    assert err.type == error["type"]
    assert upstream.only(test_id)["path"] == "/v1/messages"


@pytest.mark.parametrize("name,index,interaction", ERROR_CASES)
def test_provider_error_when_streaming(client, test_id, name, index, interaction):
    """A provider error before any stream data is a plain HTTP error, not an empty stream."""
    with pytest.raises(openai.APIStatusError) as info:
        for _ in _create(client, interaction, replay_headers(test_id, name, index), stream=True):
            pass
    assert info.value.status_code == interaction.status
    assert_openai_error(info.value.status_code, info.value.response.read(), interaction.status)
