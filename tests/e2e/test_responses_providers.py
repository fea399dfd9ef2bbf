"""`POST /v1/responses` translated for Bedrock (Converse and InvokeModel) and Gemini, called with the
official `openai` SDK through a real Envoy, against the recordings those providers answered.

* Bedrock Converse (the SigV4-checking stack of test_bedrock): every recorded Converse exchange,
  JSON and event stream, gives the recorded text, reasoning, tool calls and usage.
* Bedrock InvokeModel (Claude; the stack of test_anthropic_bedrock_invoke): the recorded Claude
  answer in JSON and a recorded thinking stream inside an AWS event stream; the thinking comes
  back as a reasoning summary with its signature in `encrypted_content`, and sent back next turn
  it reaches Bedrock as the same signed thinking block.
* Gemini (the stack of test_gemini_azure): every recorded Gemini exchange.

Expected values come from the recordings.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from conftest import CLIENT_KEY, replay_headers
from test_anthropic_bedrock_invoke import (CACHE, CACHE_FIXTURE, INVOKE_PATH, PUBLIC, invoke,  # noqa: F401
                                           recorded_sse)
from test_bedrock import JSON_CASES, STREAM_CASES, bedrock, expected, openai_request, public_model  # noqa: F401
from test_gemini_azure import (GEMINI, GEMINI_CASES, GEMINI_UPSTREAM, expected_from_gemini, openai_request_from_gemini,  # noqa: F401
                               received, stack)
from test_responses import responses_kwargs_from_chat


def _sdk(running) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)


def _answer(sdk, stream: bool, **kwargs):
    """The final response object, and the events when streamed (checked for order)."""
    if not stream:
        return sdk.responses.create(**kwargs), []
    events = list(sdk.responses.create(stream=True, **kwargs))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events[-1].response, events


def _calls(resp) -> list[tuple[str, str, Any]]:
    return [(i.call_id, i.name, json.loads(i.arguments)) for i in resp.output if i.type == "function_call"]


def _reasoning(resp) -> str:
    return "".join(s.text for i in resp.output if i.type == "reasoning" for s in i.summary)


# --- Bedrock Converse ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,index,interaction", JSON_CASES + STREAM_CASES)
def test_converse_recording(bedrock, test_id, name, index, interaction):
    running, upstream = bedrock
    kwargs = responses_kwargs_from_chat(openai_request(interaction.request_body))
    resp, events = _answer(_sdk(running), interaction.is_stream, model=public_model(interaction),
                           extra_headers=replay_headers(test_id, name, index), **kwargs)
    exp = expected(interaction)
    assert (resp.output_text or "") == exp["text"]
    assert _calls(resp) == exp["tool_calls"]
    assert _reasoning(resp) == exp["reasoning"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (exp["prompt"], exp["completion"])
    assert resp.usage.input_tokens_details.cached_tokens == exp["cache_read"]
    assert resp.model == public_model(interaction)
    if events:
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == exp["text"]
    sent = upstream.only(test_id)
    assert sent["path"].endswith("/converse-stream" if interaction.is_stream else "/converse")


# --- Bedrock InvokeModel (Claude) ----------------------------------------------------------------

def test_invoke_json_recording(invoke, test_id):
    running, upstream = invoke
    interaction = CACHE.interactions[1]
    answer = json.loads(interaction.body)
    resp = _sdk(running).responses.create(model=PUBLIC, instructions="You are a helpful assistant.", input="Summarize.",
                                          max_output_tokens=100, extra_headers=replay_headers(test_id, CACHE_FIXTURE, 1))
    assert resp.output_text == "".join(b["text"] for b in answer["content"] if b["type"] == "text")
    usage = answer["usage"]
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (prompt, usage["output_tokens"])
    assert resp.usage.input_tokens_details.cached_tokens == usage["cache_read_input_tokens"]
    sent = upstream.only(test_id)
    assert sent["path"] == INVOKE_PATH
    assert sent["json"]["anthropic_version"] == "bedrock-2023-05-31"
    assert sent["json"]["system"] == [{"type": "text", "text": "You are a helpful assistant."}]
    assert "model" not in sent["json"] and "stream" not in sent["json"]


@pytest.mark.parametrize("chunking", ["events", "bytes:7"])
def test_invoke_thinking_stream_round_trips_its_signature(invoke, test_id, chunking):
    running, upstream = invoke
    thinking = signature = text = ""
    for _name, data in recorded_sse():
        doc = json.loads(data)
        if doc["type"] == "content_block_delta":
            thinking += doc["delta"].get("thinking", "")
            signature += doc["delta"].get("signature", "")
            text += doc["delta"].get("text", "")
    sdk = _sdk(running)
    question = [{"role": "user", "content": "How do I cross the street?"}]
    resp, events = _answer(sdk, True, model=PUBLIC, input=question, reasoning={"effort": "low", "summary": "auto"},
                           max_output_tokens=2048,
                           extra_headers=replay_headers(test_id, "bedrock-invoke-synthetic/thinking_stream.yaml", 0,
                                                        **{"x-replay-chunking": chunking}))
    assert resp.output_text == text
    assert _reasoning(resp) == thinking
    assert "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta") == thinking
    items = [i for i in resp.output if i.type == "reasoning"]
    assert [i.encrypted_content for i in items] == [f"gw1.claude.{signature}"]
    sent = upstream.only(test_id)
    assert sent["path"] == f"{INVOKE_PATH}-with-response-stream"
    assert sent["json"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}

    # The next turn carries the output back: Bedrock gets the signed thinking block as it was.
    follow = test_id + "-2"
    history = question + [i.model_dump(mode="json", exclude_none=True) for i in resp.output] + [
        {"role": "user", "content": "And at night?"}]
    with pytest.raises(openai.APIStatusError):
        # The replay has no recording for this second turn; what matters is what reached it.
        sdk.responses.create(model=PUBLIC, input=history, reasoning={"effort": "low"}, max_output_tokens=2048,
                             extra_headers=replay_headers(follow, "bedrock-invoke-synthetic/throttled.yaml", 0))
    sent = upstream.only(follow)["json"]
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": thinking, "signature": signature}


# --- Gemini ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,index,interaction", GEMINI_CASES)
def test_gemini_recording(stack, test_id, name, index, interaction):
    kwargs = responses_kwargs_from_chat(openai_request_from_gemini(interaction.request_body))
    resp, events = _answer(_sdk(stack), interaction.is_stream, model=GEMINI,
                           extra_headers=replay_headers(test_id, name, index, **{"x-replay-chunking": "split"}), **kwargs)
    exp = expected_from_gemini(interaction)
    assert (resp.output_text or "") == exp.text
    assert [(n, a) for _i, n, a in _calls(resp)] == [(n, a) for _i, n, a in exp.tool_calls]
    assert all(i for i, _n, _a in _calls(resp))
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (exp.prompt_tokens, exp.completion_tokens)
    assert resp.model == GEMINI
    method = "streamGenerateContent" if interaction.is_stream else "generateContent"
    assert received(stack, test_id)["path"] == f"/v1beta/models/{GEMINI_UPSTREAM}:{method}"
