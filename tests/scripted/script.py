"""The scripted model: what it answers, what it issued, and the HTTP server every provider API shares.

One scripted upstream plays one provider API (`anthropic`, `bedrock-invoke`, `bedrock-converse`,
`openai`, `azure_openai`, `gemini`; modules beside this one) as a model doing a two-turn task:

* turn 1 (a request with the agent's tools and no tool result yet): a thinking/reasoning block
  with a signature in the provider's own form (none for OpenAI Chat) and one call to the client's
  shell tool (`Bash` for Claude Code, `exec_command` for Codex CLI; see `CALL_TOOLS`) that writes
  `nonce` into `RESULT_FILE` in the client's working directory, or to `NONCE_TOOL` (a function an
  SDK test defines) with the nonce as its argument;
* turn 2 (the request carrying the tool result): the provider's documented rules are checked
  (thinking block with the exact signature back, tool result ids or names matching the call,
  at most 4 cache breakpoints, no unknown fields, required fields); a broken rule is a 400 in
  the provider's error shape, else the final text `FINAL_TEXT`;
* any request without tools (title/topic generation, quota probes): a short text.

Every request is recorded with what the rules found, so a test can say "the upstream saw the
thinking block with its signature on the second turn". Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shlex
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Protocol
from urllib.parse import parse_qs, urlsplit

RESULT_FILE = "claude-code-e2e.txt"
THINKING_TEXT = "The user wants a file written. I will run one shell command with the Bash tool, then report back."
FINAL_TEXT = "Done: the file is written."
SIDE_TEXT = "Scripted answer"
# The tools the model calls on turn 1, the first one the request offers: Claude Code's `Bash`,
# Codex CLI's shell tools (`exec_command` in 0.171, `shell_command`/`shell` in older releases),
# Codex's code mode (`exec`, a custom tool taking JavaScript that calls `tools.exec_command`, what
# it offers the models of its own catalog), and the function an SDK test defines (its argument is
# the nonce).
NONCE_TOOL = "save_nonce"
CODE_MODE_TOOL = "exec"
CALL_TOOLS = ("Bash", "exec_command", "shell_command", "shell", CODE_MODE_TOOL, NONCE_TOOL)
# At most this many cache breakpoints per request (Anthropic, Bedrock InvokeModel and Converse).
MAX_CACHE_BREAKPOINTS = 4


class Reject(Exception):
    """A request the provider refuses: HTTP status, the provider's error kind, message."""

    def __init__(self, status: int, kind: str, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param  # OpenAI's error fields
        self.code = code


@dataclass
class Request:
    """One received request, decoded once."""

    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    raw: bytes
    json: Any


@dataclass
class Reply:
    """What to send back: a whole body, or chunks of a stream (sent with chunked encoding)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: list[bytes] | None = None


@dataclass
class Record:
    """What the upstream saw and what it made of it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    kind: str = "other"  # side | call | result | count_tokens | other
    status: int = 0
    error: str | None = None
    # On a turn carrying a tool result: did the thinking/reasoning block (or Gemini's
    # thoughtSignature) come back with the exact signature the model issued? None: not applicable.
    signature_back: bool | None = None
    tool_result_ids: list[str] = field(default_factory=list)
    # On a turn the model answers with a tool call: did the request ask for thinking/reasoning?
    thinking_requested: bool | None = None
    tool_result_text: str = ""
    # On a turn the model answers with a tool call: which of the request's tools it calls.
    call_tool: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ProviderApi(Protocol):
    """One provider API as the scripted model speaks it."""

    name: str
    thinking: bool  # does this API carry the model's reasoning with a signature back and forth

    def handle(self, request: Request, record: Record) -> Reply: ...

    def error(self, reject: Reject) -> Reply: ...


class Model:
    """The script and the model's memory of what it issued (signatures, tool call ids)."""

    def __init__(self, nonce: str, provider: str):
        self.nonce = nonce
        self.provider = provider
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.issued_signatures: dict[str, str] = {}  # signature -> the thinking text it covers
        self.issued_calls: dict[str, str] = {}  # tool call id -> tool name

    @property
    def command(self) -> str:
        return f"echo {shlex.quote(self.nonce)} > {RESULT_FILE}"

    def tool_for(self, names: Any) -> str | None:
        """The tool the model calls on turn 1: the first of CALL_TOOLS among the request's tool names."""
        offered = set(n for n in names if isinstance(n, str))
        return next((name for name in CALL_TOOLS if name in offered), None)

    def tool_input(self, name: str | None = "Bash") -> dict[str, Any]:
        """The call's arguments, in the form the named tool takes."""
        if name == "exec_command":
            return {"cmd": self.command}
        if name == "shell_command":
            return {"command": self.command}
        if name == "shell":
            return {"command": ["bash", "-lc", self.command]}
        if name == NONCE_TOOL:
            return {"nonce": self.nonce}
        if name == CODE_MODE_TOOL:  # a custom tool: its input is this text, not JSON
            return {"input": f"const r = await tools.exec_command({{cmd: {json.dumps(self.command)}}});\n"
                             "text(r.output);\ntext(`exit ${r.exit_code}`);\n"}
        return {"command": self.command, "description": "Write the result file"}

    def sign(self, text: str) -> str:
        """An opaque signature over `text`, in the base64 look of the real ones."""
        mac = hmac.new(self._key, f"{self.provider}\0{text}".encode(), hashlib.sha256).digest()
        signature = base64.b64encode(b"scripted-" + self.provider.encode() + b"-" + mac * 3).decode()
        with self._lock:
            self.issued_signatures[signature] = text
        return signature

    def signature_ok(self, signature: Any, text: Any) -> bool:
        with self._lock:
            return isinstance(signature, str) and self.issued_signatures.get(signature) == text

    def new_call_id(self, prefix: str, name: str | None = "Bash") -> str:
        call_id = prefix + secrets.token_hex(12)
        with self._lock:
            self.issued_calls[call_id] = name or "Bash"
        return call_id

    def issued_name(self, call_id: Any) -> str | None:
        """The tool name of a call this model made."""
        with self._lock:
            return self.issued_calls.get(call_id) if isinstance(call_id, str) else None

    def issued(self, call_id: Any) -> bool:
        with self._lock:
            return isinstance(call_id, str) and call_id in self.issued_calls


def count_key(value: Any, key: str) -> int:
    """How many objects anywhere inside `value` have `key` (cache_control, cachePoint)."""
    if isinstance(value, dict):
        return (key in value) + sum(count_key(v, key) for v in value.values())
    if isinstance(value, list):
        return sum(count_key(v, key) for v in value)
    return 0


def check_cache_breakpoints(body: Any, key: str, bad: Callable[[str], Reject]) -> None:
    found = count_key(body, key)
    if found > MAX_CACHE_BREAKPOINTS:
        raise bad(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {found}.")


def sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    """Server-sent events, one chunk each (`event:` line only when named)."""
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append(((f"event: {name}\n" if name else "") + f"data: {payload}\n\n").encode())
    return out


def split_json(doc: Any) -> list[str]:
    """A JSON text cut in three pieces, the way models stream tool arguments."""
    text = json.dumps(doc, separators=(",", ":"))
    a, b = len(text) // 3, 2 * len(text) // 3
    return [text[:a], text[a:b], text[b:]]


class Upstream:
    """A scripted upstream on 127.0.0.1 in a background thread; `records` is what it saw."""

    def __init__(self, api: ProviderApi, port: int = 0):
        self.api = api
        self._lock = threading.Lock()
        self._records: list[Record] = []
        handler = type("ScriptedHandler", (_Handler,), {"upstream": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Upstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def summary(self) -> list[dict[str, Any]]:
        """One line per request, for failure messages."""
        return [{"method": r.method, "path": r.path, "kind": r.kind, "status": r.status, "error": r.error,
                 "call_tool": r.call_tool, "signature_back": r.signature_back, "tool_result_ids": r.tool_result_ids,
                 "thinking_requested": r.thinking_requested} for r in self.records]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-upstream/1"
    upstream: Upstream

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        raw = self._read_body() if self.command in ("POST", "PUT") else b""
        url = urlsplit(self.path)
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, url.path, parse_qs(url.query), url.query, headers, raw, parsed)
        record = Record(self.command, url.path, headers, parsed)
        try:
            reply = self.upstream.api.handle(request, record)
        except Reject as reject:
            record.error = reject.message
            reply = self.upstream.api.error(reject)
        except Exception as err:  # a bug in the script: say so in the provider's shape, loudly
            record.error = f"scripted upstream crashed: {err!r}"
            reply = self.upstream.api.error(Reject(500, "api_error", record.error))
        record.status = reply.status
        self.upstream.add(record)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunks is None:
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for chunk in reply.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            time.sleep(0.001)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_HEAD = do_PUT = _serve  # noqa: N815 (stdlib naming)


def json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    all_headers = {"content-type": "application/json"}
    all_headers.update(headers or {})
    return Reply(status, all_headers, json.dumps(doc).encode())
