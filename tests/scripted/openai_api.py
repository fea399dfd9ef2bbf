"""The scripted model behind OpenAI Chat Completions and Azure OpenAI (Chat Completions at Azure's paths).

It plays a reasoning model (the gpt-5 family): it reasons, but Chat Completions carries no
reasoning text or signature back, only `completion_tokens_details.reasoning_tokens`.

Rules checked (OpenAI's API reference; Azure's is the same for these): the key (`Authorization:
Bearer` for OpenAI, `api-key` for Azure, whose deployment path needs `api-version`); no unknown
top-level field; `model` (OpenAI) and `messages` required; roles; `max_tokens` refused in favour
of `max_completion_tokens` (reasoning models), at most 128000; every assistant `tool_calls` entry
answered by a `tool` message with its id, and no `tool` message without a preceding call; tools
of type `function` with a name and object parameters.

Azure's stream starts with a chunk with no choices and `prompt_filter_results`, as Azure sends it.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from script import (SIDE_TEXT, FINAL_TEXT, Model, Record, Reject, Reply, Request, json_reply, split_json, sse)

CHAT_FIELDS = {
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
}
# Azure OpenAI's extensions to the same request.
AZURE_FIELDS = CHAT_FIELDS | {"data_sources", "user_security_context"}
ROLES = ("system", "developer", "user", "assistant", "tool")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
MAX_COMPLETION_TOKENS = 128000
AZURE_PATH = re.compile(r"^/openai/(deployments/[^/]+|v1)/chat/completions$")


def check_body(body: Any, model: Model, record: Record, fields: set[str], model_required: bool) -> None:
    def bad(message: str, param: str | None = None, code: str | None = None) -> Reject:
        return Reject(400, "invalid_request_error", message, param, code)

    if not isinstance(body, dict):
        raise bad("We could not parse the JSON body of your request.")
    extra = sorted(set(body) - fields)
    if extra:
        raise bad(f"Unrecognized request argument supplied: {extra[0]}")
    if model_required and not (isinstance(body.get("model"), str) and body["model"]):
        raise bad("you must provide a model parameter")
    if "max_tokens" in body:
        raise bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                  "max_tokens", "unsupported_parameter")
    limit = body.get("max_completion_tokens")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= MAX_COMPLETION_TOKENS):
        raise bad(f"max_completion_tokens is too large: {limit}. This model supports at most {MAX_COMPLETION_TOKENS} "
                  f"completion tokens, whereas you provided {limit}.", "max_completion_tokens", "invalid_value")
    if body.get("reasoning_effort") not in (None, *REASONING_EFFORTS):
        raise bad(f"Invalid value: '{body['reasoning_effort']}'. Supported values are: {REASONING_EFFORTS}.", "reasoning_effort")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty array", "messages")
    pending: set[str] = set()
    last_call = -1
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise bad(f"Invalid value: '{role}'. Supported values are: {', '.join(repr(r) for r in ROLES)}.", f"messages[{i}].role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise bad("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                          f"messages.[{i}].role")
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            raise bad("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                      f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}",
                      f"messages.[{i}].role")
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            for k, call in enumerate(calls):
                function = call.get("function") if isinstance(call, dict) else None
                if call.get("type") != "function" or not isinstance(function, dict) or not isinstance(call.get("id"), str) \
                        or not isinstance(function.get("arguments"), str) or not function.get("name"):
                    raise bad(f"Missing required parameter: 'messages[{i}].tool_calls[{k}]' (id, type, function.name, function.arguments).")
                pending.add(call["id"])
            last_call = i
        elif message.get("content") in (None, "", []):
            raise bad(f"Invalid value for 'content': expected a string or an array of content parts, got null (messages[{i}]).")
    if pending:
        raise bad("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                  f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}")
    tools = body.get("tools") or []
    for k, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise bad(f"Missing required parameter: 'tools[{k}].function'.", f"tools[{k}]")
        params = function.get("parameters")
        if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
            raise bad(f"Invalid schema for function '{function['name']}': schema must be a JSON Schema of 'type: \"object\"'.")
    names = [t["function"]["name"] for t in tools]
    results = [m for m in messages[last_call + 1:] if m.get("role") == "tool"] if last_call >= 0 else []
    if not tools:
        record.kind = "side"
    elif results:
        record.kind = "result"
        record.tool_result_ids = [m["tool_call_id"] for m in results]
        record.tool_result_text = repr([m.get("content") for m in results])
        for result_id in record.tool_result_ids:
            if not model.issued(result_id):
                raise bad(f"tool message {result_id} answers no tool call this model made")
    else:
        record.call_tool = model.tool_for(names)
        record.kind = "call" if record.call_tool else "side"


def chunks(body: dict[str, Any], model: Model, record: Record, model_name: str, azure: bool) -> tuple[list[bytes], dict[str, Any]]:
    """The stream (SSE chunks) and the non-streaming body of the same answer."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model_name, "system_fingerprint": None}
    usage = {"prompt_tokens": 1200, "completion_tokens": 42, "total_tokens": 1242,
             "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 30 if record.kind == "call" else 0, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

    events: list[dict[str, Any]] = []
    if azure:
        events.append({"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}]})
    if record.kind == "call":
        call_id = model.new_call_id("call_", record.call_tool)
        pieces = split_json(model.tool_input(record.call_tool))
        events.append(chunk({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"index": 0, "id": call_id, "type": "function", "function": {"name": record.call_tool, "arguments": ""}}]}))
        events.extend(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces)
        events.append(chunk({}, "tool_calls"))
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": record.call_tool, "arguments": "".join(pieces)}}]}
        finish = "tool_calls"
    else:
        text = FINAL_TEXT if record.kind == "result" else SIDE_TEXT
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        events.append(chunk({"content": text}))
        events.append(chunk({}, "stop"))
        message = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(dict(base, choices=[], usage=usage))
    whole = dict(base, object="chat.completion", usage=usage,
                 choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}])
    return sse([(None, e) for e in events] + [(None, "[DONE]")]), whole


class OpenAIChat:
    """`POST /v1/chat/completions` (OpenAI) or Azure's chat completions paths (`azure=True`)."""

    thinking = False

    def __init__(self, model: Model, api_key: str, azure: bool = False):
        self.model = model
        self.api_key = api_key
        self.azure = azure
        self.name = "azure_openai" if azure else "openai"

    def error(self, reject: Reject) -> Reply:
        kind = reject.kind if reject.status < 500 else "server_error"
        return json_reply(reject.status, {"error": {"message": reject.message, "type": kind,
                                                    "param": reject.param, "code": reject.code}})

    def handle(self, request: Request, record: Record) -> Reply:
        if self.azure:
            if request.headers.get("api-key") != self.api_key:
                raise Reject(401, "invalid_request_error", "Access denied due to invalid subscription key or wrong API endpoint.")
            if request.method != "POST" or not AZURE_PATH.match(request.path):
                raise Reject(404, "invalid_request_error", "Resource not found")
            if request.path.startswith("/openai/deployments/") and not request.query.get("api-version"):
                raise Reject(404, "invalid_request_error", "Resource not found")
            model_name = request.path.split("/")[3] if request.path.startswith("/openai/deployments/") else ""
        else:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                raise Reject(401, "invalid_request_error", "Incorrect API key provided.")
            if request.method != "POST" or request.path != "/v1/chat/completions":
                raise Reject(404, "invalid_request_error", f"Invalid URL ({request.method} {request.path})")
            model_name = ""
        body = request.json
        check_body(body, self.model, record, AZURE_FIELDS if self.azure else CHAT_FIELDS,
                   model_required=not request.path.startswith("/openai/deployments/"))
        model_name = body.get("model") or model_name
        stream, whole = chunks(body, self.model, record, model_name, self.azure)
        if body.get("stream") is True:
            return Reply(200, {"content-type": "text/event-stream; charset=utf-8"}, chunks=stream)
        return json_reply(200, whole)
