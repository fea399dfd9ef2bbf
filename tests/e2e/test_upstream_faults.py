"""Upstream fault matrix: a provider (tests/faults/server.py) that refuses, resets, stalls, rate
limits, fails, sends broken JSON or SSE, or compresses; for the Anthropic translation and the
OpenAI passthrough, JSON and streaming. Every case gives the client an error in OpenAI's shape
(or, for a stream whose headers already went out, an error event then `[DONE]`), and the one
Envoy worker keeps serving afterwards without a filter panic. The expected outcome of every case
is listed in docs/robustness.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import openai
import pytest

import robust_stack as rs
from conftest import WASM
from robust_stack import CLAUDE, CLAUDE_REFUSED, GPT, GPT_REFUSED, MODELS, assert_healthy, assert_openai_error, chat, post

FAMILIES = ["anthropic", "openai"]


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory):
    base = os.environ.get("E2E_WORKDIR")
    workdir = Path(base) / "faults" if base else tmp_path_factory.mktemp("faults")
    running = rs.start(workdir, WASM)
    yield running
    running.stop()


def fault(name: str, **extra: str) -> dict[str, str]:
    return {"x-fault": name, **{f"x-fault-{k.replace('_', '-')}": v for k, v in extra.items()}}


def stream_error(reply: rs.Reply) -> dict:
    """The stream ended with an OpenAI error event followed by [DONE]; returns the error."""
    assert reply.status == 200, reply.body[:300]
    assert reply.error is None, f"transport error instead of an error event: {reply.error!r}"
    data = reply.sse_data()
    assert data[-1] == "[DONE]", reply.text[-400:]
    error = json.loads(data[-2])["error"]
    assert isinstance(error["message"], str) and error["message"] and error["type"], error
    return error


# --- the provider cannot be reached, or answers nothing ----------------------------------------

@pytest.mark.parametrize("model", [CLAUDE_REFUSED, GPT_REFUSED])
@pytest.mark.parametrize("stream", [False, True])
def test_connection_refused_is_503(fs, model, stream):
    reply = post(fs.port, chat(model, stream))
    assert_openai_error(reply, 503, "server_error", "upstream_unavailable")
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["close-before-headers", "reset-before-headers"])
@pytest.mark.parametrize("stream", [False, True])
def test_connection_dropped_before_headers_is_503(fs, family, name, stream):
    reply = post(fs.port, chat(MODELS[family], stream), fault(name))
    assert_openai_error(reply, 503, "server_error", "upstream_unavailable")
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stream", [False, True])
def test_timeout_before_headers_is_504(fs, family, stream):
    started = time.monotonic()
    reply = post(fs.port, chat(MODELS[family], stream), fault("hang", delay="10"))
    elapsed = time.monotonic() - started
    assert_openai_error(reply, 504, "server_error", "upstream_timeout")
    assert rs.ROUTE_TIMEOUT_S - 0.5 < elapsed < rs.ROUTE_TIMEOUT_S + 3, elapsed
    assert_healthy(fs)


# --- the connection breaks in the middle of the answer -------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_reset_mid_body_is_502(fs, family):
    """The filter buffers JSON answers, so nothing reached the client yet and a clean error is
    possible; Envoy counts a body shorter than its content-length as a protocol error (502)."""
    reply = post(fs.port, chat(MODELS[family]), fault("reset-mid-body"))
    assert_openai_error(reply, 502, "upstream_error", "bad_gateway")
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["reset-mid-stream", "hang-mid-stream"])
def test_stream_broken_after_headers_is_a_transport_error(fs, family, name):
    """Headers and the first chunks already went out; Envoy resets the client's stream and gives
    filters no callback to write into it, so the client sees a cut-off body (an incomplete chunked
    encoding on HTTP/1.1), which the SDKs raise as a connection error, never a complete answer."""
    reply = post(fs.port, chat(MODELS[family], stream=True), fault(name, delay="10"))
    assert reply.status == 200
    assert reply.error is not None, f"the stream ended cleanly: {reply.text[-300:]!r}"
    assert "[DONE]" not in reply.sse_data()
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
def test_sdk_raises_on_a_stream_reset(fs, family):
    client = openai.OpenAI(base_url=f"{fs.base_url}/v1", api_key="k", max_retries=0, timeout=10)
    chunks = []
    with pytest.raises(Exception) as info:
        for chunk in client.chat.completions.create(model=MODELS[family], messages=rs.HELLO, stream=True,
                                                    extra_headers=fault("reset-mid-stream")):
            chunks.append(chunk)
    assert not isinstance(info.value, AssertionError)
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["truncated-stream", "truncated-chunked"])
def test_stream_ending_before_the_end_event_gets_an_error_event(fs, family, name):
    """The provider closed the stream cleanly but before message_stop / [DONE] and before any
    finish reason: the answer is incomplete, and the client is told so in the stream."""
    reply = post(fs.port, chat(MODELS[family], stream=True), fault(name))
    error = stream_error(reply)
    assert error["type"] == "server_error"
    assert error["code"] == "incomplete_stream"
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
def test_sdk_raises_on_a_truncated_stream(fs, family):
    client = openai.OpenAI(base_url=f"{fs.base_url}/v1", api_key="k", max_retries=0, timeout=10)
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(model=MODELS[family], messages=rs.HELLO, stream=True,
                                                extra_headers=fault("truncated-stream")):
            pass
    assert "ended before the answer was complete" in info.value.message


# --- the provider answers with an error status -----------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stream", [False, True])
def test_429_keeps_retry_after(fs, family, stream):
    reply = post(fs.port, chat(MODELS[family], stream), fault("status", status="429", retry_after="7"))
    # Anthropic's rate_limit_error is mapped; OpenAI's own body passes unchanged.
    error = assert_openai_error(reply, 429, "rate_limit_error" if family == "anthropic" else "requests")
    assert error["code"] == ("rate_limit_error" if family == "anthropic" else "rate_limit_exceeded")
    assert reply.headers.get("retry-after") == "7"
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
def test_sdk_sees_rate_limit_and_retry_after(fs, family):
    client = openai.OpenAI(base_url=f"{fs.base_url}/v1", api_key="k", max_retries=0, timeout=10)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODELS[family], messages=rs.HELLO,
                                       extra_headers=fault("status", status="429", retry_after="3"))
    assert info.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("stream", [False, True])
def test_5xx_keeps_status_in_openai_shape(fs, family, status, stream):
    reply = post(fs.port, chat(MODELS[family], stream), fault("status", status=str(status)))
    error = assert_openai_error(reply, status, "server_error")
    assert "injected" in error["message"], "the provider's own message is kept"
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("status", ["502", "503"])
def test_html_error_page_becomes_openai_error(fs, family, status):
    reply = post(fs.port, chat(MODELS[family]), fault("html-error", status=status))
    error = assert_openai_error(reply, int(status), "server_error")
    assert "<html>" not in error["message"]
    assert_healthy(fs)


# --- the provider answers 200 with something unreadable --------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_malformed_json_200_is_502(fs, family):
    reply = post(fs.port, chat(MODELS[family]), fault("malformed-json"))
    assert_openai_error(reply, 502, "upstream_error")
    assert_healthy(fs)


@pytest.mark.parametrize("family", FAMILIES)
def test_malformed_sse_ends_with_an_error_event(fs, family):
    reply = post(fs.port, chat(MODELS[family], stream=True), fault("malformed-sse"))
    error = stream_error(reply)
    assert error["code"] == "incomplete_stream"
    for data in reply.sse_data():
        json.loads(data) if data != "[DONE]" else None  # nothing unparseable reached the client
    assert_healthy(fs)


# --- content encodings ----------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name,encoding", [("gzip", "gzip"), ("unknown-encoding", "br")])
@pytest.mark.parametrize("stream", [False, True])
def test_compressed_answer_is_502(fs, family, name, encoding, stream):
    """The gateway strips accept-encoding, so a compressed answer is a provider (or proxy) fault.
    Envoy 1.40 has no decompressor that runs as an upstream filter and the filter does not carry
    an inflater, so the client gets a clear 502 naming the encoding instead of unreadable bytes."""
    reply = post(fs.port, chat(MODELS[family], stream), fault(name))
    error = assert_openai_error(reply, 502, "upstream_error", "unsupported_content_encoding")
    assert encoding in error["message"]
    assert "content-encoding" not in reply.headers
    assert_healthy(fs)


def test_gateway_never_asks_for_compression(fs):
    test_id = os.urandom(8).hex()
    for model in (CLAUDE, GPT):
        post(fs.port, chat(model), {"accept-encoding": "gzip, br", "x-test-id": test_id})
    status, body = rs.stack_mod.http_get(f"http://127.0.0.1:{fs.faults_port}/__faults/requests?test_id={test_id}")
    seen = json.loads(body)
    assert status == 200 and len(seen) == 2
    for request in seen:
        assert "accept-encoding" not in request["headers"], request["headers"]
