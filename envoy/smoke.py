#!/usr/bin/env python3
"""End-to-end smoke check of the Wasm filter inside a real Envoy, standard library only.

Starts a small recording upstream (OpenAI- and Anthropic-shaped answers, SSE with pauses),
renders a bootstrap with envoy/render.py, runs Envoy, and checks routing, credential
replacement, translation, streaming chunk by chunk, every error shape and the metrics.

    python3 envoy/smoke.py --envoy /path/to/envoy [--wasm target/wasm32-wasip1/release/ai_gateway_filter.wasm]

Exit status 0 when every check passed. The end-to-end pytest suite with the official SDKs
goes further; this is the quick check for the filter and the generator.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import render  # noqa: E402

OPENAI_SECRET = "sk-smoke-openai-0123456789"
ANTHROPIC_SECRET = "sk-ant-smoke-0123456789"
CLIENT_TOKEN = "client-virtual-key-should-not-leak"
STREAM_PAUSE = 0.6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Requests the upstream received, newest last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    def add(self, item: dict) -> None:
        with self.lock:
            self.requests.append(item)

    def last(self) -> dict:
        with self.lock:
            return self.requests[-1] if self.requests else {}


def make_handler(recorder: Recorder):
    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder.add({"path": self.path, "headers": headers, "body": raw.decode("utf-8", "replace")})
            try:
                body = json.loads(raw)
            except ValueError:
                return self.send_json(400, {"error": {"message": "upstream got invalid JSON", "type": "invalid_request_error", "param": None, "code": None}})
            if self.path == "/v1/chat/completions":
                return self.openai(body)
            if self.path == "/v1/messages":
                return self.anthropic(body)
            self.send_json(404, {"error": {"message": f"upstream: no route {self.path}", "type": "invalid_request_error", "param": None, "code": None}})

        def send_json(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def send_stream(self, events: list[bytes]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                for i, event in enumerate(events):
                    if i:
                        time.sleep(STREAM_PAUSE)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client hung up; Envoy reset the upstream stream

        def openai(self, body: dict) -> None:
            model = body.get("model")
            if body.get("stream"):
                chunk = lambda delta, usage=None, choices=True: (  # noqa: E731
                    b"data: " + json.dumps({
                        "id": "chatcmpl-smoke", "object": "chat.completion.chunk", "created": 1, "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}] if choices else [],
                        "usage": usage,
                    }).encode() + b"\n\n"
                )
                events = [chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"})]
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append(chunk({}, {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}, choices=False))
                events.append(b"data: [DONE]\n\n")
                return self.send_stream(events)
            self.send_json(200, {
                "id": "chatcmpl-smoke", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            })

        def anthropic(self, body: dict) -> None:
            model = body.get("model")
            if body.get("stream"):
                ev = lambda name, obj: f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()  # noqa: E731
                return self.send_stream([
                    ev("message_start", {"type": "message_start", "message": {"id": "msg_smoke", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None, "usage": {"input_tokens": 9, "output_tokens": 1}}})
                    + ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                    ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bonjour"}}),
                    ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                    + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}})
                    + ev("message_stop", {"type": "message_stop"}),
                ])
            self.send_json(200, {
                "id": "msg_smoke", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Bonjour"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 9, "output_tokens": 4},
            })

    return Upstream


def make_failing_handler(recorder: Recorder):
    """An Anthropic-shaped provider that is overloaded: every call gets 529... as a 503."""

    class Failing(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            recorder.add({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw.decode("utf-8", "replace")})
            data = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).encode()
            self.send_response(503)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Failing


def add_fallback_cluster(bootstrap: dict, primary_port: int, secondary_port: int) -> None:
    """Cluster `fallback`: priority 0 is an Anthropic provider, priority 1 an OpenAI one, told
    apart only by endpoint metadata; 5xx retries move to the next priority. This is how
    cross-provider fallback is built in Envoy's cluster graph, one translation per attempt."""
    def endpoint(port: int, provider: str) -> dict:
        return {
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
            "metadata": {"filter_metadata": {render.METADATA_NAMESPACE: {"provider": provider}}},
        }
    clusters = bootstrap["static_resources"]["clusters"]
    fallback = next(cl for cl in clusters if cl["name"] == "fallback")
    fallback["load_assignment"]["endpoints"] = [
        {"priority": 0, "lb_endpoints": [endpoint(primary_port, "fb_anthropic")]},
        {"priority": 1, "lb_endpoints": [endpoint(secondary_port, "fb_openai")]},
    ]
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    retrying = json.loads(json.dumps(routes[0]))
    retrying["match"]["headers"] = [{"name": render.CLUSTER_HEADER, "string_match": {"exact": "fallback"}}]
    retrying["route"]["retry_policy"] = {
        "retry_on": "5xx,reset,connect-failure",
        "num_retries": 1,
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1,
            },
        },
    }
    routes.insert(0, retrying)


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, name: str, ok: bool, detail: object = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed.append(name)
            print(f"FAIL {name}: {detail}")


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def chat(port: int, payload: dict | bytes, extra: dict | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_TOKEN}", **(extra or {})}
    return request(port, "POST", "/v1/chat/completions", body, headers)


def is_openai_error(status_expected: int, status: int, headers: dict, data: bytes, code: str | None = None) -> tuple[bool, object]:
    try:
        err = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        return False, (status, data[:300])
    ok = bool(
        status == status_expected
        and headers.get("content-type", "").startswith("application/json")
        and set(err) == {"message", "type", "param", "code"}
        and isinstance(err["message"], str) and err["message"]
        and (code is None or err["code"] == code)
    )
    return ok, (status, err)


def wait_ready(admin_port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            status, _, data = request(admin_port, "GET", "/ready", timeout=1)
            if status == 200 and data.strip() == b"LIVE":
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def run(envoy: str, wasm: str, base_id: int, keep: bool, log_level: str = "info", concurrency: int = 2) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="aigw-smoke-"))
    recorder = Recorder()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(recorder))
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]
    failing_recorder = Recorder()
    failing = ThreadingHTTPServer(("127.0.0.1", 0), make_failing_handler(failing_recorder))
    failing.daemon_threads = True
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    failing_port = failing.server_address[1]
    dead_port = free_port()  # nothing listens here: the "provider is down" case
    port, admin_port = free_port(), free_port()

    config = {
        "version": 1,
        "providers": [
            {"name": "openai", "kind": "openai", "cluster": "openai", "credential": {"env": "AIGW_SMOKE_OPENAI_KEY"}},
            {"name": "anthropic", "kind": "anthropic", "cluster": "anthropic", "credential": {"env": "AIGW_SMOKE_ANTHROPIC_KEY"}},
            {"name": "dead", "kind": "openai", "cluster": "dead"},
            {"name": "fb_anthropic", "kind": "anthropic", "cluster": "fallback", "credential": {"env": "AIGW_SMOKE_ANTHROPIC_KEY"}},
            {"name": "fb_openai", "kind": "openai", "cluster": "fallback", "credential": {"env": "AIGW_SMOKE_OPENAI_KEY"}},
        ],
        "routes": [
            {"model": "gpt-4.1-mini", "targets": [{"provider": "openai", "model": "gpt-4.1-mini-2025-04-14"}]},
            {"model": "claude-3.5-haiku", "targets": [{"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}]},
            {"model": "down", "targets": [{"provider": "dead", "model": "gpt-down"}]},
            {"model": "resilient", "targets": [{"provider": "fb_anthropic", "model": "claude-primary"},
                                               {"provider": "fb_openai", "model": "gpt-secondary", "weight": 0}]},
        ],
        "limits": {"max_request_bytes": 2 * 1024 * 1024},
    }
    bootstrap = render.render(
        config, wasm, port, admin_port,
        {
            "openai": render.parse_upstream(f"openai=http://127.0.0.1:{up_port}")[1],
            "anthropic": render.parse_upstream(f"anthropic=http://127.0.0.1:{up_port}")[1],
            "dead": render.parse_upstream(f"dead=http://127.0.0.1:{dead_port}")[1],
            "fallback": render.parse_upstream(f"fallback=http://127.0.0.1:{failing_port}")[1],
        },
    )
    add_fallback_cluster(bootstrap, failing_port, up_port)
    (workdir / "envoy.json").write_text(json.dumps(bootstrap, indent=2))
    log_path = workdir / "envoy.log"
    env = {**os.environ, "AIGW_SMOKE_OPENAI_KEY": OPENAI_SECRET, "AIGW_SMOKE_ANTHROPIC_KEY": ANTHROPIC_SECRET}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [envoy, "-c", str(workdir / "envoy.json"), "--base-id", str(base_id), "--concurrency", str(concurrency), "--log-level", log_level],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    c = Checks()
    try:
        if not wait_ready(admin_port, proc, time.time() + 30):
            print(log_path.read_text()[-3000:])
            print("Envoy did not become ready")
            return 1
        smoke(c, port, admin_port, recorder)
        fallback_checks(c, port, admin_port, recorder, failing_recorder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        upstream.shutdown()
        failing.shutdown()
    logs = log_path.read_text(errors="replace")
    c.check("no provider secret in Envoy logs", OPENAI_SECRET not in logs and ANTHROPIC_SECRET not in logs)
    if log_level not in ("trace", "debug"):
        # At debug, Envoy itself dumps downstream request headers; the filter never logs them.
        c.check("no client token in Envoy logs", CLIENT_TOKEN not in logs)
    c.check("no Wasm panic in Envoy logs", "panicked at" not in logs and "wasm log" in logs, "see " + str(log_path))
    print(f"\n{c.passed} passed, {len(c.failed)} failed" + (f": {', '.join(c.failed)}" if c.failed else ""))
    if c.failed or keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if c.failed else 0


def smoke(c: Checks, port: int, admin_port: int, recorder: Recorder) -> None:
    msgs = [{"role": "user", "content": "Say hello"}]

    # OpenAI passthrough: model rewritten, client credential replaced, everything else kept.
    status, headers, data = chat(port, {"model": "gpt-4.1-mini", "messages": msgs, "temperature": 0.2, "x_extra": [1]},
                                 {"x-envoy-debug": "1", "x-ai-gateway-cluster": "anthropic", "accept-encoding": "gzip"})
    up = recorder.last()
    sent = json.loads(up.get("body") or "{}")
    c.check("openai: 200", status == 200, (status, data[:200]))
    c.check("openai: upstream path", up.get("path") == "/v1/chat/completions", up.get("path"))
    c.check("openai: model rewritten, other fields kept",
            sent.get("model") == "gpt-4.1-mini-2025-04-14" and sent.get("temperature") == 0.2 and sent.get("x_extra") == [1], sent)
    uh = up.get("headers", {})
    c.check("openai: provider key replaces client Authorization", uh.get("authorization") == f"Bearer {OPENAI_SECRET}", uh.get("authorization"))
    c.check("openai: no internal or x-envoy headers upstream",
            not any(k.startswith("x-envoy-") or k.startswith("x-ai-gateway-") for k in uh), sorted(uh))
    c.check("openai: accept-encoding stripped", "accept-encoding" not in uh, uh.get("accept-encoding"))
    c.check("openai: content-length matches body", uh.get("content-length") == str(len(up.get("body", "").encode())), uh.get("content-length"))
    c.check("openai: response headers name provider and model",
            headers.get("x-ai-gateway-provider") == "openai" and headers.get("x-ai-gateway-model") == "gpt-4.1-mini-2025-04-14", headers)
    try:
        c.check("openai: response body passed through", json.loads(data)["choices"][0]["message"]["content"] == "Hello", data[:200])
    except (ValueError, KeyError, IndexError):
        c.check("openai: response body passed through", False, data[:200])

    # Over Envoy's default 1 MiB buffer but under the configured limit: buffered and forwarded whole.
    big = "x" * (1536 * 1024)
    status, _, data = chat(port, {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": big}]})
    sent = json.loads(recorder.last().get("body") or "{}")
    c.check("1.5 MiB body forwarded whole", status == 200 and (sent.get("messages") or [{}])[0].get("content") == big, (status, data[:200]))

    # Streaming passthrough: chunks arrive as the upstream sends them, injected usage chunk hidden.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("POST", "/v1/chat/completions", json.dumps({"model": "gpt-4.1-mini", "messages": msgs, "stream": True}),
                 {"content-type": "application/json", "authorization": f"Bearer {CLIENT_TOKEN}"})
    resp = conn.getresponse()
    start = time.time()
    first = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
    t_first = time.time() - start
    rest = resp.read()
    t_end = time.time() - start
    conn.close()
    text = (first + rest).decode()
    sent = json.loads(recorder.last().get("body") or "{}")
    c.check("stream: 200 text/event-stream", resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream"), resp.status)
    c.check("stream: first chunk before the stream ends (not buffered)", t_end - t_first >= STREAM_PAUSE * 1.5, (t_first, t_end))
    c.check("stream: gateway asked upstream for usage", (sent.get("stream_options") or {}).get("include_usage") is True, sent.get("stream_options"))
    c.check("stream: content and [DONE] delivered, usage chunk hidden",
            '"Hel"' in text and '"lo"' in text and text.rstrip().endswith("data: [DONE]") and "prompt_tokens" not in text, text[-300:])

    # A client that hangs up mid-stream: the attempt ends in on_done, the VM keeps serving.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("POST", "/v1/chat/completions", json.dumps({"model": "gpt-4.1-mini", "messages": msgs, "stream": True}),
                 {"content-type": "application/json"})
    resp = conn.getresponse()
    resp.read1(100) if hasattr(resp, "read1") else resp.read(1)
    conn.sock.close() if conn.sock else None
    conn.close()
    time.sleep(STREAM_PAUSE * 3)
    status, _, _ = chat(port, {"model": "gpt-4.1-mini", "messages": msgs})
    c.check("client abort mid-stream: next request still served", status == 200, status)

    # OpenAI client to an Anthropic provider: translated both ways.
    status, headers, data = chat(port, {"model": "claude-3.5-haiku", "messages": [{"role": "system", "content": "Be brief"}] + msgs})
    up = recorder.last()
    uh = up.get("headers", {})
    sent = json.loads(up.get("body") or "{}")
    c.check("anthropic: upstream path /v1/messages", up.get("path") == "/v1/messages", up.get("path"))
    c.check("anthropic: x-api-key set, no Authorization",
            uh.get("x-api-key") == ANTHROPIC_SECRET and "authorization" not in uh and uh.get("anthropic-version"), {k: uh.get(k) for k in ("x-api-key", "authorization", "anthropic-version")})
    c.check("anthropic: request translated", sent.get("model") == "claude-3-5-haiku-20241022" and "max_tokens" in sent and sent.get("system"), sent)
    try:
        ok = status == 200 and json.loads(data)["choices"][0]["message"]["content"] == "Bonjour" and json.loads(data)["object"] == "chat.completion"
    except (ValueError, KeyError, IndexError, TypeError):
        ok = False
    c.check("anthropic: response translated to chat.completion", ok, (status, data[:300]))

    # Headers carry over between requests? A following OpenAI request must not get Anthropic's headers.
    chat(port, {"model": "gpt-4.1-mini", "messages": msgs})
    uh = recorder.last().get("headers", {})
    c.check("openai after anthropic: no anthropic headers", "x-api-key" not in uh and "anthropic-version" not in uh, sorted(uh))

    status, headers, data = chat(port, {"model": "claude-3.5-haiku", "messages": msgs, "stream": True})
    text = data.decode(errors="replace")
    c.check("anthropic stream: translated to chat.completion.chunk SSE",
            status == 200 and "chat.completion.chunk" in text and "Bonjour" in text and "data: [DONE]" in text, text[:400])

    # A request the Anthropic translation cannot serve: rejected by the upstream filter, before
    # any upstream call, still in OpenAI's shape with the parameter named.
    before = len(recorder.requests)
    status, headers, data = chat(port, {"model": "claude-3.5-haiku", "messages": msgs, "n": 2})
    ok, detail = is_openai_error(400, status, headers, data)
    c.check("anthropic: unsupported n=2 -> 400 param n, provider not called",
            ok and json.loads(data)["error"]["param"] == "n" and len(recorder.requests) == before, detail)

    # Errors, all in OpenAI's shape.
    cases = [
        ("bad JSON -> 400", lambda: chat(port, b"{not json"), 400, None),
        ("no messages -> 400", lambda: chat(port, {"model": "gpt-4.1-mini"}), 400, None),
        ("empty body -> 400", lambda: chat(port, b""), 400, None),
        ("unknown model -> 404 model_not_found", lambda: chat(port, {"model": "nope", "messages": msgs}), 404, "model_not_found"),
        ("declared too big -> 413", lambda: chat(port, b"{" + b" " * (2 * 1024 * 1024 + 10) + b"}"), 413, "request_too_large"),
        ("GET -> 405", lambda: request(port, "GET", "/v1/chat/completions"), 405, None),
        ("unknown path -> 404", lambda: request(port, "POST", "/v1/nope", b"{}", {"content-type": "application/json"}), 404, "unknown_url"),
        ("root path GET -> 404", lambda: request(port, "GET", "/"), 404, None),
        ("provider down -> 503", lambda: chat(port, {"model": "down", "messages": msgs}), 503, None),
    ]
    for name, call, expected, code in cases:
        try:
            status, headers, data = call()
        except OSError as e:
            c.check(name, False, e)
            continue
        ok, detail = is_openai_error(expected, status, headers, data, code)
        c.check(name, ok, detail)

    # Chunked body over the limit (no content-length): the accumulated size is enforced.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    chunks = (b"{" + b" " * 65536 for _ in range(40))
    try:
        conn.request("POST", "/v1/chat/completions", body=chunks, headers={"content-type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        data = resp.read()
        ok, detail = is_openai_error(413, resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, "request_too_large")
    except OSError as e:
        ok, detail = False, e
    finally:
        conn.close()
    c.check("chunked too big -> 413", ok, detail)

    # Concurrent mixed traffic across workers: every answer as expected, nothing crosses over.
    from concurrent.futures import ThreadPoolExecutor
    jobs = [({"model": "gpt-4.1-mini", "messages": msgs}, 200), ({"model": "claude-3.5-haiku", "messages": msgs}, 200),
            ({"model": "nope", "messages": msgs}, 404), (b"{oops", 400)] * 10
    def one(job):
        payload, expected = job
        st, hd, _ = chat(port, payload)
        want_provider = {"gpt-4.1-mini": "openai", "claude-3.5-haiku": "anthropic"}.get(payload.get("model") if isinstance(payload, dict) else None)
        return st == expected and (want_provider is None or hd.get("x-ai-gateway-provider") == want_provider)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, jobs))
    c.check("40 concurrent mixed requests answered correctly", all(results), results.count(False))

    # Metrics with labels on Prometheus.
    _, _, prom = request(admin_port, "GET", "/stats/prometheus")
    prom = prom.decode()
    want = [
        'ai_gateway_requests_total{provider="openai",model="gpt-4.1-mini-2025-04-14",status="200"}',
        'ai_gateway_tokens_total{provider="openai",model="gpt-4.1-mini-2025-04-14",type="input"}',
        'ai_gateway_tokens_total{provider="anthropic",model="claude-3-5-haiku-20241022",type="output"}',
        'ai_gateway_rejected_total{status="404",code="model_not_found"}',
        'ai_gateway_requests_total{provider="dead",model="gpt-down",status="none"}',
    ]
    lines = [l for l in prom.splitlines() if l.startswith("ai_gateway_")]
    for w in want:
        c.check(f"metric {w}", any(l.startswith(w + " ") for l in lines), "\n".join(lines))
    # Four non-streaming answers with 7 prompt tokens, one complete stream with 11 (from the
    # usage chunk the gateway requested and then hid); the aborted stream never got to usage.
    tokens = next((l for l in lines if l.startswith(want[1] + " ")), "")
    c.check("metric: openai input tokens add up (7+7+11+7+7 + 10x7)", tokens.endswith(" 109"), tokens)
    # 6 + 10 attempts reached OpenAI with 200, the aborted stream included (counted in on_done).
    reqs = next((l for l in lines if l.startswith(want[0] + " ")), "")
    c.check("metric: openai 200 attempts counted, aborted stream included", reqs.endswith(" 16"), reqs)


def fallback_checks(c: Checks, port: int, admin_port: int, recorder: Recorder, failing_recorder: Recorder) -> None:
    """Attempt 1 reaches an Anthropic provider that answers 503; Envoy retries at the next
    priority, an OpenAI provider. Each attempt must be translated for its own provider, and the
    header map Envoy shares between attempts must not leak Anthropic's headers to OpenAI."""
    before = len(recorder.requests)
    status, headers, data = chat(port, {"model": "resilient", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    first = failing_recorder.last()
    second = recorder.last() if len(recorder.requests) > before else {}
    fh, sh = first.get("headers", {}), second.get("headers", {})
    c.check("fallback: attempt 1 went to Anthropic, translated for it",
            first.get("path") == "/v1/messages" and fh.get("x-api-key") == ANTHROPIC_SECRET and "authorization" not in fh
            and json.loads(first.get("body") or "{}").get("model") == "claude-primary", (first.get("path"), sorted(fh)))
    sent = json.loads(second.get("body") or "{}")
    c.check("fallback: attempt 2 went to OpenAI with the original body, translated for it",
            second.get("path") == "/v1/chat/completions" and sent.get("model") == "gpt-secondary"
            and sent.get("messages") == [{"role": "user", "content": "hi"}] and sent.get("max_tokens") == 5, (second.get("path"), sent))
    c.check("fallback: no Anthropic headers leaked into the OpenAI attempt",
            sh.get("authorization") == f"Bearer {OPENAI_SECRET}" and "x-api-key" not in sh and "anthropic-version" not in sh
            and sh.get("content-length") == str(len(second.get("body", "").encode())), sorted(sh))
    c.check("fallback: client gets the OpenAI answer, named by response headers",
            status == 200 and headers.get("x-ai-gateway-provider") == "fb_openai" and headers.get("x-ai-gateway-model") == "gpt-secondary",
            (status, headers, data[:200]))
    _, _, prom = request(admin_port, "GET", "/stats/prometheus")
    lines = prom.decode().splitlines()
    for w in ('ai_gateway_requests_total{provider="fb_anthropic",model="claude-primary",status="503"} 1',
              'ai_gateway_requests_total{provider="fb_openai",model="gpt-secondary",status="200"} 1'):
        c.check(f"fallback metric {w}", w in lines, [l for l in lines if l.startswith("ai_gateway_requests")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", default=os.environ.get("ENVOY_BIN") or shutil.which("envoy"), help="Envoy binary (default $ENVOY_BIN or envoy on PATH)")
    parser.add_argument("--wasm", default=str(HERE.parent / "target/wasm32-wasip1/release/ai_gateway_filter.wasm"))
    parser.add_argument("--base-id", type=int, default=int(os.environ.get("AIGW_BASE_ID", "4242")), help="Envoy --base-id (distinct per concurrent Envoy)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (bootstrap, Envoy log)")
    parser.add_argument("--concurrency", type=int, default=2, help="Envoy worker threads (each has its own VM)")
    parser.add_argument("--log-level", default="info", help="Envoy --log-level (debug shows the filter's decisions)")
    args = parser.parse_args()
    if not args.envoy or not os.path.exists(args.envoy):
        print("Envoy binary not found; pass --envoy or set ENVOY_BIN", file=sys.stderr)
        return 2
    if not os.path.exists(args.wasm):
        print(f"wasm not found: {args.wasm}", file=sys.stderr)
        return 2
    return run(args.envoy, args.wasm, args.base_id, args.keep, args.log_level, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
