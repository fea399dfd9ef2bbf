#!/usr/bin/env python3
"""Renders a complete Envoy bootstrap (JSON) that runs the AI gateway Wasm filter.

Standard library only. Envoy accepts JSON bootstraps (`envoy -c bootstrap.json`).

Example:
    python3 envoy/render.py --config gateway.json \\
        --wasm target/wasm32-wasip1/release/ai_gateway_filter.wasm \\
        --port 10000 --admin-port 9901 \\
        --cluster demo_anthropic=http://127.0.0.1:18001 \\
        --cluster openai=https://api.openai.com \\
        --out /tmp/envoy.json

Several Envoys on one machine need distinct shared-memory ids: start each with its own
`--base-id N` (e.g. `envoy -c /tmp/envoy.json --base-id 7`), or they fail to start.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from urllib.parse import urlsplit

# Must match filter/src (lib.rs, metrics.rs): header names, root ids, metric labels.
CLUSTER_HEADER = "x-ai-gateway-cluster"
LOCAL_REPLY_MARKER = "x-ai-gateway-local-reply"
METADATA_NAMESPACE = "ai_gateway"
DOWNSTREAM_ROOT_ID = "ai_gateway"
UPSTREAM_ROOT_ID = "ai_gateway_upstream"
SERVICE_ROOT_ID = "ai_gateway_service"
VM_ID = "ai_gateway"
# Must match filter/src/service.rs (default cluster name of the singleton's configuration).
CONTROL_PLANE_CLUSTER = "ai_gateway_control_plane"
DEFAULT_WATCH_TOKEN_ENV = "AI_GATEWAY_WATCH_TOKEN"  # noqa: S105  # a variable name, not a token
METRIC_LABELS = ("provider", "model", "status", "type", "code")

# Per-attempt access log (router upstream_log), always JSON: one object per retry or fallback.
# Its `path` is the one this attempt sent to the provider.
UPSTREAM_LOG_FIELDS = {
    "log": "attempt",
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    # The provider this attempt reached (endpoint metadata): under a route with a policy the
    # cluster is the aggregate, so this is what tells a fallback's attempts apart.
    "provider": f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:provider)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}
# The client's path as it arrived. Measured on Envoy 1.40: by the time a request is logged (or its
# span ends), `:path` is the provider's path of the last attempt, because the upstream filter
# rewrites the header map the router shares with the downstream request, and with
# suppress_envoy_headers Envoy sets no x-envoy-original-path. A header_to_metadata filter copies
# the path into dynamic metadata first; nothing of it goes upstream.
CLIENT_PATH_KEY = "client_path"
CLIENT_PATH = f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:{CLIENT_PATH_KEY})%"
# Per-request access log with --access-log-format json. provider/model/tokens/TTFT are filter
# state the upstream Wasm filter sets when an attempt finishes (filter/src/upstream.rs). Measured
# on Envoy 1.40: it lands on the downstream stream info (the last attempt wins), and the router's
# upstream_log above does not see it. Filter-state values are strings (PLAIN); null = not set
# (the gateway answered without a provider), empty TTFT = no successful bytes for the client.
REQUEST_LOG_FIELDS = {
    "log": "request",
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": CLIENT_PATH,
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "provider": "%FILTER_STATE(wasm.ai_gateway.provider:PLAIN)%",
    "model": "%FILTER_STATE(wasm.ai_gateway.model:PLAIN)%",
    "input_tokens": "%FILTER_STATE(wasm.ai_gateway.input_tokens:PLAIN)%",
    "output_tokens": "%FILTER_STATE(wasm.ai_gateway.output_tokens:PLAIN)%",
    "time_to_first_token_ms": "%FILTER_STATE(wasm.ai_gateway.ttft_ms:PLAIN)%",
    # Set by the filter where it knows them: cost of the last attempt in USD (price table), and
    # who called (`jwt:<client_id>` or `key:<sha-256 of the virtual key>`, never the key itself).
    "cost_usd": "%FILTER_STATE(wasm.ai_gateway.cost_usd:PLAIN)%",
    "caller": "%FILTER_STATE(wasm.ai_gateway.caller:PLAIN)%",
}
# Per-request text line with --access-log-format text (the format before JSON became the default).
REQUEST_LOG_TEXT = (
    f"[%START_TIME%] \"%REQ(:METHOD)% {CLIENT_PATH}\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    "%BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms cluster=%UPSTREAM_CLUSTER% "
    "provider=%RESP(X-AI-GATEWAY-PROVIDER)% model=%RESP(X-AI-GATEWAY-MODEL)% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT%\n"
)

# Tracing (--otlp): Envoy's OpenTelemetry tracer, one server span per request.
OTLP_CLUSTER = "ai_gateway_otlp"
TRACE_SERVICE_NAME = "ai-gateway"
# Span attributes (OpenTelemetry GenAI semantic conventions) as formatter-valued custom tags
# (`CustomTag.value`, Envoy 1.40). Measured here (docs/operations.md, Tracing): Envoy evaluates
# them when the span finishes, after the last response byte, so they see the filter state the
# upstream filter sets when an attempt ends; an unset key leaves the attribute out; every value
# is a string attribute. The caller is deliberately not on the span (traces leave the account's
# log retention and access rules). gen_ai.operation.name comes from the path (CEL), the rest
# from the filter's state; gen_ai.provider.name is the convention's vendor name (`aws.bedrock`),
# ai_gateway.provider the operator's provider name, the model the one asked of the provider.
# gen_ai.response.model is the model the provider reported (absent when it reports none: Bedrock).
# At the span's end `request.path` is the provider's path of the last attempt (the upstream filter
# rewrites the shared header map): every embeddings path, ours or a provider's, names "embed".
GEN_AI_OPERATION = "%CEL(request.path.contains('embed') ? 'embeddings' : 'chat')%"
SPAN_TAGS = {
    "gen_ai.operation.name": GEN_AI_OPERATION,
    "gen_ai.provider.name": "%FILTER_STATE(wasm.ai_gateway.provider_kind:PLAIN)%",
    "ai_gateway.provider": "%FILTER_STATE(wasm.ai_gateway.provider:PLAIN)%",
    "gen_ai.request.model": "%FILTER_STATE(wasm.ai_gateway.model:PLAIN)%",
    "gen_ai.response.model": "%FILTER_STATE(wasm.ai_gateway.response_model:PLAIN)%",
    "gen_ai.usage.input_tokens": "%FILTER_STATE(wasm.ai_gateway.input_tokens:PLAIN)%",
    "gen_ai.usage.output_tokens": "%FILTER_STATE(wasm.ai_gateway.output_tokens:PLAIN)%",
    "url.path": CLIENT_PATH,
    "ai_gateway.attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "ai_gateway.time_to_first_token_ms": "%FILTER_STATE(wasm.ai_gateway.ttft_ms:PLAIN)%",
    "ai_gateway.cost_usd": "%FILTER_STATE(wasm.ai_gateway.cost_usd:PLAIN)%",
}

ROUTE_TIMEOUT = "300s"
# Limits for slow and abusive clients (docs/robustness.md, "Limits"). LLM answers stream for
# minutes, so nothing here bounds a response: the request timeout stops once the whole request
# has arrived, and a stream is idle only when no byte moves either way.
REQUEST_HEADERS_TIMEOUT = "10s"  # first header byte to the last one
REQUEST_TIMEOUT = "120s"  # the whole request, body included (16 MiB at ~1 Mbit/s fits)
STREAM_IDLE_TIMEOUT = "300s"  # no byte either way on a stream: the route timeout, the ALB's idle timeout
# Longer than the ALB's idle timeout (terraform/modules/edge: 300 s), so the ALB closes first and
# never sends on a connection Envoy is closing.
CONNECTION_IDLE_TIMEOUT = "360s"
MAX_REQUEST_HEADERS_KB = 32  # Envoy's default is 60; JWTs and SDK telemetry stay far below
MAX_REQUEST_HEADERS_COUNT = 100
MAX_CONNECTIONS = 4096  # per listener, and for all downstream connections (overload manager)
# HTTP/2 (Envoy's edge recommendations): bounded concurrent streams and flow-control windows.
H2_MAX_CONCURRENT_STREAMS = 100
H2_INITIAL_STREAM_WINDOW = 64 * 1024
H2_INITIAL_CONNECTION_WINDOW = 1024 * 1024
# With --max-heap-mb: free pages go back to the OS from this share of the heap, and new requests
# are refused (503) above the second.
SHRINK_HEAP_AT = 0.90
STOP_ACCEPTING_AT = 0.98
LISTENER_NAME = "ai_gateway"
# tcmalloc keeps freed pages for reuse, so Envoy's RSS stays at its peak after a burst of large
# bodies or many streams (issue 13 item 11); this much free memory goes back to the OS per
# second (Envoy's memory_allocator_manager; docs/robustness.md, "Memory after large bodies").
RELEASE_FREE_MEMORY_MB_PER_S = 16
# Room for headers and Envoy's own framing above the body limit the filter enforces, so the
# filter (with its clear 413) decides, not Envoy's buffer overflow.
BUFFER_MARGIN = 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
CA_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
)


class RenderError(Exception):
    """A problem with the inputs; reported without a traceback."""


def parse_upstream(spec: str) -> tuple[str, dict]:
    """`name=scheme://host[:port][#hostname]` → (name, {scheme, host, port, hostname?}).

    The optional fragment is the endpoint hostname Envoy sends as Host (auto_host_rewrite) when
    it differs from the address: a local stand-in for a provider whose requests are signed over
    the provider's real host name (Bedrock's SigV4 signs `bedrock-runtime.<region>.amazonaws.com`).
    """
    name, sep, url = spec.partition("=")
    if not sep or not name or not url:
        raise RenderError(f"--cluster expects NAME=URL, got {spec!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RenderError(f"cluster {name}: URL scheme must be http or https, got {url!r}")
    if not parts.hostname:
        raise RenderError(f"cluster {name}: URL has no host: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise RenderError(f"cluster {name}: URL must be scheme://host[:port] only (use path_prefix in the gateway config): {url!r}")
    default_port = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default_port
    except ValueError as e:
        raise RenderError(f"cluster {name}: {e}") from e
    upstream = {"scheme": parts.scheme, "host": parts.hostname, "port": port, "default_port": port == default_port}
    if parts.fragment:
        if not all(c.isalnum() or c in "-." for c in parts.fragment):
            raise RenderError(f"cluster {name}: the #hostname must be a plain host name: {url!r}")
        upstream["hostname"] = parts.fragment
    return name, upstream


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def json_error_format(message: str, error_type: str, code: str | None) -> dict:
    """An OpenAI-shaped error body for Envoy's own local replies."""
    return {
        "json_format": {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        "content_type": "application/json",
    }


def status_mapper(status: int, error_type: str, code: str) -> dict:
    return {
        "filter": {
            "status_code_filter": {
                "comparison": {"op": "EQ", "value": {"default_value": status, "runtime_key": f"ai_gateway.local_reply.{status}"}}
            }
        },
        "body_format_override": json_error_format("%LOCAL_REPLY_BODY%", error_type, code),
    }


# Messages for Envoy's own replies whose body is empty (issue 13 item 10): a client must learn why.
FRAGMENT_MESSAGE = ("The request path contains a URL fragment ('#...'). Fragments belong to the client and are "
                    "never sent; remove it and send the request again.")
BAD_HTTP_MESSAGE = "The request is not valid HTTP for this gateway (%RESPONSE_CODE_DETAILS%)."
NO_CLUSTER_MESSAGE = ("The provider for this model is not reachable from this gateway: its Envoy cluster is not "
                      "configured. An operator must add the cluster (envoy/render.py --cluster) or fix the provider.")


def anthropic_path() -> dict:
    return {"header_filter": {"header": {"name": ":path", "string_match": {"prefix": "/v1/messages"}}}}


def shaped_mappers(filter_: dict, status: int, message: str, openai_type: str, openai_code: str,
                   anthropic_type: str) -> list[dict]:
    """Two mappers for one of Envoy's own replies the Wasm filter never sees (rejected before the
    filter chain): Anthropic's error shape on `/v1/messages` paths, OpenAI's elsewhere."""
    return [
        {
            "filter": {"and_filter": {"filters": [filter_, anthropic_path()]}},
            "status_code": status,
            "body_format_override": {
                "json_format": {"type": "error", "error": {"type": anthropic_type, "message": message}},
                "content_type": "application/json",
            },
        },
        {
            "filter": filter_,
            "status_code": status,
            "body_format_override": json_error_format(message, openai_type, openai_code),
        },
    ]


def local_reply_config() -> dict:
    envoy_400 = {"and_filter": {"filters": [
        status_mapper(400, "", "")["filter"],
        {"header_filter": {"header": {"name": LOCAL_REPLY_MARKER, "present_match": True, "invert_match": True}}},
    ]}}
    fragment = {"and_filter": {"filters": [
        envoy_400, {"header_filter": {"header": {"name": ":path", "string_match": {"contains": "#"}}}}]}}
    return {
        "mappers": [
            # Replies the filter sent itself are already in OpenAI's shape: keep them as they are.
            {
                "filter": {"header_filter": {"header": {"name": LOCAL_REPLY_MARKER, "present_match": True}}},
                "body_format_override": {
                    "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                    "content_type": "application/json",
                },
            },
            # Envoy's own 400s (rejected before the filter: a path it cannot normalise, bad
            # framing) come with an empty body.
            *shaped_mappers(fragment, 400, FRAGMENT_MESSAGE, "invalid_request_error", "invalid_path",
                            "invalid_request_error"),
            *shaped_mappers(envoy_400, 400, BAD_HTTP_MESSAGE, "invalid_request_error", "bad_request",
                            "invalid_request_error"),
            # The router found no cluster of the name the filter chose (a pushed provider names a
            # cluster this Envoy was not rendered with). Its body is empty; the filter reshapes it
            # for Anthropic clients and counts it (ai_gateway_local_replies_total).
            {
                "filter": {"response_flag_filter": {"flags": ["NC"]}},
                "status_code": 503,
                "body_format_override": json_error_format(NO_CLUSTER_MESSAGE, "server_error", "cluster_not_found"),
            },
            # jwt_authn's own rejections (expired, bad signature, unknown issuer) happen before the
            # Wasm filter sees the request, so it cannot reshape them for Anthropic clients.
            {
                "filter": {"and_filter": {"filters": [
                    status_mapper(401, "", "")["filter"],
                    {"header_filter": {"header": {"name": ":path", "string_match": {"prefix": "/v1/messages"}}}},
                ]}},
                "body_format_override": {
                    "json_format": {"type": "error", "error": {"type": "authentication_error", "message": "%LOCAL_REPLY_BODY%"}},
                    "content_type": "application/json",
                },
            },
            status_mapper(401, "authentication_error", "invalid_token"),
            status_mapper(403, "permission_error", "permission_denied"),
            status_mapper(404, "invalid_request_error", "unknown_url"),
            status_mapper(408, "invalid_request_error", "request_timeout"),
            status_mapper(413, "invalid_request_error", "request_too_large"),
            status_mapper(429, "rate_limit_error", "rate_limit_exceeded"),
            status_mapper(502, "upstream_error", "bad_gateway"),
            status_mapper(503, "server_error", "upstream_unavailable"),
            status_mapper(504, "server_error", "upstream_timeout"),
        ],
        "body_format": json_error_format("%LOCAL_REPLY_BODY%", "server_error", None),
    }


# The filter's variable for extra client headers providers may receive (filter/src/upstream.rs).
FORWARD_HEADERS_ENV = "AI_GATEWAY_FORWARD_CLIENT_HEADERS"
# The filter's variable saying whether anything reads its `wasm.ai_gateway.*` filter state
# (filter/src/lib.rs): "0" without an access log and without tracing, so the filter skips the
# writes (about a dozen host calls per request).
LOG_STATE_ENV = "AI_GATEWAY_LOG_STATE"


def vm_config(wasm_path: str, env_keys: list[str], env_values: dict[str, str] | None = None) -> dict:
    out: dict = {
        # Same vm_id and identical vm_config everywhere: both HTTP root contexts share one VM per
        # worker, and the singleton service shares their shared-data namespace.
        "vm_id": VM_ID,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": wasm_path}},
    }
    if env_keys:
        out["environment_variables"] = {"host_env_keys": env_keys}
    if env_values:
        out.setdefault("environment_variables", {})["key_values"] = dict(env_values)
    return out


# Key of a cluster's HTTP protocol options (and its upstream filter chain) in
# `typed_extension_protocol_options`.
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def control_plane_cluster(url: str) -> dict:
    """The gRPC cluster of the control plane's Watch service (HTTP/2 cleartext)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise RenderError(f"--control-plane expects http://host:port (gRPC, HTTP/2 cleartext), got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as e:
        raise RenderError(f"--control-plane: {e}") from e
    host = parts.hostname
    return {
        "name": CONTROL_PLANE_CLUSTER,
        "type": "STRICT_DNS" if is_ip(host) else "LOGICAL_DNS",
        "connect_timeout": "1s",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": {
            "cluster_name": CONTROL_PLANE_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
        "typed_extension_protocol_options": {
            HTTP_PROTOCOL_OPTIONS: {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    }


def client_path_filter() -> dict:
    """Copies the client's `:path` into dynamic metadata for the access log and the span."""
    return {
        "name": "envoy.filters.http.header_to_metadata",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
            "request_rules": [{
                "header": ":path",
                "on_header_present": {"metadata_namespace": METADATA_NAMESPACE, "key": CLIENT_PATH_KEY, "type": "STRING"},
                "remove": False,
            }],
        },
    }


def otlp_tracing(url: str, sample_percent: float) -> tuple[dict, dict]:
    """HCM `tracing` with Envoy's OpenTelemetry tracer exporting OTLP/HTTP to `url`, and its cluster.

    `url` is `http://host:port` (the collector's OTLP/HTTP receiver; `/v1/traces` is appended)
    or a full `http://host:port/path`. Plain HTTP only: the collector is a sidecar on loopback.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise RenderError(f"--otlp expects http://host:port[/path] (OTLP/HTTP, e.g. http://127.0.0.1:4318), got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as e:
        raise RenderError(f"--otlp: {e}") from e
    if not 0 <= sample_percent <= 100:
        raise RenderError(f"--trace-sample-percent must be within 0..100, got {sample_percent}")
    host = parts.hostname
    path = parts.path if parts.path not in ("", "/") else "/v1/traces"
    cluster = {
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS" if is_ip(host) else "LOGICAL_DNS",
        "connect_timeout": "1s",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": {
            "cluster_name": OTLP_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }
    tracing = {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "service_name": TRACE_SERVICE_NAME,
                "http_service": {
                    "http_uri": {"uri": f"http://{parts.netloc}{path}", "cluster": OTLP_CLUSTER, "timeout": "2s"},
                },
            },
        },
        "random_sampling": {"value": sample_percent},
        "operation": f"{GEN_AI_OPERATION} %FILTER_STATE(wasm.ai_gateway.model:PLAIN)%",
        # Envoy would otherwise add traceparent/tracestate to the provider request: the
        # gateway's trace ids are not the provider's business (and Bedrock signs its headers).
        "no_context_propagation": True,
        "custom_tags": [{"tag": tag, "value": value} for tag, value in SPAN_TAGS.items()],
    }
    return tracing, cluster


def watch_service(wasm_path: str, env_keys: list[str], token_env: str, node_id: str,
                  env_values: dict[str, str] | None = None) -> dict:
    """The singleton Wasm service that streams snapshots from the control plane into shared data."""
    configuration = json.dumps({"cluster": CONTROL_PLANE_CLUSTER, "token_env": token_env, "node_id": node_id},
                               separators=(",", ":"))
    return {
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": True,
            "config": {
                "name": SERVICE_ROOT_ID,
                "root_id": SERVICE_ROOT_ID,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "vm_config": vm_config(wasm_path, env_keys, env_values),
            },
        },
    }


def wasm_filter(root_id: str, configuration: str, wasm_path: str, env_keys: list[str],
                env_values: dict[str, str] | None = None) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": root_id,
                "root_id": root_id,
                # Without it, Pause from on_http_request_headers hangs the request.
                "allow_on_headers_stop_iteration": True,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "vm_config": vm_config(wasm_path, env_keys, env_values),
            },
        },
    }


# The last upstream HTTP filter of every chain: it hands the request to the connection.
UPSTREAM_CODEC = {
    "name": "envoy.filters.http.upstream_codec",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"},
}


def cluster(name: str, upstream: dict, providers: list[str], buffer_limit: int, ca_file: str | None) -> dict:
    host, port = upstream["host"], upstream["port"]
    lb_endpoint: dict = {
        "endpoint": {
            "address": {"socket_address": {"address": host, "port_value": port}},
            # auto_host_rewrite sends this as Host/:authority, so the provider sees its own name.
            "hostname": upstream.get("hostname") or (host if upstream["default_port"] else f"{host}:{port}"),
        }
    }
    if len(providers) == 1:
        # The upstream filter learns the provider of each attempt from endpoint metadata.
        lb_endpoint["metadata"] = {"filter_metadata": {METADATA_NAMESPACE: {"provider": providers[0]}}}
    out: dict = {
        "name": name,
        "type": "STRICT_DNS" if is_ip(host) else "LOGICAL_DNS",
        "connect_timeout": "10s",
        "dns_lookup_family": "V4_PREFERRED",
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [lb_endpoint]}]},
    }
    options: dict = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "common_http_protocol_options": {"idle_timeout": "60s"},
        # A route straight to this cluster is a direct route (one target, no policy): the
        # downstream filter runs its only attempt, so no upstream Wasm context is created for it
        # (ADR 0027). A cluster's own chain replaces the router's `upstream_http_filters`; routes
        # with a policy reach providers through their aggregate cluster, which has none, so
        # their attempts keep the router's chain with the upstream filter.
        "http_filters": [UPSTREAM_CODEC],
    }
    if upstream["scheme"] == "https":
        if not ca_file:
            raise RenderError(f"cluster {name} uses https but no CA bundle was found; pass --ca-file")
        # ALPN picks HTTP/2 or HTTP/1.1 per provider.
        options["auto_config"] = {"http_protocol_options": {}, "http2_protocol_options": {}}
        out["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": ca_file},
                        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}],
                    }
                },
            },
        }
    else:
        # Plain-text upstreams have no ALPN; auto_config would be rejected.
        options["explicit_http_config"] = {"http_protocol_options": {}}
    out["typed_extension_protocol_options"] = {HTTP_PROTOCOL_OPTIONS: options}
    return out


# Must match filter/src/jwt.rs (PAYLOAD_PATH) and control-plane/src/api.rs (KEY_PREFIX).
JWT_PROVIDER = "gateway_jwt"
JWT_PAYLOAD_KEY = "jwt_payload"
JWKS_CLUSTER = "ai_gateway_jwks"
VIRTUAL_KEY_PREFIX = "sk-gw-"


def jwt_authn(jwt: dict, ca_file: str | None, buffer_limit: int) -> tuple[dict, dict | None]:
    """Envoy's jwt_authn filter for `auth.jwt` (ADR 0004), and the JWKS cluster it fetches from.

    Virtual keys (`sk-gw-...`) skip verification and reach the filter; a request without any
    token also reaches the filter (which then needs a virtual key); any other token must verify
    or Envoy answers 401 before the filter, the router or an upstream sees the request.
    """
    if not isinstance(jwt, dict) or not jwt.get("issuer") or not isinstance(jwt.get("jwks"), dict):
        raise RenderError("auth.jwt needs 'issuer' and 'jwks' ({'local': '<jwks json>'} or {'remote': {'uri': ...}})")
    provider: dict = {
        "issuer": jwt["issuer"],
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-api-key"}],
        # The token is a credential for the gateway only: never forwarded.
        "forward": False,
        "payload_in_metadata": JWT_PAYLOAD_KEY,
        "clock_skew_seconds": 30,
    }
    if jwt.get("audiences"):
        provider["audiences"] = list(jwt["audiences"])
    jwks = jwt["jwks"]
    jwks_cluster = None
    if "local" in jwks:
        provider["local_jwks"] = {"inline_string": jwks["local"]}
    elif isinstance(jwks.get("remote"), dict) and jwks["remote"].get("uri"):
        uri = jwks["remote"]["uri"]
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RenderError(f"auth.jwt.jwks.remote.uri must be an http(s) URL, got {uri!r}")
        _, upstream = parse_upstream(f"{JWKS_CLUSTER}={parts.scheme}://{parts.netloc}")
        jwks_cluster = cluster(JWKS_CLUSTER, upstream, [], buffer_limit, ca_file)
        provider["remote_jwks"] = {
            "http_uri": {"uri": uri, "cluster": JWKS_CLUSTER, "timeout": "5s"},
            "cache_duration": f"{int(jwks['remote'].get('cache_seconds', 600))}s",
            # Fetch at start-up and refresh in the background, not on the first request.
            "async_fetch": {},
            "retry_policy": {"num_retries": 3},
        }
    else:
        raise RenderError("auth.jwt.jwks must be {'local': '<jwks json>'} or {'remote': {'uri': ...}}")
    skip_virtual_keys = [
        {"match": {"prefix": "/", "headers": [{"name": "authorization", "string_match": {"prefix": f"Bearer {VIRTUAL_KEY_PREFIX}", "ignore_case": True}}]}},
        {"match": {"prefix": "/", "headers": [
            {"name": "authorization", "present_match": False},
            {"name": "x-api-key", "string_match": {"prefix": VIRTUAL_KEY_PREFIX}},
        ]}},
    ]
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {JWT_PROVIDER: provider},
            "rules": [
                *skip_virtual_keys,
                {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": JWT_PROVIDER},
                    {"allow_missing": {}},
                ]}}},
            ],
        },
    }, jwks_cluster


# Must match gateway_core::config::ROUTE_CLUSTER_PREFIX.
ROUTE_CLUSTER_PREFIX = "ai_gateway_route_"
# gateway_core::config::RoutePolicy defaults.
DEFAULT_RETRIES = 2
DEFAULT_RETRY_ON = ("429", "5xx", "connect_failure", "reset")
DEFAULT_EJECT_AFTER = 5
DEFAULT_EJECTION_MS = 30_000
RETRY_ON_ENVOY = {
    "429": "retriable-status-codes",
    "5xx": "5xx",
    "connect_failure": "connect-failure",
    "reset": "reset",
    # Envoy retries a fired per-try timeout under gateway-error (which also covers 502/503/504).
    "timeout": "gateway-error",
}


def ms(value: int) -> str:
    return f"{value / 1000:.3f}s"


def policy_routes(config: dict, by_cluster: dict[str, list[str]]) -> list[tuple[dict, list[str], dict]]:
    """(route, member clusters in fallback order, policy) for every route with a policy."""
    providers = {p.get("name"): p for p in config.get("providers") or []}
    out = []
    for route in config.get("routes") or []:
        policy = route.get("policy")
        if policy is None:
            continue
        if not isinstance(policy, dict):
            raise RenderError(f"route {route.get('model')!r}: policy must be an object")
        members: list[str] = []
        for target in route.get("targets") or []:
            provider = providers.get(target.get("provider"))
            if provider is None:
                raise RenderError(f"route {route.get('model')!r} targets unknown provider {target.get('provider')!r}")
            cluster_name = provider.get("cluster", "")
            # The upstream filter learns an attempt's provider from the member cluster's endpoint
            # metadata, which is only set when the cluster serves one provider.
            if len(by_cluster.get(cluster_name, [])) != 1:
                raise RenderError(f"route {route.get('model')!r}: cluster {cluster_name} serves several providers; "
                                  "a route with a policy needs one provider per cluster")
            if cluster_name in members:
                raise RenderError(f"route {route.get('model')!r}: two targets reach cluster {cluster_name}")
            members.append(cluster_name)
        for cond in policy.get("retry_on", DEFAULT_RETRY_ON):
            if cond not in RETRY_ON_ENVOY:
                raise RenderError(f"route {route.get('model')!r}: unknown retry_on {cond!r}")
        out.append((route, members, policy))
    return out


def aggregate_cluster(name: str, members: list[str]) -> dict:
    """Members in order are priorities 0..n of one load balancer: the first healthy one serves,
    a retry with previous_priorities moves on, an ejected member's traffic spills to the next."""
    return {
        "name": name,
        "connect_timeout": "10s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig", "clusters": members},
        },
    }


def outlier_detection(eject_after: int, ejection_ms: int) -> dict:
    """Consecutive failures eject the provider's endpoint for exactly `ejection_ms` (the maximum
    equals the base, so repeated ejections do not grow); 100 % because a provider cluster has one
    endpoint. Ejections end on the detector's interval tick, hence the short interval."""
    return {
        "consecutive_5xx": eject_after,
        "consecutive_gateway_failure": eject_after,
        "interval": ms(max(100, min(1000, ejection_ms // 4))),
        "base_ejection_time": ms(ejection_ms),
        "max_ejection_time": ms(ejection_ms),
        "max_ejection_percent": 100,
        "enforcing_consecutive_5xx": 100,
        "enforcing_consecutive_gateway_failure": 100,
        "enforcing_success_rate": 0,
    }


def retry_policy(policy: dict) -> dict:
    conditions = policy.get("retry_on", DEFAULT_RETRY_ON)
    out: dict = {
        "retry_on": ",".join(sorted({RETRY_ON_ENVOY[c] for c in conditions})) or "reset",
        "num_retries": int(policy.get("retries", DEFAULT_RETRIES)),
        # Each retry leaves the priorities (targets) already tried: ordered fallback.
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1,
            },
        },
    }
    if "429" in conditions:
        out["retriable_status_codes"] = [429]
    if policy.get("per_try_timeout_ms"):
        out["per_try_timeout"] = ms(int(policy["per_try_timeout_ms"]))
    base, top = policy.get("backoff_base_ms"), policy.get("backoff_max_ms")
    if base or top:
        back_off: dict = {"base_interval": ms(int(base or min(25, int(top or 0))))}
        if top:
            back_off["max_interval"] = ms(int(top))
        out["retry_back_off"] = back_off
    return out


def render(
    config: dict,
    wasm_path: str,
    port: int,
    admin_port: int,
    upstreams: dict[str, dict],
    ca_file: str | None = None,
    access_log: str | None = None,
    route_timeout: str = ROUTE_TIMEOUT,
    control_plane: str | None = None,
    watch_token_env: str = DEFAULT_WATCH_TOKEN_ENV,
    node_id: str = "ai-gateway",
    access_log_format: str = "json",
    otlp: str | None = None,
    trace_sample_percent: float = 100.0,
    forward_client_headers: str | None = None,
    limits: dict | None = None,
) -> dict:
    """The bootstrap as a dict. Raises RenderError on inconsistent inputs.

    With `control_plane`, the config is only the cold-start fallback: the singleton service
    watches the control plane and its snapshots replace it, so clusters that no bootstrap
    provider uses are allowed (pushed providers reach them).

    `forward_client_headers` (comma-separated names or `prefix*`) lets those client headers
    through to providers besides the built-in allowlist (docs/architecture.md, "Headers sent to
    providers"); the test stacks use it for their `x-test-id`/`x-replay-*` hooks.

    `limits` is [client_limits]'s result (its defaults when None): timeouts, header and
    connection bounds for slow and abusive clients.
    """
    limits = limits or client_limits()
    providers = config.get("providers")
    if not isinstance(providers, list):
        raise RenderError("gateway config has no 'providers' list")
    by_cluster: dict[str, list[str]] = {}
    env_keys: list[str] = []
    for p in providers:
        by_cluster.setdefault(p.get("cluster", ""), []).append(p.get("name", ""))
        credential = p.get("credential") or {}
        # {"env": NAME}, or for Bedrock {"aws": {"access_key_id_env", "secret_access_key_env", "session_token_env"}}.
        aws = credential.get("aws") or {}
        for env in (credential.get("env"), aws.get("access_key_id_env"), aws.get("secret_access_key_env"), aws.get("session_token_env")):
            if env and env not in env_keys:
                env_keys.append(env)
    missing = sorted(c for c in by_cluster if c not in upstreams)
    if missing:
        raise RenderError(f"no --cluster NAME=URL given for cluster(s) used by the config: {', '.join(missing)}")
    unused = sorted(c for c in upstreams if c not in by_cluster)
    if unused and not control_plane:
        raise RenderError(f"--cluster given for cluster(s) no provider uses: {', '.join(unused)}")
    if CONTROL_PLANE_CLUSTER in upstreams:
        raise RenderError(f"cluster name {CONTROL_PLANE_CLUSTER} is reserved for the control plane")
    if OTLP_CLUSTER in upstreams:
        raise RenderError(f"cluster name {OTLP_CLUSTER} is reserved for the trace exporter")
    if access_log_format not in ("json", "text"):
        raise RenderError(f"access log format must be json or text, got {access_log_format!r}")
    if control_plane:
        if not watch_token_env.replace("_", "").isalnum():
            raise RenderError(f"--watch-token-env must be an environment variable name, got {watch_token_env!r}")
        if watch_token_env not in env_keys:
            env_keys.append(watch_token_env)

    policies = policy_routes(config, by_cluster)
    for _, members, _ in policies:
        missing_members = [m for m in members if m not in upstreams]
        if missing_members:
            raise RenderError(f"no --cluster NAME=URL given for cluster(s): {', '.join(missing_members)}")
    # Health is a property of the provider's cluster; routes that disagree get the strictest.
    health: dict[str, tuple[int, int]] = {}
    for _, members, policy in policies:
        eject_after = int(policy.get("eject_after_failures", DEFAULT_EJECT_AFTER))
        ejection_ms = int(policy.get("ejection_ms", DEFAULT_EJECTION_MS))
        for m in members:
            prev = health.get(m)
            health[m] = (eject_after, ejection_ms) if prev is None else (min(prev[0], eject_after), max(prev[1], ejection_ms))

    max_request_bytes = int((config.get("limits") or {}).get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES))
    buffer_limit = max_request_bytes + BUFFER_MARGIN
    configuration = json.dumps(config, separators=(",", ":"))
    absolute_wasm = os.path.abspath(wasm_path)
    env_values: dict[str, str] = {LOG_STATE_ENV: "1" if (access_log or otlp) else "0"}
    if forward_client_headers:
        names = [n.strip() for n in forward_client_headers.split(",") if n.strip()]
        bad = [n for n in names if not all(c.isalnum() or c in "-_*" for c in n)]
        if bad:
            raise RenderError(f"--forward-client-headers: not header names: {', '.join(bad)}")
        env_values[FORWARD_HEADERS_ENV] = ",".join(names)

    jwt_filters: list[dict] = []
    jwks_cluster = None
    jwt = (config.get("auth") or {}).get("jwt")
    if jwt is not None:
        if JWKS_CLUSTER in upstreams:
            raise RenderError(f"cluster name {JWKS_CLUSTER} is reserved for the JWKS endpoint")
        jwt_filter, jwks_cluster = jwt_authn(jwt, ca_file, buffer_limit)
        jwt_filters.append(jwt_filter)

    hcm: dict = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ai_gateway",
        "codec_type": "AUTO",
        # Without an upgrade config Envoy answers any `Upgrade: websocket` request with its own
        # bare 403 before a filter runs. Codex CLI tries a WebSocket on /v1/responses first and
        # falls back to HTTP at once only on 426, so upgrades are let in and the downstream
        # filter refuses every one of them with 426 in the client's error shape: nothing is
        # ever proxied as a WebSocket.
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "route_config": {
            "name": "ai_gateway",
            "virtual_hosts": [
                {
                    "name": "ai_gateway",
                    "domains": ["*"],
                    "routes": [
                        *[
                            {
                                "match": {"prefix": "/", "headers": [{"name": CLUSTER_HEADER,
                                                                      "string_match": {"exact": ROUTE_CLUSTER_PREFIX + route["model"]}}]},
                                "route": {
                                    "cluster": ROUTE_CLUSTER_PREFIX + route["model"],
                                    "timeout": ms(int(policy["timeout_ms"])) if policy.get("timeout_ms") else route_timeout,
                                    "auto_host_rewrite": True,
                                    "retry_policy": retry_policy(policy),
                                },
                                "request_body_buffer_limit": buffer_limit,
                            }
                            for route, _, policy in policies
                        ],
                        {
                            "match": {"prefix": "/", "headers": [{"name": CLUSTER_HEADER, "present_match": True}]},
                            "route": {
                                "cluster_header": CLUSTER_HEADER,
                                "timeout": route_timeout,
                                "auto_host_rewrite": True,
                            },
                            # The routing decision is the gateway's own, and Envoy's
                            # x-forwarded-proto (which the downstream filter must leave for route
                            # matching) tells the provider nothing: neither is sent.
                            "request_headers_to_remove": [CLUSTER_HEADER, "x-forwarded-proto"],
                            # Bodies are buffered whole (for the filter, and for retries).
                            "request_body_buffer_limit": buffer_limit,
                        },
                        {
                            # The filter answers every unknown path itself; this only catches a
                            # request that reached the router without a routing decision.
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 404, "body": {"inline_string": "Invalid URL"}},
                        },
                    ],
                }
            ],
        },
        "http_filters": [
            # First, so even jwt_authn's 401s are logged with the client's path; only when an
            # access log or a span reads it (one filter less per request otherwise).
            *([client_path_filter()] if (access_log or otlp) else []),
            *jwt_filters,
            wasm_filter(DOWNSTREAM_ROOT_ID, configuration, absolute_wasm, env_keys, env_values),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                    "suppress_envoy_headers": True,
                    "upstream_http_filters": [
                        wasm_filter(UPSTREAM_ROOT_ID, configuration, absolute_wasm, env_keys, env_values),
                        UPSTREAM_CODEC,
                    ],
                },
            },
        ],
        "local_reply_config": local_reply_config(),
    }
    apply_client_limits(hcm, limits)
    if access_log:
        # One line per attempt as well (retries and fallbacks), from the router's upstream log.
        router = hcm["http_filters"][-1]["typed_config"]
        router["upstream_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": {"json_format": UPSTREAM_LOG_FIELDS},
                },
            }
        ]
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": {"json_format": REQUEST_LOG_FIELDS} if access_log_format == "json" else {
                        "text_format_source": {"inline_string": REQUEST_LOG_TEXT}
                    },
                },
            }
        ]

    bootstrap: dict = {
        "node": {"id": node_id, "cluster": "ai-gateway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "stats_config": {
            # Metric names are `base;label=value;...` (filter/src/metrics.rs): each regex removes
            # one `;label=value` part from the name and keeps the value as a Prometheus label.
            "stats_tags": [{"tag_name": label, "regex": f"(;{label}=([^;]*))"} for label in METRIC_LABELS]
        },
        "static_resources": {
            "listeners": [
                {
                    "name": LISTENER_NAME,
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "per_connection_buffer_limit_bytes": buffer_limit,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                cluster(name, upstreams[name], by_cluster.get(name, []), buffer_limit, ca_file) for name in sorted(upstreams)
            ] + [aggregate_cluster(ROUTE_CLUSTER_PREFIX + route["model"], members) for route, members, _ in policies],
        },
        "overload_manager": overload_manager(limits),
        "memory_allocator_manager": {
            "bytes_to_release": str(limits["release_free_memory_mb"] * 1024 * 1024),
            "memory_release_interval": "1s",
        },
        # The listener's own connection limit is a runtime key (Envoy has no listener field for it).
        "layered_runtime": {"layers": [
            {"name": "static", "static_layer": {
                f"envoy.resource_limits.listener.{LISTENER_NAME}.connection_limit": limits["max_connections"]}},
            {"name": "admin", "admin_layer": {}},
        ]},
    }
    for c in bootstrap["static_resources"]["clusters"]:
        if c["name"] in health:
            c["outlier_detection"] = outlier_detection(*health[c["name"]])
    if jwks_cluster:
        bootstrap["static_resources"]["clusters"].append(jwks_cluster)
    if otlp:
        tracing, otlp_cluster = otlp_tracing(otlp, trace_sample_percent)
        hcm["tracing"] = tracing
        bootstrap["static_resources"]["clusters"].append(otlp_cluster)
    if control_plane:
        bootstrap["static_resources"]["clusters"].append(control_plane_cluster(control_plane))
        bootstrap["bootstrap_extensions"] = [watch_service(absolute_wasm, env_keys, watch_token_env, node_id, env_values)]
    return bootstrap


def parse_duration(name: str, value: str) -> str:
    """`10s`, `1.5s` or `250ms` as Envoy's `<seconds>s`; RenderError otherwise."""
    text = str(value).strip()
    try:
        seconds = float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1]) if text.endswith("s") else float("nan")
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise RenderError(f"{name} must be a positive duration such as 10s or 500ms, got {value!r}")
    return f"{seconds:.3f}s"


def client_limits(request_headers_timeout: str = REQUEST_HEADERS_TIMEOUT, request_timeout: str = REQUEST_TIMEOUT,
                  stream_idle_timeout: str = STREAM_IDLE_TIMEOUT, idle_timeout: str = CONNECTION_IDLE_TIMEOUT,
                  max_request_headers_kb: int = MAX_REQUEST_HEADERS_KB, max_connections: int = MAX_CONNECTIONS,
                  max_heap_mb: int | None = None,
                  release_free_memory_mb: int = RELEASE_FREE_MEMORY_MB_PER_S) -> dict:
    """The limits for slow and abusive clients, validated (docs/robustness.md, "Limits")."""
    if not 1 <= int(max_request_headers_kb) <= 8192:
        raise RenderError(f"--max-request-headers-kb must be within 1..8192, got {max_request_headers_kb}")
    if int(max_connections) < 1:
        raise RenderError(f"--max-connections must be at least 1, got {max_connections}")
    if max_heap_mb is not None and int(max_heap_mb) < 64:
        raise RenderError(f"--max-heap-mb must be at least 64, got {max_heap_mb}")
    if int(release_free_memory_mb) < 0:
        raise RenderError(f"--release-free-memory-mb must be 0 or more, got {release_free_memory_mb}")
    return {
        "request_headers_timeout": parse_duration("--request-headers-timeout", request_headers_timeout),
        "request_timeout": parse_duration("--request-timeout", request_timeout),
        "stream_idle_timeout": parse_duration("--stream-idle-timeout", stream_idle_timeout),
        "idle_timeout": parse_duration("--idle-timeout", idle_timeout),
        "max_request_headers_kb": int(max_request_headers_kb),
        "max_connections": int(max_connections),
        "max_heap_mb": None if max_heap_mb is None else int(max_heap_mb),
        "release_free_memory_mb": int(release_free_memory_mb),
    }


def apply_client_limits(hcm: dict, limits: dict) -> None:
    """Timeouts and header bounds on the gateway's HTTP connection manager."""
    hcm["request_headers_timeout"] = limits["request_headers_timeout"]
    hcm["request_timeout"] = limits["request_timeout"]
    hcm["stream_idle_timeout"] = limits["stream_idle_timeout"]
    hcm["max_request_headers_kb"] = limits["max_request_headers_kb"]
    hcm["common_http_protocol_options"] = {
        "idle_timeout": limits["idle_timeout"],
        "max_headers_count": MAX_REQUEST_HEADERS_COUNT,
    }
    hcm["http2_protocol_options"] = {
        "max_concurrent_streams": H2_MAX_CONCURRENT_STREAMS,
        "initial_stream_window_size": H2_INITIAL_STREAM_WINDOW,
        "initial_connection_window_size": H2_INITIAL_CONNECTION_WINDOW,
    }


def overload_manager(limits: dict) -> dict:
    """A cap on all downstream connections and, with a heap size, heap-based actions."""
    out: dict = {
        "refresh_interval": "0.250s",
        "resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": limits["max_connections"],
            },
        }],
        "actions": [],
    }
    if limits["max_heap_mb"] is not None:
        out["resource_monitors"].append({
            "name": "envoy.resource_monitors.fixed_heap",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                "max_heap_size_bytes": limits["max_heap_mb"] * 1024 * 1024,
            },
        })
        for action, threshold in (("envoy.overload_actions.shrink_heap", SHRINK_HEAP_AT),
                                  ("envoy.overload_actions.stop_accepting_requests", STOP_ACCEPTING_AT)):
            out["actions"].append({"name": action, "triggers": [
                {"name": "envoy.resource_monitors.fixed_heap", "threshold": {"value": threshold}}]})
    return out


def default_ca_file() -> str | None:
    return next((p for p in CA_CANDIDATES if os.path.exists(p)), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run several Envoys on one machine with distinct `--base-id N` each.",
    )
    parser.add_argument("--config", required=True, help="gateway config JSON file (schema: gateway_core::GatewayConfig)")
    parser.add_argument("--wasm", required=True, help="path to ai_gateway_filter.wasm")
    parser.add_argument("--port", type=int, default=10000, help="listener port on 127.0.0.1 (default 10000)")
    parser.add_argument("--admin-port", type=int, default=9901, help="admin port on 127.0.0.1 (default 9901)")
    parser.add_argument(
        "--cluster",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="upstream of a cluster named in the config, scheme://host[:port]; repeat per cluster",
    )
    parser.add_argument("--ca-file", default=None, help="CA bundle for https upstreams (default: system bundle)")
    parser.add_argument("--access-log", default=None, help="write an access log to this path (e.g. /dev/stdout)")
    parser.add_argument("--access-log-format", choices=("json", "text"), default="json",
                        help="per-request access log format (default json, which terraform's Logs Insights queries read); "
                             "the per-attempt log is always JSON")
    parser.add_argument("--otlp", default=None, metavar="URL",
                        help="export a trace span per request (OTLP/HTTP) to this collector, e.g. http://127.0.0.1:4318")
    parser.add_argument("--trace-sample-percent", type=float, default=100.0,
                        help="percent of requests traced with --otlp (default 100)")
    parser.add_argument("--route-timeout", default=ROUTE_TIMEOUT,
                        help=f"route timeout, whole response included (default {ROUTE_TIMEOUT}); e.g. 2s in tests")
    parser.add_argument("--control-plane", default=None, metavar="URL",
                        help="gRPC address of the control plane (http://127.0.0.1:8091): adds the watch service; "
                             "--config becomes the cold-start fallback")
    parser.add_argument("--watch-token-env", default=DEFAULT_WATCH_TOKEN_ENV,
                        help=f"environment variable of Envoy holding the watch token (default {DEFAULT_WATCH_TOKEN_ENV})")
    parser.add_argument("--forward-client-headers", default=None, metavar="NAMES",
                        help="extra client headers providers may receive, comma-separated names or prefix* "
                             "(default: only the built-in allowlist; docs/architecture.md)")
    limits = parser.add_argument_group("limits for slow and abusive clients (docs/robustness.md, Limits)")
    limits.add_argument("--request-headers-timeout", default=REQUEST_HEADERS_TIMEOUT,
                        help=f"first to last request header byte (default {REQUEST_HEADERS_TIMEOUT})")
    limits.add_argument("--request-timeout", default=REQUEST_TIMEOUT,
                        help=f"the whole request, body included; never the response (default {REQUEST_TIMEOUT})")
    limits.add_argument("--stream-idle-timeout", default=STREAM_IDLE_TIMEOUT,
                        help=f"no byte either way on a request (default {STREAM_IDLE_TIMEOUT})")
    limits.add_argument("--idle-timeout", default=CONNECTION_IDLE_TIMEOUT,
                        help=f"a connection without requests (default {CONNECTION_IDLE_TIMEOUT})")
    limits.add_argument("--max-request-headers-kb", type=int, default=MAX_REQUEST_HEADERS_KB,
                        help=f"request headers size, KiB (default {MAX_REQUEST_HEADERS_KB}; larger gets 431)")
    limits.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS,
                        help=f"downstream connections, per listener and in all (default {MAX_CONNECTIONS})")
    limits.add_argument("--max-heap-mb", type=int, default=None,
                        help=f"Envoy's heap budget: free pages are returned above {SHRINK_HEAP_AT:.0%} of it, new "
                             f"requests refused above {STOP_ACCEPTING_AT:.0%} (default: no heap actions)")
    limits.add_argument("--release-free-memory-mb", type=int, default=RELEASE_FREE_MEMORY_MB_PER_S,
                        help=f"free heap returned to the OS per second, MiB (default {RELEASE_FREE_MEMORY_MB_PER_S}; 0: never)")
    parser.add_argument("--node-id", default="ai-gateway", help="Envoy node id, also sent to the control plane")
    parser.add_argument("--out", default="-", help="output file (default stdout)")
    args = parser.parse_args(argv)

    try:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
        if not isinstance(config, dict):
            raise RenderError("gateway config must be a JSON object")
        upstreams: dict[str, dict] = {}
        for spec in args.cluster:
            name, upstream = parse_upstream(spec)
            if name in upstreams:
                raise RenderError(f"--cluster {name} given twice")
            upstreams[name] = upstream
        if not os.path.exists(args.wasm):
            raise RenderError(f"wasm module not found: {args.wasm} (build: cargo build -p ai-gateway-filter --target wasm32-wasip1 --release)")
        bootstrap = render(config, args.wasm, args.port, args.admin_port, upstreams, args.ca_file or default_ca_file(), args.access_log,
                           args.route_timeout, control_plane=args.control_plane,
                           watch_token_env=args.watch_token_env, node_id=args.node_id,
                           access_log_format=args.access_log_format, otlp=args.otlp,
                           trace_sample_percent=args.trace_sample_percent,
                           forward_client_headers=args.forward_client_headers,
                           limits=client_limits(args.request_headers_timeout, args.request_timeout,
                                                args.stream_idle_timeout, args.idle_timeout,
                                                args.max_request_headers_kb, args.max_connections, args.max_heap_mb,
                                                args.release_free_memory_mb))
    except (OSError, json.JSONDecodeError, RenderError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 2
    text = json.dumps(bootstrap, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
