"""Budgets end to end (ADR 0008, "Budgets"): a virtual key whose daily budget covers 10 replayed
responses, 50 concurrent requests through a real Envoy with two workers, the real control plane
recording the spend. Reservations (estimate ≥ actual cost) are taken before the call and
released after it, whatever happened, so the committed spend can never pass the budget.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
from conftest import WASM
from test_control_plane import WATCH_TOKEN, Env
from test_usage import CASSETTES, UsageEnv, pusd_per_token, recorded_usage, wait_until_served

MODEL = "budget-model"
TARGET = "budget-target"
PROVIDER = "openai-budget"
FIXTURE = "openai/chat-basic.yaml"
STREAM_FIXTURE = "openai/chat-streaming-detailed-usage.yaml"
INPUT_PER_MTOK, OUTPUT_PER_MTOK = 2.5, 10.0
PIN, POUT = pusd_per_token(INPUT_PER_MTOK), pusd_per_token(OUTPUT_PER_MTOK)


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsageEnv]:
    workdir = tmp_path_factory.mktemp("budgets")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    running = stack_mod.start_stack(
        workdir, {"version": 1, "providers": [], "routes": []}, replay_clusters=["replay_openai"],
        envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN}, wasm=Path(os.environ.get("GATEWAY_WASM", WASM)),
        fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2, log_level="info",
        control_plane=f"http://127.0.0.1:{grpc_port}")
    e = UsageEnv(workdir, running, grpc_port, rest_port)
    e.start_cp()
    e.api("POST", "/v1/providers", {"name": PROVIDER, "kind": "openai", "cluster": "replay_openai"}, expect=201)
    e.api("POST", "/v1/routes", {"model": MODEL, "targets": [{"provider": PROVIDER, "model": TARGET}]}, expect=201)
    e.api("POST", "/v1/prices", {"provider": PROVIDER, "model": TARGET, "input_per_mtok": INPUT_PER_MTOK,
                                 "output_per_mtok": OUTPUT_PER_MTOK}, expect=201)
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def request_body(prompt_tokens: int, max_tokens: int) -> bytes:
    """A chat request whose byte length gives an input estimate (bytes / 3) of at least
    `prompt_tokens`, so the reservation covers the recorded usage."""
    return json.dumps({"model": MODEL, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "x" * (3 * prompt_tokens)}]}).encode()


def estimate(body: bytes, max_tokens: int) -> int:
    """The filter's reservation (gateway_core::accounting::estimate_pusd) for one target."""
    return math.ceil(len(body) / 3) * PIN + max_tokens * POUT


def post(env: Env, key: str, body: bytes, path: str = "/v1/chat/completions", **headers: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", env.stack.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json", "authorization": f"Bearer {key}",
                                                       "x-replay-fixture": FIXTURE, "x-replay-interaction": "0", **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def spent(env: UsageEnv, name: str) -> tuple[int, int]:
    rows = env.usage(name)
    return sum(r["requests"] for r in rows), sum(r["cost_pusd"] for r in rows)


def test_fifty_concurrent_requests_on_a_budget_for_ten(env: UsageEnv) -> None:
    from anthropic import Anthropic, RateLimitError as AnthropicRateLimitError
    from openai import OpenAI, RateLimitError

    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    cost = prompt * PIN + completion * POUT  # what one replayed response really costs
    limit_pusd = 10 * cost
    limit_usd = limit_pusd / 10**12
    assert round(limit_usd * 10**12) == limit_pusd, "the budget must be exactly ten responses"
    body = request_body(prompt, completion)
    per_request = estimate(body, completion)
    assert cost <= per_request < 2 * cost, (cost, per_request)

    name = "budget-ten"
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": [MODEL],
                                          "budget": {"limit_usd": limit_usd, "period": "day"}}, expect=201)
    key = doc["secret"]
    env.secrets.append(key)
    wait_until_served(env, key, MODEL)

    # A request whose estimate alone exceeds the budget never reaches the provider.
    client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
    with pytest.raises(RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=10**6,
                                       extra_headers={"x-replay-fixture": FIXTURE})
    assert refused.value.status_code == 429
    assert refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"

    messages = json.loads(body)["messages"]

    def one(_: int) -> Any:
        c = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
        try:
            r = c.chat.completions.create(model=MODEL, messages=messages, max_tokens=completion,
                                          extra_headers={"x-replay-fixture": FIXTURE, "x-replay-interaction": "0"})
            return (r.usage.prompt_tokens, r.usage.completion_tokens)
        except RateLimitError as err:
            return err

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    ok = [r for r in results if isinstance(r, tuple)]
    refusals = [r for r in results if isinstance(r, RateLimitError)]
    print(f"\nbudget for 10: {len(ok)} of 50 succeeded, {len(refusals)} refused (estimate {per_request} pUSD, cost {cost} pUSD)")
    assert len(ok) + len(refusals) == 50
    assert 1 <= len(ok) <= 10, len(ok)
    for err in refusals:
        assert (err.status_code, err.code, err.type) == (429, "insufficient_quota", "insufficient_quota"), err.body
    assert all(u == (prompt, completion) for u in ok)

    # The recorded spend is exactly the usage of the successful responses times the price.
    expected_spend = sum(p * PIN + c * POUT for p, c in ok)
    env.wait_usage(name, len(ok))
    assert spent(env, name) == (len(ok), expected_spend)
    assert expected_spend <= limit_pusd

    # Sequentially until refused: every reservation was released, so the refusal comes exactly
    # when the spend so far plus one estimate no longer fits.
    for _ in range(12):
        status, raw = post(env, key, body)
        if status == 429:
            err = json.loads(raw)["error"]
            assert (err["type"], err["code"]) == ("insufficient_quota", "insufficient_quota"), err
            break
        assert status == 200, raw[:300]
    else:
        pytest.fail("the budget never ran out")
    time.sleep(2.5)  # the last responses' usage reaches the control plane
    _, total = spent(env, name)
    assert total <= limit_pusd, (total, limit_pusd)
    assert total + per_request > limit_pusd, f"refused with {limit_pusd - total} pUSD left for a {per_request} pUSD estimate: a reservation leaked"

    # Anthropic's shape on /v1/messages.
    anthropic = Anthropic(base_url=env.stack.base_url, api_key=key, max_retries=0, timeout=30)
    with pytest.raises(AnthropicRateLimitError) as a_refused:
        anthropic.messages.create(model=MODEL, max_tokens=10**6, messages=[{"role": "user", "content": "hi"}],
                                  extra_headers={"x-replay-fixture": FIXTURE})
    assert a_refused.value.status_code == 429
    assert a_refused.value.body["type"] == "error"
    assert a_refused.value.body["error"]["type"] == "rate_limit_error"
    assert "budget" in a_refused.value.body["error"]["message"]


def test_a_client_that_hangs_up_mid_stream_gives_its_reservation_back(env: UsageEnv) -> None:
    """The budget holds exactly one reservation. A streamed request takes it, the client hangs up
    after the first bytes; the next request must fit again (the stream's usage arrives in its
    last chunk, which was never read, so it cost nothing)."""
    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    body = request_body(prompt, completion)
    stream_body = json.dumps({**json.loads(body), "stream": True, "stream_options": {"include_usage": True}}).encode()
    limit_pusd = estimate(stream_body, completion)
    name = "budget-hang-up"
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": [MODEL],
                                          "budget": {"limit_usd": limit_pusd / 10**12, "period": "day"}}, expect=201)
    key = doc["secret"]
    env.secrets.append(key)
    wait_until_served(env, key, MODEL)

    conn = http.client.HTTPConnection("127.0.0.1", env.stack.port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=stream_body,
                 headers={"content-type": "application/json", "authorization": f"Bearer {key}",
                          "x-replay-fixture": STREAM_FIXTURE, "x-replay-chunk-delay": "0.5"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read1(64), "the stream started"
    # While the stream holds the whole budget, nothing else fits.
    status, raw = post(env, key, body)
    assert status == 429 and json.loads(raw)["error"]["code"] == "insufficient_quota", raw[:300]
    assert conn.sock is not None
    conn.sock.close()
    conn.close()

    deadline = time.monotonic() + 5
    while True:
        status, raw = post(env, key, body)
        if status == 200:
            break
        assert time.monotonic() < deadline, f"the hung-up stream's reservation was never released: {raw[:300]!r}"
        time.sleep(0.1)


# --- JWT clients, from the bootstrap config alone (no control plane) ------------------------------

JWT_CLIENT = "svc-budget"


class JwtEnv:
    def __init__(self, stack: stack_mod.Stack, token: str, limit_pusd: int, cost: int):
        self.stack, self.token, self.limit_pusd, self.cost = stack, token, limit_pusd, cost


@pytest.fixture(scope="module")
def jwt_env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JwtEnv]:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl command not found")
    from test_jwt import ISSUER, KID, Signer, cognito_claims

    workdir = tmp_path_factory.mktemp("budgets-jwt")
    signer = Signer(workdir / "issuer.pem", KID)
    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    cost = prompt * PIN + completion * POUT
    limit_pusd = 10 * cost
    config = {
        "version": 1,
        "providers": [{"name": PROVIDER, "kind": "openai", "cluster": "replay_openai"}],
        "routes": [{"model": MODEL, "targets": [{"provider": PROVIDER, "model": TARGET}]}],
        "prices": [{"provider": PROVIDER, "model": TARGET, "input_per_mtok": INPUT_PER_MTOK, "output_per_mtok": OUTPUT_PER_MTOK}],
        "auth": {"jwt": {
            "issuer": ISSUER,
            "jwks": {"local": json.dumps({"keys": [signer.jwk]})},
            "client_ids": [JWT_CLIENT],
            "scopes": {"gateway/all": ["*"]},
            "limits": {JWT_CLIENT: {"budget": {"limit_usd": limit_pusd / 10**12, "period": "day"}}},
        }},
    }
    running = stack_mod.start_stack(
        workdir, config, replay_clusters=["replay_openai"], wasm=Path(os.environ.get("GATEWAY_WASM", WASM)),
        fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2, log_level="info")
    yield JwtEnv(running, signer.token(cognito_claims(JWT_CLIENT, "gateway/all")), limit_pusd, cost)
    running.stop()


def test_a_jwt_clients_budget_holds_under_concurrency_without_a_control_plane(jwt_env: JwtEnv) -> None:
    """`auth.jwt.limits.<client>.budget` and the bootstrap `prices`: the same reservations, per
    Envoy, with no control plane to report to."""
    from openai import OpenAI, RateLimitError

    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    body = request_body(prompt, completion)
    per_request = estimate(body, completion)
    messages = json.loads(body)["messages"]

    def one(_: int) -> Any:
        c = OpenAI(base_url=f"{jwt_env.stack.base_url}/v1", api_key=jwt_env.token, max_retries=0, timeout=30)
        try:
            r = c.chat.completions.create(model=MODEL, messages=messages, max_tokens=completion,
                                          extra_headers={"x-replay-fixture": FIXTURE, "x-replay-interaction": "0"})
            return (r.usage.prompt_tokens, r.usage.completion_tokens)
        except RateLimitError as err:
            return err

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    ok = [r for r in results if isinstance(r, tuple)]
    refusals = [r for r in results if isinstance(r, RateLimitError)]
    print(f"\njwt budget for 10: {len(ok)} of 50 succeeded")
    assert len(ok) + len(refusals) == 50
    assert 1 <= len(ok) <= 10, len(ok)
    assert all(e.code == "insufficient_quota" for e in refusals)

    spend = sum(p * PIN + c * POUT for p, c in ok)
    for _ in range(12):
        status, raw = post(jwt_env, jwt_env.token, body)  # type: ignore[arg-type]
        if status == 429:
            assert json.loads(raw)["error"]["code"] == "insufficient_quota"
            break
        assert status == 200, raw[:300]
        usage = json.loads(raw)["usage"]
        spend += usage["prompt_tokens"] * PIN + usage["completion_tokens"] * POUT
    else:
        pytest.fail("the budget never ran out")
    assert spend <= jwt_env.limit_pusd
    assert spend + per_request > jwt_env.limit_pusd, "refused with room for one more estimate: a reservation leaked"


# --- two Envoy replicas, one control plane ---------------------------------------------------------

REPLICAS = 2


@pytest.fixture(scope="module")
def replicas(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[UsageEnv]]:
    workdir = tmp_path_factory.mktemp("budgets-replicas")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    stacks: list[stack_mod.Stack] = []
    envs: list[UsageEnv] = []
    try:
        for i in range(REPLICAS):
            # Separate processes (own --base-id): separate shared memory, as separate hosts.
            stacks.append(stack_mod.start_stack(
                workdir / f"envoy-{i}", {"version": 1, "providers": [], "routes": []}, replay_clusters=["replay_openai"],
                envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN}, wasm=Path(os.environ.get("GATEWAY_WASM", WASM)),
                fixtures=fixtures_dir, chunk_delay=0.002, concurrency=2, log_level="info",
                control_plane=f"http://127.0.0.1:{grpc_port}"))
        envs = [UsageEnv(workdir, s, grpc_port, rest_port) for s in stacks]
        envs[0].start_cp()
        for e in envs[1:]:
            e.cp = envs[0].cp
        first = envs[0]
        first.api("POST", "/v1/providers", {"name": PROVIDER, "kind": "openai", "cluster": "replay_openai"}, expect=201)
        first.api("POST", "/v1/routes", {"model": MODEL, "targets": [{"provider": PROVIDER, "model": TARGET}]}, expect=201)
        first.api("POST", "/v1/prices", {"provider": PROVIDER, "model": TARGET, "input_per_mtok": INPUT_PER_MTOK,
                                         "output_per_mtok": OUTPUT_PER_MTOK}, expect=201)
        yield envs
    finally:
        if envs and envs[0].cp is not None:
            envs[0].cp.proc.stop()
        for s in stacks:
            s.stop()


def test_two_replicas_stay_within_the_documented_bound_and_converge(replicas: list[UsageEnv]) -> None:
    """ADR 0008 "Error bound": each replica may overspend by what the other spent but had not
    flushed and acknowledged yet, so a cold burst split over R replicas stays within R x limit;
    the recorded spend is still exactly the sum of the successful responses, and once the acks
    carried every replica's spend, both refuse what the global budget cannot cover."""
    from openai import OpenAI, RateLimitError

    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    cost = prompt * PIN + completion * POUT
    limit_pusd = 10 * cost
    body = request_body(prompt, completion)
    per_request = estimate(body, completion)
    first = replicas[0]
    name = "budget-replicas"
    _, doc = first.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": [MODEL],
                                            "budget": {"limit_usd": limit_pusd / 10**12, "period": "day"}}, expect=201)
    key = doc["secret"]
    for e in replicas:
        e.secrets.append(key)
        wait_until_served(e, key, MODEL)
    messages = json.loads(body)["messages"]

    def one(i: int) -> Any:
        env = replicas[i % REPLICAS]
        c = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
        try:
            r = c.chat.completions.create(model=MODEL, messages=messages, max_tokens=completion,
                                          extra_headers={"x-replay-fixture": FIXTURE, "x-replay-interaction": "0"})
            return (r.usage.prompt_tokens, r.usage.completion_tokens)
        except RateLimitError as err:
            assert err.code == "insufficient_quota"
            return None

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    ok = [r for r in results if r is not None]
    spend = sum(p * PIN + c * POUT for p, c in ok)
    print(f"\nbudget for 10 on {REPLICAS} replicas: {len(ok)} of 50 succeeded, spend {spend / limit_pusd:.2f} x the budget")
    assert 1 <= len(ok) <= REPLICAS * 10, len(ok)
    assert spend <= REPLICAS * limit_pusd
    first.wait_usage(name, len(ok))
    assert spent(first, name) == (len(ok), spend)

    # Every replica refreshes a budgeted caller's spend at least every 5 s (BASELINE_REFRESH_MS).
    time.sleep(6.5)
    for env in replicas:
        _, total = spent(first, name)
        status, raw = post(env, key, body)
        expected = 200 if total + per_request <= limit_pusd else 429
        assert status == expected, f"spend {total} of {limit_pusd} pUSD, estimate {per_request}: {raw[:300]!r}"
        if status == 200:
            time.sleep(6.5)


def test_a_restarted_envoy_knows_the_spend_before_the_first_request(env: UsageEnv) -> None:
    """Shared data dies with Envoy. The singleton asks the control plane for the spend of every
    budgeted key of the snapshot it publishes, so after a restart the first request is already
    measured against what was spent before (ADR 0008, "Cold start")."""
    prompt, completion = recorded_usage(CASSETTES[FIXTURE].interactions[0])
    cost = prompt * PIN + completion * POUT
    body = request_body(prompt, completion)
    per_request = estimate(body, completion)
    limit_pusd = per_request + cost // 2  # one request fits, a second one does not
    name = "budget-restart"
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": [MODEL],
                                          "budget": {"limit_usd": limit_pusd / 10**12, "period": "day"}}, expect=201)
    key = doc["secret"]
    env.secrets.append(key)
    wait_until_served(env, key, MODEL)
    status, raw = post(env, key, body)
    assert status == 200, raw[:300]
    env.wait_usage(name, 1)
    status, raw = post(env, key, body)
    assert status == 429, raw[:300]

    # Restart Envoy alone (same bootstrap, ports and base id); the control plane keeps running.
    envoy = env.stack.procs.pop()
    envoy.stop()
    restarted = stack_mod.start_envoy(env.stack.workdir / "envoy.yaml", env.stack.admin_port, env.stack.workdir / "envoy-restarted.log",
                                      env={**os.environ, stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN}, base_id=env.stack.port,
                                      concurrency=2, log_level="info")
    env.stack.procs.append(restarted)
    wait_until_served(env, key, MODEL)
    time.sleep(1.0)  # the singleton's first batch asks for the spend; its ack lands in shared data
    status, raw = post(env, key, body)
    assert status == 429, f"a restarted Envoy forgot the spend: {raw[:300]!r}"
    assert json.loads(raw)["error"]["code"] == "insufficient_quota"
