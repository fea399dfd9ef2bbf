"""The scripted model behind the Anthropic Messages API and behind Bedrock InvokeModel (Claude).

Both take the Anthropic Messages body; InvokeModel takes it without `model` and `stream` (the
model is in the path, streaming is the `invoke-with-response-stream` path), with
`anthropic_version: "bedrock-2023-05-31"` required and betas in the body's `anthropic_beta`
(only those Bedrock accepts), and answers a stream as event-stream `chunk` frames whose payload
is `{"bytes": base64(the Anthropic event JSON)}`.

Rules checked on every request (documented by Anthropic, and by Bedrock for InvokeModel):
required fields; no unknown top-level field; roles (`system` turns only on Anthropic's own API,
where Claude Code's betas allow them); at most 4 `cache_control` breakpoints; every `tool_use`
answered by a `tool_result` with its id in the next message and no `tool_result` without its
`tool_use`; every thinking block carries the signature the model issued for exactly that text;
with thinking on, the final assistant message before the last tool results starts with a thinking
block; `context_management` only with the context-management beta.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

import aws
from script import (SIDE_TEXT, FINAL_TEXT, THINKING_TEXT, Model, Record, Reject, Reply, Request,
                    check_cache_breakpoints, json_reply, split_json, sse)

MESSAGES_FIELDS = {
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config", "output_format", "inference_geo",
}
INVOKE_FIELDS = {
    "anthropic_version", "anthropic_beta", "messages", "max_tokens", "system", "metadata", "stop_sequences",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "context_management", "output_config",
    "output_format",
}
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
               "server_tool_use", "web_search_tool_result", "search_result", "tool_reference"}
THINKING_ERROR = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is "
    "enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` "
    "and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this "
    "requirement, disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
INVOKE_PATH = re.compile(r"^/model/[^/]+/(invoke|invoke-with-response-stream|count-tokens)$")


def thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def blocks_of(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def check_body(body: Any, model: Model, record: Record, fields: set[str], roles: tuple[str, ...],
               betas: list[str]) -> None:
    """The rules shared by both APIs; fills record.kind, signature_back and the tool result."""

    def bad(message: str) -> Reject:
        return Reject(400, "invalid_request_error", message)

    if not isinstance(body, dict):
        raise bad("The request body is not valid JSON.")
    extra = sorted(set(body) - fields)
    if extra:
        raise bad(f"{extra[0]}: Extra inputs are not permitted")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad("max_tokens: Field required")
    if "context_management" in body and not any(b.startswith("context-management-") for b in betas):
        raise bad("context_management: Extra inputs are not permitted (requires the context-management beta)")
    check_cache_breakpoints(body, "cache_control", bad)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: Field required")
    pending: set[str] = set()
    last_assistant = -1
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in roles:
            raise bad(f"messages.{i}.role: Input should be {' or '.join(repr(r) for r in roles)}")
        role = message["role"]
        blocks = blocks_of(message)
        if not blocks:
            raise bad(f"messages.{i}: all messages must have non-empty content")
        results = [b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if pending and (role != "user" or not pending <= set(results)):
            missing = ", ".join(sorted(pending - set(results)))
            raise bad(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                      f"{missing}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.")
        for j, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "tool_result" and block.get("tool_use_id") not in pending:
                raise bad(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. "
                          "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
        pending = set()
        for j, block in enumerate(blocks):
            if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
                raise bad(f"messages.{i}.content.{j}.type: Input tag does not match any of the expected tags")
            kind = block["type"]
            if kind == "thinking":
                if role != "assistant" or not isinstance(block.get("signature"), str):
                    raise bad(f"messages.{i}.content.{j}.thinking.signature: Field required")
                if not model.signature_ok(block["signature"], block.get("thinking")):
                    raise bad(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("id"), str) or not isinstance(block.get("input"), dict):
                    raise bad(f"messages.{i}.content.{j}: tool_use needs an assistant role, an id and an object input")
                pending.add(block["id"])
        if role == "assistant":
            last_assistant = i
    tools = body.get("tools") or []
    if not isinstance(tools, list) or any(not isinstance(t, dict) or not t.get("name") for t in tools):
        raise bad("tools: each tool needs a name")
    last = messages[-1]
    results = [b for b in blocks_of(last) if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not tools:
        record.kind = "side"
    elif last.get("role") == "user" and results:
        record.kind = "result"
        record.tool_result_ids = [b["tool_use_id"] for b in results]
        record.tool_result_text = json.dumps([b.get("content") for b in results])
        first = (blocks_of(messages[last_assistant]) or [{}])[0] if last_assistant >= 0 else {}
        record.signature_back = first.get("type") == "thinking"
        if thinking_on(body) and first.get("type") not in ("thinking", "redacted_thinking"):
            raise bad(THINKING_ERROR.format(i=last_assistant, found=first.get("type")))
        for result_id in record.tool_result_ids:
            if not model.issued(result_id):
                raise bad(f"tool_result {result_id} answers no tool call this model made")
    else:
        record.call_tool = model.tool_for(t.get("name") for t in tools)
        record.kind = "call" if record.call_tool else "side"
        record.thinking_requested = thinking_on(body)


def events(body: dict[str, Any], model: Model, record: Record, model_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The answer as Anthropic stream events."""
    usage = {"input_tokens": 1200, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": {
        "id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant", "model": model_name,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        out.extend(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas)
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    stop = "end_turn"
    if record.kind == "call":
        if thinking_on(body):
            omitted = (body.get("thinking") or {}).get("display") == "omitted"
            text = "" if omitted else THINKING_TEXT
            deltas = [] if omitted else [{"type": "thinking_delta", "thinking": text[:40]},
                                         {"type": "thinking_delta", "thinking": text[40:]}]
            block({"type": "thinking", "thinking": "", "signature": ""},
                  deltas + [{"type": "signature_delta", "signature": model.sign(text)}])
        block({"type": "tool_use", "id": model.new_call_id("toolu_", record.call_tool), "name": record.call_tool, "input": {}},
              [{"type": "input_json_delta", "partial_json": p} for p in split_json(model.tool_input(record.call_tool))])
        stop = "tool_use"
    else:
        text = FINAL_TEXT if record.kind == "result" else SIDE_TEXT
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": text}])
    out.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": 42}}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def as_message(stream: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The non-streaming body for the same answer."""
    message = dict(stream[0][1]["message"])
    content: list[dict[str, Any]] = []
    partial = ""
    for name, data in stream[1:]:
        if name == "content_block_start":
            content.append(dict(data["content_block"]))
            partial = ""
        elif name == "content_block_delta":
            delta, current = data["delta"], content[-1]
            if delta["type"] == "thinking_delta":
                current["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                current["signature"] = delta["signature"]
            elif delta["type"] == "text_delta":
                current["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                partial += delta["partial_json"]
                current["input"] = json.loads(partial) if partial.endswith("}") else current["input"]
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"] = dict(message["usage"], **data["usage"])
    message["content"] = content
    return message


class AnthropicMessages:
    """`POST /v1/messages` (SSE or JSON), `/v1/messages/count_tokens`, `GET /v1/models`, `HEAD /`."""

    name = "anthropic"
    thinking = True

    def __init__(self, model: Model, api_key: str):
        self.model = model
        self.api_key = api_key

    def error(self, reject: Reject) -> Reply:
        kind = reject.kind if reject.status != 500 else "api_error"
        return json_reply(reject.status, {"type": "error", "error": {"type": kind, "message": reject.message},
                                          "request_id": "req_scripted"})

    def handle(self, request: Request, record: Record) -> Reply:
        if request.method in ("HEAD", "GET") and request.path in ("/", ""):
            return Reply(200, {"content-type": "text/plain"}, b"")
        if request.headers.get("x-api-key") != self.api_key:
            raise Reject(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            raise Reject(400, "invalid_request_error", "anthropic-version: header is required")
        if request.method == "GET" and request.path == "/v1/models":
            return json_reply(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
        betas = [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]
        if request.method == "POST" and request.path == "/v1/messages/count_tokens":
            record.kind = "count_tokens"
            body = request.json if isinstance(request.json, dict) else {}
            if not isinstance(body.get("messages"), list) or not body.get("model"):
                raise Reject(400, "invalid_request_error", "model, messages: Field required")
            return json_reply(200, {"input_tokens": max(1, len(request.raw) // 4)})
        if request.method != "POST" or request.path != "/v1/messages":
            raise Reject(404, "not_found_error", f"Not found: {request.method} {request.path}")
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise Reject(400, "invalid_request_error", "model: Field required")
        check_body(body, self.model, record, MESSAGES_FIELDS, ("user", "assistant", "system"), betas)
        stream = events(body, self.model, record, body["model"])
        if body.get("stream") is True:
            return Reply(200, {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_scripted"}, chunks=sse(stream))
        return json_reply(200, as_message(stream))


def bedrock_model_name(model_id: str) -> str:
    """What Bedrock names the model in `message_start`: `us.anthropic.claude-x-v1:0` -> `claude-x`."""
    name = model_id.split("anthropic.", 1)[-1]
    return re.sub(r"-v\d+(:\d+)?$", "", name)


class BedrockInvoke:
    """`POST /model/{id}/invoke-with-response-stream` and `/invoke`, and `/count-tokens`."""

    name = "bedrock-invoke"
    thinking = True

    def __init__(self, model: Model, credentials: dict[str, str]):
        self.model = model
        self.credentials = credentials

    def error(self, reject: Reject) -> Reply:
        return aws.error_reply(reject)

    def handle(self, request: Request, record: Record) -> Reply:
        if request.method != "POST" or not INVOKE_PATH.match(request.path):
            raise Reject(404, "UnknownOperationException", f"Unknown operation {request.method} {request.path}")
        if request.path.endswith("/count-tokens"):
            record.kind = "count_tokens"
            return aws.count_tokens(request, self.credentials)
        aws.verify(request, self.credentials)
        body = request.json
        if not isinstance(body, dict):
            raise Reject(400, aws.VALIDATION, "Malformed input request, please reformat your input and try again.")
        for forbidden in ("model", "stream"):
            if forbidden in body:
                raise Reject(400, aws.VALIDATION,
                             f"Malformed input request: #: extraneous key [{forbidden}] is not permitted, please reformat your input and try again.")
        if body.get("anthropic_version") != "bedrock-2023-05-31":
            raise Reject(400, aws.VALIDATION,
                         "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.")
        betas = aws.check_betas(body.get("anthropic_beta"), "anthropic_beta")
        try:
            check_body(body, self.model, record, INVOKE_FIELDS, ("user", "assistant"), betas)
        except Reject as err:
            raise Reject(400, aws.VALIDATION, err.message) from None
        stream = events(body, self.model, record, bedrock_model_name(aws.model_of(request.path)))
        if not request.path.endswith("/invoke-with-response-stream"):
            return json_reply(200, as_message(stream))
        stream[-1][1]["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": 1200, "outputTokenCount": 42, "invocationLatency": 321, "firstByteLatency": 123}
        chunks = [aws.event("chunk", {"bytes": base64.b64encode(json.dumps(data).encode()).decode()}, n)
                  for n, (_name, data) in enumerate(stream)]
        return Reply(200, {"content-type": aws.EVENTSTREAM, "x-amzn-bedrock-content-type": "application/json"}, chunks=chunks)
