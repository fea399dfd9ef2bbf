"""deploy/otel-collector.yaml, the ADOT sidecar's configuration, against what it must agree with:
the task definition that runs it (terraform/modules/compute), the Envoy bootstrap the image bakes
(ops/container_bootstrap.py, envoy/render.py), the filter's metric names, and the namespace,
metric names and dimensions the dashboards and IAM policy use (terraform/modules/observability)."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from conftest import ROOT
from test_terraform import a, hcl_unescape, load, locals_of

COLLECTOR = ROOT / "deploy" / "otel-collector.yaml"


def collector_config() -> dict:
    with open(COLLECTOR, encoding="utf-8") as f:
        return yaml.safe_load(f)


def emf_dimensions_of(metric: str) -> list[list[str]]:
    """Dimension sets awsemf publishes `metric` with ([] when no declaration selects it)."""
    out: list[list[str]] = []
    for decl in collector_config()["exporters"]["awsemf"]["metric_declarations"]:
        if any(re.search(sel, metric) for sel in decl["metric_name_selectors"]):
            out.extend(decl["dimensions"])
    return out


def component_type(name: str) -> str:
    """`otlp/envoy` -> `otlp` (the collector's type/name convention)."""
    return name.split("/", 1)[0]


def test_yaml_parses_and_every_pipeline_uses_defined_components():
    cfg = collector_config()
    service = cfg["service"]
    pipelines = service["pipelines"]
    assert set(pipelines) == {"metrics", "traces"}
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in pipelines.items():
        assert pipeline.get("receivers") and pipeline.get("exporters"), name
        for kind in used:
            for component in pipeline.get(kind, []):
                assert component in (cfg.get(kind) or {}), f"pipeline {name} uses undefined {kind[:-1]} {component}"
                used[kind].add(component)
        # memory_limiter must come first to protect the rest of the pipeline; batch last.
        procs = pipeline.get("processors", [])
        assert procs[0] == "memory_limiter" and procs[-1] == "batch", (name, procs)
    for kind, names in used.items():
        assert set(cfg[kind]) == names, f"{kind} defined but unused: {set(cfg[kind]) - names}"
    for ext in service.get("extensions", []):
        assert ext in cfg["extensions"]
    assert [component_type(e) for e in pipelines["traces"]["exporters"]] == ["awsxray"]
    assert [component_type(e) for e in pipelines["metrics"]["exporters"]] == ["awsemf"]
    assert [component_type(r) for r in pipelines["traces"]["receivers"]] == ["otlp"]
    assert [component_type(r) for r in pipelines["metrics"]["receivers"]] == ["prometheus"]


def test_every_listener_is_on_loopback():
    cfg = collector_config()
    endpoints = [p["endpoint"] for p in cfg["receivers"]["otlp"]["protocols"].values()]
    endpoints += [e["endpoint"] for e in cfg["extensions"].values() if "endpoint" in e]
    assert endpoints and all(e.startswith("127.0.0.1:") for e in endpoints), endpoints


def test_scrape_target_is_envoys_admin_port():
    sys.path.insert(0, str(ROOT / "ops"))
    import container_bootstrap as cb  # noqa: E402
    scrape = collector_config()["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert len(scrape) == 1
    job = scrape[0]
    assert job["metrics_path"] == "/stats/prometheus"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    admin_port = locals_of("modules/compute/main.tf")["admin_port"]
    assert targets == [f"127.0.0.1:{admin_port}"]
    assert admin_port == cb.ADMIN_PORT
    # The image's bootstrap really serves admin there (loopback: the sidecar shares the netns).
    import json
    doc = json.loads(cb.bootstrap())
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": admin_port}


def test_envoy_exports_traces_to_the_otlp_receiver():
    sys.path.insert(0, str(ROOT / "ops"))
    sys.path.insert(0, str(ROOT / "envoy"))
    import container_bootstrap as cb  # noqa: E402
    import render  # noqa: E402
    import json
    doc = json.loads(cb.bootstrap())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    tracer = hcm["tracing"]["provider"]["typed_config"]
    uri = urlsplit(tracer["http_service"]["http_uri"]["uri"])
    assert tracer["service_name"] == "ai-gateway" and uri.path == "/v1/traces"
    http = collector_config()["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert f"{uri.hostname}:{uri.port}" == http
    cluster = next(c for c in doc["static_resources"]["clusters"] if c["name"] == render.OTLP_CLUSTER)
    addr = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert f"{addr['address']}:{addr['port_value']}" == http
    # The span attributes X-Ray indexes are ones Envoy puts on the span.
    tags = {t["tag"] for t in hcm["tracing"]["custom_tags"]} | {"http.status_code"}
    assert set(collector_config()["exporters"]["awsxray"]["indexed_attributes"]) <= tags


def test_task_definition_passes_this_file_and_its_environment():
    text = (ROOT / "terraform/modules/compute/main.tf").read_text(encoding="utf-8")
    loc = locals_of("modules/compute/main.tf")
    assert hcl_unescape(loc["collector_config"]) == '${file("${path.module}/../../../deploy/otel-collector.yaml")}'
    module_dir = ROOT / "terraform/modules/compute"
    assert (module_dir / "../../../deploy/otel-collector.yaml").resolve() == COLLECTOR.resolve()
    block = text[text.index('name                   = "otel-collector"'):text.index('resource "aws_ecs_task_definition" "control_plane"')]
    assert "--config=env:AOT_CONFIG_CONTENT" in block and "local.collector_config" in block
    # Every ${env:X} the file reads is set on the container.
    wanted = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", COLLECTOR.read_text(encoding="utf-8")))
    assert wanted == {"AWS_REGION", "AI_GATEWAY_METRICS_LOG_GROUP"}
    assert set(loc["collector_env"]) == wanted
    assert "local.collector_env" in block
    # The EMF log group is the one terraform creates, and the one the task role may write to.
    assert "metrics_log_group" in loc["collector_env"]["AI_GATEWAY_METRICS_LOG_GROUP"]
    root = load("main.tf")
    compute = next(m["compute"] for m in root["module"] if "compute" in m)
    assert a(compute["metrics_log_group"]) == "${module.observability.metrics_log_group_name}"
    obs = (ROOT / "terraform/modules/observability/main.tf").read_text(encoding="utf-8")
    assert '"metrics"' in obs[obs.index('resource "aws_cloudwatch_log_group" "this"'):obs.index('resource "aws_cloudwatch_log_group" "waf"')]
    emf_stmt = text[text.index('sid       = "EmfLogs"'):]
    assert "log-group:${var.metrics_log_group}" in emf_stmt[:emf_stmt.index("]\n  }")]


def test_emf_namespace_metrics_and_dimensions_match_dashboards_and_alarms():
    cfg = collector_config()
    emf = cfg["exporters"]["awsemf"]
    obs = locals_of("modules/observability/main.tf")
    assert emf["namespace"] == obs["namespace"]
    compute_text = (ROOT / "terraform/modules/compute/main.tf").read_text(encoding="utf-8")
    assert f'values   = ["{emf["namespace"]}"]' in compute_text  # PutMetricData condition
    keep = cfg["receivers"]["prometheus"]["config"]["scrape_configs"][0]["metric_relabel_configs"][0]["regex"]
    filter_src = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "filter/src").rglob("*.rs"))
    # Every metric the dashboard or an alarm reads from the namespace: defined by the filter, kept
    # by the scrape, selected by a declaration, with the dimensions its SEARCH expression names.
    obs_text = hcl_unescape((ROOT / "terraform/modules/observability/main.tf").read_text(encoding="utf-8"))
    searches = re.findall(r"SEARCH\('\{\$\{local\.namespace\},([a-z,]+)\} MetricName=\"\$\{local\.metrics\.(\w+)\}\"", obs_text)
    assert len(searches) >= 5, searches
    for dims, key in searches:
        metric = obs["metrics"][key]
        assert f'"{metric}"' in filter_src, f"{metric} is not a metric the filter defines"
        assert re.fullmatch(keep, metric), f"the scrape drops {metric}"
        assert dims.split(",") in emf_dimensions_of(metric), f"{metric} is not published with dimensions {dims}"
    for metric in obs["metrics"].values():
        assert emf_dimensions_of(metric), f"no EMF declaration selects {metric}"
    alarm_namespaces = set(re.findall(r'namespace\s*=\s*"([^"]+)"', obs_text))
    assert alarm_namespaces <= {"AWS/ApplicationELB", emf["namespace"]}, alarm_namespaces
    # The dimensions are the labels render.py extracts from the filter's metric names.
    sys.path.insert(0, str(ROOT / "envoy"))
    import render  # noqa: E402
    for decl in emf["metric_declarations"]:
        for dims in decl["dimensions"]:
            assert set(dims) <= set(render.METRIC_LABELS), dims
