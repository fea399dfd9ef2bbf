"""envoy/render.py for `auth.jwt` (ADR 0004): the jwt_authn filter, its rules and the remote
JWKS cluster for Cognito. No Envoy here; test_jwt.py runs the result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "envoy"))
import render  # noqa: E402

POOL = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf"
UPSTREAMS = {"c_a": render.parse_upstream("c_a=http://127.0.0.1:1001")[1]}


def bootstrap(jwt: dict | None) -> dict:
    cfg = {"providers": [{"name": "a", "kind": "openai", "cluster": "c_a"}], "routes": []}
    if jwt is not None:
        cfg["auth"] = {"jwt": jwt}
    return render.render(cfg, "/nonexistent.wasm", 10000, 9901, UPSTREAMS, ca_file="/etc/ssl/certs/ca-certificates.crt")


def http_filters(boot: dict) -> list[dict]:
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    # header_to_metadata (the client's path for logs and spans) runs first; it is not about JWTs.
    return [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.header_to_metadata"]


def test_cognito_remote_jwks_gets_a_tls_cluster_and_runs_before_the_wasm_filter() -> None:
    boot = bootstrap({"issuer": POOL, "jwks": {"remote": {"uri": f"{POOL}/.well-known/jwks.json", "cache_seconds": 300}}})
    filters = http_filters(boot)
    assert [f["name"] for f in filters][:2] == ["envoy.filters.http.jwt_authn", "envoy.filters.http.wasm"]
    cfg = filters[0]["typed_config"]
    provider = cfg["providers"][render.JWT_PROVIDER]
    assert provider["issuer"] == POOL
    assert "audiences" not in provider  # Cognito access tokens have no aud
    assert provider["forward"] is False and provider["payload_in_metadata"] == "jwt_payload"
    remote = provider["remote_jwks"]
    assert remote["http_uri"] == {"uri": f"{POOL}/.well-known/jwks.json", "cluster": render.JWKS_CLUSTER, "timeout": "5s"}
    assert remote["cache_duration"] == "300s"
    clusters = {c["name"]: c for c in boot["static_resources"]["clusters"]}
    jwks = clusters[render.JWKS_CLUSTER]
    tls = jwks["transport_socket"]["typed_config"]
    assert tls["sni"] == "cognito-idp.eu-west-1.amazonaws.com"
    endpoint = jwks["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": "cognito-idp.eu-west-1.amazonaws.com", "port_value": 443}
    # Virtual keys skip verification; everything else is verified or missing.
    rules = cfg["rules"]
    assert all("requires" not in r for r in rules[:-1])
    assert rules[-1]["requires"]["requires_any"]["requirements"] == [{"provider_name": render.JWT_PROVIDER}, {"allow_missing": {}}]


def test_local_jwks_and_audiences_and_no_jwt_means_no_filter() -> None:
    boot = bootstrap({"issuer": "i", "audiences": ["a1"], "jwks": {"local": '{"keys":[]}'}})
    provider = http_filters(boot)[0]["typed_config"]["providers"][render.JWT_PROVIDER]
    assert provider["local_jwks"] == {"inline_string": '{"keys":[]}'} and provider["audiences"] == ["a1"]
    assert render.JWKS_CLUSTER not in {c["name"] for c in boot["static_resources"]["clusters"]}
    assert "envoy.filters.http.jwt_authn" not in [f["name"] for f in http_filters(bootstrap(None))]


@pytest.mark.parametrize("jwt", [
    {"jwks": {"local": "{}"}},
    {"issuer": "i"},
    {"issuer": "i", "jwks": {"remote": {"uri": "ftp://x/jwks"}}},
    {"issuer": "i", "jwks": {"remote": {}}},
    {"issuer": "i", "jwks": {}},
])
def test_incomplete_jwt_sections_are_refused(jwt: dict) -> None:
    with pytest.raises(render.RenderError):
        bootstrap(jwt)
