"""Anthropic Messages clients on providers of another API through the conversation model (ADR 0010),
called with the official `anthropic` SDK through a real Envoy.

* Gemini (the Gemini stack of test_gemini_azure): every recorded Gemini exchange, text, tool
  calls and streams, answered in Anthropic's shape with the model the client asked for.
* Bedrock Converse (the SigV4-checking stack of test_bedrock): a mid-conversation `system` turn
  and `context_management` are accepted (the latter dropped and named in `x-ai-gateway-dropped`);
  a recorded thinking stream reaches the client with the exact recorded signature, and the
  signed thinking block sent back reaches Bedrock unchanged.
* Bad input in the client's own shape (malformed thinking, non-string signature, a document of
  an unsupported type) is a 400 in Anthropic's error shape, never a 5xx, and reaches no provider.

Expected values come from the recordings.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

import stack as stack_mod
from conftest import CLIENT_KEY, replay_headers
from test_bedrock import CASSETTES as BEDROCK_CASSETTES, bedrock, frames, public_model  # noqa: F401
from test_gemini_azure import (CASSETTES as GEMINI_CASSETTES, GEMINI, GEMINI_CASES, GEMINI_UPSTREAM, check_gemini_upstream,  # noqa: F401
                               _lower_types, expected_from_gemini, received, stack)

DROPPED = "x-ai-gateway-dropped"
MODEL_HEADER = "x-ai-gateway-model"
STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def dropped_names(headers) -> set[str]:
    return {n.strip() for n in (headers.get(DROPPED) or "").split(",") if n.strip()}


# --- Gemini -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gemini_sdk(stack):
    return anthropic.Anthropic(base_url=stack.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60)


def anthropic_request_from_gemini(recorded: dict[str, Any]) -> dict[str, Any]:
    """The Messages request an application sends for the recorded generateContent request."""
    messages: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    for turn, content in enumerate(recorded["contents"]):
        blocks: list[dict[str, Any]] = []
        for k, part in enumerate(content["parts"]):
            if "text" in part:
                blocks.append({"type": "text", "text": part["text"]})
            elif "functionCall" in part:
                call = part["functionCall"]
                call_id = call.get("id") or f"toolu_{turn}_{k}"
                ids[call["name"]] = call_id
                blocks.append({"type": "tool_use", "id": call_id, "name": call["name"], "input": call.get("args", {})})
            elif "functionResponse" in part:
                r = part["functionResponse"]
                blocks.append({"type": "tool_result", "tool_use_id": r.get("id") or ids[r["name"]],
                               "content": json.dumps(r["response"])})
        messages.append({"role": "assistant" if content["role"] == "model" else "user", "content": blocks})
    config = recorded.get("generationConfig") or {}
    request: dict[str, Any] = {"messages": messages, "max_tokens": config.get("maxOutputTokens", 1024)}
    if recorded.get("systemInstruction"):
        request["system"] = "".join(p.get("text", "") for p in recorded["systemInstruction"]["parts"])
    if "temperature" in config:  # anthropic 2.x dropped it from the signature; the API takes it
        request["extra_body"] = {"temperature": config["temperature"]}
    if recorded.get("tools"):
        request["tools"] = [{"name": d["name"], "description": d.get("description", ""), "input_schema": _lower_types(d["parameters"])}
                            for d in recorded["tools"][0]["functionDeclarations"]]
    mode = ((recorded.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode:
        request["tool_choice"] = {"ANY": {"type": "any"}, "NONE": {"type": "none"}}.get(mode, {"type": "auto"})
    return request


def expected_anthropic_usage(interaction) -> tuple[int, int, int]:
    """(input_tokens, output_tokens, cache_read_input_tokens) as Anthropic counts them: the prompt
    without cached tokens, and output with the thoughts."""
    exp = expected_from_gemini(interaction)
    return exp.prompt_tokens - exp.cached_tokens, exp.completion_tokens, exp.cached_tokens


@pytest.mark.parametrize("name,index,interaction", GEMINI_CASES)
def test_anthropic_client_on_gemini(stack, gemini_sdk, test_id, name, index, interaction):
    """Was a 400 `unsupported_provider`: now the recorded Gemini answer in Anthropic's shape."""
    request = anthropic_request_from_gemini(interaction.request_body)
    exp = expected_from_gemini(interaction)
    want_in, want_out, want_cached = expected_anthropic_usage(interaction)
    headers = replay_headers(test_id, name, index, **{"x-replay-chunking": "split"})
    if interaction.is_stream:
        with gemini_sdk.messages.with_streaming_response.create(model=GEMINI, stream=True, extra_headers=headers, **request) as raw:
            assert raw.headers.get(MODEL_HEADER) == GEMINI_UPSTREAM
            events = list(raw.parse())
        kinds = [e.type for e in events]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        start = events[0].message
        assert start.model == GEMINI and start.role == "assistant" and start.id
        text, tools, stop, usage = "", {}, None, None
        for e in events:
            if e.type == "content_block_start" and e.content_block.type == "tool_use":
                tools[e.index] = [e.content_block.id, e.content_block.name, ""]
            elif e.type == "content_block_delta" and e.delta.type == "text_delta":
                text += e.delta.text
            elif e.type == "content_block_delta" and e.delta.type == "input_json_delta":
                tools[e.index][2] += e.delta.partial_json
            elif e.type == "message_delta":
                stop, usage = e.delta.stop_reason, e.usage
        assert kinds.count("message_delta") == 1
        assert text == exp.text
        calls = [tools[k] for k in sorted(tools)]
        assert [(n, json.loads(a or "{}")) for _i, n, a in calls] == [(n, a) for _id, n, a in exp.tool_calls]
        assert all(i for i, _n, _a in calls)
        assert stop == STOP[exp.finish_reason]
        in_tokens = usage.input_tokens if usage.input_tokens is not None else start.usage.input_tokens
        assert (in_tokens, usage.output_tokens) == (want_in, want_out)
    else:
        raw = gemini_sdk.messages.with_raw_response.create(model=GEMINI, extra_headers=headers, **request)
        assert raw.headers.get(MODEL_HEADER) == GEMINI_UPSTREAM
        message = raw.parse()
        assert message.type == "message" and message.role == "assistant" and message.id
        assert message.model == GEMINI  # the client's name, not the provider's
        assert "".join(b.text for b in message.content if b.type == "text") == exp.text
        calls = [b for b in message.content if b.type == "tool_use"]
        assert [(b.name, b.input) for b in calls] == [(n, a) for _id, n, a in exp.tool_calls]
        assert all(b.id for b in calls)
        assert message.stop_reason == STOP[exp.finish_reason]
        assert message.stop_sequence is None
        usage = message.usage
        assert (usage.input_tokens, usage.output_tokens) == (want_in, want_out)
        assert (usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0) == (want_cached, 0)
    check_gemini_upstream(received(stack, test_id), interaction.request_body, interaction.is_stream)


def test_anthropic_client_gemini_tool_round_trip(stack, gemini_sdk, test_id):
    """The id the gateway made up for Gemini's call finds the function's name in the next turn."""
    name = "gemini/test_google_tool_output.yaml"
    recorded = GEMINI_CASSETTES[name].interactions[0].request_body
    request = anthropic_request_from_gemini(recorded)
    message = gemini_sdk.messages.create(model=GEMINI, extra_headers=replay_headers(test_id, name, 0), **request)
    call = next(b for b in message.content if b.type == "tool_use")
    follow_id = test_id + "-2"
    request["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": '{"return_value": "Mexico"}'}]},
    ]
    second = gemini_sdk.messages.create(model=GEMINI, extra_headers=replay_headers(follow_id, name, 1), **request)
    assert [(b.name, b.input) for b in second.content if b.type == "tool_use"] == [("final_result", {"city": "Mexico City", "country": "Mexico"})]
    sent = received(stack, follow_id)["json"]
    response = sent["contents"][-1]["parts"][0]["functionResponse"]
    assert sent["contents"][-1]["role"] == "user" and response["name"] == call.name


# --- Bedrock Converse ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bedrock_sdk(bedrock):
    running, _ = bedrock
    return anthropic.Anthropic(base_url=running.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60)


TEXT_CASE = "bedrock/test_bedrock_model.yaml"
THINKING_CASE = "bedrock/test_bedrock_model_thinking_part_stream.yaml"


def test_mid_conversation_system_and_context_management_on_converse(bedrock, bedrock_sdk, test_id):
    """A `system` turn inside `messages` and `context_management` were 400s; now the turn becomes a
    `<system-reminder>` in the user turn where it stands and `context_management`, which Converse
    has no member for, is dropped and named in `x-ai-gateway-dropped`."""
    _, upstream = bedrock
    interaction = BEDROCK_CASSETTES[TEXT_CASE].interactions[0]
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "system", "content": "From now on answer in French."},
        {"role": "user", "content": "And 3+3?"},
    ]
    raw = bedrock_sdk.messages.with_raw_response.create(
        model=public_model(interaction), max_tokens=256, system="Be brief.", messages=messages,
        extra_body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        extra_headers=replay_headers(test_id, TEXT_CASE, 0))
    assert raw.http_response.status_code == 200
    assert "context_management" in dropped_names(raw.headers)
    message = raw.parse()
    recorded = json.loads(interaction.body)
    assert "".join(b.text for b in message.content if b.type == "text") == "".join(
        b.get("text", "") for b in recorded["output"]["message"]["content"])
    assert message.model == public_model(interaction)
    sent = upstream.only(test_id)["json"]
    assert "context_management" not in sent and "contextManagement" not in json.dumps(sent)
    assert sent["system"] == [{"text": "Be brief."}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][2]["content"] == [
        {"text": "<system-reminder>\nFrom now on answer in French.\n</system-reminder>"}, {"text": "And 3+3?"}]


def _recorded_thinking(interaction) -> tuple[str, str, str]:
    """(thinking text, signature, answer text) of a recorded Converse stream."""
    thinking, signature, text = "", "", ""
    for headers, p in frames(interaction.body):
        if headers.get(":event-type") == "contentBlockDelta":
            d = p["delta"]
            thinking += d.get("reasoningContent", {}).get("text", "")
            signature += d.get("reasoningContent", {}).get("signature", "")
            text += d.get("text", "")
    return thinking, signature, text


def test_thinking_signature_round_trip_on_converse(bedrock, bedrock_sdk, test_id):
    """The recorded Converse signature reaches the Anthropic client byte for byte (a
    `signature_delta`), and the signed thinking block sent back in the history reaches Bedrock as
    the same `reasoningContent.reasoningText`."""
    _, upstream = bedrock
    interaction = BEDROCK_CASSETTES[THINKING_CASE].interactions[0]
    want_thinking, want_signature, want_text = _recorded_thinking(interaction)
    assert want_signature and want_thinking, "the recording carries a signed thinking block"
    model = public_model(interaction)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    stream = bedrock_sdk.messages.create(model=model, max_tokens=4096, thinking=thinking, stream=True,
                                         messages=[{"role": "user", "content": "Hello"}],
                                         extra_headers=replay_headers(test_id, THINKING_CASE, 0, **{"x-replay-chunking": "bytes:7"}))
    got_thinking, signatures, text = "", [], ""
    block_types: dict[int, str] = {}
    for e in stream:
        if e.type == "content_block_start":
            block_types[e.index] = e.content_block.type
        elif e.type == "content_block_delta":
            if e.delta.type == "thinking_delta":
                got_thinking += e.delta.thinking
            elif e.delta.type == "signature_delta":
                signatures.append((block_types[e.index], e.delta.signature))
            elif e.delta.type == "text_delta":
                text += e.delta.text
    assert signatures == [("thinking", want_signature)]
    assert (got_thinking, text) == (want_thinking, want_text)

    follow_id = test_id + "-2"
    history = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": got_thinking, "signature": signatures[0][1]},
                                          {"type": "text", "text": text}]},
        {"role": "user", "content": "Hello again"},
    ]
    for _ in bedrock_sdk.messages.create(model=model, max_tokens=4096, thinking=thinking, stream=True, messages=history,
                                         extra_headers=replay_headers(follow_id, THINKING_CASE, 0)):
        pass
    sent = upstream.only(follow_id)["json"]
    assert sent["messages"][1]["content"][0] == {"reasoningContent": {"reasoningText": {"text": want_thinking, "signature": want_signature}}}


# --- bad input in the client's shape --------------------------------------------------------------

BAD_BLOCKS = [
    ("thinking-without-text", {"role": "assistant", "content": [{"type": "thinking", "signature": "sig"}]}),
    ("thinking-text-number", {"role": "assistant", "content": [{"type": "thinking", "thinking": 5, "signature": "sig"}]}),
    ("signature-number", {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": 123}]}),
    ("signature-object", {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": {"a": 1}}]}),
    ("document-zip", {"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/zip", "data": "UEsDBA=="}}]}),
    ("document-source-type", {"role": "user", "content": [{"type": "document", "source": {"type": "blob", "data": "x"}}]}),
    ("document-text-html", {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/html", "data": "<p>x</p>"}}]}),
    ("document-no-source", {"role": "user", "content": [{"type": "document"}]}),
]


def _bad_body(block_message: dict[str, Any]) -> list[dict[str, Any]]:
    if block_message["role"] == "assistant":
        return [{"role": "user", "content": "Hi"}, block_message, {"role": "user", "content": "Go on"}]
    return [block_message]


@pytest.mark.parametrize("provider", ["bedrock", "gemini"])
@pytest.mark.parametrize("case,message", BAD_BLOCKS, ids=[c[0] for c in BAD_BLOCKS])
def test_bad_block_is_an_anthropic_400(request, test_id, provider, case, message):
    """Through the raw HTTP path (the SDK would not send these): 400, Anthropic's error JSON, no
    upstream request."""
    if provider == "bedrock":
        running, upstream = request.getfixturevalue("bedrock")
        model = public_model(BEDROCK_CASSETTES[TEXT_CASE].interactions[0])
        seen = upstream.requests
        replay = replay_headers(test_id, TEXT_CASE, 0)
    else:
        running = request.getfixturevalue("stack")
        model = GEMINI
        seen = lambda tid: json.loads(stack_mod.http_get(f"{running.replay_url}/__replay/requests?test_id={tid}", timeout=5)[1])  # noqa: E731
        replay = replay_headers(test_id, "gemini/test_google_model.yaml", 0)
    sdk = anthropic.Anthropic(base_url=running.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60)
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk.messages.create(model=model, max_tokens=100, messages=_bad_body(message), extra_headers=replay)
    err = info.value
    assert err.status_code == 400, (err.status_code, err.body)
    body = err.response.json()
    assert set(body) <= {"type", "error", "request_id"} and body["type"] == "error", body
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"], body
    assert seen(test_id) == [], "a request the client codec rejects never reaches the provider"
