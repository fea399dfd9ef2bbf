#!/usr/bin/env python3
"""Renders the Envoy bootstrap baked into the Envoy image (Dockerfile.envoy runs this script).

The container differs from a local run in three ways only, all set here so that the file the
image ships is the file the tests validate: the listener binds 0.0.0.0 (the ALB reaches the task
over its ENI), the Wasm module and CA bundle live at image paths, and the control plane is
reached by its ECS Service Connect name. The admin interface stays on 127.0.0.1: only the
container's own health check uses it.

    python3 ops/container_bootstrap.py --out envoy.json    # what the image build runs

Rendered at image build time rather than committed, so the image always carries what the
checked-out envoy/render.py produces; tests/ops runs the same command and validates the result.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402  (envoy/render.py, standard library only)

# Shared with terraform/modules/compute (the test in tests/ops checks they agree).
LISTENER_PORT = 10000
ADMIN_PORT = 9901
IMAGE_WASM = "/etc/envoy/ai_gateway_filter.wasm"
IMAGE_BOOTSTRAP = "/etc/envoy/envoy.json"
# Ubuntu's bundle, present in the official Envoy image.
IMAGE_CA = "/etc/ssl/certs/ca-certificates.crt"
CONTROL_PLANE = "http://control-plane.ai-gateway.internal:8091"
GATEWAY_CONFIG = ROOT / "ops" / "envoy" / "gateway.json"
UPSTREAMS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
# The ADOT sidecar's OTLP/HTTP receiver (deploy/otel-collector.yaml), and the share of requests
# traced: X-Ray bills per trace, and the ALB's health probes would otherwise be most of them.
OTLP_ENDPOINT = "http://127.0.0.1:4318"
TRACE_SAMPLE_PERCENT = 10.0
# Envoy's share of the task's 2 GiB (terraform/modules/compute, aws_ecs_task_definition.envoy; the
# ADOT sidecar takes the rest): the overload manager returns free heap to the OS above 90 % of it
# and refuses new requests above 98 % instead of letting the task be OOM-killed.
TASK_MEMORY_MB = 2048
ENVOY_HEAP_MB = 1536


def bootstrap() -> str:
    """The container bootstrap as JSON text (deterministic)."""
    config = json.loads(GATEWAY_CONFIG.read_text(encoding="utf-8"))
    upstreams = dict(render.parse_upstream(f"{k}={v}") for k, v in UPSTREAMS.items())
    doc = render.render(config, IMAGE_WASM, LISTENER_PORT, ADMIN_PORT, upstreams, IMAGE_CA, "/dev/stdout",
                        control_plane=CONTROL_PLANE, node_id="ai-gateway-ecs",
                        access_log_format="json", otlp=OTLP_ENDPOINT, trace_sample_percent=TRACE_SAMPLE_PERCENT,
                        limits=render.client_limits(max_heap_mb=ENVOY_HEAP_MB))
    for listener in doc["static_resources"]["listeners"]:
        # The task's ENI: the ALB reaches Envoy there; admin stays on loopback.
        listener["address"]["socket_address"]["address"] = "0.0.0.0"  # noqa: S104  # the container's listener
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="-", help="output file (default stdout)")
    args = p.parse_args()
    try:
        text = bootstrap()
    except (OSError, ValueError, render.RenderError) as e:
        print(f"container_bootstrap.py: {e}", file=sys.stderr)
        return 2
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
