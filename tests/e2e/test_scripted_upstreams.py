"""The scripted model upstreams (tests/scripted/) on their own, without the gateway.

test_claude_code.py trusts them to accept exactly what the provider would and to refuse what it
would not. Here each one plays both turns with a hand-written request in the provider's own API,
as a correct gateway would send it: the second turn succeeds with the thinking block (or Gemini's
thoughtSignature) sent back as issued, and each broken rule gets the provider's 400.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import http.client
import json
import sys
from typing import Any, Callable, Iterator

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "scripted"))
sys.path.insert(0, str(REPO / "tests" / "replay"))
import bedrock_replay  # noqa: E402
import upstreams as scripted  # noqa: E402
from script import FINAL_TEXT, RESULT_FILE  # noqa: E402

KEY = "scripted-self-test-key"
AWS = {"access_key_id": "AKIDSCRIPTEDSELFTEST", "secret_access_key": "scripted/self+test", "session_token": "tok-self-test"}
AWS_HOST = "bedrock-runtime.us-east-1.amazonaws.com"
NONCE = "nonce-self-test"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


def post(port: int, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=raw, headers={"content-type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def signed(path: str, body: Any) -> dict[str, str]:
    """SigV4 headers for Bedrock Runtime, computed with the replay's verifier."""
    raw = json.dumps(body).encode()
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": AWS_HOST, "x-amz-date": amz_date, "x-amz-content-sha256": hashlib.sha256(raw).hexdigest(),
               "x-amz-security-token": AWS["session_token"]}
    names = sorted(headers)
    signature = bedrock_replay.expected_signature(AWS["secret_access_key"], "POST", path, "", headers, names, raw,
                                                  amz_date, "us-east-1", "bedrock")
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={AWS['access_key_id']}/{amz_date[:8]}/us-east-1/bedrock/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


def sse_data(body: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


def eventstream(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event type, JSON payload) of each AWS event-stream message."""
    out = []
    for frame in bedrock_replay.split_frames(body, "events"):
        headers_len = int.from_bytes(frame[4:8], "big")
        raw, i, headers = frame[12:12 + headers_len], 0, {}
        while i < len(raw):
            name = raw[i + 1:i + 1 + raw[i]].decode()
            i += 1 + raw[i] + 1  # name, then the value type (7: string)
            size = int.from_bytes(raw[i:i + 2], "big")
            headers[name] = raw[i + 2:i + 2 + size].decode()
            i += 2 + size
        out.append((headers[":event-type"], json.loads(frame[12 + headers_len:-4])))
    return out


def anthropic_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content blocks rebuilt from Anthropic stream events."""
    blocks: list[dict[str, Any]] = []
    for e in events:
        if e["type"] == "content_block_start":
            blocks.append(dict(e["content_block"], _json=""))
        elif e["type"] == "content_block_delta":
            d, b = e["delta"], blocks[-1]
            if d["type"] == "thinking_delta":
                b["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                b["_json"] += d["partial_json"]
            elif d["type"] == "text_delta":
                b["text"] += d["text"]
    for b in blocks:
        if b["type"] == "tool_use":
            b["input"] = json.loads(b["_json"])
        b.pop("_json")
    return blocks


# --- one adapter per provider API: the two turns a correct gateway sends --------------------------

class Anthropic:
    backend, path = "anthropic", "/v1/messages"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return {"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "context-management-2025-06-27"}

    def first(self) -> dict[str, Any]:
        return {"model": "claude-x", "max_tokens": 1000, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 500},
                "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
                "tools": [BASH], "messages": [{"role": "user", "content": "write the file"}]}

    def assistant(self, status: int, headers: dict[str, str], body: bytes) -> Any:
        return anthropic_events(sse_data(body))

    def second(self, first: dict[str, Any], blocks: Any) -> dict[str, Any]:
        call = next(b for b in blocks if b["type"] == "tool_use")
        return dict(first, messages=first["messages"] + [
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}]}])

    def final_text(self, body: bytes) -> str:
        return "".join(b.get("text", "") for b in anthropic_events(sse_data(body)))

    def breaks(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "thinking dropped": lambda b: b["messages"][1].update(content=b["messages"][1]["content"][1:]),
            "signature changed": lambda b: b["messages"][1]["content"][0].update(signature="Zm9yZ2Vk"),
            "thinking text changed": lambda b: b["messages"][1]["content"][0].update(thinking="something else"),
            "tool result id changed": lambda b: b["messages"][2]["content"][0].update(tool_use_id="toolu_other"),
            "five cache breakpoints": lambda b: b["system"].extend(
                {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(4)),
            "unknown field": lambda b: b.update(reasoning_effort="high"),
        }


class BedrockInvoke(Anthropic):
    backend = "bedrock-invoke"
    path = "/model/us.anthropic.claude-x-v1%3A0/invoke-with-response-stream"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return signed(path, body)

    def first(self) -> dict[str, Any]:
        body = super().first()
        del body["model"], body["stream"]
        return dict(body, anthropic_version="bedrock-2023-05-31", anthropic_beta=["interleaved-thinking-2025-05-14"])

    def assistant(self, status: int, headers: dict[str, str], body: bytes) -> Any:
        assert headers["content-type"] == "application/vnd.amazon.eventstream"
        return anthropic_events([json.loads(base64.b64decode(p["bytes"])) for k, p in eventstream(body) if k == "chunk"])

    def final_text(self, body: bytes) -> str:
        return "".join(b.get("text", "") for b in self.assistant(200, {"content-type": "application/vnd.amazon.eventstream"}, body))

    def breaks(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return dict(super().breaks(), **{
            "model in the body": lambda b: b.update(model="claude-x"),
            "no anthropic_version": lambda b: b.pop("anthropic_version"),
            "beta Bedrock does not take": lambda b: b.update(anthropic_beta=["claude-code-20250219"]),
            "system turn": lambda b: b["messages"].insert(1, {"role": "system", "content": "mid"}),
        })


class Converse:
    backend = "bedrock-converse"
    path = "/model/us.anthropic.claude-x-v1%3A0/converse-stream"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return signed(path, body)

    def first(self) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": [{"text": "write the file"}]}],
                "system": [{"text": "sys"}, {"cachePoint": {"type": "default"}}],
                "inferenceConfig": {"maxTokens": 1000},
                "toolConfig": {"tools": [{"toolSpec": {"name": "Bash", "inputSchema": {"json": BASH["input_schema"]}}}]},
                "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 500}}}

    def assistant(self, status: int, headers: dict[str, str], body: bytes) -> Any:
        text, signature, call, pieces = "", None, None, ""
        for kind, p in eventstream(body):
            delta = p.get("delta", {})
            text += delta.get("reasoningContent", {}).get("text", "")
            signature = delta.get("reasoningContent", {}).get("signature", signature)
            call = p["start"]["toolUse"] if kind == "contentBlockStart" else call
            pieces += delta.get("toolUse", {}).get("input", "")
        return [{"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}},
                {"toolUse": dict(call, input=json.loads(pieces))}]

    def second(self, first: dict[str, Any], blocks: Any) -> dict[str, Any]:
        call = blocks[1]["toolUse"]
        return dict(first, messages=first["messages"] + [
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"toolResult": {"toolUseId": call["toolUseId"], "content": [{"text": "ok"}]}}]}])

    def final_text(self, body: bytes) -> str:
        return "".join(p.get("delta", {}).get("text", "") for _k, p in eventstream(body))

    def breaks(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "reasoning dropped": lambda b: b["messages"][1].update(content=b["messages"][1]["content"][1:]),
            "signature changed": lambda b: b["messages"][1]["content"][0]["reasoningContent"]["reasoningText"].update(signature="x"),
            "tool result id changed": lambda b: b["messages"][2]["content"][0]["toolResult"].update(toolUseId="tooluse_other"),
            "five cache points": lambda b: b["system"].extend([{"cachePoint": {"type": "default"}}] * 4),
            "model in the body": lambda b: b.update(model="x"),
            "anthropic field": lambda b: b.update(max_tokens=5),
        }


class OpenAI:
    backend, path = "openai", "/v1/chat/completions"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {KEY}"}

    def first(self) -> dict[str, Any]:
        return {"model": "gpt-x", "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 1000,
                "tools": [{"type": "function", "function": {"name": "Bash", "parameters": BASH["input_schema"]}}],
                "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "write the file"}]}

    def assistant(self, status: int, headers: dict[str, str], body: bytes) -> Any:
        calls: dict[int, dict[str, Any]] = {}
        for chunk in sse_data(body):
            for choice in chunk.get("choices", []):
                for c in choice["delta"].get("tool_calls", []):
                    entry = calls.setdefault(c["index"], {"id": c.get("id"), "type": "function", "function": {"name": "", "arguments": ""}})
                    entry["function"]["name"] += c.get("function", {}).get("name", "")
                    entry["function"]["arguments"] += c.get("function", {}).get("arguments", "")
        return list(calls.values())

    def second(self, first: dict[str, Any], calls: Any) -> dict[str, Any]:
        return dict(first, messages=first["messages"] + [{"role": "assistant", "content": None, "tool_calls": calls},
                                                         {"role": "tool", "tool_call_id": calls[0]["id"], "content": "ok"}])

    def final_text(self, body: bytes) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in sse_data(body) if c.get("choices"))

    def breaks(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "tool message id changed": lambda b: b["messages"][3].update(tool_call_id="call_other"),
            "tool message missing": lambda b: b["messages"].pop(3),
            "max_tokens on a reasoning model": lambda b: b.update(max_tokens=1000),
            "anthropic field": lambda b: b.update(thinking={"type": "enabled"}),
        }


class Azure(OpenAI):
    backend, path = "azure_openai", "/openai/deployments/gpt-x/chat/completions?api-version=2025-04-01-preview"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return {"api-key": KEY}


class Gemini:
    backend, path = "gemini", "/v1beta/models/gemini-x:streamGenerateContent?alt=sse"

    def headers(self, path: str, body: Any) -> dict[str, str]:
        return {"x-goog-api-key": KEY}

    def first(self) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": "write the file"}]}],
                "systemInstruction": {"parts": [{"text": "sys"}]},
                "generationConfig": {"maxOutputTokens": 1000, "thinkingConfig": {"includeThoughts": True}},
                "tools": [{"functionDeclarations": [{"name": "Bash", "parameters": BASH["input_schema"]}]}]}

    def assistant(self, status: int, headers: dict[str, str], body: bytes) -> Any:
        return [p for r in sse_data(body) for p in r["candidates"][0]["content"]["parts"]]

    def second(self, first: dict[str, Any], parts: Any) -> dict[str, Any]:
        return dict(first, contents=first["contents"] + [
            {"role": "model", "parts": parts},
            {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"output": "ok"}}}]}])

    def final_text(self, body: bytes) -> str:
        return "".join(p.get("text", "") for p in self.assistant(200, {}, body))

    def breaks(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            "thoughtSignature dropped": lambda b: b["contents"][1]["parts"][1].pop("thoughtSignature"),
            "thoughtSignature changed": lambda b: b["contents"][1]["parts"][1].update(thoughtSignature="Zm9v"),
            "function response name changed": lambda b: b["contents"][2]["parts"][0]["functionResponse"].update(name="Write"),
            "additionalProperties in parameters": lambda b: b["tools"][0]["functionDeclarations"][0]["parameters"].update(
                additionalProperties=False),
            "unknown field": lambda b: b.update(thinking={"type": "enabled"}),
        }


APIS = [Anthropic(), BedrockInvoke(), Converse(), OpenAI(), Azure(), Gemini()]


@pytest.fixture(params=APIS, ids=lambda a: a.backend)
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    upstream = scripted.build(request.param.backend, NONCE, KEY, AWS).start()
    request.param.upstream = upstream
    yield request.param
    upstream.stop()


def play(api: Any) -> tuple[dict[str, Any], Any]:
    first = api.first()
    status, headers, body = post(api.upstream.port, api.path, first, api.headers(api.path.split("?")[0], first))
    assert status == 200, body[:2000]
    return first, api.assistant(status, headers, body)


def test_two_turns_with_the_signature_back(api) -> None:
    first, assistant = play(api)
    assert NONCE in json.dumps(assistant) and RESULT_FILE in json.dumps(assistant)
    second = api.second(first, assistant)
    status, _h, body = post(api.upstream.port, api.path, second, api.headers(api.path.split("?")[0], second))
    assert status == 200, body[:2000]
    assert api.final_text(body) == FINAL_TEXT
    kinds = [r.kind for r in api.upstream.records]
    assert kinds == ["call", "result"], api.upstream.summary()
    turn2 = api.upstream.records[1]
    assert turn2.error is None and len(turn2.tool_result_ids) == 1
    assert turn2.signature_back is (True if api.upstream.api.thinking else None)


def test_every_broken_rule_is_a_400_in_the_provider_shape(api) -> None:
    first, assistant = play(api)
    good = api.second(first, assistant)
    for name, breaker in api.breaks().items():
        body = copy.deepcopy(good)
        breaker(body)
        status, headers, answer = post(api.upstream.port, api.path, body, api.headers(api.path.split("?")[0], body))
        assert status == 400, f"{api.backend}: {name}: {status} {answer[:500]!r}"
        doc = json.loads(answer)
        if api.backend.startswith("bedrock"):
            assert headers["x-amzn-errortype"].startswith("ValidationException") and doc["message"], (name, doc)
        elif api.backend == "anthropic":
            assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error", (name, doc)
        elif api.backend == "gemini":
            assert doc["error"]["status"] == "INVALID_ARGUMENT", (name, doc)
        else:
            assert doc["error"]["type"] == "invalid_request_error" and doc["error"]["message"], (name, doc)


def test_a_request_without_tools_gets_a_short_text(api) -> None:
    first = api.first()
    for key in ("tools", "toolConfig"):
        first.pop(key, None)
    status, _h, body = post(api.upstream.port, api.path, first, api.headers(api.path.split("?")[0], first))
    assert status == 200, body[:1000]
    assert api.upstream.records[0].kind == "side"


def test_gemini_accepts_the_documented_placeholder_signature_but_counts_it_as_lost() -> None:
    api = Gemini()
    api.upstream = scripted.build("gemini", NONCE, KEY, AWS).start()
    try:
        first, parts = play(api)
        for part in parts:
            if "thoughtSignature" in part:
                part["thoughtSignature"] = "skip_thought_signature_validator"
        second = api.second(first, parts)
        status, _h, body = post(api.upstream.port, api.path, second, api.headers(api.path, second))
        assert status == 200, body[:1000]
        assert api.upstream.records[-1].signature_back is False
    finally:
        api.upstream.stop()
