"""Instructions per request (callgrind) and peak RSS of Envoy alone, the Wasm filter and the
dynamic-module spike, scenario (a) by default. The method is bench.py's `--instructions`:
Envoy `--concurrency 1` under callgrind with instrumentation off until 100 warm-up requests have
been sent, then 300 counted requests over one keep-alive connection; the cost is split by
bench.py's `callgrind_costs`, plus a `module` part for the dynamic module's shared object.

  python cg_dynmod.py --system envoy|filter|dynmod-noop|dynmod-route [--scenario a] [--rss]

`--rss` runs Envoy without valgrind, sends 1000 requests and reads VmHWM from /proc.
`dynmod-noop`: every hook continues; the client sends `x-ai-gateway-cluster: mock_openai` itself
(the route matches on it), since nothing sets it. `dynmod-route`: the module sets it.
"""
import argparse
import importlib
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
# bench.py by path: mypy, run over bench/, would take `bench` for the directory.
B: Any = importlib.import_module("bench")

MODULE = "ai_gateway_dynmod"
B.CODE_PARTS = dict(B.CODE_PARTS, module="the dynamic module")
_code_part = B.code_part


def code_part(obj: str, fn: str, envoy_name: str) -> str:
    if MODULE in os.path.basename(obj):
        return "module"
    return _code_part(obj, fn, envoy_name)


B.code_part = code_part


def dynmod_filter(so: str, mode: str, gateway_json: str) -> dict:
    return {
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"module": {"local": {"filename": so}}},
            "filter_name": mode,
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": gateway_json},
        },
    }


def swap_in_dynmod(boot: dict, so: str, mode: str) -> None:
    """The filter system's bootstrap with the downstream Wasm filter replaced by the module and
    the upstream Wasm filter removed (a direct route's provider cluster has none either)."""
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    i = next(i for i, f in enumerate(hcm["http_filters"]) if f["name"] == "envoy.filters.http.wasm")
    gateway_json = hcm["http_filters"][i]["typed_config"]["config"]["configuration"]["value"]
    hcm["http_filters"][i] = dynmod_filter(so, mode, gateway_json)
    router = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.router")
    ups = router["typed_config"].get("upstream_http_filters")
    if ups is not None:
        router["typed_config"]["upstream_http_filters"] = [f for f in ups if f["name"] != "envoy.filters.http.wasm"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", default="dynmod-route")
    ap.add_argument("--scenario", default="a")
    ap.add_argument("--wasm", default=str(HERE.parent.parent / "target/ai_gateway_filter.wasm"))
    ap.add_argument("--mock", default=str(HERE.parent.parent / "target/release/mock-upstream"))
    ap.add_argument("--so", default=str(HERE.parent.parent / "target/release/libai_gateway_dynmod.so"))
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--rss", action="store_true", help="no valgrind: 1000 requests, then VmHWM")
    ap.add_argument("--wrk", type=float, default=0, metavar="SECONDS",
                    help="no valgrind: wrk load (bench.py's method: 2 s warm-up, then SECONDS measured), CPU us/request")
    ap.add_argument("--keep", default=None, help="copy the callgrind dump here")
    ap.add_argument("--env", action="append", default=[], help="K=V for Envoy's environment")
    ap.add_argument("--log-level", default="warn")
    a = ap.parse_args()
    envoy = subprocess.check_output(
        [sys.executable, "-c", "import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / '_bin' / 'envoy')"],
        text=True).strip()
    args = argparse.Namespace(envoy=envoy, wasm=a.wasm, mock=a.mock, chunks=100, chunk_interval_us=0,
                              upstream_latency_ms=0, fixtures=None, converse_nova=False, load_core=0, sut_core=1)
    b = B.Bench(args)
    for kv in a.env:
        k, v = kv.split("=", 1)
        b.env[k] = v
    mock, mport = b.start_mock(0, "shared")
    b.mock_shared_port = mport
    sc = b.scen[a.scenario]
    port, admin = B.free_port(), B.free_port()
    path = b.work / "boot.json"
    dyn = a.system.startswith("dynmod-")
    boot = b.bootstrap("filter" if dyn else a.system, sc, port, admin, mport)
    if dyn:
        swap_in_dynmod(boot, a.so, a.system.split("-", 1)[1])
    path.write_text(json.dumps(boot))
    out = b.work / "cg.out"
    argv = [envoy, "-c", str(path), "--concurrency", "1", "--base-id", str(900 + os.getpid() % 50),
            "--log-level", a.log_level]
    if not (a.rss or a.wrk):
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file",
                f"--callgrind-out-file={out}"] + argv
    p = B.Proc("envoy", argv, 1, b.work / "envoy.log", env=b.env)
    try:
        t0 = time.time()
        ok = B.wait_until(lambda: B.request(admin, "GET", "/ready")[0] == 200, time.time() + 300, p)
        if not ok:
            print(open(p.log_path).read()[-4000:])
            return 1
        print(f"ready in {time.time() - t0:.1f}s", file=sys.stderr)
        headers = {"content-type": "application/json", **B.client_headers(sc)}
        if a.system == "dynmod-noop":
            headers["x-ai-gateway-cluster"] = f"mock_{sc['provider']}"
        cpath = B.client_path(sc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=float(os.environ.get("CG_TIMEOUT", "60")))
        first: dict[str, Any] = {}

        def one():
            conn.request("POST", cpath, body=sc["body"], headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}: {body[:300]!r}")
            if not first:
                first.update(status=r.status, headers=dict(r.getheaders()), body=body[:200].decode(errors="replace"))

        one()
        # What the mock received last: the upstream request (path and body) of this system.
        c2 = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
        c2.request("GET", "/__bench/last")
        r2 = c2.getresponse()
        got = r2.read()
        upstream = {"path": r2.getheader("x-bench-path"), "body_len": len(got),
                    "body_sha256": hashlib.sha256(got).hexdigest()[:16], "body_head": got[:60].decode(errors="replace")}
        c2.close()
        print(json.dumps({"upstream_request": upstream}), file=sys.stderr)
        if a.wrk:
            args.wrk = shutil.which("wrk")
            body_file = b.work / "body.json"
            body_file.write_bytes(sc["body"])
            url = f"http://127.0.0.1:{port}{cpath}"
            wh = {k: v for k, v in headers.items() if k != "content-type"}
            B.wrk(args, 0, url, body_file, wh, sc["connections"], 2, b.work)
            cpu0 = B.cpu_seconds(p.pid)
            r = B.wrk(args, 0, url, body_file, wh, sc["connections"], a.wrk, b.work)
            cpu1 = B.cpu_seconds(p.pid)
            errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            print(json.dumps({"system": a.system, "scenario": a.scenario, "requests": r["requests"],
                              "rps": round(r["requests"] / (r["duration_us"] / 1e6)), "errors": errors,
                              "cpu_us_per_req": round((cpu1 - cpu0) * 1e6 / max(1, r["requests"]), 2),
                              "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000}))
            return 0
        if a.rss:
            for _ in range(1000):
                one()
            status = Path(f"/proc/{p.pid}/status").read_text()
            hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
            rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
            stats = B.request(admin, "GET", "/stats?filter=dynmod")[1]
            print(json.dumps({"system": a.system, "scenario": a.scenario, "vmhwm_mib": round(hwm / 1024, 1),
                              "vmrss_mib": round(rss / 1024, 1),
                              "stats": stats.decode(errors="replace") if isinstance(stats, bytes) else stats,
                              "first_response_headers": first.get("headers"), "first_body": first.get("body")}))
            return 0
        for _ in range(a.warm):
            one()
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True, capture_output=True)
        t1 = time.time()
        for _ in range(a.n):
            one()
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        print(f"measured {a.n} in {time.time() - t1:.1f}s", file=sys.stderr)
        time.sleep(1)
        dumps = sorted(f for f in b.work.glob("cg.out*") if f.stat().st_size > 0)
        total, parts = 0, dict.fromkeys(B.CODE_PARTS, 0)
        for f in dumps:
            t, ps = B.callgrind_costs(f, os.path.basename(envoy))
            total += t
            for k, v in ps.items():
                parts[k] += v
        if a.keep:
            for f in dumps:
                shutil.copy(f, a.keep)
        print(json.dumps({"system": a.system, "scenario": a.scenario, "n": a.n, "ir": total,
                          "ir_per_req": round(total / a.n), "parts_per_req": {k: round(v / a.n) for k, v in parts.items()},
                          "first_response_headers": first.get("headers"), "first_body": first.get("body")}))
        return 0
    except Exception:
        print(f"Envoy log: {p.log_path}", file=sys.stderr)
        print(Path(p.log_path).read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        p.stop()
        mock.stop()
        shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
