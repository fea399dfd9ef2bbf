"""Bad-input matrix through a real one-worker Envoy with the default 16 MiB body limit, in front of
the validating replay upstream. Extends test_errors.py and test_metrics_and_robustness.py (bad
JSON, non-object bodies, missing/empty messages and model, 1 MiB limit, invalid UTF-8 in
content/model, 100,000-deep arrays, NUL bytes, random mutations, aborted bodies), which are not
repeated here. Every case checks its status and OpenAI-shaped error body, then that the same (only)
worker still serves both providers, JSON and streams, and that the filter never panicked.
The matrix with its decisions is in docs/robustness.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

import robust_stack as rs
from conftest import WASM
from robust_stack import REPLAY_CLAUDE as CLAUDE, REPLAY_GPT as GPT, assert_no_panic, assert_openai_error, post

import stack as stack_mod

HELLO = [{"role": "user", "content": "Hello!"}]
SLOW_STREAM = {"x-replay-fixture": "anthropic/test_anthropic_model_thinking_part_stream.yaml",
               "x-replay-chunk-delay": "0.05"}
SLOW_OPENAI_STREAM = {"x-replay-fixture": "openai/chat-streaming.yaml", "x-replay-chunk-delay": "0.05"}


@pytest.fixture(scope="module")
def gw(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    base = os.environ.get("E2E_WORKDIR")
    workdir = Path(base) / "bad-input" if base else tmp_path_factory.mktemp("bad-input")
    running = rs.start_replay_stack(workdir, WASM, fixtures_dir)
    yield running
    running.stop()


def upstream_requests(gw, test_id: str) -> list[dict]:
    status, body = stack_mod.http_get(f"{gw.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
    assert status == 200
    return json.loads(body)


def assert_healthy(gw) -> None:
    """The single worker answers both providers, JSON and streaming, and nothing panicked."""
    assert gw.proc("envoy").alive(), "envoy died"
    for model in (CLAUDE, GPT):
        reply = post(gw.port, {"model": model, "messages": HELLO})
        assert reply.status == 200, reply.body[:300]
        assert reply.json()["choices"][0]["message"]["content"]
        reply = post(gw.port, {"model": model, "messages": HELLO, "stream": True})
        assert reply.status == 200 and reply.error is None, reply.body[:300]
        assert reply.sse_data()[-1] == "[DONE]"
    assert_no_panic(gw.workdir / "envoy.log")


def body(model: str, **fields) -> dict:
    return {"model": model, "messages": HELLO, **fields}


# --- wrong JSON types and shapes ----------------------------------------------------------------

# (id, body, param the gateway names). The gateway itself checks what routing needs (model,
# messages, stream) for every provider; the Anthropic translation checks everything it converts.
GATEWAY_CHECKED = [
    ("model-number", {"model": 42, "messages": HELLO}, "model"),
    ("model-null", {"model": None, "messages": HELLO}, "model"),
    ("model-empty", {"model": "", "messages": HELLO}, "model"),
    ("messages-object", {"model": "M", "messages": {"role": "user", "content": "hi"}}, "messages"),
    ("messages-string", {"model": "M", "messages": "hi"}, "messages"),
    ("messages-null", {"model": "M", "messages": None}, "messages"),
    ("stream-string", {"model": "M", "messages": HELLO, "stream": "yes"}, "stream"),
]

ANTHROPIC_CHECKED = [
    ("message-not-object", {"messages": [1]}, "messages"),
    ("content-number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("content-object", {"messages": [{"role": "user", "content": {"text": "hi"}}]}, "messages[0].content"),
    ("role-number", {"messages": [{"role": 1, "content": "hi"}]}, "messages"),
    ("unknown-role", {"messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
    ("missing-role", {"messages": [{"content": "hi"}]}, "messages"),
    ("tools-object", {"tools": {"type": "function"}}, "tools"),
    ("tools-string", {"tools": "all"}, "tools"),
    ("tool-not-object", {"tools": [7]}, "tools"),
    ("tool-without-function", {"tools": [{"type": "function"}]}, "tools[0].function"),
    ("max-tokens-string", {"max_tokens": "100"}, "max_tokens"),
    ("temperature-string", {"temperature": "hot"}, "temperature"),
    ("tool-choice-number", {"tool_choice": 3}, "tool_choice"),
]


@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("case,doc,param", GATEWAY_CHECKED, ids=[c[0] for c in GATEWAY_CHECKED])
def test_wrong_types_checked_by_the_gateway_are_400(gw, family, case, doc, param):
    test_id = os.urandom(8).hex()
    doc = {**doc, "model": rs.REPLAY_MODELS[family] if doc.get("model") == "M" else doc["model"]}
    reply = post(gw.port, doc, {"x-test-id": test_id})
    error = assert_openai_error(reply, 400, "invalid_request_error")
    assert error["param"] == param, error
    assert upstream_requests(gw, test_id) == []
    assert_healthy(gw)


@pytest.mark.parametrize("case,fields,param", ANTHROPIC_CHECKED, ids=[c[0] for c in ANTHROPIC_CHECKED])
def test_wrong_types_to_anthropic_are_400_before_the_provider(gw, case, fields, param):
    test_id = os.urandom(8).hex()
    reply = post(gw.port, body(CLAUDE, **fields), {"x-test-id": test_id})
    error = assert_openai_error(reply, 400, "invalid_request_error")
    assert error["param"] is None or error["param"].startswith(param.split("[")[0]), error
    assert upstream_requests(gw, test_id) == [], "a request the translation rejects never reaches the provider"
    assert_healthy(gw)


@pytest.mark.parametrize("case,fields,param", ANTHROPIC_CHECKED, ids=[c[0] for c in ANTHROPIC_CHECKED])
def test_wrong_types_to_openai_are_the_providers_to_judge(gw, case, fields, param):
    """The passthrough keeps every field byte for byte (only the model changes), so OpenAI itself
    answers these, in its own shape, which reaches the client unchanged. The replay upstream
    accepts them, which shows the body went through untouched."""
    test_id = os.urandom(8).hex()
    doc = body(GPT, **fields)
    reply = post(gw.port, doc, {"x-test-id": test_id})
    sent = upstream_requests(gw, test_id)
    assert len(sent) == 1 and reply.status == 200, reply.body[:300]
    forwarded = sent[0]["json"]
    assert forwarded == {**doc, "model": "gpt-upstream"}
    assert_healthy(gw)


# --- sizes and depth ------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("stream", [False, True])
def test_10_mb_body_is_served(gw, family, stream):
    test_id = os.urandom(8).hex()
    content = "z" * (10 * 1000 * 1000)
    reply = post(gw.port, {"model": rs.REPLAY_MODELS[family], "stream": stream,
                           "messages": [{"role": "user", "content": content}]}, {"x-test-id": test_id}, timeout=60)
    assert reply.status == 200, reply.body[:300]
    if stream:
        assert reply.sse_data()[-1] == "[DONE]"
    sent = upstream_requests(gw, test_id)
    assert len(sent) == 1
    forwarded = sent[0]["json"]["messages"][0]["content"]
    if family == "anthropic":  # the translation sends text as a list of text blocks
        forwarded = "".join(block["text"] for block in forwarded)
    assert forwarded == content
    assert_healthy(gw)


def _send_raw(port: int, head: bytes, payload_iter, timeout: float = 20) -> bytes:
    response = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head)
            for piece in payload_iter:
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Envoy may answer and close before the whole body is sent
        try:
            while chunk := s.recv(65536):
                response += chunk
                if b"\r\n\r\n" in response:
                    head_part, _, rest = response.partition(b"\r\n\r\n")
                    length = next((int(l.split(b":")[1]) for l in head_part.split(b"\r\n")
                                   if l.lower().startswith(b"content-length:")), None)
                    if length is not None and len(rest) >= length:
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    return response


def _raw_status_and_body(response: bytes) -> tuple[int, bytes]:
    head, _, rest = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_default_limit_is_413(gw, framing):
    limit = 16 * 1024 * 1024
    payload = b'{"model":"claude-bad-input","messages":[{"role":"user","content":"' + b"q" * (limit + 1024) + b'"}]}'
    test_id = os.urandom(8).hex()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"x-test-id: {test_id}\r\n".encode())
    if framing == "content-length":
        head += f"content-length: {len(payload)}\r\n\r\n".encode()
        pieces = (payload[i:i + 1 << 20] for i in range(0, len(payload), 1 << 20))
    else:
        head += b"transfer-encoding: chunked\r\n\r\n"
        step = 1 << 20
        pieces = [b"%x\r\n%s\r\n" % (len(payload[i:i + step]), payload[i:i + step]) for i in range(0, len(payload), step)]
        pieces.append(b"0\r\n\r\n")
    status, resp_body = _raw_status_and_body(_send_raw(gw.port, head, pieces))
    assert status == 413
    error = json.loads(resp_body)["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error", error
    assert upstream_requests(gw, test_id) == []
    assert_healthy(gw)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("where", ["unknown-field", "content", "tool-parameters", "messages"])
def test_json_nested_10000_deep_is_400(gw, family, where):
    """The gateway refuses nesting deeper than 128 levels (serde_json's limit) before routing, even
    inside fields it would pass on untouched, so no provider parser has to face it."""
    model = rs.REPLAY_MODELS[family]
    deep = _nested(10000)
    deep_obj = '{"a":' * 10000 + "1" + "}" * 10000
    raw = {
        "unknown-field": f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"x_extra":{deep}}}',
        "content": f'{{"model":"{model}","messages":[{{"role":"user","content":{deep_obj}}}]}}',
        "tool-parameters": f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],'
                           f'"tools":[{{"type":"function","function":{{"name":"f","parameters":{deep_obj}}}}}]}}',
        "messages": f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}},{deep}]}}',
    }[where]
    test_id = os.urandom(8).hex()
    reply = post(gw.port, raw.encode(), {"x-test-id": test_id})
    error = assert_openai_error(reply, 400, "invalid_request_error")
    assert "recursion limit" in error["message"], error
    assert upstream_requests(gw, test_id) == []
    assert_healthy(gw)


@pytest.mark.parametrize("family", ["anthropic", "openai"])
def test_5000_tools_are_served(gw, family):
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": f"Tool number {i}",
                                               "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}
             for i in range(5000)]
    test_id = os.urandom(8).hex()
    reply = post(gw.port, body(rs.REPLAY_MODELS[family], tools=tools), {"x-test-id": test_id}, timeout=60)
    assert reply.status == 200, reply.body[:300]
    sent = upstream_requests(gw, test_id)[0]["json"]["tools"]
    assert len(sent) == 5000
    names = [t["name"] if family == "anthropic" else t["function"]["name"] for t in sent]
    assert names == [f"tool_{i}" for i in range(5000)]
    assert_healthy(gw)


# --- encodings and content types ------------------------------------------------------------------

@pytest.mark.parametrize("family", ["anthropic", "openai"])
def test_invalid_utf8_in_a_tool_name_and_a_header(gw, family):
    model = rs.REPLAY_MODELS[family].encode()
    payload = (b'{"model":"' + model + b'","messages":[{"role":"user","content":"hi"}],'
               b'"tools":[{"type":"function","function":{"name":"f\xff\xfe"}}]}')
    test_id = os.urandom(8).hex()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-odd-header: caf\xe9 \xff\r\nauthorization: Bearer \xff\xfe\r\n"
            + f"x-test-id: {test_id}\r\ncontent-length: {len(payload)}\r\n\r\n".encode())
    status, resp_body = _raw_status_and_body(_send_raw(gw.port, head, [payload]))
    assert status == 400, resp_body[:300]
    assert json.loads(resp_body)["error"]["type"] == "invalid_request_error"
    assert upstream_requests(gw, test_id) == []
    assert_healthy(gw)


@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None,
                                          "application/json; charset=latin-1"])
def test_json_is_accepted_whatever_the_content_type(gw, family, content_type):
    """Decision: the body is parsed as JSON whatever the client labelled it (OpenAI's own API
    does not insist either); the provider always gets `content-type: application/json`."""
    test_id = os.urandom(8).hex()
    headers = {"x-test-id": test_id}
    raw = json.dumps(body(rs.REPLAY_MODELS[family])).encode()
    if content_type is None:
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                + f"x-test-id: {test_id}\r\ncontent-length: {len(raw)}\r\n\r\n".encode())
        status, _ = _raw_status_and_body(_send_raw(gw.port, head, [raw]))
    else:
        headers["content-type"] = content_type
        status = post(gw.port, raw, headers).status
    assert status == 200
    sent = upstream_requests(gw, test_id)
    assert sent[0]["headers"]["content-type"] == "application/json"
    assert_healthy(gw)


def test_form_encoded_body_is_400(gw):
    reply = post(gw.port, b"model=claude-bad-input&messages=hi", {"content-type": "application/x-www-form-urlencoded"})
    assert_openai_error(reply, 400, "invalid_request_error")
    assert_healthy(gw)


# --- protocols ---------------------------------------------------------------------------------------

CURL = shutil.which("curl")


def curl_h2(gw, doc: dict | bytes, extra: list[str] | None = None, max_time: float = 20) -> tuple[str, int, bytes]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    result = subprocess.run(
        [CURL, "-sS", "--http2-prior-knowledge", "--max-time", str(max_time), "-o", "-", "-w", "\n%{http_version} %{http_code}",
         "-H", "content-type: application/json", "--data-binary", "@-", *(extra or []),
         f"{gw.base_url}/v1/chat/completions"],
        input=data, capture_output=True, timeout=max_time + 10)
    out, _, trailer = result.stdout.rpartition(b"\n")
    version, code = trailer.decode().split()
    return version, int(code), out


@pytest.mark.skipif(CURL is None, reason="curl not installed")
@pytest.mark.parametrize("family", ["anthropic", "openai"])
def test_http2_prior_knowledge(gw, family):
    model = rs.REPLAY_MODELS[family]
    version, code, out = curl_h2(gw, body(model))
    assert (version, code) == ("2", 200)
    assert json.loads(out)["object"] == "chat.completion"
    version, code, out = curl_h2(gw, body(model, stream=True))
    assert (version, code) == ("2", 200)
    assert out.rstrip().endswith(b"data: [DONE]")
    version, code, out = curl_h2(gw, {"model": model, "messages": []})
    assert (version, code) == ("2", 400)
    assert json.loads(out)["error"]["param"] == "messages"
    version, code, out = curl_h2(gw, body("no-such-model"))
    assert (version, code) == ("2", 404)
    assert json.loads(out)["error"]["code"] == "model_not_found"
    assert_healthy(gw)


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_http2_client_cancels_mid_stream(gw):
    """curl gives up (RST_STREAM / connection close) while the stream is still flowing."""
    started = time.monotonic()
    result = subprocess.run(
        [CURL, "-sS", "--http2-prior-knowledge", "--max-time", "0.5", "-o", "/dev/null", "-H", "content-type: application/json",
         *sum((["-H", f"{k}: {v}"] for k, v in SLOW_STREAM.items()), []),
         "--data-binary", json.dumps(body(CLAUDE, stream=True)), f"{gw.base_url}/v1/chat/completions"],
        capture_output=True, timeout=10)
    assert result.returncode == 28, result.stderr  # 28: curl's own timeout, i.e. it cancelled
    assert time.monotonic() - started < 5
    assert_healthy(gw)


@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("how", ["close", "reset", "before-first-byte"])
def test_http1_client_disconnects_mid_stream(gw, family, how):
    model = rs.REPLAY_MODELS[family]
    headers = SLOW_STREAM if family == "anthropic" else SLOW_OPENAI_STREAM
    payload = json.dumps(body(model, stream=True)).encode()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
              + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
              + f"content-length: {len(payload)}\r\n\r\n".encode() + payload)
    if how != "before-first-byte":
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200")
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.3)
    assert_healthy(gw)


def test_many_concurrent_aborts_then_normal_traffic(gw):
    """Forty streams opened and dropped at once, half by RST: the worker shrugs them off."""
    sockets = []
    payload = json.dumps(body(CLAUDE, stream=True)).encode()
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in SLOW_STREAM.items()).encode()
                  + f"content-length: {len(payload)}\r\n\r\n".encode() + payload)
        sockets.append(s)
    for i, s in enumerate(sockets):
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.5)
    assert_healthy(gw)
