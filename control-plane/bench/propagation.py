#!/usr/bin/env python3
"""Config push benchmark: prints figures, asserts nothing.

Starts the real stack (replay upstream, control plane with the embedded store, Envoy with two
workers watching it) and measures:

1. propagation: from the REST write (a new route) to the first successful request through Envoy
   for that route, over --changes changes; p50, p99, max;
2. with --keys virtual keys and --routes routes in the store: the snapshot size, the time the
   singleton takes to validate and store it, the time each worker takes to apply (parse and
   index) it, from Envoy's log; the control plane's build time per snapshot, from its log; and
   propagation again at that size;
3. a burst: --burst route writes back to back, then the time from the last write's answer to
   the first 200 for its route, and how many snapshots the burst produced.

Run: .venv/bin/python control-plane/bench/propagation.py [--changes 60] [--keys 10000] [--routes 100]
(needs the .wasm and the control-plane binary built: ./dev build; CONTROL_PLANE_BIN picks
another binary, e.g. a release build).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import stack as stack_mod  # noqa: E402

ADMIN = "cp-admin-bench-" + os.urandom(8).hex()
WATCH = "cp-watch-bench-" + os.urandom(8).hex()
BODY = json.dumps({"messages": [{"role": "user", "content": "hi"}]})


def api(rest: str, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    # `rest` is http://127.0.0.1:<port> of the control plane this benchmark started.
    req = urllib.request.Request(rest + path, data=data, method=method,  # noqa: S310
                                 headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def chat(port: int, model: str, key: str) -> int:
    """One request on a fresh connection (Envoy spreads connections over its workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": model, **json.loads(BODY)}),
                     headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def propagation(rest: str, port: int, key: str, n: int, prefix: str) -> list[float]:
    """Seconds from each route write to the first 200 for it."""
    out = []
    for i in range(n):
        model = f"{prefix}-{i}"
        t0 = time.monotonic()
        status, doc = api(rest, "POST", "/v1/routes", {"model": model, "targets": [{"provider": "p", "model": "gpt-5-nano"}]})
        if status != 201:
            raise RuntimeError(f"route create: {status} {doc}")
        while True:
            if chat(port, model, key) == 200:
                out.append(time.monotonic() - t0)
                break
            if time.monotonic() - t0 > 30:
                raise RuntimeError(f"{model} not served after 30 s")
    return out


def wait_served(port: int, key: str, model: str, t0: float) -> float:
    while True:
        if chat(port, model, key) == 200:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 30:
            raise RuntimeError(f"{model} not served after 30 s")


def build_times(log: str) -> list[tuple[float, str]]:
    """(milliseconds, how) of each snapshot the control plane built, from its log."""
    out = []
    for line in log.splitlines():
        if "snapshot built" not in line:
            continue
        us = re.search(r"build_us=(\d+)", line)
        ms = re.search(r"build_ms=(\d+)", line)
        how = re.search(r"source=(\w+)", line)
        if us:
            out.append((int(us.group(1)) / 1000, how.group(1) if how else "full"))
        elif ms:
            out.append((float(ms.group(1)), how.group(1) if how else "full"))
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def report(name: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(f"{name}: n={len(ms)} p50={pct(ms, 50):.1f} ms p99={pct(ms, 99):.1f} ms max={max(ms):.1f} ms "
          f"mean={statistics.mean(ms):.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=60)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--routes", type=int, default=100)
    ap.add_argument("--large-changes", type=int, default=50, help="changes measured with the large store")
    ap.add_argument("--burst", type=int, default=50, help="route writes sent back to back at the end (0: skip)")
    ap.add_argument("--wasm", default=os.environ.get("GATEWAY_WASM", str(stack_mod.DEFAULT_WASM)))
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cp-propagation-"))
    secret = "sk-bench-provider-" + os.urandom(8).hex()
    cp = stack_mod.start_control_plane(workdir / "cp-data", workdir / "control-plane.log", admin_token=ADMIN,
                                       watch_token=WATCH, env={"AI_GATEWAY_PROVIDER_BENCH": secret, "CP_LOG": "info"})
    stack = None
    try:
        boot = {"providers": [{"name": "boot", "kind": "openai", "cluster": "replay_openai"}],
                "routes": [{"model": "boot", "targets": [{"provider": "boot", "model": "gpt-5-nano"}]}]}
        stack = stack_mod.start_stack(workdir, boot, ["replay_openai"], envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH},
                                      wasm=Path(args.wasm), chunk_delay=0.0, concurrency=2, log_level="warning",
                                      control_plane=cp.grpc_url, replay_keys={"openai": secret})
        rest, port = cp.rest_url, stack.port
        api(rest, "POST", "/v1/providers", {"name": "p", "kind": "openai", "cluster": "replay_openai",
                                            "credential": "env:AI_GATEWAY_PROVIDER_BENCH"})
        _, doc = api(rest, "POST", "/v1/keys", {"name": "bench", "owner": "bench", "allowed_models": ["*"]})
        key = doc["secret"]
        propagation(rest, port, key, 3, "warmup")
        binary = stack_mod.control_plane_binary()
        print(f"Envoy 1.40, 2 workers; control plane {binary} (embedded store); machine: {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        report("propagation, small snapshot (REST write -> first 200 through Envoy)",
               propagation(rest, port, key, args.changes, "small"))

        # Fill the store: routes, then keys, several writers at once.
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: api(rest, "POST", "/v1/routes", {"model": f"fill-{i}", "targets": [{"provider": "p", "model": "m"}]}),
                          range(max(0, args.routes - args.changes - 3))))
            list(pool.map(lambda i: api(rest, "POST", "/v1/keys", {"name": f"k{i}", "owner": "bench", "allowed_models": [f"fill-{i % 50}"]}),
                          range(args.keys - 1)))
        print(f"filled the store with {args.keys} keys in {time.monotonic() - t0:.1f} s")
        _, snap = api(rest, "GET", "/v1/snapshot")
        log_offset = (workdir / "envoy.log").stat().st_size
        cp_offset = (workdir / "control-plane.log").stat().st_size
        large = propagation(rest, port, key, args.large_changes, "large")
        cp_log = (workdir / "control-plane.log").read_text(errors="replace")[cp_offset:]
        _, snap = api(rest, "GET", "/v1/snapshot")
        print(f"snapshot: version {snap.get('version')}, {json.dumps({k: v for k, v in snap.items() if k != 'warnings'})}")
        report(f"propagation, large snapshot ({args.keys} keys)", large)

        log = (workdir / "envoy.log").read_text(errors="replace")[log_offset:]
        published = re.findall(r"published snapshot version \d+ \((\d+) bytes, validated and stored in (\d+) us", log)
        sizes = [int(size) for size, _ in published]
        svc = [int(us) for _, us in published]
        applied = [int(m) for m in re.findall(r"applied snapshot version \d+ \([^)]*\) in (\d+) us", log)]
        if sizes:
            print(f"snapshot size: {max(sizes)} bytes ({max(sizes) / 1024 / 1024:.2f} MiB) of JSON")
        if svc:
            print(f"singleton validate+store (main thread): median {statistics.median(svc) / 1000:.1f} ms, max {max(svc) / 1000:.1f} ms over {len(svc)} snapshots")
        if applied:
            print(f"worker apply (parse + index, per worker): median {statistics.median(applied) / 1000:.1f} ms, max {max(applied) / 1000:.1f} ms over {len(applied)} applies")
        builds = build_times(cp_log)
        if builds:
            ms = [b for b, _ in builds]
            kinds = sorted({k for _, k in builds})
            print(f"control plane build (view update + assemble + serialize): median {statistics.median(ms):.1f} ms, "
                  f"max {max(ms):.1f} ms over {len(ms)} snapshots ({', '.join(kinds)})")

        if args.burst > 0:
            env_offset = (workdir / "envoy.log").stat().st_size
            t_start = time.monotonic()
            for i in range(args.burst):
                status, doc = api(rest, "POST", "/v1/routes", {"model": f"burst-{i}", "targets": [{"provider": "p", "model": "gpt-5-nano"}]})
                if status != 201:
                    raise RuntimeError(f"route create: {status} {doc}")
            t_last = time.monotonic()
            served = wait_served(port, key, f"burst-{args.burst - 1}", t_last)
            time.sleep(0.5)
            log = (workdir / "envoy.log").read_text(errors="replace")[env_offset:]
            n_published = len(re.findall(r"published snapshot version", log))
            print(f"burst of {args.burst} route writes in {(t_last - t_start) * 1000:.0f} ms: last route served "
                  f"{served * 1000:.1f} ms after its write returned; {n_published} snapshots published to Envoy")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return 0
    finally:
        if stack is not None:
            stack.stop()
        cp.proc.stop()
        print(f"logs in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
