"""envoy/render.py for routes with a policy (ADR 0003): what the bootstrap contains, and the
configurations it refuses. No Envoy here; test_resilience.py runs the result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "envoy"))
import render  # noqa: E402

UPSTREAMS = {name: render.parse_upstream(f"{name}=http://127.0.0.1:{port}")[1]
             for name, port in (("c_a", 1001), ("c_b", 1002), ("c_c", 1003))}


def config(routes: list[dict], shared: bool = False) -> dict:
    return {
        "providers": [
            {"name": "a", "kind": "openai", "cluster": "c_a"},
            {"name": "b", "kind": "anthropic", "cluster": "c_b"},
            {"name": "c", "kind": "anthropic", "cluster": "c_a" if shared else "c_c"},
        ],
        "routes": routes,
    }


def bootstrap(cfg: dict, upstreams: dict | None = None) -> dict:
    return render.render(cfg, "/nonexistent.wasm", 10000, 9901, upstreams or UPSTREAMS)


def routes_of(boot: dict) -> list[dict]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def clusters_of(boot: dict) -> dict[str, dict]:
    return {c["name"]: c for c in boot["static_resources"]["clusters"]}


def test_policy_route_becomes_aggregate_cluster_with_retry_policy_and_ejection():
    policy = {"retries": 3, "retry_on": ["429", "reset", "timeout"], "per_try_timeout_ms": 700, "timeout_ms": 2500,
              "backoff_base_ms": 20, "backoff_max_ms": 80, "eject_after_failures": 4, "ejection_ms": 2000}
    boot = bootstrap(config([{"model": "m", "targets": [{"provider": "b", "model": "x"}, {"provider": "a", "model": "y"}],
                              "policy": policy}]))
    clusters = clusters_of(boot)
    agg = clusters["ai_gateway_route_m"]
    assert agg["cluster_type"]["typed_config"]["clusters"] == ["c_b", "c_a"]  # listed order = priority
    route = routes_of(boot)[0]
    assert route["match"]["headers"][0]["string_match"]["exact"] == "ai_gateway_route_m"
    assert route["route"]["cluster"] == "ai_gateway_route_m"
    assert route["route"]["timeout"] == "2.500s"
    retry = route["route"]["retry_policy"]
    assert set(retry["retry_on"].split(",")) == {"retriable-status-codes", "reset", "gateway-error"}
    assert retry["retriable_status_codes"] == [429]
    assert retry["num_retries"] == 3 and retry["per_try_timeout"] == "0.700s"
    assert retry["retry_back_off"] == {"base_interval": "0.020s", "max_interval": "0.080s"}
    assert retry["retry_priority"]["name"] == "envoy.retry_priorities.previous_priorities"
    for member in ("c_a", "c_b"):
        od = clusters[member]["outlier_detection"]
        assert od["consecutive_5xx"] == 4 and od["base_ejection_time"] == od["max_ejection_time"] == "2.000s"
        assert od["max_ejection_percent"] == 100
    assert "outlier_detection" not in clusters["c_c"]
    # The catch-all cluster_header route stays, after the policy routes.
    assert routes_of(boot)[1]["route"]["cluster_header"] == render.CLUSTER_HEADER


def test_routes_without_policy_render_as_before():
    boot = bootstrap(config([{"model": "m", "targets": [{"provider": "a", "model": "y"}]}]))
    assert not any(name.startswith(render.ROUTE_CLUSTER_PREFIX) for name in clusters_of(boot))
    assert all("outlier_detection" not in c for c in clusters_of(boot).values())
    assert "retry_policy" not in routes_of(boot)[0]["route"]


def test_health_of_a_shared_cluster_takes_the_strictest_policy():
    targets = [{"provider": "a", "model": "y"}, {"provider": "b", "model": "x"}]
    boot = bootstrap(config([
        {"model": "m1", "targets": targets, "policy": {"eject_after_failures": 7, "ejection_ms": 1000}},
        {"model": "m2", "targets": targets, "policy": {"eject_after_failures": 3, "ejection_ms": 500}},
    ]))
    od = clusters_of(boot)["c_a"]["outlier_detection"]
    assert od["consecutive_5xx"] == 3 and od["base_ejection_time"] == "1.000s"


def test_cluster_serving_several_providers_is_refused():
    cfg = config([{"model": "m", "targets": [{"provider": "c", "model": "x"}, {"provider": "b", "model": "x"}], "policy": {}}],
                 shared=True)
    upstreams = {k: v for k, v in UPSTREAMS.items() if k != "c_c"}
    with pytest.raises(render.RenderError, match="several providers"):
        bootstrap(cfg, upstreams)


def test_unknown_retry_condition_is_refused():
    cfg = config([{"model": "m", "targets": [{"provider": "a", "model": "y"}], "policy": {"retry_on": ["418"]}}])
    with pytest.raises(render.RenderError, match="unknown retry_on"):
        bootstrap(cfg)


def test_direct_routes_have_one_wasm_context_and_policy_routes_keep_the_upstream_filter():
    """ADR 0027: a provider's own cluster carries an upstream chain of the codec alone, so a
    direct route (the cluster-header route) creates no upstream Wasm context; a route with a
    policy reaches providers through its aggregate cluster, which has no chain of its own and so
    keeps the router's chain with the upstream filter. test_resilience.py runs both."""
    boot = bootstrap(config([{"model": "d", "targets": [{"provider": "a", "model": "x"}]},
                             {"model": "m", "targets": [{"provider": "b", "model": "x"}, {"provider": "a", "model": "y"}],
                              "policy": {"retries": 1}}]))
    clusters = clusters_of(boot)
    for name in ("c_a", "c_b", "c_c"):
        options = clusters[name]["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert [f["name"] for f in options["http_filters"]] == ["envoy.filters.http.upstream_codec"], name
    assert "typed_extension_protocol_options" not in clusters["ai_gateway_route_m"]
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    router = hcm["http_filters"][-1]["typed_config"]
    assert [f["name"] for f in router["upstream_http_filters"]] == ["envoy.filters.http.wasm", "envoy.filters.http.upstream_codec"]
    # The cluster header and Envoy's x-forwarded-proto (which the downstream filter must leave
    # on the request for route matching) never reach a provider.
    by_cluster_header = next(r for r in routes_of(boot) if r.get("route", {}).get("cluster_header"))
    assert by_cluster_header["request_headers_to_remove"] == [render.CLUSTER_HEADER, "x-forwarded-proto"]


def test_client_path_filter_only_when_a_log_or_a_span_reads_it():
    def names(boot: dict) -> list[str]:
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        return [f["name"] for f in hcm["http_filters"]]

    cfg = config([{"model": "d", "targets": [{"provider": "a", "model": "x"}]}])
    assert "envoy.filters.http.header_to_metadata" not in names(bootstrap(cfg))
    logged = render.render(cfg, "/nonexistent.wasm", 10000, 9901, UPSTREAMS, access_log="/dev/null")
    assert names(logged)[0] == "envoy.filters.http.header_to_metadata"
    traced = render.render(cfg, "/nonexistent.wasm", 10000, 9901, UPSTREAMS, otlp="http://127.0.0.1:4318")
    assert names(traced)[0] == "envoy.filters.http.header_to_metadata"
