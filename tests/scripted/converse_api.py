"""The scripted model behind Bedrock Converse (`/model/{id}/converse-stream` and `/converse`).

Rules checked (Bedrock's Converse API reference, and Anthropic's rules that Bedrock passes on
for Claude): SigV4; the Converse body (`tests/replay/bedrock_replay.validate_converse`: no unknown
top-level field such as `model` or Anthropic's own, alternating user/assistant roles, one member
per content block, tool specs with object schemas, toolConfig whenever tool blocks are present);
at most 4 `cachePoint` blocks; every `toolUse` answered by a `toolResult` with its id in the next
message and no `toolResult` without its `toolUse`; `reasoningContent.reasoningText` carries the
signature the model issued for exactly that text; with thinking on
(`additionalModelRequestFields.thinking`), the final assistant message before the last tool
results starts with `reasoningContent`; `additionalModelRequestFields.anthropic_beta` only with
betas Bedrock accepts.

The stream is what Bedrock sends for Claude: no `contentBlockStart` for reasoning or text,
reasoning text deltas then one signature delta, a `toolUse` start then input JSON pieces,
`messageStop`, `metadata` with usage; every payload padded with `p`.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import aws
from script import (SIDE_TEXT, FINAL_TEXT, THINKING_TEXT, Model, Record, Reject, Reply, Request,
                    check_cache_breakpoints, json_reply, split_json)

CONVERSE_PATH = re.compile(r"^/model/[^/]+/(converse|converse-stream|count-tokens)$")
THINKING_ERROR = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is "
    "enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` "
    "and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this "
    "requirement, disable `thinking`."
)


def thinking_of(body: dict[str, Any]) -> dict[str, Any] | None:
    extra = body.get("additionalModelRequestFields") or {}
    thinking = extra.get("thinking") or extra.get("reasoning_config")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return thinking
    return None


def member(block: Any) -> str:
    return next(iter(block)) if isinstance(block, dict) and block else ""


def without_cache_points(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    out = dict(body)
    if isinstance(body.get("system"), list):
        out["system"] = [b for b in body["system"] if member(b) != "cachePoint"]
    tool_config = body.get("toolConfig")
    if isinstance(tool_config, dict) and isinstance(tool_config.get("tools"), list):
        out["toolConfig"] = dict(tool_config, tools=[t for t in tool_config["tools"] if member(t) != "cachePoint"])
    return out


def check_body(body: Any, model: Model, record: Record) -> None:
    def bad(message: str) -> Reject:
        return Reject(400, aws.VALIDATION, message)

    if isinstance(body, dict):
        for k, block in enumerate(body.get("system") or []):
            if not isinstance(block, dict) or len(block) != 1 or member(block) not in ("text", "cachePoint", "guardContent"):
                raise bad(f"system.{k} must have exactly one of text, cachePoint, guardContent")
        for k, tool in enumerate((body.get("toolConfig") or {}).get("tools") or []):
            if not isinstance(tool, dict) or len(tool) != 1 or member(tool) not in ("toolSpec", "cachePoint"):
                raise bad(f"toolConfig.tools.{k} must have exactly one of toolSpec, cachePoint")
    try:
        # The replay's checks, on the body without the cache points it does not know in system and tools.
        aws.bedrock_replay.validate_converse(without_cache_points(body))
    except aws.bedrock_replay.BedrockReject as err:
        raise Reject(err.status, err.kind, err.message) from None
    check_cache_breakpoints(body, "cachePoint", bad)
    aws.check_betas((body.get("additionalModelRequestFields") or {}).get("anthropic_beta"),
                    "additionalModelRequestFields/anthropic_beta")
    messages = body["messages"]
    pending: set[str] = set()
    last_assistant = -1
    for i, message in enumerate(messages):
        blocks = message["content"]
        results = [b["toolResult"].get("toolUseId") for b in blocks if member(b) == "toolResult"]
        if len(results) > len(pending) and i > 0:
            raise bad(f"The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn.")
        if set(results) - pending:
            raise bad(f"messages.{i}.content: toolResult {sorted(set(results) - pending)[0]} answers no toolUse of the previous turn.")
        if pending - set(results):
            raise bad(f"Expected toolResult blocks at messages.{i}.content for the following Ids: {', '.join(sorted(pending - set(results)))}")
        pending = set()
        for j, block in enumerate(blocks):
            if member(block) == "reasoningContent":
                reasoning = block["reasoningContent"]
                text = reasoning.get("reasoningText") if isinstance(reasoning, dict) else None
                if isinstance(text, dict):
                    if not model.signature_ok(text.get("signature"), text.get("text")):
                        raise bad(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
                elif not (isinstance(reasoning, dict) and isinstance(reasoning.get("redactedContent"), str)):
                    raise bad(f"messages.{i}.content.{j}.reasoningContent must hold reasoningText or redactedContent")
            if member(block) == "toolUse":
                pending.add(block["toolUse"]["toolUseId"])
        if message["role"] == "assistant":
            last_assistant = i
    tools = (body.get("toolConfig") or {}).get("tools") or []
    names = [(t.get("toolSpec") or {}).get("name") for t in tools if member(t) == "toolSpec"]
    last = messages[-1]["content"]
    results = [b["toolResult"] for b in last if member(b) == "toolResult"]
    if not tools:
        record.kind = "side"
    elif results:
        record.kind = "result"
        record.tool_result_ids = [r.get("toolUseId") for r in results]
        record.tool_result_text = repr([r.get("content") for r in results])
        first = messages[last_assistant]["content"][0] if last_assistant >= 0 else {}
        record.signature_back = member(first) == "reasoningContent" and "reasoningText" in first["reasoningContent"]
        if thinking_of(body) and member(first) != "reasoningContent":
            found = {"toolUse": "tool_use", "text": "text"}.get(member(first), member(first))
            raise bad(THINKING_ERROR.format(i=last_assistant, found=found))
        for result_id in record.tool_result_ids:
            if not model.issued(result_id):
                raise bad(f"toolResult {result_id} answers no toolUse this model made")
    else:
        record.call_tool = model.tool_for(names)
        record.kind = "call" if record.call_tool else "side"
        record.thinking_requested = thinking_of(body) is not None


def answer(body: dict[str, Any], model: Model, record: Record) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]], str]:
    """The answer's content blocks (for /converse) and stream events (for /converse-stream)."""
    content: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    stop = "end_turn"
    if record.kind == "call":
        index = 0
        thinking = thinking_of(body)
        if thinking:
            text = "" if thinking.get("display") == "omitted" else THINKING_TEXT
            signature = model.sign(text)
            content.append({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}})
            for piece in ([text[:40], text[40:]] if text else []):
                events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": piece}}}))
            events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": signature}}}))
            events.append(("contentBlockStop", {"contentBlockIndex": 0}))
            index = 1
        name = record.call_tool
        call_id = model.new_call_id("tooluse_", name)
        content.append({"toolUse": {"toolUseId": call_id, "name": name, "input": model.tool_input(name)}})
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": call_id, "name": name}}}))
        for piece in split_json(model.tool_input(name)):
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        stop = "tool_use"
    else:
        text = FINAL_TEXT if record.kind == "result" else SIDE_TEXT
        content.append({"text": text})
        events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}))
        events.append(("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(("messageStop", {"stopReason": stop}))
    return content, events, stop


USAGE = {"inputTokens": 1200, "outputTokens": 42, "totalTokens": 1242, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}


class BedrockConverse:
    """`POST /model/{id}/converse-stream`, `/converse` and `/count-tokens`."""

    name = "bedrock-converse"
    thinking = True

    def __init__(self, model: Model, credentials: dict[str, str]):
        self.model = model
        self.credentials = credentials

    def error(self, reject: Reject) -> Reply:
        return aws.error_reply(reject)

    def handle(self, request: Request, record: Record) -> Reply:
        if request.method != "POST" or not CONVERSE_PATH.match(request.path):
            raise Reject(404, "UnknownOperationException", f"Unknown operation {request.method} {request.path}")
        if request.path.endswith("/count-tokens"):
            record.kind = "count_tokens"
            return aws.count_tokens(request, self.credentials)
        aws.verify(request, self.credentials)
        check_body(request.json, self.model, record)
        content, events, stop = answer(request.json, self.model, record)
        if request.path.endswith("/converse"):
            return json_reply(200, {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                                    "usage": USAGE, "metrics": {"latencyMs": 321}})
        events.append(("metadata", {"usage": USAGE, "metrics": {"latencyMs": 321}}))
        chunks = [aws.event(kind, payload, n) for n, (kind, payload) in enumerate(events)]
        return Reply(200, {"content-type": aws.EVENTSTREAM, "x-amzn-requestid": secrets.token_hex(16)}, chunks=chunks)
