"""OpenAI Chat clients on Claude with thinking on, across a tool loop (issue 12, item 5).

A Chat client cannot send Claude's signed thinking back, and Claude rejects an assistant tool-use
turn without it while thinking is on (`Expected thinking...`). The documented behaviour: the turn
that continues a tool loop goes out without thinking (`thinking` named in `x-ai-gateway-dropped`),
and thinking is back on the next turn that starts fresh. Checked against the scripted Claude
upstreams of tests/scripted/, which enforce Anthropic's rule, on Anthropic, Bedrock InvokeModel
and Bedrock Converse.
"""

from __future__ import annotations

import json
import secrets

import openai
import pytest

from test_claude_code import AWS, PROVIDER_KEY, start_envoy, scripted

BACKENDS = ["anthropic", "bedrock-invoke", "bedrock-converse"]
MODEL = "claude-opus-5-5"
BASH = {"type": "function", "function": {"name": "Bash", "description": "Runs a shell command.",
                                         "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                                                        "required": ["command"]}}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_chat_client_thinking_survives_a_tool_loop_on_claude(backend, tmp_path):
    upstream = scripted.build(backend, "chat-" + secrets.token_hex(6), PROVIDER_KEY, AWS).start()
    envoy = None
    try:
        envoy = start_envoy(tmp_path, backend, upstream)
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{envoy.port}/v1", api_key="chat-client", max_retries=0, timeout=30)
        task = [{"role": "user", "content": "Create the file with the Bash tool."}]
        first = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=task, tools=[BASH],
                                                               reasoning_effort="low", max_completion_tokens=4096)
        turn1 = first.parse()
        calls = turn1.choices[0].message.tool_calls
        assert calls and calls[0].function.name == "Bash", turn1
        assert "thinking" not in (first.headers.get("x-ai-gateway-dropped") or "")
        history = task + [turn1.choices[0].message.model_dump(exclude_none=True),
                          {"role": "tool", "tool_call_id": calls[0].id, "content": "done"}]
        second = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=history, tools=[BASH],
                                                                reasoning_effort="low", max_completion_tokens=4096)
        assert second.parse().choices[0].message.content, second.text
        assert "thinking" in [n.strip() for n in second.headers.get("x-ai-gateway-dropped", "").split(",")]
        records = upstream.records
        refused = [f"{r.status} {r.error}" for r in records if r.error is not None]
        assert not refused, refused
        kinds = [(r.kind, r.thinking_requested) for r in records]
        # Turn 1 asked Claude to think; turn 2 (the tool result) went without thinking and was accepted.
        assert kinds[0] == ("call", True), kinds
        assert records[1].kind == "result" and not records[1].thinking_requested, [r.as_dict() for r in records]
        assert len(records[1].tool_result_ids) == 1
    finally:
        if envoy is not None:
            envoy.stop()
        upstream.stop()
