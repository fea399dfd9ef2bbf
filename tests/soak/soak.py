#!/usr/bin/env python3
"""Soak: many mixed requests through one Envoy running the gateway filter, with Envoy's memory
sampled as it goes.

The upstream is the fault server (tests/faults/server.py, both provider shapes). The mix, by
request number: good JSON and streaming requests to the Anthropic translation and to the OpenAI
passthrough, client errors the gateway answers itself (bad JSON, unknown model, empty messages,
nesting too deep, wrong method), provider errors (429, 500) and truncated provider streams. Every
answer is checked against what that kind of request must get; a good request that fails fails
the run. Envoy's RSS (VmRSS of the process) is printed at the start, every 10,000 requests and at
the end; the run fails if it grew by more than --max-growth-mb after the warm-up sample.

    ./dev soak                      # 100,000 requests, 16 connections
    ./dev soak --requests 20000     # shorter
    ./dev soak --duration 1200 --large-every 50 --burst-streams 200   # issue 13: large bodies, bursts
    ./dev soak ... --render-arg=--release-free-memory-mb=0           # without returning free heap

With --duration the run is timed instead of counted: RSS is sampled every --sample-seconds, the
post-warm-up level is the sample at --warmup-seconds, and the run fails if the end level (after a
few idle seconds) is more than --max-growth-mb above it. --large-every N makes every Nth request a
large one (bodies of --large-mb sizes, cycling, to the Anthropic translation and the OpenAI
passthrough); --burst-streams K opens K concurrent streaming requests every --burst-every seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import robust_stack as rs  # noqa: E402
import stack as stack_mod  # noqa: E402

HELLO = [{"role": "user", "content": "Hello!"}]


def kinds() -> list[tuple[str, bool]]:
    """(kind, is_good) in the order the mix cycles through them (20 slots)."""
    good = ["claude-json", "gpt-json", "claude-stream", "gpt-stream"] * 3  # 12 of 20: 60 % good
    bad = ["bad-json", "unknown-model", "empty-messages", "too-deep", "wrong-method",
           "provider-429", "provider-500", "truncated-stream"]
    return [(k, True) for k in good] + [(k, False) for k in bad]


MIX = kinds()


def request_for(kind: str) -> tuple[str, bytes, dict[str, str]]:
    """Method, body and extra headers of one request of `kind`."""
    def chat(model: str, stream: bool = False) -> bytes:
        return json.dumps({"model": model, "messages": HELLO, "stream": stream}).encode()

    return {
        "claude-json": ("POST", chat(rs.CLAUDE), {}),
        "gpt-json": ("POST", chat(rs.GPT), {}),
        "claude-stream": ("POST", chat(rs.CLAUDE, True), {}),
        "gpt-stream": ("POST", chat(rs.GPT, True), {}),
        "bad-json": ("POST", b'{"model": "claude-faults", "messages": [', {}),
        "unknown-model": ("POST", chat("no-such-model"), {}),
        "empty-messages": ("POST", json.dumps({"model": rs.GPT, "messages": []}).encode(), {}),
        "too-deep": ("POST", b'{"model":"gpt-faults","messages":[{"role":"user","content":"x"}],"x":'
                     + b"[" * 2000 + b"]" * 2000 + b"}", {}),
        "wrong-method": ("GET", b"", {}),
        "provider-429": ("POST", chat(rs.CLAUDE), {"x-fault": "status", "x-fault-status": "429", "x-fault-retry-after": "1"}),
        "provider-500": ("POST", chat(rs.GPT), {"x-fault": "status", "x-fault-status": "500"}),
        "truncated-stream": ("POST", chat(rs.CLAUDE, True), {"x-fault": "truncated-chunked"}),
    }[kind]


# Large-body kinds (--large-every): a several-MB user message; the answer is the usual one.
LARGE_KINDS = ("claude-large", "gpt-large")


def large_body(model: str, size_mb: float, stream: bool) -> bytes:
    text = ("The quick brown fox jumps over the lazy dog. " * (int(size_mb * 1024 * 1024) // 45 + 1))
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}).encode()


EXPECTED_STATUS = {"bad-json": 400, "unknown-model": 404, "empty-messages": 400, "too-deep": 400,
                   "wrong-method": 405, "provider-429": 429, "provider-500": 500, "truncated-stream": 200}


def check(kind: str, status: int, body: bytes) -> str | None:
    """None when the answer is what `kind` must get, else why not."""
    try:
        if kind in ("claude-json", "gpt-json") or kind in LARGE_KINDS:
            if status != 200:
                return f"status {status}"
            doc = json.loads(body)
            if doc["choices"][0]["message"]["content"] != "Hello from the fault server.":
                return "wrong content"
            return None
        if kind in ("claude-stream", "gpt-stream"):
            if status != 200:
                return f"status {status}"
            data = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
            if not data or data[-1] != "[DONE]":
                return "no [DONE]"
            text = "".join((json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for d in data[:-1])
            return None if text == "Hello from the fault server." else "wrong content"
        if status != EXPECTED_STATUS[kind]:
            return f"status {status}, expected {EXPECTED_STATUS[kind]}"
        if kind == "truncated-stream":
            data = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
            ok = len(data) >= 2 and data[-1] == "[DONE]" and json.loads(data[-2])["error"]["code"] == "incomplete_stream"
            return None if ok else "no incomplete_stream error event"
        error = json.loads(body)["error"]
        return None if error["message"] else "empty error message"
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return f"unreadable answer: {err!r}"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def heap_mib(admin_port: int) -> tuple[float, float]:
    """(live, held) MiB of Envoy's heap from its admin /memory: what tcmalloc has allocated, and
    the physical memory it holds (live plus free pages and caches it keeps for reuse)."""
    try:
        status, body = stack_mod.http_get(f"http://127.0.0.1:{admin_port}/memory", timeout=5)
        doc = json.loads(body) if status == 200 else {}
    except (OSError, ValueError):
        doc = {}
    mib = 1024 * 1024
    return int(doc.get("allocated", 0)) / mib, int(doc.get("total_physical_bytes", 0)) / mib


class Soak:
    def __init__(self, port: int, total: int, deadline: float, large_every: int = 0,
                 large_mb: tuple[float, ...] = (4.0,)):
        self.large_every = large_every
        self.large_bodies = {(kind, mb): large_body(rs.CLAUDE if kind == "claude-large" else rs.GPT, mb, False)
                             for kind in LARGE_KINDS for mb in large_mb} if large_every else {}
        self.large_mb = large_mb
        self.port = port
        self.total = total
        self.deadline = deadline
        self.next = 0
        self.lock = threading.Lock()
        self.done = 0
        self.results: Counter[tuple[str, str]] = Counter()
        self.failures: list[str] = []
        self.milestone = threading.Condition(self.lock)

    def take(self) -> int | None:
        with self.lock:
            if self.next >= self.total or time.monotonic() > self.deadline:
                return None
            n = self.next
            self.next += 1
            return n

    def record(self, kind: str, problem: str | None) -> None:
        with self.lock:
            self.done += 1
            self.results[(kind, "ok" if problem is None else "failed")] += 1
            if problem is not None and len(self.failures) < 50:
                self.failures.append(f"{kind}: {problem}")
            self.milestone.notify_all()

    def worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while (n := self.take()) is not None:
            if self.large_every and n % self.large_every == 0:
                kind = LARGE_KINDS[(n // self.large_every) % 2]
                mb = self.large_mb[(n // self.large_every // 2) % len(self.large_mb)]
                method, body, headers = "POST", self.large_bodies[(kind, mb)], {}
            else:
                kind, _ = MIX[n % len(MIX)]
                method, body, headers = request_for(kind)
            problem: str | None
            for attempt in range(2):
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                try:
                    conn.request(method, "/v1/chat/completions", body=body or None,
                                 headers={"content-type": "application/json", **headers})
                    resp = conn.getresponse()
                    data = resp.read()
                    problem = check(kind, resp.status, data)
                    if resp.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (ConnectionError, http.client.HTTPException, OSError) as err:
                    conn.close()
                    conn = None
                    # Only a keep-alive connection closed between requests is retried, once.
                    problem = f"transport error: {err!r}"
                    if attempt == 0 and isinstance(err, (http.client.RemoteDisconnected, BrokenPipeError)):
                        continue
                    break
            self.record(kind, problem)
        if conn is not None:
            conn.close()


def burst(port: int, streams: int, soak: Soak) -> None:
    """`streams` streaming requests at once, each on its own connection, all checked."""
    def one(i: int) -> None:
        kind = "claude-stream" if i % 2 else "gpt-stream"
        method, body, headers = request_for(kind)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(method, "/v1/chat/completions", body=body, headers={"content-type": "application/json", **headers})
            resp = conn.getresponse()
            problem = check(kind, resp.status, resp.read())
            conn.close()
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            problem = f"transport error in a burst: {err!r}"
        soak.record(kind, problem)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2, help="Envoy worker threads")
    parser.add_argument("--max-seconds", type=float, default=1200, help="stop sending after this long")
    parser.add_argument("--max-growth-mb", type=float, default=48,
                        help="allowed RSS growth from the first 10k-request sample to the end")
    parser.add_argument("--duration", type=float, default=None,
                        help="run for this many seconds instead of a number of requests (timed mode)")
    parser.add_argument("--warmup-seconds", type=float, default=180, help="timed mode: the post-warm-up sample")
    parser.add_argument("--sample-seconds", type=float, default=30, help="timed mode: RSS sampling interval")
    parser.add_argument("--large-every", type=int, default=0, help="every Nth request has a large body (0: none)")
    parser.add_argument("--large-mb", default="2,4,8,12", help="large body sizes in MiB, cycled")
    parser.add_argument("--burst-streams", type=int, default=0, help="concurrent streams per burst (0: no bursts)")
    parser.add_argument("--burst-every", type=float, default=60, help="seconds between bursts")
    parser.add_argument("--render-arg", action="append", default=[], help="extra envoy/render.py argument (repeat)")
    parser.add_argument("--wasm", default=os.environ.get("GATEWAY_WASM", str(stack_mod.DEFAULT_WASM)))
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="soak-"))
    fs = rs.start(workdir, Path(args.wasm), concurrency=args.concurrency, route_timeout="30s", log_level="warning",
                  render_args=args.render_arg or None)
    if args.duration is not None:
        try:
            return timed(args, fs, workdir)
        finally:
            fs.stop()
    envoy_pid = fs.stack.proc("envoy").popen.pid
    try:
        started = time.monotonic()
        soak = Soak(fs.port, args.requests, started + args.max_seconds)
        start_rss = rss_kb(envoy_pid)
        print(f"soak: {args.requests} requests, {args.connections} connections, Envoy --concurrency {args.concurrency}, "
              f"pid {envoy_pid}, logs in {workdir}")
        print(f"{'requests':>9} {'seconds':>8} {'req/s':>7} {'envoy RSS MiB':>14} {'failed good':>11}", flush=True)
        print(f"{0:>9} {0.0:>8.1f} {'-':>7} {start_rss / 1024:>14.1f} {0:>11}", flush=True)
        samples = [(0, start_rss)]
        threads = [threading.Thread(target=soak.worker, daemon=True) for _ in range(args.connections)]
        for t in threads:
            t.start()
        next_mark = 10_000
        with soak.lock:
            while any(t.is_alive() for t in threads):
                soak.milestone.wait(timeout=1.0)
                while soak.done >= next_mark:
                    rss = rss_kb(envoy_pid)
                    samples.append((next_mark, rss))
                    elapsed = time.monotonic() - started
                    failed_good = sum(v for (k, r), v in soak.results.items() if r == "failed" and dict(MIX)[k])
                    print(f"{next_mark:>9} {elapsed:>8.1f} {soak.done / elapsed:>7.0f} {rss / 1024:>14.1f} {failed_good:>11}",
                          flush=True)
                    next_mark += 10_000
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # let the last streams' contexts finish
        end_rss = rss_kb(envoy_pid)
        samples.append((soak.done, end_rss))
        print(f"{soak.done:>9} {elapsed:>8.1f} {soak.done / elapsed:>7.0f} {end_rss / 1024:>14.1f}   (end)")

        good = dict(MIX)
        failed_good = sum(v for (k, r), v in soak.results.items() if r == "failed" and good[k])
        failed_bad = sum(v for (k, r), v in soak.results.items() if r == "failed" and not good[k])
        print("\nper kind (ok / failed):")
        for kind, _ in sorted(set(MIX)):
            print(f"  {kind:<17} {soak.results[(kind, 'ok')]:>7} / {soak.results[(kind, 'failed')]}")
        for failure in soak.failures[:20]:
            print(f"  failure: {failure}")
        warm = samples[1][1] if len(samples) > 2 else start_rss
        growth_mb = (end_rss - warm) / 1024
        log = (workdir / "envoy.log").read_text(errors="replace")
        panicked = "panicked" in log or "Wasm VM failed" in log
        summary = {
            "requests": soak.done, "seconds": round(elapsed, 1), "rps": round(soak.done / elapsed),
            "envoy_rss_mib": {"start": round(start_rss / 1024, 1), "after_10k": round(warm / 1024, 1),
                              "end": round(end_rss / 1024, 1)},
            "growth_after_warmup_mib": round(growth_mb, 1), "failed_good": failed_good, "wrong_error_answers": failed_bad,
            "panic_in_log": panicked, "envoy_alive": fs.envoy_alive(),
        }
        print("\n" + json.dumps(summary))
        problems = []
        if soak.done < args.requests:
            problems.append(f"only {soak.done} of {args.requests} requests within {args.max_seconds}s")
        if failed_good or failed_bad:
            problems.append(f"{failed_good} good requests failed, {failed_bad} bad requests got a wrong answer")
        if growth_mb > args.max_growth_mb:
            problems.append(f"Envoy RSS grew {growth_mb:.1f} MiB after warm-up (bound {args.max_growth_mb} MiB)")
        if panicked or not fs.envoy_alive():
            problems.append("the filter panicked or Envoy died")
        for problem in problems:
            print(f"soak FAILED: {problem}", file=sys.stderr)
        if not problems:
            print("soak passed")
        return 1 if problems else 0
    finally:
        fs.stop()


def timed(args: argparse.Namespace, fs: rs.FaultStack, workdir: Path) -> int:
    """Timed mode (--duration): the mix plus large bodies and stream bursts, RSS sampled by time."""
    envoy_pid = fs.stack.proc("envoy").popen.pid
    large_mb = tuple(float(x) for x in args.large_mb.split(",") if x.strip())
    started = time.monotonic()
    soak = Soak(fs.port, 10**12, started + args.duration, args.large_every, large_mb)
    start_rss = rss_kb(envoy_pid)
    print(f"soak: {args.duration:.0f} s, {args.connections} connections, every {args.large_every or '-'}th request "
          f"large ({args.large_mb} MiB), bursts of {args.burst_streams} streams every {args.burst_every:.0f} s, "
          f"Envoy --concurrency {args.concurrency}, pid {envoy_pid}, logs in {workdir}")
    admin = fs.stack.admin_port
    print(f"{'seconds':>8} {'requests':>9} {'req/s':>7} {'envoy RSS MiB':>14} {'heap live/held MiB':>19} {'failed good':>11}",
          flush=True)
    live, held = heap_mib(admin)
    print(f"{0.0:>8.1f} {0:>9} {'-':>7} {start_rss / 1024:>14.1f} {live:>9.1f}/{held:<9.1f} {0:>11}", flush=True)
    threads = [threading.Thread(target=soak.worker, daemon=True) for _ in range(args.connections)]
    for t in threads:
        t.start()
    samples: list[tuple[float, int]] = [(0.0, start_rss)]
    warm_rss: int | None = None
    next_sample = args.sample_seconds
    next_burst = args.burst_every if args.burst_streams else float("inf")
    good = {k: g for k, g in MIX} | {k: True for k in LARGE_KINDS}

    def failed_good() -> int:
        return sum(v for (k, r), v in soak.results.items() if r == "failed" and good.get(k, True))

    while any(t.is_alive() for t in threads):
        now = time.monotonic() - started
        if now >= next_burst and now < args.duration - 10:
            burst(fs.port, args.burst_streams, soak)
            next_burst += args.burst_every
        if now >= next_sample:
            rss = rss_kb(envoy_pid)
            samples.append((now, rss))
            if warm_rss is None and now >= args.warmup_seconds:
                warm_rss = rss
                print(f"{'':>8} post-warm-up level: {rss / 1024:.1f} MiB", flush=True)
            live, held = heap_mib(admin)
            print(f"{now:>8.1f} {soak.done:>9} {soak.done / now:>7.0f} {rss / 1024:>14.1f} {live:>9.1f}/{held:<9.1f} "
                  f"{failed_good():>11}", flush=True)
            next_sample += args.sample_seconds
        time.sleep(0.2)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    time.sleep(5.0)  # idle: the last streams' contexts finish, Envoy's deferred deletes run
    end_rss = rss_kb(envoy_pid)
    samples.append((elapsed + 5, end_rss))
    peak = max(r for _, r in samples)
    warm_rss = warm_rss if warm_rss is not None else samples[1][1] if len(samples) > 2 else start_rss
    end_live, end_held = heap_mib(admin)
    print(f"{elapsed + 5:>8.1f} {soak.done:>9} {soak.done / elapsed:>7.0f} {end_rss / 1024:>14.1f} "
          f"{end_live:>9.1f}/{end_held:<9.1f}   (end, after 5 s idle)")
    print("\nper kind (ok / failed):")
    for kind in sorted({k for k, _ in soak.results}):
        print(f"  {kind:<17} {soak.results[(kind, 'ok')]:>7} / {soak.results[(kind, 'failed')]}")
    for failure in soak.failures[:20]:
        print(f"  failure: {failure}")
    log = (workdir / "envoy.log").read_text(errors="replace")
    panicked = "panicked" in log or "Wasm VM failed" in log
    failed_bad = sum(v for (k, r), v in soak.results.items() if r == "failed" and not good.get(k, True))
    growth_mb = (end_rss - warm_rss) / 1024
    summary = {
        "seconds": round(elapsed, 1), "requests": soak.done, "rps": round(soak.done / elapsed),
        "large_requests": sum(v for (k, _), v in soak.results.items() if k in LARGE_KINDS),
        "envoy_rss_mib": {"start": round(start_rss / 1024, 1), "post_warmup": round(warm_rss / 1024, 1),
                          "peak": round(peak / 1024, 1), "end": round(end_rss / 1024, 1)},
        # Envoy's heap at the end: live allocations, and what tcmalloc holds (admin /memory).
        "heap_end_mib": {"live": round(end_live, 1), "held": round(end_held, 1)},
        "growth_after_warmup_mib": round(growth_mb, 1), "failed_good": failed_good(), "wrong_error_answers": failed_bad,
        "panic_in_log": panicked, "envoy_alive": fs.envoy_alive(),
        "samples_mib": [(round(t), round(r / 1024, 1)) for t, r in samples],
    }
    print("\n" + json.dumps(summary))
    problems = []
    if failed_good() or failed_bad:
        problems.append(f"{failed_good()} good requests failed, {failed_bad} bad requests got a wrong answer")
    if growth_mb > args.max_growth_mb:
        problems.append(f"Envoy RSS ended {growth_mb:.1f} MiB above its post-warm-up level (bound {args.max_growth_mb} MiB)")
    if panicked or not fs.envoy_alive():
        problems.append("the filter panicked or Envoy died")
    for problem in problems:
        print(f"soak FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("soak passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
