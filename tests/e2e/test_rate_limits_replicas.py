"""Rate limits across Envoy replicas (ADR 0008, "Across replicas"): two Envoy processes (distinct
--base-id, two workers each) watch one control plane. Shared data is per process; the control
plane tells every Envoy how many replicas watch it, and each enforces ceil(limit / N): the
documented bound is limit + N - 1 per window (N x limit if the count were unknown). The test
measures the overshoot under a concurrent burst split across both replicas, checks the bound, and
that each replica enforces its share exactly."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

import stack as stack_mod
from test_control_plane import PROVIDER_SECRET, WATCH_TOKEN, Env
from test_rate_limits import away_from_window_edge, wait_until_served

LIMIT = 10
PER_REPLICA = 40
REPLICAS = 2


class Replicas:
    def __init__(self, envs: list[Env]):
        self.envs = envs


@pytest.fixture(scope="module")
def replicas(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    workdir = tmp_path_factory.mktemp("rate-limits-replicas")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    stacks: list[stack_mod.Stack] = []
    envs: list[Env] = []
    try:
        for i in range(REPLICAS):
            # start_stack gives every Envoy its own --base-id (its listen port): separate processes
            # with separate shared memory, as separate hosts would have.
            stacks.append(stack_mod.start_stack(
                workdir / f"envoy-{i}", {"version": 1, "providers": [], "routes": []},
                replay_clusters=["replay_openai"], envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
                wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
                chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
                replay_keys={"openai": PROVIDER_SECRET}))
        envs = [Env(workdir, s, grpc_port, rest_port) for s in stacks]
        envs[0].start_cp()
        for e in envs[1:]:
            e.cp = envs[0].cp
        envs[0].api("POST", "/v1/providers", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                              "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
        envs[0].api("POST", "/v1/routes", {"model": "rl-model", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]},
                    expect=201)
        yield Replicas(envs)
    finally:
        if envs and envs[0].cp is not None:
            envs[0].cp.proc.stop()
        for s in stacks:
            s.stop()


def test_rpm_across_two_replicas_stays_within_the_share_bound(replicas: Replicas) -> None:
    first = replicas.envs[0]
    _, doc = first.api("POST", "/v1/keys", {"name": "rpm-replicas", "owner": "e2e@example.com",
                                            "allowed_models": ["rl-model"], "rpm": LIMIT}, expect=201)
    key = doc["secret"]
    for e in replicas.envs:
        e.secrets.append(key)
        wait_until_served(e, key)
    # Every Envoy learned that there are two of them (the singleton logs the count it records);
    # the count rides on the next heartbeat, every 10 s.
    deadline = time.monotonic() + 25
    for e in replicas.envs:
        log = e.stack.workdir / "envoy.log"
        while f"{REPLICAS} Envoy replicas share each caller's limits" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"{log} never saw the replica count"
            time.sleep(0.05)
    away_from_window_edge()
    jobs = [e for e in replicas.envs for _ in range(PER_REPLICA)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        statuses = list(pool.map(lambda e: e.chat("rl-model", key)[0], jobs))
    per_replica = [statuses[i * PER_REPLICA:(i + 1) * PER_REPLICA] for i in range(REPLICAS)]
    admitted = [s.count(200) for s in per_replica]
    assert set(statuses) <= {200, 429}, statuses
    total = sum(admitted)
    overshoot = total - LIMIT
    print(f"\n{REPLICAS} replicas, rpm={LIMIT}, {PER_REPLICA} concurrent requests each: admitted {admitted} "
          f"= {total} ({overshoot} over the limit, {total / LIMIT:.1f}x)")
    share = math.ceil(LIMIT / REPLICAS)
    # ADR 0008's bound with shares: at most N x ceil(limit / N) <= limit + N - 1 per window.
    assert total <= LIMIT + REPLICAS - 1
    # Each replica enforces its share exactly when offered more than it.
    assert admitted == [share] * REPLICAS
