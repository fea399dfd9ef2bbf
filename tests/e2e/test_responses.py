"""`POST /v1/responses` through a real Envoy, called with the official `openai` SDK.

OpenAI passthrough: every recorded Responses exchange (fixtures/recorded/openai-responses/)
replayed behind the gateway gives the SDK exactly the recorded output, tool calls, reasoning
summaries and usage, and the body goes both ways byte for byte but for the model name.
Anthropic translation: the recorded Claude answers (fixtures/recorded/anthropic/) come back as
Responses answers with the recorded text, tool calls and usage, and the replay upstream (which
refuses what Anthropic refuses) accepted the translated request. Also: token counting, the
WebSocket upgrade refusal, stateless errors and bad input in OpenAI's error shape.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import openai
import pytest

import recordings
from conftest import (CLAUDE, CLAUDE_UPSTREAM, CLIENT_KEY, FIXTURES, GPT, GPT_UPSTREAM, OPENAI_KEY,
                      assert_openai_error, replay_headers)

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
RESPONSES = [
    (name, index, interaction)
    for name, cassette in sorted(CASSETTES.items())
    if name.startswith("openai-responses/")
    for index, interaction in enumerate(cassette.interactions)
    if interaction.path.endswith("/v1/responses")
]
JSON_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in RESPONSES if x.status == 200 and not x.is_stream]
STREAM_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in RESPONSES if x.status == 200 and x.is_stream]
CLAUDE_CASES = [
    pytest.param(n, i, x, id=f"{n}#{i}")
    for n, cassette in sorted(CASSETTES.items())
    if n.startswith("anthropic/")
    for i, x in enumerate(cassette.interactions)
    if x.status == 200 and not x.path.endswith("/count_tokens")
]


def test_recordings_present():
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert len(JSON_CASES) >= 10 and STREAM_CASES and CLAUDE_CASES


def _raw(gateway, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port = gateway.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", path, body=body, headers={"content-type": "application/json",
                                                   "authorization": f"Bearer {CLIENT_KEY}", **headers})
    resp = conn.getresponse()
    data = resp.read()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    conn.close()
    return out


def _with_model(body: Any, model: str) -> dict[str, Any]:
    return dict(body, model=model)


def _summary(output: list[dict[str, Any]]) -> list[Any]:
    """Output items as the tests compare them: type, text, calls, reasoning summaries."""
    out = []
    for item in output:
        kind = item["type"]
        if kind == "message":
            out.append(("message", [c.get("text") for c in item.get("content", [])]))
        elif kind == "function_call":
            out.append(("function_call", item["call_id"], item["name"], json.loads(item["arguments"])))
        elif kind == "reasoning":
            out.append(("reasoning", [s["text"] for s in item.get("summary", [])]))
        else:
            out.append((kind,))
    return out


@pytest.mark.parametrize("name,index,interaction", JSON_CASES)
def test_passthrough_json_is_the_recording(gateway, client, upstream, test_id, name, index, interaction):
    recorded = json.loads(interaction.body)
    request = _with_model(interaction.request_body, GPT)
    extra = {k: v for k, v in request.items() if k not in ("model", "input")}
    resp = client.responses.create(model=GPT, input=request["input"], extra_body=extra,
                                   extra_headers=replay_headers(test_id, name, index))
    got = resp.model_dump(mode="json", exclude_unset=True)
    assert _summary(got["output"]) == _summary(recorded["output"])
    assert got["usage"] == recorded["usage"]
    assert resp.id == recorded["id"]
    sent = upstream.only(test_id)
    assert sent["path"] == "/v1/responses"
    assert sent["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"
    assert sent["json"] == _with_model(request, GPT_UPSTREAM)

    # Byte for byte: the body the client sent, with only the model changed; the answer as recorded.
    raw_id = test_id + "-raw"
    body = json.dumps(request).encode()
    status, headers, data = _raw(gateway, "/v1/responses", body, replay_headers(raw_id, name, index))
    assert status == 200
    assert data == interaction.body
    assert headers.get("x-ai-gateway-provider") == "openai-replay"
    forwarded = upstream.only(raw_id)["body"].encode()
    assert forwarded == body.replace(json.dumps(GPT).encode(), json.dumps(GPT_UPSTREAM).encode(), 1)


@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_passthrough_stream_is_the_recording(client, upstream, test_id, name, index, interaction):
    recorded = [json.loads(data) for _, data in recordings.sse_events(interaction.body)]
    final = next(e["response"] for e in recorded if e["type"] == "response.completed")
    request = _with_model(interaction.request_body, GPT)
    extra = {k: v for k, v in request.items() if k not in ("model", "input", "stream")}
    events = list(client.responses.create(model=GPT, input=request["input"], stream=True, extra_body=extra,
                                          extra_headers=replay_headers(test_id, name, index)))
    assert [e.type for e in events] == [e["type"] for e in recorded]
    assert [e.sequence_number for e in events] == [e.get("sequence_number") for e in recorded]
    completed = events[-1].response.model_dump(mode="json", exclude_unset=True)
    assert _summary(completed["output"]) == _summary(final["output"])
    assert completed["usage"] == final["usage"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "".join(e["delta"] for e in recorded if e["type"] == "response.output_text.delta")
    assert upstream.only(test_id)["json"]["stream"] is True


def test_count_passthrough(client, upstream, test_id):
    name = "openai-responses/test_responses_count_tokens.yaml"
    interaction = CASSETTES[name].interactions[0]
    request = _with_model(interaction.request_body, GPT)
    resp = client.post("/responses/input_tokens", body=request, cast_to=object,
                       options={"headers": replay_headers(test_id, name, 0)})
    assert resp == json.loads(interaction.body)
    assert upstream.only(test_id)["path"] == "/v1/responses/input_tokens"


def _claude_input(recorded: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """The Responses instructions, input items and tools of a recorded Anthropic request."""
    chat = recordings.openai_request_from_anthropic(recorded)
    instructions, items = None, []
    for m in chat["messages"]:
        if m["role"] == "system":
            instructions = (instructions + "\n" if instructions else "") + (
                m["content"] if isinstance(m["content"], str) else "".join(p["text"] for p in m["content"]))
        elif m["role"] == "tool":
            items.append({"type": "function_call_output", "call_id": m["tool_call_id"],
                          "output": m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])})
        elif m["role"] == "assistant":
            if m.get("content"):
                items.append({"role": "assistant", "content": m["content"]})
            for call in m.get("tool_calls") or []:
                items.append({"type": "function_call", "call_id": call["id"], "name": call["function"]["name"],
                              "arguments": call["function"]["arguments"]})
        else:
            content = m["content"]
            if isinstance(content, list):
                content = [{"type": "input_text", "text": p["text"]} if p["type"] == "text" else
                           {"type": "input_image", "image_url": p["image_url"]["url"]} for p in content]
            items.append({"role": "user", "content": content})
    tools = [{"type": "function", "name": t["function"]["name"], "description": t["function"].get("description"),
              "parameters": t["function"].get("parameters")} for t in chat.get("tools") or []]
    return instructions, items, tools


@pytest.mark.parametrize("name,index,interaction", CLAUDE_CASES)
def test_translated_to_anthropic_gives_the_recorded_answer(client, upstream, test_id, name, index, interaction):
    exp = recordings.expected_from_anthropic(interaction)
    instructions, items, tools = _claude_input(interaction.request_body)
    kwargs: dict[str, Any] = {"model": CLAUDE, "input": items, "extra_headers": replay_headers(test_id, name, index),
                              "store": False}
    if instructions:
        kwargs["instructions"] = instructions
    if tools:
        kwargs["tools"] = tools
    recorded_max = interaction.request_body.get("max_tokens")
    if recorded_max:
        kwargs["max_output_tokens"] = recorded_max
    if interaction.is_stream:
        events = list(client.responses.create(stream=True, **kwargs))
        assert events[0].type == "response.created"
        assert events[-1].type in ("response.completed", "response.incomplete")
        assert [e.sequence_number for e in events] == list(range(len(events)))
        resp = events[-1].response
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == exp.text
    else:
        resp = client.responses.create(**kwargs)
    assert resp.model == CLAUDE
    assert (resp.output_text or "") == exp.text
    calls = [(i.call_id, i.name, json.loads(i.arguments)) for i in resp.output if i.type == "function_call"]
    assert calls == exp.tool_calls
    reasoning = "".join(s.text for i in resp.output if i.type == "reasoning" for s in i.summary)
    assert reasoning == exp.reasoning
    for item in resp.output:
        if item.type == "reasoning":
            assert item.encrypted_content and item.encrypted_content.startswith("gw1.claude.")
    assert resp.usage.input_tokens == exp.prompt_tokens
    assert resp.usage.output_tokens == exp.completion_tokens
    assert resp.usage.input_tokens_details.cached_tokens == exp.cached_tokens
    sent = upstream.only(test_id)
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["model"] == CLAUDE_UPSTREAM
    assert bool(sent["json"].get("stream")) is interaction.is_stream


def test_codex_defaults_do_not_break_claude(gateway, upstream, test_id):
    """Codex CLI sends web_search, store:false, include and reasoning: all fine on Claude."""
    name = "anthropic/test_anthropic_model_instructions.yaml"
    body = {"model": CLAUDE, "instructions": "Be brief.", "input": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search"}], "store": False, "include": ["reasoning.encrypted_content"],
            "reasoning": {"summary": "auto"}, "prompt_cache_key": "k"}
    status, headers, data = _raw(gateway, "/v1/responses", json.dumps(body).encode(), replay_headers(test_id, name, 0))
    assert status == 200, data
    assert json.loads(data)["object"] == "response"
    dropped = headers.get("x-ai-gateway-dropped", "").split(",")
    assert "web_search" in dropped and "store" not in dropped
    assert "tools" not in upstream.only(test_id)["json"]


def test_stateless_and_bad_input_are_openai_errors(gateway, test_id):
    cases = [
        ({"model": CLAUDE, "input": "hi", "previous_response_id": "resp_1"}, 400, "unsupported_parameter"),
        ({"model": CLAUDE, "input": [{"type": "function_call_output", "call_id": "x", "output": "y"}]}, 400, None),
        ({"model": CLAUDE, "input": [{"type": "message", "role": "robot", "content": "x"}]}, 400, None),
        ({"model": CLAUDE, "input": 5}, 400, None),
        ({"model": CLAUDE, "input": "x", "tools": [{"name": "no type"}]}, 400, None),
    ]
    for body, status, code in cases:
        got, _, data = _raw(gateway, "/v1/responses", json.dumps(body).encode(), {"x-test-id": test_id})
        assert_openai_error(got, data, status, code)
    huge = json.dumps({"model": CLAUDE, "input": "x" * (2 * 1024 * 1024)}).encode()
    got, _, data = _raw(gateway, "/v1/responses", huge, {"x-test-id": test_id})
    assert_openai_error(got, data, 413)


def test_websocket_upgrade_gets_426(gateway):
    host, port = gateway.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/v1/responses", headers={
        "authorization": f"Bearer {CLIENT_KEY}", "connection": "Upgrade", "upgrade": "websocket",
        "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert_openai_error(resp.status, data, 426, "websocket_not_supported")


def test_sdk_sees_openai_errors(client, test_id):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=CLAUDE, input="hi", previous_response_id="resp_1",
                                extra_headers={"x-test-id": test_id})
    assert "does not store conversations" in str(err.value)
