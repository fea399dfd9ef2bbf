"""The scripted model behind the Gemini API (`/v1beta/models/{m}:streamGenerateContent?alt=sse`,
`:generateContent`, `:countTokens`), playing a Gemini 3 thinking model.

Rules checked (Gemini API reference, function calling and thought signatures guides): the
`x-goog-api-key`; no unknown field at the top level, in `generationConfig` or in a part; roles
`user` and `model`, non-empty parts with one data member each; function declarations' `parameters`
in the OpenAPI subset Gemini accepts (no `$schema`, `additionalProperties`, ...); a function
response turn comes right after the function call turn, with as many `functionResponse` parts as
there were `functionCall` parts and the same names; the first `functionCall` part of each model
turn carries the exact `thoughtSignature` the model issued with it (Gemini 3 refuses the turn
otherwise). Thought summaries (`thought: true` parts) only with `thinkingConfig.includeThoughts`.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from script import (SIDE_TEXT, FINAL_TEXT, THINKING_TEXT, Model, Record, Reject, Reply, Request, json_reply, sse)

PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|countTokens)$")
REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                  "cachedContent", "labels"}
GENERATION_FIELDS = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount",
    "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs",
    "logprobs", "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig", "mediaResolution",
}
# The placeholders Gemini's thought-signature guide documents for history that did not come from
# Gemini: accepted, but they are not the signature the model issued.
PLACEHOLDER_SIGNATURES = {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
THINKING_FIELDS = {"includeThoughts", "thinkingBudget", "thinkingLevel"}
DATA_MEMBERS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
PART_FIELDS = DATA_MEMBERS | {"thought", "thoughtSignature", "partMetadata", "videoMetadata", "mediaResolution"}
SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                 "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
                 "propertyOrdering", "default", "items", "minimum", "maximum"}
TOOL_FIELDS = {"functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse"}
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, "
    "and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` "
    ", position {position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def bad(message: str) -> Reject:
    return Reject(400, "INVALID_ARGUMENT", message)


def unknown(name: str, where: str) -> Reject:
    return bad(f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.')


def check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise bad(f"Invalid JSON payload received. {where} must be an object")
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            raise unknown(key, where)
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                check_schema(sub, f"{where}.properties[{name}].value")
        elif key == "items":
            check_schema(value, f"{where}.items")
        elif key == "anyOf" and isinstance(value, list):
            for k, sub in enumerate(value):
                check_schema(sub, f"{where}.any_of[{k}]")


def call_signature_text(call: dict[str, Any]) -> str:
    """What a thoughtSignature is bound to: the call's name and arguments."""
    return json.dumps([call.get("name"), call.get("args")], sort_keys=True)


def check_body(body: Any, model: Model, record: Record) -> None:
    if not isinstance(body, dict):
        raise bad("Invalid JSON payload received.")
    for name in sorted(set(body) - REQUEST_FIELDS):
        raise unknown(name, "")
    config = body.get("generationConfig") or {}
    for name in sorted(set(config) - GENERATION_FIELDS):
        raise unknown(name, "generation_config")
    for name in sorted(set(config.get("thinkingConfig") or {}) - THINKING_FIELDS):
        raise unknown(name, "generation_config.thinking_config")
    names: list[str] = []
    for t, tool in enumerate(body.get("tools") or []):
        for name in sorted(set(tool) - TOOL_FIELDS):
            raise unknown(name, f"tools[{t}]")
        for d, decl in enumerate(tool.get("functionDeclarations") or []):
            if not decl.get("name"):
                raise bad(f"* GenerateContentRequest.tools[{t}].function_declarations[{d}].name: Name cannot be empty.")
            if "parameters" in decl and "parametersJsonSchema" in decl:
                raise bad(f"tools[{t}].function_declarations[{d}]: parameters and parametersJsonSchema are mutually exclusive")
            if "parameters" in decl:
                check_schema(decl["parameters"], f"tools[{t}].function_declarations[{d}].parameters")
            names.append(decl["name"])
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise bad("* GenerateContentRequest.contents: contents is not specified")
    # Gemini validates signatures in the current turn only: after the last user turn with text.
    current = max((i for i, c in enumerate(contents) if isinstance(c, dict) and c.get("role") == "user"
                   and any("functionResponse" not in p for p in c.get("parts") or [] if isinstance(p, dict))), default=0)
    calls: list[dict[str, Any]] = []
    real_signature = False  # did the latest function call turn carry the signature the model issued
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            raise bad(f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise bad(f"contents[{i}].parts[{j}] must be an object")
            for name in sorted(set(part) - PART_FIELDS):
                raise unknown(name, f"contents[{i}].parts[{j}]")
            if len(set(part) & DATA_MEMBERS) != 1:
                raise bad(f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field")
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if responses and not calls:
            raise bad("Please ensure that function response turn comes immediately after a function call turn.")
        if calls and len(responses) != len(calls):
            raise bad("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.")
        for response, call in zip(responses, calls):
            if response.get("name") != call.get("name") or not isinstance(response.get("response"), dict):
                raise bad(f"contents[{i}]: functionResponse {response.get('name')!r} does not answer functionCall {call.get('name')!r}")
        calls = []
        if content["role"] == "model":
            call_parts = [p for p in parts if "functionCall" in p]
            for position, part in enumerate(call_parts):
                call = part["functionCall"]
                if not isinstance(call, dict) or not call.get("name") or not isinstance(call.get("args", {}), dict):
                    raise bad(f"contents[{i}]: functionCall needs a name and object args")
                signature = part.get("thoughtSignature")
                if position == 0:
                    real_signature = model.signature_ok(signature, call_signature_text(call))
                if position == 0 and i > current and signature not in PLACEHOLDER_SIGNATURES:
                    if signature is None:
                        raise bad(MISSING_SIGNATURE.format(name=call["name"], position=parts.index(part) + 1))
                    if not real_signature:
                        raise bad("Corrupted thought signature.")
                calls.append(call)
    last = contents[-1]
    responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
    if not names:
        record.kind = "side"
    elif last["role"] == "user" and responses:
        record.kind = "result"
        record.tool_result_ids = [r.get("name") for r in responses]
        record.tool_result_text = json.dumps([r.get("response") for r in responses])
        record.signature_back = real_signature
    else:
        record.call_tool = model.tool_for(names)
        record.kind = "call" if record.call_tool else "side"
        # Gemini 3 always thinks (and signs its calls); the request can only ask for summaries.
        record.thinking_requested = True


def answer(body: dict[str, Any], model: Model, record: Record, model_name: str) -> list[dict[str, Any]]:
    """The streamed responses (each a GenerateContentResponse)."""
    response_id = secrets.token_urlsafe(12)
    usage = {"promptTokenCount": 1200, "candidatesTokenCount": 12, "totalTokenCount": 1242, "thoughtsTokenCount": 30,
             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}]}

    def response(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model_name, "responseId": response_id}

    out = []
    if record.kind == "call":
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if thinking.get("includeThoughts"):
            out.append(response([{"text": THINKING_TEXT, "thought": True}], None))
        call = {"name": record.call_tool, "args": model.tool_input(record.call_tool)}
        out.append(response([{"functionCall": call, "thoughtSignature": model.sign(call_signature_text(call))}], "STOP"))
    else:
        text = FINAL_TEXT if record.kind == "result" else SIDE_TEXT
        out.append(response([{"text": text}], "STOP"))
    return out


class Gemini:
    """The Generative Language API's generate and count endpoints."""

    name = "gemini"
    thinking = True

    def __init__(self, model: Model, api_key: str):
        self.model = model
        self.api_key = api_key

    def error(self, reject: Reject) -> Reply:
        status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(reject.status, "INTERNAL")
        return json_reply(reject.status, {"error": {"code": reject.status, "message": reject.message, "status": status}})

    def handle(self, request: Request, record: Record) -> Reply:
        if request.headers.get("x-goog-api-key") != self.api_key:
            raise Reject(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        match = PATH.match(request.path)
        if request.method != "POST" or not match:
            raise Reject(404, "NOT_FOUND", f"Requested entity was not found: {request.method} {request.path}")
        if match["method"] == "countTokens":
            record.kind = "count_tokens"
            return json_reply(200, {"totalTokens": max(1, len(request.raw) // 4)})
        if match["method"] == "streamGenerateContent" and request.query.get("alt") != ["sse"]:
            raise bad("this scripted upstream streams only with alt=sse")
        check_body(request.json, self.model, record)
        responses = answer(request.json, self.model, record, match["model"])
        if match["method"] == "streamGenerateContent":
            return Reply(200, {"content-type": "text/event-stream"}, chunks=sse([(None, r) for r in responses]))
        whole = responses[-1]
        whole["candidates"][0]["content"]["parts"] = [p for r in responses for p in r["candidates"][0]["content"]["parts"]]
        return json_reply(200, whole)
