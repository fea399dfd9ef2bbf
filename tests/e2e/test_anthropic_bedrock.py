"""Anthropic Messages (`POST /v1/messages`) served by AWS Bedrock Converse, called with the
official `anthropic` SDK through Envoy against the signature-verifying Bedrock replay.

For every recorded Bedrock exchange the test sends the Anthropic request an application would
send for the recorded Converse request, and checks that the provider received the recorded
Converse request (path, body, SigV4 with the session token, no anthropic-* headers, no client
key) and that the SDK sees the recording's text, thinking, tool calls, stop reason and tokens,
streaming (Anthropic SSE events) and not. Errors, HTTP and in-stream, arrive in Anthropic's shape.
The stack is test_bedrock's (same fixture: Bedrock host name, replay, credentials).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import anthropic
import pytest

from conftest import CLIENT_KEY, replay_headers
from test_bedrock import AWS_HOST, CASES, ERROR_CASES, SIMPLE_CASE, JSON_CASES, STREAM_CASES, bedrock, check_upstream, expected, public_model  # noqa: F401

# Bedrock's stopReason as Anthropic names it: stop_sequence stays stop_sequence (it was end_turn
# when the answer went through Chat Completions).
STOP = {"end_turn": "end_turn", "stop_sequence": "stop_sequence", "max_tokens": "max_tokens", "tool_use": "tool_use",
        "guardrail_intervened": "refusal", "content_filtered": "refusal"}


@pytest.fixture(scope="module")
def sdk(bedrock):
    running, _ = bedrock
    return anthropic.Anthropic(base_url=running.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60,
                               default_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})


def _mark_cache(blocks: list[dict[str, Any]]) -> None:
    """A Converse cache point is Anthropic's `cache_control` on the block before it."""
    if blocks:
        blocks[-1]["cache_control"] = {"type": "ephemeral"}


def anthropic_request(recorded: dict[str, Any]) -> dict[str, Any]:
    """The Messages request an application sends for the recorded Converse request."""
    messages: list[dict[str, Any]] = []
    for m in recorded["messages"]:
        blocks: list[dict[str, Any]] = []
        for b in m["content"]:
            if "cachePoint" in b:
                _mark_cache(blocks)
            elif "document" in b and b["document"]["format"] == "txt":
                d = b["document"]
                blocks.append({"type": "document", "title": d["name"], "source": {
                    "type": "text", "media_type": "text/plain", "data": base64.b64decode(d["source"]["bytes"]).decode()}})
            elif "text" in b:
                blocks.append({"type": "text", "text": b["text"]})
            elif "toolUse" in b:
                t = b["toolUse"]
                blocks.append({"type": "tool_use", "id": t["toolUseId"], "name": t["name"], "input": t["input"]})
            elif "toolResult" in b:
                r = b["toolResult"]
                blocks.append({"type": "tool_result", "tool_use_id": r["toolUseId"],
                               "content": "".join(c.get("text", "") for c in r["content"])})
        messages.append({"role": m["role"], "content": blocks})
    ic = recorded.get("inferenceConfig", {})
    request: dict[str, Any] = {"messages": messages, "max_tokens": ic.get("maxTokens", 4096)}
    if recorded.get("system"):
        system: list[dict[str, Any]] = []
        for s in recorded["system"]:
            if "cachePoint" in s:
                _mark_cache(system)
            else:
                system.append({"type": "text", "text": s["text"]})
        request["system"] = system
    if "stopSequences" in ic:
        request["stop_sequences"] = ic["stopSequences"]
    # anthropic 2.x dropped the sampling parameters from its signatures; the API still takes them.
    sampling = {dst: ic[src] for src, dst in (("temperature", "temperature"), ("topP", "top_p")) if src in ic}
    if sampling:
        request["extra_body"] = sampling
    if "toolConfig" in recorded:
        tc = recorded["toolConfig"]
        tools: list[dict[str, Any]] = []
        for t in tc["tools"]:
            if "cachePoint" in t:
                _mark_cache(tools)
                continue
            tools.append({k: v for k, v in (("name", t["toolSpec"]["name"]), ("description", t["toolSpec"].get("description")),
                                            ("input_schema", t["toolSpec"]["inputSchema"]["json"])) if v is not None})
        request["tools"] = tools
        choice = tc.get("toolChoice")
        if choice:
            request["tool_choice"] = ({"type": "any"} if "any" in choice else {"type": "auto"} if "auto" in choice
                                      else {"type": "tool", "name": choice["tool"]["name"]})
    budget = recorded.get("additionalModelRequestFields", {}).get("thinking", {}).get("budget_tokens")
    if budget:
        request["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return request


def check_bedrock_upstream(received: dict[str, Any], interaction) -> None:
    """As for OpenAI clients, plus: maxTokens is the client's (Anthropic requires it) and no
    anthropic-* header reaches Bedrock."""
    recorded = dict(interaction.request_body)
    if "additionalModelRequestFields" not in recorded and "maxTokens" not in recorded.get("inferenceConfig", {}):
        ours = received["json"]
        assert ours["inferenceConfig"].pop("maxTokens") == 4096
        if not ours["inferenceConfig"]:
            del ours["inferenceConfig"]
    assert not any(h.startswith("anthropic-") for h in received["headers"]), received["headers"]
    check_upstream(received, interaction, openai_client=False)


@pytest.mark.parametrize("name,index,interaction", JSON_CASES)
def test_json_response(bedrock, sdk, test_id, name, index, interaction):
    _, upstream = bedrock
    message = sdk.messages.create(model=public_model(interaction), extra_headers=replay_headers(test_id, name, index),
                                  **anthropic_request(interaction.request_body))
    exp = expected(interaction)
    assert message.type == "message" and message.role == "assistant"
    assert "".join(b.text for b in message.content if b.type == "text") == exp["text"]
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == exp["tool_calls"]
    assert message.stop_reason == STOP[exp["stop_reason"]]
    # As Anthropic reports it: input_tokens excludes cache reads and writes, which have their own counts.
    u = message.usage
    assert (u.input_tokens, u.output_tokens) == (exp["input"], exp["completion"])
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (exp["cache_read"], exp["cache_write"])
    assert message.model == public_model(interaction)  # the client's name
    check_bedrock_upstream(upstream.only(test_id), interaction)


@pytest.mark.parametrize("chunking", ["events", "bytes:7"])
@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream(bedrock, sdk, test_id, name, index, interaction, chunking):
    _, upstream = bedrock
    stream = sdk.messages.create(model=public_model(interaction), stream=True,
                                 extra_headers=replay_headers(test_id, name, index, **{"x-replay-chunking": chunking}),
                                 **anthropic_request(interaction.request_body))
    kinds: list[str] = []
    text, thinking, stop, usage_in, usage_out = "", "", None, None, None
    tools: dict[int, list] = {}
    for event in stream:
        kinds.append(event.type)
        if event.type == "message_start":
            usage_in = event.message.usage.input_tokens
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            tools[event.index] = [event.content_block.id, event.content_block.name, ""]
        elif event.type == "content_block_delta":
            d = event.delta
            if d.type == "text_delta":
                text += d.text
            elif d.type == "thinking_delta":
                thinking += d.thinking
            elif d.type == "input_json_delta":
                tools[event.index][2] += d.partial_json
        elif event.type == "message_delta":
            stop = event.delta.stop_reason
            usage_out = event.usage.output_tokens
            usage_in = event.usage.input_tokens if getattr(event.usage, "input_tokens", None) is not None else usage_in
    exp = expected(interaction)
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert text == exp["text"]
    assert thinking == exp["reasoning"]
    assert [(i, n, json.loads(a or "{}")) for i, n, a in (tools[k] for k in sorted(tools))] == exp["tool_calls"]
    assert stop == STOP[exp["stop_reason"]]
    assert (usage_in, usage_out) == (exp["input"], exp["completion"])
    check_bedrock_upstream(upstream.only(test_id), interaction)


@pytest.mark.parametrize("name,index,interaction", ERROR_CASES)
def test_bedrock_error_in_anthropic_shape(bedrock, sdk, test_id, name, index, interaction):
    stream = interaction.path.endswith("/converse-stream")
    with pytest.raises(anthropic.BadRequestError) as info:
        result = sdk.messages.create(model=public_model(interaction), stream=stream, extra_headers=replay_headers(test_id, name, index),
                                     **anthropic_request(interaction.request_body))
        if stream:
            list(result)
    err = info.value
    assert err.status_code == 400
    assert err.body == {"type": "error", "error": {"type": "invalid_request_error", "message": json.loads(interaction.body)["message"]}}
    _, upstream = bedrock
    check_bedrock_upstream(upstream.only(test_id), interaction)


@pytest.mark.parametrize("name", ["throttled", "bad_crc"])
def test_in_stream_failure_is_an_anthropic_error_event(bedrock, sdk, test_id, name):
    """A throttling exception or a corrupt frame inside Bedrock's 200 stream ends the Anthropic
    stream with an `error` event the SDK raises; the next request on the worker succeeds."""
    with pytest.raises(anthropic.APIStatusError) as info:
        for _ in sdk.messages.create(model="bedrock-e2e/us.amazon.nova-micro-v1:0", max_tokens=100, messages=[{"role": "user", "content": "Hi"}],
                                     stream=True, extra_headers=replay_headers(test_id, f"bedrock-synthetic/{name}.yaml", 0)):
            pass
    assert info.value.body["type"] == "error" and info.value.body["error"]["message"], info.value.body
    rec_name, index, interaction = next((n, i, x) for n, i, x in CASES if n == SIMPLE_CASE)
    message = sdk.messages.create(model=public_model(interaction), extra_headers=replay_headers(uuid.uuid4().hex, rec_name, index),
                                  **anthropic_request(interaction.request_body))
    assert "".join(b.text for b in message.content if b.type == "text") == expected(interaction)["text"]
