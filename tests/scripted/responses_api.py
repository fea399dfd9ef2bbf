"""The scripted model behind the OpenAI Responses API (`POST /v1/responses`) and Azure OpenAI's.

It plays a reasoning model of the gpt-5 family: turn 1 answers a `reasoning` item (a summary, and
with `include: ["reasoning.encrypted_content"]` an `encrypted_content` the model signed) and one
`function_call`; the turn carrying the `function_call_output` answers the final text.

Rules checked (OpenAI's API reference; Azure's v1 API is the same for these): the key
(`Authorization: Bearer` for OpenAI, `api-key` for Azure, whose preview path needs `api-version`);
no unknown top-level field; `model` required; `input` a string or a list of known item types;
message roles and content part types per role; every `function_call_output` (and
`custom_tool_call_output`) answers a `function_call` (`custom_tool_call`) earlier in `input` with
the same `call_id`, tools given as an `additional_tools` input item (Codex's own models) are checked
like `tools`, and a call id is not answered twice; a `reasoning` item must carry
`encrypted_content` the model issued for the text it covers, or else be the id of an item of a
stored response (`store` not false); `previous_response_id` names a response this upstream stored; tools of known types, a
function tool with a name and object parameters; `include` values known; `max_output_tokens` at
least 16. The stream is the typed SSE events with `sequence_number`, as OpenAI sends them.

`record.signature_back` on the tool-result turn: the reasoning item with the exact
`encrypted_content` the model issued came back.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from typing import Any

from script import (CODE_MODE_TOOL, SIDE_TEXT, FINAL_TEXT, THINKING_TEXT, Model, Record, Reject, Reply, Request, json_reply,
                    split_json, sse)

RESPONSES_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
    "max_tool_calls", "temperature", "top_p", "top_logprobs", "reasoning", "text", "include", "store", "stream",
    "stream_options", "metadata", "prompt_cache_key", "prompt_cache_retention", "service_tier", "user",
    "safety_identifier", "previous_response_id", "conversation", "background", "prompt", "truncation",
    "context_management", "prompt_cache_options", "moderation", "background_options",
    # Codex CLI sends it on every request to OpenAI, which accepts it.
    "client_metadata",
}
ITEM_TYPES = {
    "additional_tools", "message", "function_call", "function_call_output", "reasoning", "custom_tool_call", "custom_tool_call_output",
    "web_search_call", "file_search_call", "local_shell_call", "local_shell_call_output", "item_reference",
    "compaction", "mcp_call", "image_generation_call", "code_interpreter_call", "tool_search_call",
    "tool_search_output", "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output",
}
TOOL_TYPES = {
    "function", "custom", "namespace", "web_search", "web_search_preview", "web_search_2025_08_26",
    "web_search_preview_2025_03_11", "file_search", "code_interpreter", "image_generation", "mcp", "local_shell",
    "shell", "apply_patch", "computer_use_preview", "computer", "tool_search",
}
INCLUDES = {
    "reasoning.encrypted_content", "web_search_call.action.sources", "web_search_call.results",
    "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results",
    "message.input_image.image_url", "message.output_text.logprobs",
}
USER_PARTS = {"input_text", "input_image", "input_file", "input_audio"}
ASSISTANT_PARTS = {"output_text", "refusal"}
ROLES = ("user", "assistant", "system", "developer")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
AZURE_PATHS = re.compile(r"^/openai/(v1/)?responses$")


def bad(message: str, param: str | None = None, code: str | None = None) -> Reject:
    return Reject(400, "invalid_request_error", message, param, code)


def function_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """The function tools, with those inside a `namespace` tool (Codex's sub-agent tools)."""
    out = []
    for tool in tools:
        if tool.get("type") == "function":
            out.append(tool)
        elif tool.get("type") == "namespace":
            out.extend(t for t in tool.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function")
    return out


def check_tools(tools: Any) -> list[str]:
    """Tool rules; the names of the function and custom tools the model may call."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad("Invalid type for 'tools': expected an array of objects.", "tools")
    names = []
    for k, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in TOOL_TYPES:
            raise bad(f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(TOOL_TYPES))}.", f"tools[{k}].type",
                      "invalid_value")
        if kind in ("function", "custom", "namespace") and not (isinstance(tool.get("name"), str) and tool["name"]):
            raise bad(f"Missing required parameter: 'tools[{k}].name'.", f"tools[{k}].name", "missing_required_parameter")
        if kind == "custom":
            names.append(tool["name"])
        if kind == "namespace":
            names += [t["name"] for t in tool.get("tools") or [] if isinstance(t, dict) and t.get("type") == "custom"
                      and isinstance(t.get("name"), str)]
    for tool in function_tools(tools):
        params = tool.get("parameters")
        if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
            raise bad(f"Invalid schema for function '{tool['name']}': schema must be a JSON Schema of 'type: \"object\"', "
                      f"got 'type: \"{(params or {}).get('type') if isinstance(params, dict) else params}\"'.",
                      "tools", "invalid_function_parameters")
        names.append(tool["name"])
    return names


def items_of(body: dict[str, Any], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation: stored items of `previous_response_id` first, then `input` as items."""
    given = body.get("input")
    if isinstance(given, str):
        return stored + [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}]
    if not isinstance(given, list):
        raise bad("Invalid type for 'input': expected one of a string or array of input items.", "input")
    return stored + given


def check_items(items: list[Any], model: Model, record: Record, store: bool, stored_ids: set[str]) -> list[str]:
    """Item rules; fills record.signature_back and the tool results of the last turn.

    Answers the names of the tools `additional_tools` items offer.
    """
    offered: list[str] = []
    calls: dict[str, str] = {}  # call_id -> item type of the call
    answered: set[str] = set()
    good_reasoning = False  # the latest reasoning item is one the model issued, intact
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]")
        kind = item.get("type", "message" if "role" in item else None)
        if kind not in ITEM_TYPES:
            raise bad(f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(ITEM_TYPES))}.", f"input[{i}].type",
                      "invalid_value")
        if kind == "additional_tools":
            if item.get("role") not in ("developer", "system", None):
                raise bad(f"Invalid value: '{item.get('role')}'. additional_tools take the developer role.", f"input[{i}].role")
            offered += check_tools(item.get("tools"))
            continue
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise bad(f"Invalid value: '{role}'. Supported values are: {', '.join(repr(r) for r in ROLES)}.", f"input[{i}].role")
            content = item.get("content")
            if isinstance(content, str):
                continue
            if not isinstance(content, list):
                raise bad(f"Invalid type for 'input[{i}].content': expected one of a string or array of content parts.",
                          f"input[{i}].content")
            allowed = ASSISTANT_PARTS if role == "assistant" else USER_PARTS
            for j, part in enumerate(content):
                ptype = part.get("type") if isinstance(part, dict) else None
                if ptype not in allowed:
                    raise bad(f"Invalid value: '{ptype}'. Supported values are: {', '.join(repr(a) for a in sorted(allowed))}.",
                              f"input[{i}].content[{j}].type", "invalid_value")
        elif kind in ("function_call", "custom_tool_call"):
            call_id = item.get("call_id")
            args = item.get("arguments") if kind == "function_call" else item.get("input")
            if not isinstance(call_id, str) or not item.get("name") or not isinstance(args, str):
                field_name = "arguments" if kind == "function_call" else "input"
                raise bad(f"Missing required parameter: 'input[{i}]' needs call_id, name and {field_name} (a string).",
                          f"input[{i}]", "missing_required_parameter")
            calls[call_id] = kind
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            want = "function_call" if kind == "function_call_output" else "custom_tool_call"
            if calls.get(call_id) != want:
                raise bad(f"No tool call found for {want.replace('_', ' ')} output with call_id {call_id}.", "input")
            if call_id in answered:
                raise bad(f"Duplicate {kind} for call_id {call_id}.", "input")
            answered.add(call_id)
            if not isinstance(item.get("output"), (str, list)):
                raise bad(f"Missing required parameter: 'input[{i}].output'.", f"input[{i}].output", "missing_required_parameter")
        elif kind == "reasoning":
            if not isinstance(item.get("summary"), list):
                raise bad(f"Missing required parameter: 'input[{i}].summary'.", f"input[{i}].summary", "missing_required_parameter")
            encrypted = item.get("encrypted_content")
            if encrypted is None:
                # Without its encrypted content a reasoning item is a reference to a stored one.
                if item.get("id") not in stored_ids:
                    hint = (" Items are not persisted when `store` is set to false. Try again with `store` set to true, "
                            "or remove this item from your input.") if not store else ""
                    raise Reject(404, "invalid_request_error", f"Item with id '{item.get('id')}' not found.{hint}", "input")
                good_reasoning = True
                continue
            if not model.signature_ok(encrypted, THINKING_TEXT):
                raise bad("The encrypted content for item " + str(item.get("id")) + " could not be verified.",
                          "input", "invalid_encrypted_content")
            good_reasoning = True
    last_call = max((i for i, it in enumerate(items) if isinstance(it, dict)
                     and it.get("type") in ("function_call", "custom_tool_call")), default=-1)
    results = [it for it in items[last_call + 1:] if it.get("type") in ("function_call_output", "custom_tool_call_output")]
    if results and last_call >= 0:
        record.kind = "result"
        record.tool_result_ids = [it["call_id"] for it in results]
        record.tool_result_text = json.dumps([it.get("output") for it in results])
        record.signature_back = good_reasoning
        for result_id in record.tool_result_ids:
            if not model.issued(result_id):
                raise bad(f"function_call_output {result_id} answers no call this model made", "input")
    return offered


class Answer:
    """One response: its output items, built once, written as JSON or as the event stream."""

    def __init__(self, body: dict[str, Any], model: Model, record: Record, model_name: str):
        self.body = body
        self.id = "resp_" + secrets.token_hex(24)
        self.created = int(time.time())
        self.model_name = model_name
        self.output: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        reasoning_tokens = 0
        if record.kind == "call":
            reasoning_tokens = 30
            include = body.get("include") or []
            summary = [{"type": "summary_text", "text": THINKING_TEXT}] if (body.get("reasoning") or {}).get("summary") else []
            item: dict[str, Any] = {"id": "rs_" + secrets.token_hex(24), "type": "reasoning", "summary": summary}
            if "reasoning.encrypted_content" in include:
                item["encrypted_content"] = model.sign(THINKING_TEXT)
            self._reasoning(item)
            name = record.call_tool or ""
            if name == CODE_MODE_TOOL:
                self._custom_call({"id": "ctc_" + secrets.token_hex(24), "type": "custom_tool_call", "status": "completed",
                                   "call_id": model.new_call_id("call_", name), "name": name,
                                   "input": model.tool_input(name)["input"]})
            else:
                arguments = json.dumps(model.tool_input(name), separators=(",", ":"))
                call = {"id": "fc_" + secrets.token_hex(24), "type": "function_call", "status": "completed",
                        "arguments": arguments, "call_id": model.new_call_id("call_", name), "name": name}
                self._call(call)
        else:
            self._message(FINAL_TEXT if record.kind == "result" else SIDE_TEXT)
        self.usage = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 42, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                      "total_tokens": 1242}

    def _add(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, dict({"type": name}, **data)))

    def _reasoning(self, item: dict[str, Any]) -> None:
        index = len(self.output)
        self._add("response.output_item.added", {"output_index": index, "item": dict(item, summary=[])})
        for k, part in enumerate(item["summary"]):
            ids = {"item_id": item["id"], "output_index": index, "summary_index": k}
            self._add("response.reasoning_summary_part.added", dict(ids, part={"type": "summary_text", "text": ""}))
            text = part["text"]
            for piece in (text[:40], text[40:]):
                self._add("response.reasoning_summary_text.delta", dict(ids, delta=piece))
            self._add("response.reasoning_summary_text.done", dict(ids, text=text))
            self._add("response.reasoning_summary_part.done", dict(ids, part=part))
        self._add("response.output_item.done", {"output_index": index, "item": item})
        self.output.append(item)

    def _call(self, call: dict[str, Any]) -> None:
        index = len(self.output)
        self._add("response.output_item.added", {"output_index": index, "item": dict(call, arguments="", status="in_progress")})
        for piece in split_json(json.loads(call["arguments"])):
            self._add("response.function_call_arguments.delta", {"item_id": call["id"], "output_index": index, "delta": piece})
        self._add("response.function_call_arguments.done", {"item_id": call["id"], "output_index": index,
                                                             "arguments": call["arguments"]})
        self._add("response.output_item.done", {"output_index": index, "item": call})
        self.output.append(call)

    def _custom_call(self, call: dict[str, Any]) -> None:
        index = len(self.output)
        self._add("response.output_item.added", {"output_index": index, "item": dict(call, input="", status="in_progress")})
        text = call["input"]
        for piece in (text[:len(text) // 2], text[len(text) // 2:]):
            self._add("response.custom_tool_call_input.delta", {"item_id": call["id"], "output_index": index, "delta": piece})
        self._add("response.custom_tool_call_input.done", {"item_id": call["id"], "output_index": index, "input": text})
        self._add("response.output_item.done", {"output_index": index, "item": call})
        self.output.append(call)

    def _message(self, text: str) -> None:
        index = len(self.output)
        item_id = "msg_" + secrets.token_hex(24)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        ids = {"item_id": item_id, "output_index": index, "content_index": 0}
        message = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        self._add("response.output_item.added", {"output_index": index, "item": dict(message, status="in_progress", content=[])})
        self._add("response.content_part.added", dict(ids, part=dict(part, text="")))
        self._add("response.output_text.delta", dict(ids, delta=text, logprobs=[]))
        self._add("response.output_text.done", dict(ids, text=text, logprobs=[]))
        self._add("response.content_part.done", dict(ids, part=part))
        self._add("response.output_item.done", {"output_index": index, "item": message})
        self.output.append(message)

    def response(self, status: str) -> dict[str, Any]:
        """The `response` object, as `response.created` (in progress) or complete."""
        body = self.body
        done = status == "completed"
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None, "model": self.model_name, "output": self.output if done else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"), "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort", "medium"),
                          "summary": (body.get("reasoning") or {}).get("summary")},
            "safety_identifier": None, "service_tier": "default", "store": body.get("store", True),
            "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [], "top_logprobs": 0,
            "top_p": 1.0, "truncation": "disabled", "usage": self.usage if done else None, "user": None,
            "metadata": body.get("metadata") or {},
        }

    def stream(self) -> list[bytes]:
        events = [("response.created", {"type": "response.created", "response": self.response("in_progress")}),
                  ("response.in_progress", {"type": "response.in_progress", "response": self.response("in_progress")})]
        events += self.events
        events.append(("response.completed", {"type": "response.completed", "response": self.response("completed")}))
        return sse([(name, dict(data, sequence_number=n)) for n, (name, data) in enumerate(events)])


class OpenAIResponses:
    """`POST /v1/responses` (OpenAI), or Azure's `/openai/v1/responses` and `/openai/responses` (`azure=True`)."""

    thinking = True

    def __init__(self, model: Model, api_key: str, azure: bool = False):
        self.model = model
        self.api_key = api_key
        self.azure = azure
        self.name = "azure_openai-responses" if azure else "openai-responses"
        self._lock = threading.Lock()
        self.stored: dict[str, list[dict[str, Any]]] = {}  # response id -> its input and output items
        self.stored_ids: set[str] = set()  # output item ids of stored responses

    def error(self, reject: Reject) -> Reply:
        kind = reject.kind if reject.status < 500 else "server_error"
        return json_reply(reject.status, {"error": {"message": reject.message, "type": kind,
                                                    "param": reject.param, "code": reject.code}})

    def handle(self, request: Request, record: Record) -> Reply:
        if request.headers.get("upgrade", "").lower() == "websocket":
            raise Reject(400, "invalid_request_error", "this scripted upstream does not speak WebSocket")
        if self.azure:
            if request.headers.get("api-key") != self.api_key:
                raise Reject(401, "invalid_request_error", "Access denied due to invalid subscription key or wrong API endpoint.")
            if request.method != "POST" or not AZURE_PATHS.match(request.path):
                raise Reject(404, "invalid_request_error", "Resource not found")
            if request.path == "/openai/responses" and not request.query.get("api-version"):
                raise Reject(400, "invalid_request_error", "Missing required query parameter: api-version")
        else:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                raise Reject(401, "invalid_request_error", "Incorrect API key provided.", None, "invalid_api_key")
            if request.method != "POST" or request.path != "/v1/responses":
                raise Reject(404, "invalid_request_error", f"Invalid URL ({request.method} {request.path})")
        body = request.json
        if not isinstance(body, dict):
            raise bad("We could not parse the JSON body of your request.")
        extra = sorted(set(body) - RESPONSES_FIELDS)
        if extra:
            raise bad(f"Unknown parameter: '{extra[0]}'.", extra[0], "unknown_parameter")
        if not (isinstance(body.get("model"), str) and body["model"]):
            raise bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        limit = body.get("max_output_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 16):
            raise bad(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit} instead.",
                      "max_output_tokens", "integer_below_min_value")
        effort = (body.get("reasoning") or {}).get("effort")
        if effort not in (None, *REASONING_EFFORTS):
            raise bad(f"Invalid value: '{effort}'. Supported values are: {REASONING_EFFORTS}.", "reasoning.effort")
        for value in body.get("include") or []:
            if value not in INCLUDES:
                raise bad(f"Invalid value: '{value}'. Supported values are: {', '.join(sorted(INCLUDES))}.", "include")
        store = body.get("store", True) is not False
        stored: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            with self._lock:
                found = self.stored.get(previous)
            if found is None:
                raise Reject(404 if not store else 400, "invalid_request_error",
                             f"Previous response with id '{previous}' not found.", "previous_response_id")
            stored = found
        items = items_of(body, stored)
        with self._lock:
            stored_ids = set(self.stored_ids)
        offered = check_items(items, self.model, record, store, stored_ids)
        names = check_tools(body.get("tools")) + offered
        if record.kind != "result":
            record.call_tool = self.model.tool_for(names)
            record.kind = "call" if record.call_tool else "side"
            record.thinking_requested = isinstance(body.get("reasoning"), dict)
        answer = Answer(body, self.model, record, body["model"])
        if store:
            with self._lock:
                self.stored[answer.id] = items + answer.output
                self.stored_ids.update(item["id"] for item in answer.output)
        if body.get("stream") is True:
            return Reply(200, {"content-type": "text/event-stream; charset=utf-8", "x-request-id": "req_scripted"},
                         chunks=answer.stream())
        return json_reply(200, answer.response("completed"), {"x-request-id": "req_scripted"})
