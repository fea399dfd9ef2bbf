"""The machine-to-machine flow against a Cognito-compatible issuer (ADR 0004, issue 6).

ministack (a local AWS emulator, its own venv `.venv-ministack`, created by `./dev e2e`) plays
Cognito: the test creates a user pool, a resource server `gateway` with the scopes `chat` and
`other` and confidential app clients with boto3's `cognito-idp` client, the way one would in AWS.
Tokens come from `POST /oauth2/token` with `grant_type=client_credentials` and HTTP Basic client
authentication, exactly what a service does against Cognito's token endpoint. Envoy fetches the
pool's JWKS from ministack itself (`remote` JWKS over plain http) and checks the `iss` claim, which
ministack sets to the AWS URL `https://cognito-idp.<region>.amazonaws.com/<pool id>`.

How "expired" is made real: ministack honours the app client's `AccessTokenValidity` and
`TokenValidityUnits` (it does not enforce AWS's five-minute minimum), so one client gets one-second
access tokens. The test shows such a token is accepted while it is fresh and refused with the
same bytes once Envoy's own clock is past `exp` plus the 30 s clock skew envoy/render.py
configures. That costs about half a minute of waiting, overlapped with the other tests, but the
token is ministack's own and only time changes. The alternatives were worse: ministack has no
clock control, and re-signing our own claims with the pool key it keeps in STATE_DIR would test
our minting instead of ministack's.

ministack runs as a subprocess owned by the module fixture, on 127.0.0.1 and a free port, with
its state in the test's temporary directory; if it cannot start the tests fail, they never skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

import stack as stack_mod
from conftest import GPT, GPT_UPSTREAM, OPENAI_KEY, REPO, assert_openai_error, replay_headers

MINISTACK_VENV = Path(os.environ.get("MINISTACK_VENV", REPO / ".venv-ministack"))
REGION = "eu-west-1"
RESOURCE_SERVER = "gateway"
CHAT_SCOPE = f"{RESOURCE_SERVER}/chat"
OTHER_SCOPE = f"{RESOURCE_SERVER}/other"
OTHER_MODEL = "other-model-ministack"
RECORDING = ("openai/chat-basic.yaml", 0)
# envoy/render.py's jwt_authn clock_skew_seconds.
ENVOY_CLOCK_SKEW = 30


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split(".")[1]))


# --- ministack --------------------------------------------------------------------------------

@dataclass
class Ministack:
    proc: stack_mod.Proc
    url: str


def start_ministack(workdir: Path, timeout: float = 30.0) -> Ministack:
    """ministack on 127.0.0.1 and a free port; raises (never skips) when it does not come up."""
    binary = MINISTACK_VENV / "bin" / "ministack"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: `./dev e2e` creates {MINISTACK_VENV.name} from requirements-ministack.txt")
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    last = ""
    for _ in range(3):  # a port picked as free can be taken before ministack binds it
        port = stack_mod.free_port()
        env = dict(os.environ,
                   BIND_HOST="127.0.0.1", GATEWAY_PORT=str(port),
                   # Its signing keys live here: per test run, not in a shared /tmp/ministack-state.
                   STATE_DIR=str(workdir / "state"), PERSIST_STATE="0",
                   # Else it also opens an IoT mTLS listener on 0.0.0.0:8883.
                   IOT_MTLS_ENABLED="0",
                   TMPDIR=str(workdir / "tmp"))  # its pid file
        proc = stack_mod.spawn("ministack", [str(binary)], workdir / "ministack.log", env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.alive():
            with contextlib.suppress(OSError):
                if stack_mod.http_get(f"{url}/_ministack/ready", timeout=2)[0] == 200:
                    return Ministack(proc, url)
            time.sleep(0.05)
        last = proc.log_tail(4000)
        proc.stop()
    raise RuntimeError(f"ministack did not come up:\n{last}")


def post_form(url: str, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
    """A form POST without proxies, as a service calls Cognito's token endpoint."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if basic:
        # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        user, password = (urllib.parse.quote_plus(p) for p in basic)
        headers["authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@dataclass
class AppClient:
    client_id: str
    secret: str


class Cognito:
    """A user pool in ministack, its resource server and app clients, created with boto3."""

    def __init__(self, ministack: Ministack):
        import boto3

        self.ministack = ministack
        self.idp = boto3.client("cognito-idp", endpoint_url=ministack.url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test")

    def pool(self, name: str) -> str:
        pool_id = self.idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
        self.idp.create_resource_server(
            UserPoolId=pool_id, Identifier=RESOURCE_SERVER, Name="AI gateway",
            Scopes=[{"ScopeName": "chat", "ScopeDescription": "chat models"},
                    {"ScopeName": "other", "ScopeDescription": "the other model"}])
        return pool_id

    def app_client(self, pool_id: str, name: str, scopes: list[str], **validity: Any) -> AppClient:
        created = self.idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=name, GenerateSecret=True,
            AllowedOAuthFlows=["client_credentials"], AllowedOAuthScopes=scopes,
            AllowedOAuthFlowsUserPoolClient=True, **validity)["UserPoolClient"]
        return AppClient(created["ClientId"], created["ClientSecret"])

    def token_response(self, client: AppClient, scope: str | None = None, secret: str | None = None) -> tuple[int, dict[str, Any]]:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        return post_form(f"{self.ministack.url}/oauth2/token", form, (client.client_id, secret or client.secret))

    def token(self, client: AppClient, scope: str | None = None) -> str:
        status, doc = self.token_response(client, scope)
        assert status == 200, doc
        assert doc["token_type"] == "Bearer", doc
        return doc["access_token"]

    def jwks_url(self, pool_id: str) -> str:
        return f"{self.ministack.url}/{pool_id}/.well-known/jwks.json"


# --- the stack --------------------------------------------------------------------------------

@dataclass
class Env:
    cognito: Cognito
    stack: stack_mod.Stack
    pool_id: str
    chat: AppClient
    other: AppClient
    stranger_token: str  # a valid token of another user pool
    short_token: str  # one-second lifetime
    short_token_fresh: tuple[int, bytes]  # the gateway's answer to it right after issue

    def upstream_requests(self, test_id: str) -> list[dict[str, Any]]:
        status, body = stack_mod.http_get(f"{self.stack.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
        assert status == 200
        return json.loads(body)

    def sdk(self, token: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.stack.base_url}/v1", api_key=token, max_retries=0, timeout=30)

    def raw_post(self, token: str, test_id: str, model: str = GPT) -> tuple[int, bytes]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions",
                         body=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
                         headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                                  **replay_headers(test_id)})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def wait_for_jwks(stack: stack_mod.Stack, timeout: float = 15.0) -> None:
    """Envoy fetches the JWKS asynchronously at start-up; wait until it has it from ministack."""
    deadline = time.monotonic() + timeout
    stats = ""
    while time.monotonic() < deadline:
        status, body = stack_mod.http_get(f"{stack.admin_url}/stats?filter=jwks_fetch", timeout=2)
        stats = body.decode("utf-8", "replace")
        for line in stats.splitlines():
            name, _, value = line.partition(": ")
            if status == 200 and name.endswith("jwks_fetch_success") and value.strip().isdigit() and int(value) > 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Envoy did not fetch the JWKS from ministack in {timeout}s:\n{stats}")


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("cognito-ministack")
    ministack = start_ministack(workdir)
    stack = None
    try:
        cognito = Cognito(ministack)
        pool_id = cognito.pool("ai-gateway")
        chat = cognito.app_client(pool_id, "svc-chat", [CHAT_SCOPE])
        other = cognito.app_client(pool_id, "svc-other", [OTHER_SCOPE])
        short = cognito.app_client(pool_id, "svc-short", [CHAT_SCOPE],
                                   AccessTokenValidity=1, TokenValidityUnits={"AccessToken": "seconds"})
        # Fetched first, so waiting for it to expire overlaps everything else.
        short_token = cognito.token(short, CHAT_SCOPE)
        stranger_pool = cognito.pool("someone-else")
        stranger = cognito.app_client(stranger_pool, "svc-chat", [CHAT_SCOPE])
        stranger_token = cognito.token(stranger, CHAT_SCOPE)

        # The gateway trusts exactly the issuer ministack puts in its tokens.
        issuer = claims_of(cognito.token(chat, CHAT_SCOPE))["iss"]
        config = {
            "version": 1,
            "providers": [{"name": "openai-replay", "kind": "openai", "cluster": "replay_openai",
                           "credential": {"env": "E2E_OPENAI_KEY"}}],
            "routes": [{"model": GPT, "targets": [{"provider": "openai-replay", "model": GPT_UPSTREAM}]},
                       {"model": OTHER_MODEL, "targets": [{"provider": "openai-replay", "model": GPT_UPSTREAM}]}],
            "auth": {"jwt": {
                "issuer": issuer,
                "jwks": {"remote": {"uri": cognito.jwks_url(pool_id)}},
                "client_ids": [chat.client_id, other.client_id, short.client_id],
                "scopes": {CHAT_SCOPE: [GPT], OTHER_SCOPE: [OTHER_MODEL]},
            }},
        }
        stack = stack_mod.start_stack(
            workdir, config, replay_clusters=["replay_openai"], envoy_env={"E2E_OPENAI_KEY": OPENAI_KEY},
            wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
            chunk_delay=0.002, replay_keys={"openai": OPENAI_KEY}, concurrency=2, log_level="info")
        print(f"\ncognito e2e: ministack {ministack.url}, envoy {stack.base_url}, logs in {workdir}")
        wait_for_jwks(stack)
        if time.time() > claims_of(short_token)["exp"] + ENVOY_CLOCK_SKEW - 10:
            # A slow start-up (a loaded machine) ate the head start: a fresh one-second token.
            short_token = cognito.token(short, CHAT_SCOPE)
        running = Env(cognito, stack, pool_id, chat, other, stranger_token, short_token, (0, b""))
        running.short_token_fresh = running.raw_post(short_token, uuid.uuid4().hex)
        yield running
    finally:
        if stack is not None:
            stack.stop()
        ministack.proc.stop()


# --- tests ------------------------------------------------------------------------------------

def test_ministack_issues_cognito_shaped_client_credentials_tokens(env: Env) -> None:
    status, doc = env.cognito.token_response(env.chat, CHAT_SCOPE)
    assert status == 200, doc
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3600, doc
    head, payload, signature = doc["access_token"].split(".")
    header, claims = json.loads(b64url_decode(head)), json.loads(b64url_decode(payload))
    assert header["alg"] == "RS256" and signature
    assert claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{env.pool_id}"
    assert claims["client_id"] == claims["sub"] == env.chat.client_id
    assert claims["token_use"] == "access" and claims["scope"] == CHAT_SCOPE and "aud" not in claims
    assert claims["exp"] - claims["iat"] == 3600
    # The key that signed it is in the JWKS Envoy fetches.
    status, body = stack_mod.http_get(env.cognito.jwks_url(env.pool_id), timeout=5)
    assert status == 200 and header["kid"] in {k["kid"] for k in json.loads(body)["keys"]}
    # No scope asked for: every scope the client is allowed.
    assert claims_of(env.cognito.token(env.chat))["scope"] == CHAT_SCOPE
    # A wrong secret gets no token.
    status, doc = env.cognito.token_response(env.chat, CHAT_SCOPE, secret="wrong-secret")
    assert status >= 400 and "access_token" not in doc, doc


def test_token_with_the_scope_gets_the_recorded_completion(env: Env, cassettes: dict[str, Any]) -> None:
    name, index = RECORDING
    interaction = cassettes[name].interactions[index]
    recorded = json.loads(interaction.body)
    token = env.cognito.token(env.chat, CHAT_SCOPE)
    test_id = uuid.uuid4().hex
    raw = env.sdk(token).chat.completions.with_raw_response.create(
        model=GPT, messages=interaction.request_body["messages"], extra_headers=replay_headers(test_id, name, index))
    assert raw.http_response.status_code == 200
    assert raw.http_response.content == interaction.body
    completion = raw.parse()
    assert completion.choices[0].message.content == recorded["choices"][0]["message"]["content"]
    [received] = env.upstream_requests(test_id)
    # The provider gets the gateway's key, never the caller's token.
    assert received["headers"].get("authorization") == f"Bearer {OPENAI_KEY}"
    assert token not in json.dumps(received["headers"]) and token.split(".")[2] not in received["body"]
    assert received["json"]["model"] == GPT_UPSTREAM


def test_token_without_the_scope_is_403_model_not_allowed(env: Env) -> None:
    token = env.cognito.token(env.other, OTHER_SCOPE)
    test_id = uuid.uuid4().hex
    with pytest.raises(openai.PermissionDeniedError) as err:
        env.sdk(token).chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                               extra_headers=replay_headers(test_id))
    error = assert_openai_error(err.value.status_code, err.value.response.content, 403, "model_not_allowed")
    assert error["type"] == "permission_error" and error["param"] == "model"
    assert env.upstream_requests(test_id) == []
    # The same token calls what its scope grants, so the 403 is the scope policy and nothing else.
    test_id = uuid.uuid4().hex
    reply = env.sdk(token).chat.completions.create(model=OTHER_MODEL, messages=[{"role": "user", "content": "hi"}],
                                                   extra_headers=replay_headers(test_id))
    assert reply.choices[0].message.content
    assert len(env.upstream_requests(test_id)) == 1


def tampered(token: str) -> str:
    """One payload byte flipped (a letter of `client_id` changes case): still valid JSON, bad signature."""
    head, payload, sig = token.split(".")
    raw = bytearray(b64url_decode(payload))
    at = raw.index(b'"client_id": "') + len(b'"client_id": "')
    raw[at] ^= 0x20 if chr(raw[at]).isalpha() else 0x01
    claims = json.loads(raw)  # the forgery parses: only the signature can reveal it
    assert claims["client_id"] != claims_of(token)["client_id"]
    return f"{head}.{b64url(bytes(raw))}.{sig}"


@pytest.mark.parametrize("case", ["tampered", "wrong_user_pool", "missing"])
def test_rejected_callers_are_401_before_any_upstream(env: Env, case: str) -> None:
    good = env.cognito.token(env.chat, CHAT_SCOPE)
    test_id = uuid.uuid4().hex
    if case == "tampered":
        client, headers, code = env.sdk(tampered(good)), replay_headers(test_id), "invalid_token"
    elif case == "wrong_user_pool":
        # Signed by ministack with the other pool's key and carrying that pool's issuer.
        assert claims_of(env.stranger_token)["iss"] != claims_of(good)["iss"]
        client, headers, code = env.sdk(env.stranger_token), replay_headers(test_id), "invalid_token"
    else:
        # The SDK's own Authorization header removed: no credential at all.
        client = env.sdk("unused")
        headers, code = {**replay_headers(test_id), "Authorization": openai.omit}, "missing_api_key"
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}], extra_headers=headers)
    error = assert_openai_error(err.value.status_code, err.value.response.content, 401, code)
    assert error["type"] == "authentication_error"
    assert env.upstream_requests(test_id) == [], f"{case} reached the upstream"


def test_expired_token_is_401_and_was_accepted_while_fresh(env: Env) -> None:
    token = env.short_token
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 1, claims
    # Accepted right after issue (within Envoy's clock skew): the token itself is good.
    status, body = env.short_token_fresh
    assert status == 200, body[:300]
    # Then the same bytes once Envoy's clock is past exp + skew.
    time.sleep(max(0.0, claims["exp"] + ENVOY_CLOCK_SKEW + 2 - time.time()))
    test_id = uuid.uuid4().hex
    with pytest.raises(openai.AuthenticationError) as err:
        env.sdk(token).chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                               extra_headers=replay_headers(test_id))
    error = assert_openai_error(err.value.status_code, err.value.response.content, 401, "invalid_token")
    assert error["type"] == "authentication_error"
    assert env.upstream_requests(test_id) == []
