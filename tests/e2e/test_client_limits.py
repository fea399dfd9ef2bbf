"""Envoy's limits for slow and abusive clients (issue 13 item 6; docs/robustness.md, "Limits").

One Envoy rendered with short limits (render.py flags), a handful of raw sockets that send their
headers or their body a byte at a time, and a normal client next to them: Envoy must close the
slow ones within the limits while normal requests, long streams included, are served as usual.
Bounded: about ten seconds.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest

import robust_stack as rs
from conftest import WASM
from robust_stack import CLAUDE, GPT, assert_good_completion, assert_good_stream, chat, post

HEADERS_TIMEOUT_S = 1.0
REQUEST_TIMEOUT_S = 2.0
STREAM_IDLE_S = 3.0
MAX_CONNECTIONS = 12
# Every slow socket must be closed well within this (the largest limit plus slack on a busy machine).
CLOSE_WITHIN_S = REQUEST_TIMEOUT_S + 4.0


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory):
    running = rs.start(tmp_path_factory.mktemp("client-limits"), WASM, concurrency=1, route_timeout="30s",
                       render_args=["--request-headers-timeout", f"{HEADERS_TIMEOUT_S}s",
                                    "--request-timeout", f"{REQUEST_TIMEOUT_S}s",
                                    "--stream-idle-timeout", f"{STREAM_IDLE_S}s",
                                    "--max-connections", str(MAX_CONNECTIONS)])
    yield running
    running.stop()


class Dripper(threading.Thread):
    """A client that sends `data` one byte every `interval` seconds and records when the server
    closed the connection (EOF, reset or a refused write) and what it answered before that."""

    def __init__(self, port: int, data: bytes, interval: float = 0.1, give_up_s: float = 15.0):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=give_up_s)
        self.data, self.interval, self.give_up_s = data, interval, give_up_s
        self.started = time.monotonic()
        self.closed_after: float | None = None
        self.answer = b""

    def run(self) -> None:
        self.sock.setblocking(False)
        try:
            for i in range(len(self.data)):
                if time.monotonic() - self.started > self.give_up_s:
                    return
                try:
                    self.sock.send(self.data[i:i + 1])
                except OSError:
                    break
                if self._read_closed():
                    break
                time.sleep(self.interval)
            # Everything sent (or a write refused): wait for the close.
            self.sock.setblocking(True)
            self.sock.settimeout(max(0.1, self.give_up_s - (time.monotonic() - self.started)))
            while self.closed_after is None:
                try:
                    piece = self.sock.recv(65536)
                except TimeoutError:
                    return
                except OSError:
                    piece = b""
                if not piece:
                    self.closed_after = time.monotonic() - self.started
                self.answer += piece
        finally:
            self.sock.close()

    def _read_closed(self) -> bool:
        try:
            piece = self.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            piece = b""
        self.answer += piece
        if not piece:
            self.closed_after = time.monotonic() - self.started
            return True
        return False


def request_head(body_len: int) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer client-key\r\ncontent-length: {body_len}\r\n\r\n").encode()


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def test_slow_clients_are_closed_and_normal_traffic_is_served(fs):
    body = json.dumps(chat(GPT)).encode()
    slow_headers = [Dripper(fs.port, request_head(len(body)) + body) for _ in range(2)]
    slow_bodies = [Dripper(fs.port, body, interval=0.2) for _ in range(2)]
    for d in slow_bodies:
        d.sock.sendall(request_head(len(body)))  # whole headers at once; the body drips
    started = time.monotonic()
    for d in slow_headers + slow_bodies:
        d.start()
    # Normal traffic meanwhile, on the same single worker: JSON, and a stream that lasts longer
    # than the request timeout (the timeout bounds receiving the request, never the answer).
    served = 0
    while time.monotonic() - started < REQUEST_TIMEOUT_S + 1.0:
        assert_good_completion(post(fs.port, chat(CLAUDE)))
        served += 1
    slow_answer = post(fs.port, chat(GPT, stream=True), {"x-fault": "slow-stream", "x-fault-delay": "0.4"})
    assert_good_stream(slow_answer)
    assert time.monotonic() - started > REQUEST_TIMEOUT_S + 2.0
    for d in slow_headers + slow_bodies:
        d.join(timeout=CLOSE_WITHIN_S + 5)
    assert served >= 3
    for d in slow_headers:
        # 408 while the headers are incomplete: Envoy closes without an HTTP answer.
        assert d.closed_after is not None, f"a header-dripping client is still open: {d.answer[:200]!r}"
        assert HEADERS_TIMEOUT_S * 0.8 <= d.closed_after <= HEADERS_TIMEOUT_S + 3.0, d.closed_after
    for d in slow_bodies:
        assert d.closed_after is not None, f"a body-dripping client is still open: {d.answer[:200]!r}"
        assert d.closed_after <= CLOSE_WITHIN_S, d.closed_after
        # The request timeout answers 408 in the client API's error shape before closing.
        assert status_of(d.answer) == 408, d.answer[:300]
        doc = json.loads(d.answer.split(b"\r\n\r\n", 1)[1])
        assert doc["error"]["code"] == "request_timeout" and doc["error"]["message"], doc
    stats = admin_stats(fs)
    assert stats.get("http.ai_gateway.downstream_rq_header_timeout", 0) >= 2, stats
    assert stats.get("http.ai_gateway.downstream_rq_timeout", 0) >= 2, stats
    assert_good_completion(post(fs.port, chat(GPT)))


def test_idle_stream_is_closed_after_the_stream_idle_timeout(fs):
    """A client that sends its headers and part of its body, then nothing."""
    body = json.dumps(chat(GPT)).encode()
    d = Dripper(fs.port, b"", give_up_s=STREAM_IDLE_S + 6)
    d.sock.sendall(request_head(len(body)) + body[:10])
    d.start()
    d.join(timeout=STREAM_IDLE_S + 8)
    assert d.closed_after is not None and d.closed_after <= STREAM_IDLE_S + 3.0, d.closed_after
    # Whichever fired first (request timeout 2 s < idle 3 s), the client got a 408.
    assert status_of(d.answer) == 408, d.answer[:300]


def test_connections_above_the_listener_limit_are_refused(fs):
    """--max-connections bounds open connections; closed ones free their slots."""
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", fs.port), timeout=5))
        time.sleep(0.5)  # the overload manager's monitor refreshes every 250 ms
        extra = socket.create_connection(("127.0.0.1", fs.port), timeout=5)
        try:
            extra.sendall(request_head(2) + b"{}")
            extra.settimeout(5)
            try:
                answer = extra.recv(100)
            except OSError:
                answer = b""
            assert answer == b"", f"connection {MAX_CONNECTIONS + 1} was served: {answer!r}"
        finally:
            extra.close()
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert_good_completion(post(fs.port, chat(GPT)))
    stats = admin_stats(fs)
    overflow = stats.get("listener.127.0.0.1_{}.downstream_cx_overflow".format(fs.port), 0) + \
        stats.get("listener.127.0.0.1_{}.downstream_global_cx_overflow".format(fs.port), 0)
    assert overflow >= 1, {k: v for k, v in stats.items() if "overflow" in k}


def test_envoy_does_not_warn_about_unlimited_connections(fs):
    log = (fs.workdir / "envoy.log").read_text(errors="replace")
    assert "initializing epoch" in log  # the log is Envoy's, at info
    assert "no configured limit to the number of allowed active downstream connections" not in log


def test_oversized_request_headers_get_431(fs):
    reply = post(fs.port, chat(GPT), {"x-padding": "a" * 40_000})
    assert reply.status == 431, reply.body[:200]


def admin_stats(fs) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", fs.stack.admin_port, timeout=5)
    try:
        conn.request("GET", "/stats?format=json")
        doc = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return {s["name"]: s["value"] for s in doc["stats"] if "value" in s}
