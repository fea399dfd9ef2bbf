"""terraform/ without a terraform binary or AWS: every file parses (python-hcl2), checkov passes
with justified skips only, and the names the stack wires (table keys, env vars, ports, metric
names, IAM actions) agree with the code that uses them."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

from conftest import ROOT, tool

TF = ROOT / "terraform"
TF_FILES = sorted(TF.rglob("*.tf"))


def a(x):
    """python-hcl2 wraps each attribute value in a one-element list; unwrap it."""
    return x[0] if isinstance(x, list) and len(x) == 1 else x


def hcl_unescape(s: str) -> str:
    """python-hcl2 keeps HCL string escapes as written; undo them."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), s)


def load(rel: str) -> dict:
    with open(TF / rel, encoding="utf-8") as f:
        return hcl2.load(f)


def locals_of(rel: str) -> dict:
    out: dict = {}
    for block in load(rel).get("locals", []):
        out.update({k: a(v) for k, v in block.items()})
    return out


def resource(rel: str, rtype: str, name: str) -> dict:
    for r in load(rel).get("resource", []):
        if rtype in r and name in r[rtype]:
            return r[rtype][name]
    raise AssertionError(f"{rtype}.{name} not in {rel}")


def variable_default(rel: str, name: str):
    for v in load(rel).get("variable", []):
        if name in v:
            return a(v[name].get("default"))
    raise AssertionError(f"variable {name} not in {rel}")


def test_every_tf_file_parses():
    assert len(TF_FILES) >= 20, TF_FILES
    for path in TF_FILES:
        with open(path, encoding="utf-8") as f:
            hcl2.load(f)  # raises on a syntax error
    modules = {p.parent.name for p in TF_FILES if p.parent.parent.name == "modules"}
    assert modules == {"network", "edge", "identity", "compute", "data", "secrets", "observability",
                       "registry", "github_oidc"}
    # Two roots: the per-environment stack, and the account's release infrastructure.
    roots = {p.parent.relative_to(TF).as_posix() for p in TF_FILES if p.name == "versions.tf"}
    assert roots == {".", "release"}


def test_every_variable_and_output_is_documented():
    for path in TF_FILES:
        doc = load(str(path.relative_to(TF)))
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                for name, body in block.items():
                    assert len(a(body.get("description", ""))) > 5, f"{path}: {kind} {name} has no description"


def test_checkov_passes_with_justified_skips_only():
    r = subprocess.run([tool("checkov"), "-d", str(TF), "--framework", "terraform", "--skip-download",
                        "-o", "json"], capture_output=True, text=True, timeout=110)
    report = json.loads(r.stdout)
    failed = report["results"]["failed_checks"]
    assert r.returncode == 0 and not failed, [(c["check_id"], c["resource"]) for c in failed]
    assert report["summary"]["passed"] > 150  # the scan really covered the modules
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) >= 30, f"{skipped['check_id']} on {skipped['resource']}: skip without a real reason"
    # Every inline skip is in the ID:reason form (checkov silently ignores a malformed one).
    for path in TF_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_AWS_\d+:\S.{20,}", line), f"{path}: {line.strip()}"


def test_table_matches_the_control_plane_store():
    table = resource("modules/data/main.tf", "aws_dynamodb_table", "control_plane")
    src = (ROOT / "control-plane/src/store/dynamo.rs").read_text(encoding="utf-8")
    # The key schema create_table uses for DynamoDB Local, which the cloud table must equal.
    assert re.search(r'key\("pk", KeyType::Hash\)', src) and re.search(r'key\("sk", KeyType::Range\)', src)
    assert 'attr("pk")' in src and 'attr("sk")' in src and "ScalarAttributeType::S" in src
    assert (a(table["hash_key"]), a(table["range_key"])) == ("pk", "sk")
    assert sorted((a(x["name"]), a(x["type"])) for x in table["attribute"]) == [("pk", "S"), ("sk", "S")]
    assert "global_secondary_index" not in table and "GlobalSecondaryIndex" not in src
    assert a(table["billing_mode"]) == "PAY_PER_REQUEST" and "BillingMode::PayPerRequest" in src
    assert a(table["point_in_time_recovery"][0]["enabled"]) is True
    # Usage batch markers carry the TTL attribute create-tables enables for DynamoDB Local.
    ttl = table["ttl"][0]
    assert (a(ttl["attribute_name"]), a(ttl["enabled"])) == ("expires_at", True)
    assert '.attribute_name("expires_at")' in src and '.item("expires_at"' in src
    sse = table["server_side_encryption"][0]
    assert a(sse["enabled"]) is True and "kms_key_arn" in sse
    # The table is named after var.name, whose default is the store's default table name.
    assert a(table["name"]) == "${var.name}"
    default_table = re.search(r'CP_DYNAMODB_TABLE"\)\.unwrap_or_else\(\|_\| "([^"]+)"', src).group(1)
    assert variable_default("variables.tf", "name") == default_table


def dynamo_calls() -> set[str]:
    """DynamoDB operations the store calls (`.client.get_item()` -> GetItem)."""
    src = (ROOT / "control-plane/src/store/dynamo.rs").read_text(encoding="utf-8")
    calls = {"".join(w.capitalize() for w in c.split("_")) for c in re.findall(r"client\s*\.\s*([a-z_]+)\(\)", src)}
    # Items inside TransactWriteItems need their own item-level permission.
    calls |= {f"{kind}Item" for kind in re.findall(r"\b(Put|Update|Delete|ConditionCheck)::builder\(\)", src)}
    return calls


def test_control_plane_role_allows_exactly_what_the_store_calls():
    calls = dynamo_calls()
    assert {"GetItem", "Query", "UpdateItem"} <= calls, calls
    doc = load("modules/compute/main.tf")
    policy = next(d["aws_iam_policy_document"]["control_plane"] for d in doc["data"] if "control_plane" in d.get("aws_iam_policy_document", {}))
    allowed = {x.split(":", 1)[1] for st in policy["statement"] for x in a(st["actions"]) if x.startswith("dynamodb:")}
    # Table management stays with terraform; create/delete/TTL are for DynamoDB Local and tests.
    needed = calls - {"CreateTable", "DeleteTable", "UpdateTimeToLive"}
    assert needed <= allowed, f"the task role misses {needed - allowed}"
    assert allowed - needed <= {"DescribeTable"}, f"more than needed: {allowed - needed}"


def container(task: str, name: str) -> dict:
    td = resource("modules/compute/main.tf", "aws_ecs_task_definition", task)
    text = hcl_unescape(a(td["container_definitions"]))
    assert name in text
    return {"text": text}


def test_control_plane_env_vars_exist_in_the_code():
    main = (ROOT / "control-plane/src/main.rs").read_text(encoding="utf-8")
    dynamo = (ROOT / "control-plane/src/store/dynamo.rs").read_text(encoding="utf-8")
    known = set(re.findall(r'env = "([A-Z_]+)"', main)) | set(re.findall(r'tokens\("([A-Z_]+)"\)', main))
    known |= set(re.findall(r'env::var\("([A-Z_]+)"\)', main + dynamo))
    text = (TF / "modules/compute/main.tf").read_text(encoding="utf-8")
    block = text[text.index('resource "aws_ecs_task_definition" "control_plane"'):text.index("# --- services")]
    names = set(re.findall(r'name = "([A-Z][A-Z0-9_]+)"', block))
    assert {"CP_STORE", "CP_DYNAMODB_TABLE", "CP_LISTEN", "CP_GRPC_LISTEN", "CP_ADMIN_TOKEN", "CP_WATCH_TOKEN"} <= names
    assert names <= known, f"terraform sets variables the control plane never reads: {names - known}"
    # Same settings as the image's ENV (Dockerfile.control), so `docker run` and ECS agree.
    image = (ROOT / "Dockerfile.control").read_text(encoding="utf-8")
    for var, port in (("CP_LISTEN", "8090"), ("CP_GRPC_LISTEN", "8091")):
        assert f"{var}=0.0.0.0:{port}" in image and f'"0.0.0.0:${{local.cp_{"rest" if var == "CP_LISTEN" else "grpc"}_port}}"' in block
    loc = locals_of("modules/compute/main.tf")
    assert (loc["cp_rest_port"], loc["cp_grpc_port"]) == (8090, 8091)


def test_ports_names_and_health_check_agree_with_the_envoy_image():
    sys.path.insert(0, str(ROOT / "ops"))
    sys.path.insert(0, str(ROOT / "envoy"))
    import container_bootstrap as cb  # noqa: E402
    import render  # noqa: E402
    loc = locals_of("modules/compute/main.tf")
    assert loc["envoy_port"] == cb.LISTENER_PORT == locals_of("modules/edge/main.tf")["envoy_port"]
    assert loc["admin_port"] == cb.ADMIN_PORT
    assert cb.CONTROL_PLANE == f"http://{loc['cp_dns_name']}:{loc['cp_grpc_port']}"
    assert loc["cp_dns_name"].endswith("." + loc["cp_namespace"])
    assert loc["watch_token_env"] == render.DEFAULT_WATCH_TOKEN_ENV
    # The ECS container health check is the image's HEALTHCHECK command.
    dockerfile = (ROOT / "Dockerfile.envoy").read_text(encoding="utf-8")
    image_cmd = json.loads(re.search(r"CMD (\[\"/bin/bash\".*\])", dockerfile).group(1))[2]
    ecs_cmd = hcl_unescape(loc["envoy_healthcheck"]).replace("${local.admin_port}", str(loc["admin_port"]))
    assert ecs_cmd == image_cmd
    # Provider secrets are the env var names the container's gateway config reads.
    gateway = json.loads((ROOT / "ops/envoy/gateway.json").read_text(encoding="utf-8"))
    creds = {p["credential"]["env"] for p in gateway["providers"]}
    assert set(variable_default("variables.tf", "provider_secret_names")) == creds


def test_alb_and_waf_settings():
    listener = resource("modules/edge/main.tf", "aws_lb_listener", "https")
    assert a(listener["ssl_policy"]) == "ELBSecurityPolicy-TLS13-1-2-2021-06" and a(listener["protocol"]) == "HTTPS"
    rule = resource("modules/edge/main.tf", "aws_lb_listener_rule", "api_jwt")
    actions = sorted(rule["action"], key=lambda x: a(x["order"]))
    assert [a(x["type"]) for x in actions] == ["jwt-validation", "forward"]
    claim = actions[0]["jwt_validation"][0]["additional_claim"][0]
    assert a(claim["name"]) == "scope"
    header = next(c["http_header"][0] for c in rule["condition"] if "http_header" in c)
    assert a(header["http_header_name"]) == "Authorization" and "Bearer eyJ*" in a(header["values"])
    # Virtual keys go to the filter after the JWT rule had its chance (lower priority number wins).
    keys = resource("modules/edge/main.tf", "aws_lb_listener_rule", "api_virtual_key")
    assert a(rule["priority"]) < a(keys["priority"])
    assert [a(x["type"]) for x in keys["action"]] == ["forward"]
    acl = resource("modules/edge/main.tf", "aws_wafv2_web_acl", "this")
    text = json.dumps(acl)
    assert "rate_based_statement" in text and "AWSManagedRulesKnownBadInputsRuleSet" in text
    clients = resource("modules/identity/main.tf", "aws_cognito_user_pool_client", "m2m")
    assert a(clients["allowed_oauth_flows"]) == ["client_credentials"] and a(clients["generate_secret"]) is True


def test_dashboard_uses_the_filters_metric_names():
    metrics = locals_of("modules/observability/main.tf")["metrics"]
    filter_src = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "filter/src").rglob("*.rs"))
    for key in ("requests", "tokens", "rejected"):
        assert f'"{metrics[key]}' in filter_src, f"{metrics[key]} is not a counter the filter defines"
    # Labels the dashboard's SEARCH expressions group by are the tag names render.py extracts.
    render_src = (ROOT / "envoy/render.py").read_text(encoding="utf-8")
    for label in ("provider", "model", "status", "type"):
        assert label in render_src
    scaling = resource("modules/compute/main.tf", "aws_appautoscaling_policy", "envoy_requests")
    spec = scaling["target_tracking_scaling_policy_configuration"][0]["predefined_metric_specification"][0]
    assert a(spec["predefined_metric_type"]) == "ALBRequestCountPerTarget"
    cpu = resource("modules/compute/main.tf", "aws_appautoscaling_policy", "envoy_cpu")
    cpu_spec = cpu["target_tracking_scaling_policy_configuration"][0]["predefined_metric_specification"][0]
    assert a(cpu_spec["predefined_metric_type"]) == "ECSServiceAverageCPUUtilization"


def saved_queries() -> dict[str, str]:
    """The Logs Insights query strings of the saved queries over Envoy's log group."""
    doc = load("modules/observability/main.tf")
    out = {}
    for r in doc.get("resource", []):
        for name, body in r.get("aws_cloudwatch_query_definition", {}).items():
            if "envoy" in json.dumps(body.get("log_group_names")):
                out[name] = hcl_unescape(a(body["query_string"])).replace("${local.request_lines}",
                                                                           hcl_unescape(locals_of("modules/observability/main.tf")["request_lines"]))
    return out


# Words of the query language, not fields of the log line.
QUERY_WORDS = {"filter", "stats", "sort", "display", "limit", "fields", "by", "as", "and", "or", "not", "desc", "asc",
               "count", "sum", "pct", "avg", "max", "min", "bin", "ispresent", "request", "log", "m"}


def query_fields(query: str) -> set[str]:
    """Names a query reads from the log line (identifiers that are not keywords, aliases or functions)."""
    aliases = set(re.findall(r"\bas (\w+)", query))
    without_strings = re.sub(r'"[^"]*"', "", query)
    names = set(re.findall(r"(?<![@\w.])([a-z_][a-z0-9_]*)\b(?!\()", without_strings))
    return names - aliases - QUERY_WORDS


def test_saved_queries_read_the_json_access_log_fields():
    sys.path.insert(0, str(ROOT / "envoy"))
    import render  # noqa: E402
    queries = saved_queries()
    assert {"errors_by_provider", "slow_requests", "latency_by_provider", "retries", "usage_by_caller"} <= set(queries)
    fields = set(render.REQUEST_LOG_FIELDS)
    assert {"provider", "model", "status", "input_tokens", "output_tokens", "cost_usd", "caller",
            "time_to_first_token_ms", "attempts"} <= fields
    for name, query in queries.items():
        assert query.lstrip().startswith('filter log = "request"'), name
        used = query_fields(query)
        assert used, name
        assert used <= fields, f"{name} reads fields the access log does not have: {used - fields}"
    # The per-request line is JSON by default; text stays available for people who grep.
    import inspect
    assert inspect.signature(render.render).parameters["access_log_format"].default == "json"


def test_example_tfvars_sets_every_required_variable():
    with open(TF / "examples/prod.tfvars", encoding="utf-8") as f:
        tfvars = hcl2.load(f)
    required = {name for block in load("variables.tf")["variable"] for name, body in block.items() if "default" not in body}
    assert required <= set(tfvars), f"prod.tfvars misses {required - set(tfvars)}"
    assert "@sha256:" in a(tfvars["envoy_image"]) and "@sha256:" in a(tfvars["control_plane_image"])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
