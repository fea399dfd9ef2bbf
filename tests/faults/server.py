#!/usr/bin/env python3
"""Fault-injecting provider upstream: answers like Anthropic or OpenAI, or fails on purpose.

The replay server (tests/replay) is a well-behaved provider; this one misbehaves at the socket
level, which ``http.server`` cannot do (resets, half bodies, bodies delimited by a close), so it
speaks HTTP/1.1 itself on a raw socket. Standard library only; listens on 127.0.0.1 only.

The client (through the gateway, which forwards unknown headers) picks the behaviour with
``x-fault: NAME``; the endpoint decides the provider shape (``/v1/messages`` Anthropic,
``.../chat/completions`` OpenAI) and the request's ``stream`` flag JSON or SSE.

  ok                    a valid answer (JSON or SSE)
  close-before-headers  read the request, close the connection without answering (FIN)
  reset-before-headers  read the request, reset the connection (RST) without answering
  reset-mid-body        JSON answer: headers with the full content-length, half the body, RST
  reset-mid-stream      SSE answer: headers, the first events, RST
  truncated-stream      SSE answer delimited by the connection close, ending before
                        message_stop / [DONE] (a clean end of stream for the proxy)
  truncated-chunked     the same with chunked encoding properly terminated
  hang                  read the request, answer nothing for x-fault-delay seconds (default 30)
  hang-mid-stream       SSE headers and the first event, then nothing for x-fault-delay seconds
  slow-stream           a valid SSE answer with x-fault-delay seconds between events (a long answer)
  status                x-fault-status (default 500) with the provider's error body;
                        x-fault-retry-after adds a Retry-After header
  html-error            x-fault-status (default 502) with an HTML body, like a broken proxy
  malformed-json        200 application/json whose body is not JSON
  malformed-sse         200 text/event-stream whose events are not JSON
  gzip                  a valid answer with content-encoding: gzip
  unknown-encoding      a valid answer labelled content-encoding: br (it is not brotli)

``GET /__faults/health`` answers 200; ``GET /__faults/requests`` lists the request headers
received (``DELETE`` clears) so tests can check what the gateway sent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import struct
import sys
import threading
import time
from pathlib import Path

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


def anthropic_message(model: str) -> dict:
    return {
        "id": "msg_fault_01", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "Hello from the fault server."}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 7},
    }


def anthropic_events(model: str) -> list[bytes]:
    def ev(name: str, data: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    return [
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_fault_01", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello from "}}),
        ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the fault server."}}),
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 7}}),
        ev("message_stop", {"type": "message_stop"}),
    ]


def openai_completion(model: str) -> dict:
    return {
        "id": "chatcmpl-fault01", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fault server."},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def openai_events(model: str) -> list[bytes]:
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
        doc = {"id": "chatcmpl-fault01", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
               "usage": usage}
        return f"data: {json.dumps(doc)}\n\n".encode()

    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello from "}),
        chunk({"content": "the fault server."}),
        chunk({}, finish="stop"),
        chunk({}, usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}, choices=False),
        b"data: [DONE]\n\n",
    ]


def error_body(family: str, status: int) -> bytes:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
             500: "api_error", 502: "api_error", 503: "overloaded_error", 529: "overloaded_error"}
    kind = kinds.get(status, "api_error")
    message = f"fault server: injected {status}"
    if family == "anthropic":
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    # OpenAI's real 429 body: type "requests", code "rate_limit_exceeded".
    openai_kind = {429: "requests"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return json.dumps({"error": {"message": message, "type": openai_kind, "param": None, "code": code}}).encode()


class Request:
    """One parsed HTTP/1.1 request."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body

    @property
    def family(self) -> str | None:
        if self.path.endswith("/messages"):
            return "anthropic"
        if self.path.endswith("/chat/completions"):
            return "openai"
        return None

    @property
    def json(self) -> dict:
        try:
            doc = json.loads(self.body)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}


class Connection:
    """One accepted client connection (Envoy keeps them alive and reuses them)."""

    def __init__(self, sock: socket.socket, server: "FaultServer"):
        self.sock = sock
        self.server = server
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER_BYTES or not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
            if body is None:
                return None
        else:
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                return None
            while len(self.buf) < length:
                if not self._fill():
                    return None
            body, self.buf = self.buf[:length], self.buf[length:]
        return Request(method, path, headers, body)

    def _read_chunked(self) -> bytes | None:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill():
                    return None
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0] or b"0", 16)
            while len(self.buf) < size + 2:
                if not self._fill():
                    return None
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]
            if size == 0:
                return body

    # --- writing -----------------------------------------------------------------------------

    def send_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_full(self, status: int, content_type: str, body: bytes, extra: list[tuple[str, str]] | None = None) -> None:
        self.send_head(status, [("content-type", content_type), ("content-length", str(len(body)))] + (extra or []))
        self.sock.sendall(body)

    def send_chunk(self, data: bytes) -> None:
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def reset(self) -> None:
        # SO_LINGER 0: close() sends RST instead of FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # --- behaviour ---------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            while True:
                request = self.read_request()
                if request is None:
                    break
                if not self.handle(request):
                    break
        except OSError:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def handle(self, req: Request) -> bool:
        """Answers one request; False when the connection must not be reused."""
        if req.path.startswith("/__faults/"):
            return self.control(req)
        self.server.record(req)
        family = req.family
        if family is None or req.method != "POST":
            self.send_full(404, "application/json", b'{"error":{"message":"fault server: unknown endpoint","type":"not_found"}}')
            return True
        fault = req.headers.get("x-fault", "ok")
        model = str(req.json.get("model", "unknown-model"))
        stream = req.json.get("stream") is True
        delay = float(req.headers.get("x-fault-delay", "30"))
        events = anthropic_events(model) if family == "anthropic" else openai_events(model)
        message = json.dumps(anthropic_message(model) if family == "anthropic" else openai_completion(model)).encode()
        sse_head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]

        if fault == "ok":
            if stream:
                self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
                for event in events:
                    self.send_chunk(event)
                self.sock.sendall(b"0\r\n\r\n")
            else:
                self.send_full(200, "application/json", message)
            return True
        if fault == "close-before-headers":
            self.sock.shutdown(socket.SHUT_RDWR)
            return False
        if fault == "reset-before-headers":
            self.reset()
            return False
        if fault == "reset-mid-body":
            self.send_head(200, [("content-type", "application/json"), ("content-length", str(len(message)))])
            self.sock.sendall(message[: len(message) // 2])
            time.sleep(0.05)
            self.reset()
            return False
        if fault == "reset-mid-stream":
            self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
            for event in events[:3]:
                self.send_chunk(event)
            time.sleep(0.05)
            self.reset()
            return False
        if fault == "truncated-stream":
            self.send_head(200, sse_head + [("connection", "close")])
            for event in events[:3]:  # before any finish reason
                self.sock.sendall(event)
            self.sock.shutdown(socket.SHUT_WR)
            return False
        if fault == "truncated-chunked":
            self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
            for event in events[:3]:
                self.send_chunk(event)
            self.sock.sendall(b"0\r\n\r\n")
            return True
        if fault == "hang":
            time.sleep(delay)
            return False
        if fault == "slow-stream":
            self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
            for event in events:
                self.send_chunk(event)
                time.sleep(delay)
            self.sock.sendall(b"0\r\n\r\n")
            return True
        if fault == "hang-mid-stream":
            self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
            self.send_chunk(events[0])
            time.sleep(delay)
            return False
        if fault == "status":
            status = int(req.headers.get("x-fault-status", "500"))
            extra = []
            if "x-fault-retry-after" in req.headers:
                extra.append(("retry-after", req.headers["x-fault-retry-after"]))
            self.send_full(status, "application/json", error_body(family, status), extra)
            return True
        if fault == "html-error":
            status = int(req.headers.get("x-fault-status", "502"))
            self.send_full(status, "text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")
            return True
        if fault == "malformed-json":
            self.send_full(200, "application/json", b'{"id":"x","choices":[{"message":')
            return True
        if fault == "malformed-sse":
            self.send_head(200, sse_head + [("transfer-encoding", "chunked")])
            self.send_chunk(b"data: {not json\n\n")
            self.send_chunk(b"event: what\ndata: \x00\xff\n\n")
            self.sock.sendall(b"0\r\n\r\n")
            return True
        if fault in ("gzip", "unknown-encoding"):
            encoding = "gzip" if fault == "gzip" else "br"
            if stream:
                payload = b"".join(events)
                ctype = "text/event-stream"
            else:
                payload = message
                ctype = "application/json"
            # A real gzip stream for "gzip"; for "br" bytes no decoder could read as brotli.
            data = gzip.compress(payload) if fault == "gzip" else b"\x00not brotli\x00" + payload
            self.send_full(200, ctype, data, [("content-encoding", encoding)])
            return True
        self.send_full(400, "application/json", b'{"error":{"message":"fault server: unknown x-fault","type":"invalid_request_error"}}')
        return True

    def control(self, req: Request) -> bool:
        if req.path == "/__faults/health":
            self.send_full(200, "application/json", b'{"ok":true}')
        elif req.path.startswith("/__faults/requests") and req.method == "DELETE":
            self.server.clear()
            self.send_full(204, "application/json", b"")
        elif req.path.startswith("/__faults/requests"):
            test_id = None
            if "?test_id=" in req.path:
                test_id = req.path.split("?test_id=", 1)[1]
            entries = [e for e in self.server.requests() if test_id is None or e["headers"].get("x-test-id") == test_id]
            self.send_full(200, "application/json", json.dumps(entries).encode())
        else:
            self.send_full(404, "application/json", b"{}")
        return True


class FaultServer:
    """Accept loop, one thread per connection, and the log of received requests."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._requests: list[dict] = []

    def record(self, req: Request) -> None:
        with self._lock:
            # The body and arrival time too: fallback tests check each attempt's format and when a
            # failing target was (not) probed.
            self._requests.append({"method": req.method, "path": req.path, "headers": req.headers, "bytes": len(req.body),
                                   "json": req.json, "time": time.time()})
            del self._requests[:-2000]

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def serve_forever(self) -> None:
        while True:
            client, _ = self.sock.accept()
            threading.Thread(target=Connection(client, self).serve, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here once listening")
    args = parser.parse_args(argv)
    server = FaultServer(args.port)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)
    print(f"faults: listening on 127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
