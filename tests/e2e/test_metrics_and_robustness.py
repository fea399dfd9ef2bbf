"""Metrics on Envoy's admin endpoint, and inputs that must never take a worker down."""

from __future__ import annotations

import json
import random
import re
import socket
import time

import pytest

import recordings
from conftest import (CLAUDE, CLAUDE_TTFT, CLAUDE_UPSTREAM, FIXTURES, GPT, GPT_UPSTREAM, MAX_REQUEST_BYTES, raw_request,
                      replay_headers)

import stack as stack_mod

METRIC = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+-]+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prometheus(gateway) -> dict[tuple[str, frozenset], float]:
    status, body = stack_mod.http_get(f"{gateway.admin_url}/stats/prometheus", timeout=5)
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        m = METRIC.match(line)
        if m and "ai_gateway" in m["name"]:
            labels = frozenset(LABEL.findall(m["labels"]))
            samples[(m["name"].split("ai_gateway", 1)[1], labels)] = float(m["value"])
        elif m and m["name"].startswith("gen_ai_"):
            samples[(m["name"], frozenset(LABEL.findall(m["labels"])))] = float(m["value"])
    return samples


def counter(samples, suffix: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (name, lbls), v in samples.items() if name == suffix and want <= set(lbls))


def wait_for_change(gateway, before, suffix: str, expected_delta: float, **labels: str) -> float:
    """Counters are updated when the upstream filter finishes, which may be just after the client
    got its last byte: poll briefly."""
    deadline = time.monotonic() + 5
    while True:
        delta = counter(prometheus(gateway), suffix, **labels) - counter(before, suffix, **labels)
        if delta >= expected_delta or time.monotonic() > deadline:
            return delta
        time.sleep(0.1)


def test_request_and_token_counters(client, gateway, test_id):
    name = "anthropic/test_anthropic_model_instructions.yaml"
    interaction = recordings.load(FIXTURES)[name].interactions[0]
    exp = recordings.expected_from_anthropic(interaction)
    before = prometheus(gateway)
    for _ in range(2):
        client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "What is the capital of France?"}],
                                       extra_headers=replay_headers(test_id, name))
    labels = {"model": CLAUDE_UPSTREAM, "status": "200"}
    assert wait_for_change(gateway, before, "_requests_total", 2, **labels) == 2
    assert wait_for_change(gateway, before, "_tokens_total", 2 * exp.prompt_tokens,
                           model=CLAUDE_UPSTREAM, type="input") == 2 * exp.prompt_tokens
    assert wait_for_change(gateway, before, "_tokens_total", 2 * exp.completion_tokens,
                           model=CLAUDE_UPSTREAM, type="output") == 2 * exp.completion_tokens


def test_streamed_tokens_are_counted_without_client_usage(client, gateway, test_id):
    name = "openai/chat-streaming-detailed-usage.yaml"
    recorded = [json.loads(d) for d in recordings.openai_sse_data(recordings.load(FIXTURES)[name].interactions[0].body)
                if d != "[DONE]"]
    usage = next(c["usage"] for c in recorded if c.get("usage"))
    before = prometheus(gateway)
    for _ in client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}], stream=True,
                                            extra_headers=replay_headers(test_id, name)):
        pass
    assert wait_for_change(gateway, before, "_tokens_total", usage["completion_tokens"],
                           model=GPT_UPSTREAM, type="output") == usage["completion_tokens"]
    assert wait_for_change(gateway, before, "_tokens_total", usage["prompt_tokens"],
                           model=GPT_UPSTREAM, type="input") == usage["prompt_tokens"]


def test_time_to_first_token_is_recorded_for_streams(client, gateway, test_id):
    """One histogram sample per answered stream, and the sample (first chunk) is far shorter than
    the whole stream, which the replay paces at 150 ms per event. The route is this test's alone;
    Envoy merges histograms at its stats flush (5 s), hence the longer wait."""
    name = "anthropic/test_request_stream_fallback_for_high_max_tokens.yaml"
    started = time.monotonic()
    for _ in client.chat.completions.create(
            model=CLAUDE_TTFT, messages=[{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            stream=True, extra_headers=replay_headers(test_id, name, **{"x-replay-chunk-delay": "0.15"})):
        pass
    stream_ms = (time.monotonic() - started) * 1000
    assert stream_ms > 600
    deadline = time.monotonic() + 15
    while counter(prometheus(gateway), "gen_ai_server_time_to_first_token_ms_count", model=CLAUDE_TTFT) < 1:
        assert time.monotonic() < deadline, "no time-to-first-token sample"
        time.sleep(0.25)
    samples = prometheus(gateway)
    assert counter(samples, "gen_ai_server_time_to_first_token_ms_count", model=CLAUDE_TTFT) == 1
    ttft_ms = counter(samples, "gen_ai_server_time_to_first_token_ms_sum", model=CLAUDE_TTFT)
    assert 0 <= ttft_ms < stream_ms / 2, (ttft_ms, stream_ms)


def test_rejections_are_counted(client, gateway, test_id):
    before = prometheus(gateway)
    for _ in range(3):
        with pytest.raises(Exception):
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert wait_for_change(gateway, before, "_rejected_total", 3, status="404") >= 3


# --- robustness ----------------------------------------------------------------------------------

def assert_still_serving(client, gateway, test_id: str) -> None:
    assert gateway.proc("envoy").alive(), "envoy died"
    for model in (CLAUDE, GPT):
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}],
                                              extra_headers=replay_headers(test_id))
        assert resp.choices[0].message.content


def assert_no_panic_logged(gateway) -> None:
    log = (gateway.workdir / "envoy.log").read_text(errors="replace")
    assert "panicked" not in log, "the filter panicked (see envoy.log)"
    assert "Wasm VM failed" not in log and "wasm vm crashed" not in log.lower()


BAD_BODIES = [
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":"user","content":"\xff\xfe\xfd"}]}', id="invalid-utf8-claude"),
    pytest.param(b'{"model":"gpt-e2e","messages":[{"role":"user","content":"\xc3\x28"}]}', id="invalid-utf8-gpt"),
    pytest.param(b'{"model":"\xff","messages":[{"role":"user","content":"x"}]}', id="invalid-utf8-model"),
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":', id="truncated"),
    pytest.param(b'{"model":"claude-e2e","messages":' + b"[" * 100000 + b"]" * 100000 + b"}", id="deeply-nested"),
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":"user","content":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}]}", id="nested-content"),
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":"tool","content":null}]}', id="orphan-tool-message"),
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":"assistant","tool_calls":[{"id":1}]}]}', id="bad-tool-call"),
    pytest.param(b'{"model":"claude-e2e","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:"}}]}]}', id="bad-data-url"),
    pytest.param(b'{"model":"claude-e2e","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}', id="negative-max-tokens"),
    pytest.param(b'{"model":"claude-e2e","max_tokens":1e400,"messages":[{"role":"user","content":"x"}]}', id="huge-number"),
    pytest.param(b"\x00" * 1000, id="nul-bytes"),
]


@pytest.mark.parametrize("payload", BAD_BODIES)
def test_malformed_bodies_never_crash(client, gateway, test_id, payload):
    status, _, body = raw_request(gateway, "POST", "/v1/chat/completions", payload, headers=replay_headers(test_id))
    assert 400 <= status < 500, f"status {status}: {body[:300]!r}"
    assert "error" in json.loads(body)
    assert_still_serving(client, gateway, test_id)
    assert_no_panic_logged(gateway)


def test_random_bodies_never_crash(client, gateway, test_id):
    rng = random.Random(1234)
    seeds = [b'{"model":"claude-e2e","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}',
             b'{"model":"gpt-e2e","stream":true,"messages":[{"role":"user","content":"hi"}]}']
    for i in range(60):
        seed = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(seed))
            seed[pos] = rng.randrange(256)
        if i % 3 == 0:
            seed = seed[: rng.randrange(len(seed))]
        status, _, _ = raw_request(gateway, "POST", "/v1/chat/completions", bytes(seed), headers=replay_headers(test_id))
        assert status < 500, f"status {status} for {bytes(seed)!r}"
    assert_still_serving(client, gateway, test_id)
    assert_no_panic_logged(gateway)


def test_huge_body_is_rejected_and_worker_survives(client, gateway, test_id):
    payload = b'{"model":"claude-e2e","messages":[{"role":"user","content":"' + b"z" * (8 * MAX_REQUEST_BYTES) + b'"}]}'
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"x-test-id: {test_id}\r\ncontent-length: {len(payload)}\r\n\r\n".encode())
    response = b""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        # Envoy may answer 413 and close before the whole body is sent: that is fine.
        try:
            s.sendall(head + payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := s.recv(65536):
                response += chunk
                if b"\r\n\r\n" in response and len(response) > 200:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert_still_serving(client, gateway, test_id)
    assert_no_panic_logged(gateway)


def test_client_abort_mid_body_and_mid_stream(client, gateway, test_id):
    # Body promised but never fully sent.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 5000\r\n\r\n{\"model\":\"claude-e2e\",")
    # Stream abandoned after the first bytes.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        body = json.dumps({"model": CLAUDE, "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"x-replay-fixture: anthropic/test_anthropic_model_thinking_part_stream.yaml\r\n"
                  b"x-replay-chunk-delay: 0.05\r\n"
                  + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        s.recv(100)
    time.sleep(0.5)
    assert_still_serving(client, gateway, test_id)
    assert_no_panic_logged(gateway)
