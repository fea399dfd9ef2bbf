"""Every recorded OpenAI Chat Completions exchange through the passthrough.

The client's body must reach OpenAI with only the model changed (unknown fields included), the
provider key must replace the client's, usage must always be requested upstream for streams,
and the extra usage chunk must vanish again when the client did not ask for it.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import recordings
from conftest import CLIENT_KEY, FIXTURES, GPT, GPT_UPSTREAM, OPENAI_KEY, replay_headers

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
CASES = [
    (name, index, interaction)
    for name, cassette in sorted(CASSETTES.items())
    if name.startswith("openai/")
    for index, interaction in enumerate(cassette.interactions)
    if recordings.replay.family_of_path(interaction.path) == "openai"
]
JSON_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and not x.is_stream]
STREAM_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and x.is_stream]
ERROR_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status != 200]

# A field no OpenAI SDK knows: the passthrough must forward it untouched.
UNKNOWN_FIELD = {"x_e2e_unknown": {"kept": [1, "two", None, {"three": 3.5}]}}


def test_recordings_present():
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert JSON_CASES and STREAM_CASES and ERROR_CASES


def _split(recorded: dict[str, Any]) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """messages, SDK keyword arguments, and everything else (sent through extra_body)."""
    body = dict(recorded)
    body.pop("model", None)
    messages = body.pop("messages")
    kwargs = {k: body.pop(k) for k in ("stream", "stream_options") if k in body}
    return messages, kwargs, body


def _call(api, interaction, headers: dict[str, str], **overrides: Any):
    messages, kwargs, extra = _split(interaction.request_body)
    kwargs.update(overrides)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return api.create(model=GPT, messages=messages, extra_headers=headers,
                      extra_body={**extra, **UNKNOWN_FIELD}, **kwargs)


def check_upstream(received: dict[str, Any], expected_body: dict[str, Any]) -> None:
    assert received["method"] == "POST"
    assert received["path"] == "/v1/chat/completions"
    headers = received["headers"]
    assert headers.get("authorization") == f"Bearer {OPENAI_KEY}"
    assert "x-api-key" not in headers
    assert CLIENT_KEY not in json.dumps(headers) and CLIENT_KEY not in received["body"]
    assert received["json"] == expected_body


def _expected_upstream_body(recorded: dict[str, Any], stream_options: dict[str, Any] | None) -> dict[str, Any]:
    body = dict(recorded, model=GPT_UPSTREAM, **UNKNOWN_FIELD)
    body.pop("stream_options", None)
    if body.get("stream"):
        body["stream_options"] = dict(stream_options or {}, include_usage=True)
    return body


@pytest.mark.parametrize("name,index,interaction", JSON_CASES)
def test_json_passthrough(client, upstream, test_id, name, index, interaction):
    raw = _call(client.chat.completions.with_raw_response, interaction, replay_headers(test_id, name, index))
    assert raw.http_response.status_code == 200
    # The provider's answer is returned byte for byte.
    assert raw.http_response.content == interaction.body
    assert raw.http_response.headers["content-type"] == interaction.content_type
    if interaction.content_type.startswith("application/json"):
        recorded = json.loads(interaction.body)
        completion = raw.parse()
        assert completion.choices[0].message.content == recorded["choices"][0]["message"].get("content")
        assert completion.choices[0].finish_reason == recorded["choices"][0]["finish_reason"]
        assert completion.usage.total_tokens == recorded["usage"]["total_tokens"]
    check_upstream(upstream.only(test_id), _expected_upstream_body(interaction.request_body, None))


@pytest.mark.parametrize("client_usage", [True, False])
@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream_passthrough(client, upstream, test_id, name, index, interaction, client_usage):
    stream_options = {"include_usage": True} if client_usage else None
    headers = replay_headers(test_id, name, index, **{"x-replay-chunking": "split", "x-replay-chunk-delay": "0"})
    with _call(client.chat.completions.with_streaming_response, interaction, headers,
               stream=True, stream_options=stream_options) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = resp.read()
    recorded = recordings.openai_sse_data(interaction.body)
    expected = [d for d in recorded if client_usage or not recordings.is_usage_only_chunk(d)]
    got = recordings.openai_sse_data(body)
    assert got[-1] == "[DONE]"
    assert [json.loads(d) if d != "[DONE]" else d for d in got] == [
        json.loads(d) if d != "[DONE]" else d for d in expected]
    check_upstream(upstream.only(test_id), _expected_upstream_body(interaction.request_body, None))


@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream_with_sdk(client, test_id, name, index, interaction):
    recorded = [json.loads(d) for d in recordings.openai_sse_data(interaction.body) if d != "[DONE]"]
    expected_text = "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in recorded if c.get("choices"))
    expected_finish = [c["choices"][0]["finish_reason"] for c in recorded if c.get("choices") and c["choices"][0].get("finish_reason")]
    recorded_usage = [c["usage"] for c in recorded if c.get("usage")]
    stream = _call(client.chat.completions, interaction, replay_headers(test_id, name, index),
                   stream=True, stream_options={"include_usage": True})
    text, finish, usage = "", [], []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
        if chunk.usage is not None:
            usage.append(chunk.usage.total_tokens)
    assert text == expected_text
    assert finish == expected_finish
    assert usage == [u["total_tokens"] for u in recorded_usage]


@pytest.mark.parametrize("name,index,interaction", ERROR_CASES)
def test_provider_error_passthrough(client, upstream, test_id, name, index, interaction):
    with pytest.raises(openai.APIStatusError) as info:
        _call(client.chat.completions, interaction, replay_headers(test_id, name, index))
    assert info.value.status_code == interaction.status
    assert info.value.response.json() == json.loads(interaction.body)
    check_upstream(upstream.only(test_id), _expected_upstream_body(interaction.request_body, None))


def test_stream_options_of_the_client_are_kept(client, upstream, test_id):
    """Other stream_options members survive the include_usage injection."""
    name = "openai/chat-streaming.yaml"
    interaction = CASSETTES[name].interactions[0]
    with _call(client.chat.completions.with_streaming_response, interaction, replay_headers(test_id, name, 0),
               stream=True, stream_options={"include_usage": False, "include_obfuscation": False}) as resp:
        resp.read()
    sent = upstream.only(test_id)["json"]
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
