"""Trace spans from Envoy's OpenTelemetry tracer (render.py --otlp), with GenAI attributes.

A stack of its own rendered with `--otlp` pointing at a small OTLP/HTTP receiver this module
runs on 127.0.0.1; spans are decoded with the official protobuf classes (opentelemetry-proto).
What the span carries comes from the filter's state, evaluated when the span ends.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from openai import OpenAI

import recordings
from conftest import (ANTHROPIC_KEY, CLAUDE, CLAUDE_UPSTREAM, FIXTURES, GPT, GPT_UPSTREAM, OPENAI_KEY, WASM,
                      gateway_config, replay_headers)

import stack as stack_mod

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER


class OtlpReceiver:
    """OTLP/HTTP (protobuf) trace receiver: POST /v1/traces, keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.sizes: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.read_body()
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request, self.headers.get("content-type", ""), len(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def read_body(self) -> bytes:
                if self.headers.get("content-length") is not None:
                    return self.rfile.read(int(self.headers["content-length"]))
                # Envoy's exporter may send the body chunked.
                body = b""
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return body
                        body += self.rfile.read(size)
                        self.rfile.readline()
                return body

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest, content_type: str, size: int) -> None:
        with self.lock:
            self.content_types.append(content_type)
            self.sizes.append(size)
            for resource_spans in request.resource_spans:
                resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append({
                            "name": span.name, "kind": span.kind, "resource": resource,
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                            "attributes": {kv.key: value_of(kv.value) for kv in span.attributes},
                        })

    def wait_for(self, predicate, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Spans matching `predicate`; Envoy exports in batches, on a timer (5 s by default)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [s for s in self.spans if predicate(s)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def value_of(value: Any) -> Any:
    """An OTLP AnyValue as a Python value, keeping its type (str stays str, int stays int)."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack_mod.Stack, OtlpReceiver]]:
    receiver = OtlpReceiver()
    workdir = tmp_path_factory.mktemp("tracing")
    try:
        running = stack_mod.start_stack(
            workdir, gateway_config(), replay_clusters=["replay_anthropic", "replay_openai", "replay_anthropic_wrong_key"],
            extra_clusters={"dead_anthropic": f"http://127.0.0.1:{stack_mod.free_port()}",
                            "dead_openai": f"http://127.0.0.1:{stack_mod.free_port()}"},
            envoy_env={"E2E_ANTHROPIC_KEY": ANTHROPIC_KEY, "E2E_OPENAI_KEY": OPENAI_KEY, "E2E_WRONG_KEY": "sk-ant-wrong-key"},
            wasm=WASM, fixtures=FIXTURES, chunk_delay=0.002,
            replay_keys={"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY}, concurrency=1,
            access_log=workdir / "access.log", render_args=["--otlp", receiver.url])
    except BaseException:
        receiver.stop()
        raise
    yield running, receiver
    running.stop()
    receiver.stop()


def traceparent(test_id: str) -> dict[str, str]:
    """A W3C trace context with the test's id as trace id: Envoy joins the client's trace."""
    return {"traceparent": f"00-{test_id}-{test_id[:16]}-01"}


def in_trace(test_id: str):
    return lambda span: span["trace_id"] == test_id


def upstream_requests(running: stack_mod.Stack, test_id: str) -> list[dict[str, Any]]:

    status, body = stack_mod.http_get(f"{running.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
    assert status == 200
    return json.loads(body)


def test_chat_span_has_gen_ai_attributes(traced, test_id):
    running, receiver = traced
    name = "anthropic/test_anthropic_model_instructions.yaml"
    exp = recordings.expected_from_anthropic(recordings.load(FIXTURES)[name].interactions[0])
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    completion = client.chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers={**replay_headers(test_id, name), **traceparent(test_id)})
    assert completion.usage.prompt_tokens == exp.prompt_tokens > 0
    spans = receiver.wait_for(in_trace(test_id))
    assert len(spans) == 1, receiver.spans
    span = spans[0]
    attrs = span["attributes"]
    assert span["resource"].get("service.name") == "ai-gateway"
    assert span["kind"] == SERVER_KIND and span["end"] >= span["start"] > 0
    # The span name follows the GenAI convention "{operation} {model}", also evaluated at the end.
    assert span["name"] == f"chat {CLAUDE_UPSTREAM}"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert (attrs["gen_ai.provider.name"], attrs["ai_gateway.provider"]) == ("anthropic", "anthropic-replay")
    assert attrs["gen_ai.request.model"] == CLAUDE_UPSTREAM
    # The model Anthropic reported in the recording, which the client also sees.
    recorded_model = json.loads(recordings.load(FIXTURES)[name].interactions[0].body)["model"]
    assert attrs["gen_ai.response.model"] == completion.model == recorded_model
    # Custom tags are strings on Envoy 1.40's OpenTelemetry spans (measured).
    assert int(attrs["gen_ai.usage.input_tokens"]) == exp.prompt_tokens
    assert int(attrs["gen_ai.usage.output_tokens"]) == exp.completion_tokens > 0
    assert attrs["ai_gateway.attempts"] == "1"
    # Envoy's http.url has the provider's path (the header map is shared); url.path the client's.
    assert attrs["url.path"] == "/v1/chat/completions" and attrs["http.url"].endswith("/v1/messages")
    assert attrs["http.status_code"] == "200"
    assert 0 <= int(attrs["ai_gateway.time_to_first_token_ms"])
    # Caller-free: nothing identifying the client on the span.
    assert not any("caller" in k or "authorization" in k for k in attrs), attrs
    assert "client-key" not in repr(span)
    # The gateway's span stays in the gateway (no_context_propagation): the provider gets the
    # client's own traceparent untouched, not one naming the gateway's span.
    sent = upstream_requests(running, test_id)
    assert len(sent) == 1
    headers = {k.lower(): v for k, v in sent[0]["headers"].items()}
    assert headers.get("traceparent") == traceparent(test_id)["traceparent"], headers
    assert span["span_id"] not in repr(headers)
    assert not set(headers) & {"tracestate", "x-b3-traceid", "x-b3-spanid"}, headers


def test_streamed_span_counts_tokens_after_the_last_event(traced, test_id):
    running, receiver = traced
    name = "openai/chat-streaming-detailed-usage.yaml"

    recorded = [json.loads(d) for d in recordings.openai_sse_data(recordings.load(FIXTURES)[name].interactions[0].body)
                if d != "[DONE]"]
    usage = next(c["usage"] for c in recorded if c.get("usage"))
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    for _ in client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}], stream=True,
                                            extra_headers={**replay_headers(test_id, name), **traceparent(test_id)}):
        pass
    spans = receiver.wait_for(in_trace(test_id))
    assert len(spans) == 1, receiver.spans
    attrs = spans[0]["attributes"]
    assert (attrs["gen_ai.operation.name"], attrs["gen_ai.provider.name"], attrs["ai_gateway.provider"]) == ("chat", "openai", "openai-replay")
    assert attrs["gen_ai.request.model"] == GPT_UPSTREAM
    assert attrs["gen_ai.response.model"] == recorded[0]["model"]
    assert int(attrs["gen_ai.usage.input_tokens"]) == usage["prompt_tokens"]
    assert int(attrs["gen_ai.usage.output_tokens"]) == usage["completion_tokens"] > 0


def test_rejected_request_span_has_no_provider(traced, test_id):
    running, receiver = traced
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    with pytest.raises(Exception):
        client.embeddings.create(model="no-such-model-" + test_id, input="hi", extra_headers=traceparent(test_id))
    spans = receiver.wait_for(in_trace(test_id))
    assert len(spans) == 1, receiver.spans
    attrs = spans[0]["attributes"]
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["http.url"].endswith("/v1/embeddings")
    assert attrs["http.status_code"] == "404"
    # No provider was called: the filter state is unset and Envoy leaves those attributes out.
    assert not {"gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens"} & set(attrs), attrs


def test_provider_gets_no_trace_context_from_the_gateway(traced, test_id):
    """Measured: without `no_context_propagation` Envoy adds traceparent and tracestate naming its
    own span to every provider request; with it, a client that sends none gets none forwarded."""
    running, receiver = traced
    # Envoy echoes no request id to the client, so this request's span is told apart by count.
    gpt_span = lambda s: s["name"] == f"chat {GPT_UPSTREAM}"  # noqa: E731
    time.sleep(6)  # let earlier tests' spans arrive first (Envoy flushes every 5 s)
    before = len(receiver.wait_for(gpt_span, timeout=0))
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                   extra_headers=replay_headers(test_id, "openai/chat-basic.yaml"))
    sent = upstream_requests(running, test_id)
    assert len(sent) == 1
    headers = {k.lower() for k in sent[0]["headers"]}
    assert not headers & {"traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-datadog-trace-id"}, headers
    # The request was traced all the same, in a trace of its own.
    deadline = time.monotonic() + 15
    while len(receiver.wait_for(gpt_span, timeout=0)) <= before:
        assert time.monotonic() < deadline, receiver.spans
        time.sleep(0.2)
    assert len(receiver.wait_for(gpt_span, timeout=0)) == before + 1


def test_render_options_for_tracing_and_log_formats(tmp_path):
    """What --otlp, --trace-sample-percent and --access-log-format produce; Envoy accepts it."""
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "envoy"))
    import render  # noqa: E402

    upstreams = dict(render.parse_upstream(f"{name}=http://127.0.0.1:9") for name in
                     ("replay_anthropic", "replay_openai", "replay_anthropic_wrong_key", "dead_anthropic", "dead_openai"))
    cfg = gateway_config()
    plain = render.render(cfg, str(WASM), 10000, 9901, upstreams, access_log="/dev/stdout")
    hcm = lambda boot: boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]  # noqa: E731
    assert "tracing" not in hcm(plain)
    assert render.OTLP_CLUSTER not in {c["name"] for c in plain["static_resources"]["clusters"]}
    assert hcm(plain)["access_log"][0]["typed_config"]["log_format"]["json_format"] == render.REQUEST_LOG_FIELDS

    traced_boot = render.render(cfg, str(WASM), 10000, 9901, upstreams, access_log="/dev/stdout", access_log_format="text",
                                otlp="http://127.0.0.1:4318", trace_sample_percent=12.5)
    tracing = hcm(traced_boot)["tracing"]
    assert tracing["random_sampling"] == {"value": 12.5} and tracing["no_context_propagation"] is True
    assert tracing["provider"]["typed_config"]["http_service"]["http_uri"]["uri"] == "http://127.0.0.1:4318/v1/traces"
    assert not any("caller" in t["tag"] or "caller" in t["value"] for t in tracing["custom_tags"])
    text = hcm(traced_boot)["access_log"][0]["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    assert render.CLIENT_PATH in text and text.endswith("\n")
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(traced_boot))
    r = subprocess.run([str(stack_mod.envoy_binary()), "--mode", "validate", "-c", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    for bad in ("grpc://127.0.0.1:4317", "127.0.0.1:4318", "https://collector:4318", "http://127.0.0.1:4318?x=1"):
        with pytest.raises(render.RenderError):
            render.render(cfg, str(WASM), 10000, 9901, upstreams, otlp=bad)
    with pytest.raises(render.RenderError):
        render.render(cfg, str(WASM), 10000, 9901, upstreams, otlp="http://127.0.0.1:4318", trace_sample_percent=101)
    with pytest.raises(render.RenderError):
        render.render(cfg, str(WASM), 10000, 9901, {**upstreams, render.OTLP_CLUSTER: upstreams["dead_openai"]},
                      otlp="http://127.0.0.1:4318")
