#!/usr/bin/env python3
"""Replay upstream: serves recorded provider exchanges to the gateway as if it were the provider.

It loads the VCR cassettes under ``fixtures/recorded`` (go-vcr v2 and vcrpy flavours) and
answers ``POST /v1/messages`` (Anthropic), ``POST .../chat/completions`` (OpenAI; Azure OpenAI
under ``/openai/deployments/{d}/`` and ``/openai/v1/``), Bedrock Runtime (``/model/{id}/...``,
see ``bedrock_replay``) and ``POST
/v1beta/models/{m}:generateContent`` / ``:streamGenerateContent?alt=sse`` (Gemini) with a
recorded response. Streams go out with chunked transfer encoding, a few events per chunk and a
small delay between chunks, so the gateway really sees a stream and not one buffer.

Which recording is replayed:
  * ``x-replay-fixture: anthropic/test_anthropic_tool_output.yaml`` and optional
    ``x-replay-interaction: N`` (default 0) pick one interaction explicitly (tests do this);
  * without them (demo mode) a default per endpoint and ``stream`` flag is used.

It also checks the request roughly the way the provider would (Anthropic: ``max_tokens``, roles,
``anthropic-version``, no unknown top-level fields, tool_use/tool_result pairing; OpenAI:
``model``, ``messages``) and answers with the provider's error shape, so a broken translation
fails end-to-end tests instead of being papered over by a replay that accepts anything.

Every request received is kept and served at ``GET /__replay/requests`` (``DELETE`` clears), so a
test can assert exactly what the gateway sent upstream.

Only the standard library and PyYAML are used. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bedrock_replay  # noqa: E402  (sibling module; this file is also loaded by path)

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"

# Defaults for demo mode (no x-replay-fixture header): (family, stream) -> (fixture, interaction).
DEMO_DEFAULTS: dict[tuple[str, bool], tuple[str, int]] = {
    ("anthropic", False): ("anthropic/test_anthropic_model_instructions.yaml", 0),
    ("anthropic", True): ("anthropic/test_request_stream_fallback_for_high_max_tokens.yaml", 0),
    ("openai", False): ("openai/chat-basic.yaml", 0),
    ("openai", True): ("openai/chat-streaming.yaml", 0),
    ("gemini", False): ("gemini/test_google_model.yaml", 0),
    ("gemini", True): ("gemini/test_google_model_stream.yaml", 0),
    ("azure", False): ("openai/azure-chat-basic.yaml", 0),
}

# Response headers worth replaying; hop-by-hop and length headers are ours to set.
REPLAYED_HEADERS = {"content-type", "request-id", "x-request-id", "openai-version", "openai-processing-ms", "anthropic-organization-id",
                    "x-amzn-requestid", "x-amzn-errortype"}

# Top-level fields the Anthropic Messages API accepts; anything else is a 400 there
# ("Extra inputs are not permitted"), which is what catches OpenAI-only fields leaking through.
ANTHROPIC_MESSAGE_FIELDS = {
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "output_format",
    # Automatic prompt caching (recorded against the real API: anthropic/test_anthropic_cache_*).
    "cache_control",
}
ANTHROPIC_BLOCK_TYPES = {
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "server_tool_use", "web_search_tool_result", "search_result",
}


@dataclass
class Interaction:
    """One recorded request/response pair."""

    method: str
    path: str
    request_body: Any
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def is_stream(self) -> bool:
        return self.content_type.startswith("text/event-stream") or self.is_eventstream

    @property
    def is_eventstream(self) -> bool:
        """Bedrock's binary AWS event stream (ConverseStream)."""
        return self.content_type.startswith("application/vnd.amazon.eventstream")


@dataclass
class Fixture:
    """One cassette file: a name relative to the fixtures root and its interactions in order."""

    name: str
    interactions: list[Interaction] = field(default_factory=list)


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):  # PyYAML turns !!binary into bytes already
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _first_header(headers: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, values in (headers or {}).items():
        if isinstance(values, list):
            values = values[0] if values else ""
        if isinstance(values, bytes):
            values = values.decode("utf-8", "replace")
        out[str(name).lower()] = str(values)
    return out


def _parse_interaction(raw: dict[str, Any]) -> Interaction:
    request = raw.get("request") or {}
    response = raw.get("response") or {}
    url = request.get("uri") or request.get("url") or ""
    if "parsed_body" in request:
        request_body = request["parsed_body"]
    else:
        request_body = request.get("body")
        if isinstance(request_body, (str, bytes)) and request_body:
            try:
                request_body = json.loads(request_body)
            except ValueError:
                pass
    status_field = response.get("status")
    if isinstance(status_field, dict):  # vcrpy
        status = int(status_field.get("code", 200))
    else:  # go-vcr: `code: 200`, `status: "200 OK"`
        status = int(response.get("code") or str(status_field or "200").split()[0])
    if "parsed_body" in response:
        body = json.dumps(response["parsed_body"]).encode("utf-8")
    else:
        raw_body = response.get("body")
        if isinstance(raw_body, dict):  # vcrpy: body: {string: ...}
            raw_body = raw_body.get("string")
        body = _as_bytes(raw_body)
    return Interaction(
        method=str(request.get("method", "POST")).upper(),
        path=urlsplit(url).path,
        request_body=request_body,
        status=status,
        headers=_first_header(response.get("headers")),
        body=body,
    )


def load_fixtures(root: Path) -> dict[str, Fixture]:
    """Loads every cassette under ``root``, keyed by its path relative to ``root``."""
    fixtures: dict[str, Fixture] = {}
    for path in sorted(root.rglob("*.yaml")):
        with path.open("rb") as fh:
            doc = yaml.safe_load(fh)
        if not isinstance(doc, dict) or not isinstance(doc.get("interactions"), list):
            continue
        name = path.relative_to(root).as_posix()
        fixtures[name] = Fixture(name, [_parse_interaction(i) for i in doc["interactions"]])
    return fixtures


GEMINI_METHODS = (":generateContent", ":streamGenerateContent", ":batchEmbedContents")


def family_of_path(path: str) -> str | None:
    """The provider API a request path belongs to, as the replay understands it."""
    if bedrock_replay.is_bedrock_path(path):
        return "bedrock"
    if path.startswith("/v1beta/models/") and path.endswith(GEMINI_METHODS):
        return "gemini"
    # OpenAI's Responses API, and Azure's v1 surface of it.
    if path.endswith(("/v1/responses", "/v1/responses/input_tokens")):
        return "openai-responses"
    if (path.startswith("/openai/deployments/") or path.startswith("/openai/v1/")) and path.endswith(("/chat/completions", "/embeddings")):
        return "azure"
    if path.endswith("/messages") or path.endswith("/messages/count_tokens"):
        return "anthropic"
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/embeddings"):
        return "openai-embeddings"
    return None


def split_stream(body: bytes, chunking: str) -> list[bytes]:
    """Cuts a recorded SSE body into the chunks the replay sends.

    ``events`` sends one event per chunk; ``split`` additionally cuts every event in two in the
    middle (so an event always straddles two chunks); ``bytes:N`` sends fixed N-byte chunks.
    """
    if chunking.startswith("bytes:"):
        try:
            size = max(1, int(chunking.split(":", 1)[1]))
        except ValueError:
            size = 16
        return [body[i : i + size] for i in range(0, len(body), size)]
    normalized_sep = b"\n\n" if b"\r\n\r\n" not in body else b"\r\n\r\n"
    pieces: list[bytes] = []
    rest = body
    while rest:
        idx = rest.find(normalized_sep)
        if idx < 0:
            pieces.append(rest)
            break
        pieces.append(rest[: idx + len(normalized_sep)])
        rest = rest[idx + len(normalized_sep) :]
    if chunking == "split":
        halves: list[bytes] = []
        for piece in pieces:
            mid = len(piece) // 2
            halves.extend(p for p in (piece[:mid], piece[mid:]) if p)
        return halves
    return pieces


class ReplayError(Exception):
    """A request the provider would reject; rendered in that provider's error shape."""

    def __init__(self, status: int, family: str, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.family = family
        self.kind = kind
        self.message = message

    def body(self) -> bytes:
        if self.family == "anthropic":
            doc = {"type": "error", "error": {"type": self.kind, "message": self.message}}
        elif self.family == "bedrock":
            doc = {"message": self.message}  # the exception name travels in x-amzn-errortype
        elif self.family == "gemini":
            doc = {"error": {"code": self.status, "message": self.message, "status": self.kind}}
        elif self.family == "azure":
            # Azure's own shape: OpenAI-like plus `innererror`/`status`, or just code and message.
            doc = {"error": {"code": self.kind, "message": self.message, "status": self.status,
                             "innererror": {"code": self.kind}}}
        else:
            doc = {"error": {"message": self.message, "type": self.kind, "param": None, "code": None}}
        return json.dumps(doc).encode("utf-8")


def validate_anthropic(headers: dict[str, str], body: Any, expected_key: str | None, counting: bool = False) -> None:
    """Rejects what the real Messages API would reject (a useful subset of it); `counting` for
    `/v1/messages/count_tokens`, which takes no `max_tokens` and no `stream`."""

    def bad(message: str) -> ReplayError:
        return ReplayError(400, "anthropic", "invalid_request_error", message)

    if expected_key is not None:
        if not headers.get("x-api-key"):
            raise ReplayError(401, "anthropic", "authentication_error", "x-api-key header is required")
        if headers.get("x-api-key") != expected_key:
            raise ReplayError(401, "anthropic", "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
        raise bad("anthropic-version: header is required")
    if not isinstance(body, dict):
        raise bad("The request body is not valid JSON or not an object.")
    extra = sorted(set(body) - ANTHROPIC_MESSAGE_FIELDS)
    if extra:
        raise bad(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad("model: Field required")
    if counting:
        for field in ("max_tokens", "stream"):
            if field in body:
                raise bad(f"{field}: Extra inputs are not permitted")
    max_tokens = body.get("max_tokens")
    if not counting and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise bad("max_tokens: Field required (a positive integer)")
    if "temperature" in body and not (isinstance(body["temperature"], (int, float)) and 0 <= body["temperature"] <= 1):
        raise bad("temperature: Input should be less than or equal to 1")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise bad("stream: Input should be a valid boolean")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list) or any(not isinstance(b, dict) or b.get("type") != "text" for b in system):
            raise bad("system: Input should be a valid string or a list of text blocks")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages: at least one message is required")
    pending_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages.{i}: Input should be an object")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            blocks = content
        else:
            raise bad(f"messages.{i}.content: Input should be a valid string or list")
        if pending_tool_ids:
            results = {b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"}
            if role != "user" or not pending_tool_ids <= results:
                missing = sorted(pending_tool_ids - results)
                raise bad(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}"
                )
            pending_tool_ids = set()
        for j, block in enumerate(blocks):
            if not isinstance(block, dict) or block.get("type") not in ANTHROPIC_BLOCK_TYPES:
                raise bad(f"messages.{i}.content.{j}: unknown or missing block type")
            kind = block["type"]
            if kind == "text" and not isinstance(block.get("text"), str):
                raise bad(f"messages.{i}.content.{j}.text: Field required")
            if kind == "tool_use":
                if role != "assistant":
                    raise bad(f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages")
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise bad(f"messages.{i}.content.{j}: tool_use needs id and name")
                if not isinstance(block.get("input"), dict):
                    raise bad(f"messages.{i}.content.{j}.input: Input should be an object")
                pending_tool_ids.add(block["id"])
            if kind == "tool_result":
                if role != "user":
                    raise bad(f"messages.{i}.content.{j}: tool_result blocks are only allowed in user messages")
                if not isinstance(block.get("tool_use_id"), str):
                    raise bad(f"messages.{i}.content.{j}.tool_use_id: Field required")
            if kind == "image":
                source = block.get("source")
                if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
                    raise bad(f"messages.{i}.content.{j}.source: base64 or url source required")
                if source["type"] == "base64" and not (source.get("media_type") and source.get("data")):
                    raise bad(f"messages.{i}.content.{j}.source: media_type and data required")
                if source["type"] == "url" and not source.get("url"):
                    raise bad(f"messages.{i}.content.{j}.source.url: Field required")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools: Input should be a valid list")
        for k, tool in enumerate(tools):
            schema = tool.get("input_schema") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise bad(f"tools.{k}.name: Field required")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise bad(f"tools.{k}.input_schema: type 'object' required")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            raise bad("tool_choice: Input tag does not match any of the expected tags")
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise bad("tool_choice.name: Field required")


def validate_openai_responses(headers: dict[str, str], body: Any, openai_key: str | None, azure_key: str | None) -> None:
    """OpenAI's Responses API (or Azure's v1 surface of it): a key, a JSON object with a model."""
    keys = {f"Bearer {k}" for k in (openai_key,) if k} | {k for k in (azure_key,) if k}
    presented = {headers.get("authorization", ""), headers.get("api-key", "")}
    if keys and not keys & presented:
        raise ReplayError(401, "openai", "invalid_request_error", "Incorrect API key provided.")
    if not isinstance(body, dict):
        raise ReplayError(400, "openai", "invalid_request_error", "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ReplayError(400, "openai", "invalid_request_error", "Missing required parameter: 'model'.")


def validate_openai(headers: dict[str, str], body: Any, expected_key: str | None) -> None:
    """Rejects what OpenAI's Chat Completions API would reject (a small subset)."""
    if expected_key is not None and headers.get("authorization") != f"Bearer {expected_key}":
        raise ReplayError(401, "openai", "invalid_request_error", "Incorrect API key provided.")
    if not isinstance(body, dict):
        raise ReplayError(400, "openai", "invalid_request_error", "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ReplayError(400, "openai", "invalid_request_error", "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ReplayError(400, "openai", "invalid_request_error", "'messages' must be a non-empty array")


GEMINI_REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                         "safetySettings", "cachedContent", "labels"}


def validate_gemini_embed(path: str, body: dict[str, Any], bad: Any) -> None:
    """batchEmbedContents: every request names the path's model and carries text parts."""
    model = "models/" + path.removeprefix("/v1beta/models/").split(":")[0]
    if set(body) != {"requests"} or not isinstance(body["requests"], list) or not body["requests"]:
        raise bad("* BatchEmbedContentsRequest.requests: requests is not specified")
    for i, r in enumerate(body["requests"]):
        if not isinstance(r, dict) or set(r) - {"model", "content", "taskType", "title", "outputDimensionality"}:
            raise bad(f"Invalid JSON payload received. Unknown name in requests[{i}]")
        if r.get("model") != model:
            raise bad(f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be {model}")
        parts = (r.get("content") or {}).get("parts")
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
            raise bad(f"* BatchEmbedContentsRequest.requests[{i}].content.parts: text parts are required")


def validate_gemini(headers: dict[str, str], query: str, path: str, body: Any, expected_key: str | None) -> None:
    """Rejects what the Generative Language API would reject (a useful subset), in Google's shape."""

    def bad(message: str) -> ReplayError:
        return ReplayError(400, "gemini", "INVALID_ARGUMENT", message)

    if expected_key is not None and headers.get("x-goog-api-key") != expected_key:
        raise ReplayError(400, "gemini", "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    if "authorization" in headers or "api-key" in headers:
        raise bad("replay: a foreign credential header reached Gemini")
    if path.endswith(":streamGenerateContent") and parse_qs(query).get("alt") != ["sse"]:
        raise bad("replay: streams are only replayed with alt=sse")
    if not isinstance(body, dict):
        raise bad("Invalid JSON payload received.")
    if path.endswith(":batchEmbedContents"):
        validate_gemini_embed(path, body, bad)
        return
    extra = sorted(set(body) - GEMINI_REQUEST_FIELDS)
    if extra:
        raise bad(f'Invalid JSON payload received. Unknown name "{extra[0]}": Cannot find field.')
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise bad("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            raise bad(f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations") or []:
            if "additionalProperties" in json.dumps(decl.get("parameters", {})):
                raise bad('Invalid JSON payload received. Unknown name "additionalProperties"')


def validate_azure(headers: dict[str, str], query: str, path: str, body: Any, expected_key: str | None) -> None:
    """Rejects what Azure OpenAI would reject (a small subset), in Azure's error shape."""
    if expected_key is not None and headers.get("api-key") != expected_key:
        raise ReplayError(401, "azure", "401", "Access denied due to invalid subscription key or wrong API endpoint.")
    if "authorization" in headers or "x-goog-api-key" in headers:
        raise ReplayError(400, "azure", "BadRequest", "replay: a foreign credential header reached Azure")
    if path.startswith("/openai/deployments/") and not parse_qs(query).get("api-version"):
        raise ReplayError(404, "azure", "404", "Resource not found")
    if path.endswith("/embeddings"):
        if not isinstance(body, dict) or body.get("input") in (None, "", []):
            raise ReplayError(400, "azure", "BadRequest", "'input' is required")
        return
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ReplayError(400, "azure", "BadRequest", "'messages' must be a non-empty array")


class ReplayState:
    """Fixtures, settings and the log of received requests, shared by all handler threads."""

    def __init__(self, fixtures: dict[str, Fixture], chunk_delay: float, anthropic_key: str | None, openai_key: str | None,
                 gemini_key: str | None = None, azure_key: str | None = None, bedrock_key: str | None = None):
        self.fixtures = fixtures
        self.chunk_delay = chunk_delay
        self.anthropic_key = anthropic_key
        self.openai_key = openai_key
        self.gemini_key = gemini_key
        self.azure_key = azure_key
        # AWS credentials (JSON) whose SigV4 signatures the Bedrock endpoints require.
        self.bedrock_credentials = bedrock_replay.parse_credentials(bedrock_key)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()


class ReplayHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler; one instance per connection, state on the server."""

    protocol_version = "HTTP/1.1"
    server_version = "replay-upstream/1"
    state: ReplayState  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if os.environ.get("REPLAY_VERBOSE"):
            sys.stderr.write("replay: " + format % args + "\n")

    # --- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline().strip().split(b";")[0]
                size = int(size_line or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc, indent=1).encode("utf-8"))

    def _stream(self, status: int, headers: dict[str, str], chunks: list[bytes], delay: float) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            if delay > 0:
                time.sleep(delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- control endpoints ------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        url = urlsplit(self.path)
        if url.path == "/__replay/health":
            self._send_json(200, {"ok": True, "fixtures": len(self.state.fixtures)})
        elif url.path == "/__replay/requests":
            entries = self.state.requests()
            test_id = parse_qs(url.query).get("test_id", [None])[0]
            if test_id is not None:
                entries = [e for e in entries if e["headers"].get("x-test-id") == test_id]
            self._send_json(200, entries)
        elif url.path == "/__replay/fixtures":
            self._send_json(200, {name: len(f.interactions) for name, f in self.state.fixtures.items()})
        else:
            self._record(b"")
            self._send_json(404, {"error": {"message": f"replay: no GET handler for {url.path}", "type": "not_found"}})

    def do_DELETE(self) -> None:  # noqa: N802
        if urlsplit(self.path).path == "/__replay/requests":
            self.state.clear()
            self._send(204, b"")
        else:
            self._send_json(404, {"error": {"message": "replay: not found", "type": "not_found"}})

    # --- provider endpoints -------------------------------------------------------------------

    def _record(self, raw: bytes) -> dict[str, Any]:
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {
            "method": self.command,
            "path": urlsplit(self.path).path,
            "query": urlsplit(self.path).query,
            "headers": headers,
            "body": raw.decode("utf-8", "replace"),
            "body_b64": base64.b64encode(raw).decode("ascii"),
            "json": parsed,
            "time": time.time(),
        }
        self.state.record(entry)
        return entry

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        entry = self._record(raw)
        path = entry["path"]
        headers = entry["headers"]
        family = family_of_path(path)
        if family is None or family == "openai-embeddings" and "x-replay-fixture" not in headers:
            self._send_json(404, {"error": {"message": f"replay: unknown endpoint {path}", "type": "not_found_error"}})
            return
        body = entry["json"]
        try:
            if family == "anthropic":
                validate_anthropic(headers, body, self.state.anthropic_key, counting=path.endswith("/count_tokens"))
            elif family == "openai":
                validate_openai(headers, body, self.state.openai_key)
            elif family == "openai-responses":
                validate_openai_responses(headers, body, self.state.openai_key, self.state.azure_key)
            elif family == "gemini":
                validate_gemini(headers, entry["query"], path, body, self.state.gemini_key)
            elif family == "azure":
                validate_azure(headers, entry["query"], path, body, self.state.azure_key)
            elif family == "bedrock":
                try:
                    if self.state.bedrock_credentials is not None:
                        bedrock_replay.verify_sigv4(self.command, urlsplit(self.path).path, entry["query"], headers, raw,
                                                    self.state.bedrock_credentials)
                    if path.endswith(("/invoke", "/invoke-with-response-stream")):
                        if isinstance(body, dict) and "inputText" not in body:
                            bedrock_replay.validate_anthropic_invoke(body)
                        else:
                            bedrock_replay.validate_titan_embed(body)
                    elif path.endswith("/count-tokens"):
                        bedrock_replay.validate_count_tokens(body)
                    else:
                        bedrock_replay.validate_converse(body)
                except bedrock_replay.BedrockReject as reject:
                    raise ReplayError(reject.status, "bedrock", reject.kind, reject.message) from None
            interaction = self._pick(family, headers, body, path)
        except ReplayError as err:
            extra = {"x-amzn-errortype": err.kind} if err.family == "bedrock" else None
            self._send(err.status, err.body(), extra=extra)
            return
        self._replay(interaction, headers)

    def _pick(self, family: str, headers: dict[str, str], body: Any, path: str = "") -> Interaction:
        if family == "gemini":
            wants_stream = path.endswith(":streamGenerateContent")
        elif family == "bedrock":
            wants_stream = bedrock_replay.is_stream_path(path)
        else:
            wants_stream = isinstance(body, dict) and body.get("stream") is True
        name = headers.get("x-replay-fixture")
        if name is None:
            name, index = DEMO_DEFAULTS.get((family, wants_stream), DEMO_DEFAULTS[(family, False)])
        else:
            try:
                index = int(headers.get("x-replay-interaction", "0"))
            except ValueError:
                raise ReplayError(400, family, "invalid_request_error", "replay: x-replay-interaction must be an integer")
        fixture = self.state.fixtures.get(name)
        if fixture is None:
            raise ReplayError(404, family, "not_found_error", f"replay: no fixture named {name!r}")
        if not 0 <= index < len(fixture.interactions):
            raise ReplayError(404, family, "not_found_error", f"replay: {name} has no interaction {index}")
        interaction = fixture.interactions[index]
        recorded_family = family_of_path(interaction.path)
        # Azure OpenAI speaks OpenAI's wire format, so OpenAI recordings can answer Azure paths.
        azure_ok = family == "azure" and recorded_family in ("openai", "openai-embeddings") and (
            (recorded_family == "openai-embeddings") == path.endswith("/embeddings"))
        if family == "anthropic" and path.endswith("/count_tokens") != interaction.path.endswith("/count_tokens"):
            raise ReplayError(400, family, "invalid_request_error",
                              f"replay: {name} was recorded against {interaction.path}, gateway called {path}")
        if recorded_family != family and not azure_ok:
            # The gateway called the wrong kind of provider for this recording: a routing bug.
            raise ReplayError(
                400, family, "invalid_request_error",
                f"replay: {name} was recorded against {interaction.path}, gateway called a {family} endpoint",
            )
        if interaction.status == 200 and family in ("anthropic", "openai", "gemini", "azure", "bedrock", "openai-responses") and wants_stream != interaction.is_stream:
            raise ReplayError(
                400, family, "invalid_request_error",
                f"replay: request has stream={wants_stream} but {name}#{index} is "
                f"{'a stream' if interaction.is_stream else 'a JSON body'}",
            )
        return interaction

    def _replay(self, interaction: Interaction, request_headers: dict[str, str]) -> None:
        headers = {k: v for k, v in interaction.headers.items() if k in REPLAYED_HEADERS}
        headers.setdefault("content-type", "application/json")
        if interaction.is_stream:
            chunking = request_headers.get("x-replay-chunking", "events")
            try:
                delay = float(request_headers.get("x-replay-chunk-delay", self.state.chunk_delay))
            except ValueError:
                delay = self.state.chunk_delay
            split = bedrock_replay.split_frames if interaction.is_eventstream else split_stream
            self._stream(interaction.status, headers, split(interaction.body, chunking), delay)
        else:
            extra = {k: v for k, v in headers.items() if k != "content-type"}
            self._send(interaction.status, interaction.body, headers["content-type"], extra)


def make_server(port: int, fixtures_dir: Path, chunk_delay: float = 0.01, anthropic_key: str | None = None,
                openai_key: str | None = None, gemini_key: str | None = None, azure_key: str | None = None,
                bedrock_key: str | None = None) -> ThreadingHTTPServer:
    """Builds a replay server bound to 127.0.0.1:port (0 picks a free port)."""
    state = ReplayState(load_fixtures(fixtures_dir), chunk_delay, anthropic_key, openai_key, gemini_key, azure_key, bedrock_key)
    handler = type("BoundReplayHandler", (ReplayHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--fixtures", type=Path, default=Path(os.environ.get("REPLAY_FIXTURES", DEFAULT_FIXTURES)))
    parser.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between stream chunks")
    parser.add_argument("--anthropic-key", default=None, help="x-api-key the Anthropic endpoint requires")
    parser.add_argument("--openai-key", default=None, help="bearer token the OpenAI endpoint requires")
    parser.add_argument("--gemini-key", default=None, help="x-goog-api-key the Gemini endpoints require")
    parser.add_argument("--azure-key", default=None, help="api-key the Azure OpenAI endpoints require")
    parser.add_argument("--bedrock-key", default=None,
                        help='AWS credentials JSON ({"access_key_id","secret_access_key","session_token"?}) whose SigV4 signatures the Bedrock endpoints verify')
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here once listening")
    args = parser.parse_args(argv)
    if not args.fixtures.is_dir():
        print(f"replay: fixtures directory not found: {args.fixtures}", file=sys.stderr)
        return 2
    server = make_server(args.port, args.fixtures, args.chunk_delay, args.anthropic_key, args.openai_key,
                         args.gemini_key, args.azure_key, args.bedrock_key)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    print(f"replay: listening on 127.0.0.1:{port} with {len(server.RequestHandlerClass.state.fixtures)} fixtures", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
