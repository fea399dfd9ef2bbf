"""Every recorded Bedrock exchange, replayed behind the gateway and called with the OpenAI SDK.

The replay upstream plays Bedrock Runtime: it recomputes the SigV4 signature of every request
with the test credentials (temporary ones, so the session token must be sent and signed) and
rejects a wrong one with AWS's 403, checks the Converse body the way Bedrock would, and answers
with the recording: JSON, or the binary event stream cut into chunks. The tests check that the
SDK sees the recording's text, reasoning, tool calls, finish reason and tokens, and that the
provider received the recorded Converse request (path, model id, body) signed for us-east-1.

This module runs its own stack: the Bedrock cluster's endpoint hostname must be the AWS host
name (`bedrock-runtime.us-east-1.amazonaws.com`, sent as Host by auto_host_rewrite and covered
by the signature) while its address is the local replay.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

import recordings
import stack as stack_mod
from conftest import CLIENT_KEY, FIXTURES, WASM, Upstream, replay_headers

REGION = "us-east-1"
AWS_HOST = f"bedrock-runtime.{REGION}.amazonaws.com"
ACCESS_KEY_ID = "AKIDE2EBEDROCK0001"
SECRET_ACCESS_KEY = "e2e/Bedrock+Secret/0123456789abcdefghij"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE2E-session-token-for-e2e"
BAD_KEY_MODEL = "bedrock-bad-key"

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
CASES = [
    (name, index, interaction)
    for name, cassette in sorted(CASSETTES.items())
    if name.startswith("bedrock/")
    for index, interaction in enumerate(cassette.interactions)
    # count-tokens recordings are another Bedrock API, which the gateway does not serve.
    if interaction.path.endswith(("/converse", "/converse-stream"))
]
JSON_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and not x.is_stream]
STREAM_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status == 200 and x.is_stream]
SIMPLE_CASE = "bedrock/test_bedrock_model.yaml"  # one text answer, for the tests about something else
ERROR_CASES = [pytest.param(n, i, x, id=f"{n}#{i}") for n, i, x in CASES if x.status != 200]


def model_id(interaction) -> str:
    """The Bedrock model id of a recorded `/model/{id}/converse[-stream]` path."""
    from urllib.parse import unquote

    return unquote(interaction.path.split("/")[2])


def public_model(interaction) -> str:
    return f"bedrock-e2e/{model_id(interaction)}"


def gateway_config() -> dict[str, Any]:
    aws = {"access_key_id_env": "E2E_AWS_ACCESS_KEY_ID", "secret_access_key_env": "E2E_AWS_SECRET_ACCESS_KEY",
           "session_token_env": "E2E_AWS_SESSION_TOKEN"}
    bad = dict(aws, secret_access_key_env="E2E_AWS_WRONG_SECRET")
    # These recordings are Converse exchanges, Claude's included: InvokeModel (the default for
    # Claude ids) has its own tests (test_anthropic_bedrock_invoke.py).
    settings = {"bedrock": {"region": REGION, "api": "converse"}}
    models = sorted({model_id(x) for _n, _i, x in CASES})
    return {
        "version": 1,
        "providers": [
            {"name": "bedrock-replay", "kind": "bedrock", "cluster": "replay_bedrock", "credential": {"aws": aws}, "settings": settings},
            {"name": "bedrock-wrong-secret", "kind": "bedrock", "cluster": "replay_bedrock_wrong", "credential": {"aws": bad},
             "settings": settings},
        ],
        "routes": [{"model": f"bedrock-e2e/{m}", "targets": [{"provider": "bedrock-replay", "model": m}]} for m in models]
        + [{"model": BAD_KEY_MODEL, "targets": [{"provider": "bedrock-wrong-secret", "model": "us.amazon.nova-micro-v1:0"}]},
           {"model": "titan-embed", "targets": [{"provider": "bedrock-replay", "model": TITAN_MODEL}]}],
        "defaults": {"max_tokens": 4096},
    }


# --- synthetic event streams: what the recordings do not show --------------------------------

def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers and valid CRCs."""
    raw = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode() for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(raw) + len(payload), len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"}, json.dumps(payload).encode())


START = event("messageStart", {"role": "assistant"})
HELLO = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}})
SYNTHETIC_STREAMS = {
    # Bedrock reports throttling, validation and model failures inside a 200 stream.
    "throttled": START + HELLO + frame({":exception-type": "throttlingException", ":content-type": "application/json",
                                         ":message-type": "exception"}, b'{"message":"Too many tokens, please wait before trying again."}'),
    "bad_crc": START + HELLO[:-1] + bytes([HELLO[-1] ^ 0xFF]) + event("messageStop", {"stopReason": "end_turn"}),
    "truncated": START + HELLO + event("messageStop", {"stopReason": "end_turn"})[:20],
    "bad_json": START + frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b'{"contentBlockIndex":0,"delta":{"te'),
}


# A Titan text embeddings answer in the shape Bedrock documents (no recording exists): 256 values.
TITAN_MODEL = "amazon.titan-embed-text-v2:0"
TITAN_VALUES = [round(((i * 37) % 101 - 50) / 1000.0, 6) for i in range(256)]
TITAN_RESPONSE = {"embedding": TITAN_VALUES, "embeddingsByType": {"float": TITAN_VALUES}, "inputTextTokenCount": 7}


def synthetic_fixtures(root: Path) -> None:
    """The recordings plus `bedrock-synthetic/<name>.yaml` cassettes in the same vcrpy shape."""
    shutil.copytree(FIXTURES / "bedrock", root / "bedrock")  # the replay's rglob does not follow symlinks
    (root / "bedrock-synthetic").mkdir()
    for name, body in SYNTHETIC_STREAMS.items():
        request = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
        doc = (
            "interactions:\n- request:\n"
            f"    body: '{json.dumps(request)}'\n    method: POST\n"
            f"    uri: https://{AWS_HOST}/model/us.amazon.nova-micro-v1%3A0/converse-stream\n"
            "  response:\n    headers:\n      content-type:\n      - application/vnd.amazon.eventstream\n"
            f"    body:\n      string: !!binary |\n        {base64.b64encode(body).decode()}\n"
            "    status:\n      code: 200\n      message: OK\nversion: 1\n"
        )
        (root / "bedrock-synthetic" / f"{name}.yaml").write_text(doc)
    titan = (
        "interactions:\n- request:\n"
        f"    body: '{json.dumps({'inputText': 'How do I reset my password?', 'dimensions': 256})}'\n    method: POST\n"
        f"    uri: https://{AWS_HOST}/model/amazon.titan-embed-text-v2%3A0/invoke\n"
        "  response:\n    headers:\n      content-type:\n      - application/json\n"
        f"    body:\n      string: '{json.dumps(TITAN_RESPONSE)}'\n"
        "    status:\n      code: 200\n      message: OK\nversion: 1\n"
    )
    (root / "bedrock-synthetic" / "titan-embed.yaml").write_text(titan)


@pytest.fixture(scope="module")
def bedrock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack_mod.Stack, Upstream]]:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    workdir = Path(os.environ.get("E2E_WORKDIR") or tmp_path_factory.mktemp("bedrock")) / "bedrock"
    workdir.mkdir(parents=True, exist_ok=True)
    fixtures = Path(tmp_path_factory.mktemp("bedrock-fixtures"))
    synthetic_fixtures(fixtures)
    credentials = json.dumps({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "session_token": SESSION_TOKEN})
    replay, port = stack_mod.start_replay(workdir / "replay-bedrock.log", fixtures, 0.002, other_keys={"bedrock": credentials})
    try:
        local = f"http://127.0.0.1:{port}#{AWS_HOST}"
        running = stack_mod.start_stack(
            workdir, gateway_config(), replay_clusters=[],
            extra_clusters={"replay_bedrock": local, "replay_bedrock_wrong": local},
            envoy_env={"E2E_AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "E2E_AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                       "E2E_AWS_SESSION_TOKEN": SESSION_TOKEN, "E2E_AWS_WRONG_SECRET": "not-the-secret"},
            wasm=WASM, fixtures=FIXTURES, log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "info"),
            concurrency=1,  # one worker: "the next request" after a broken stream runs in the same VM
        )
    except BaseException:
        replay.stop()
        raise
    yield running, Upstream(f"http://127.0.0.1:{port}")
    running.stop()
    replay.stop()


@pytest.fixture(scope="module")
def client(bedrock):
    running, _ = bedrock
    return openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex


# --- what the recording says the client must see ---------------------------------------------

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}


def frames(body: bytes) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(string headers, JSON payload) of every event-stream message."""
    out, i = [], 0
    while i < len(body):
        total, hlen = struct.unpack(">II", body[i:i + 8])
        raw, headers, j = body[i + 12:i + 12 + hlen], {}, 0
        while j < len(raw):
            n = raw[j]
            name = raw[j + 1:j + 1 + n].decode()
            j += 1 + n
            assert raw[j] == 7, "recordings only carry string headers"
            (length,) = struct.unpack(">H", raw[j + 1:j + 3])
            headers[name] = raw[j + 3:j + 3 + length].decode()
            j += 3 + length
        out.append((headers, json.loads(body[i + 12 + hlen:i + total - 4])))
        i += total
    return out


def expected(interaction) -> dict[str, Any]:
    exp: dict[str, Any] = {"text": "", "reasoning": "", "tool_calls": [], "finish_reason": None, "prompt": 0, "completion": 0}
    if interaction.is_stream:
        usage: dict[str, Any] = {}
        tools: dict[int, list] = {}
        for headers, p in frames(interaction.body):
            event = headers.get(":event-type")
            if event == "contentBlockStart" and "toolUse" in p.get("start", {}):
                tools[p["contentBlockIndex"]] = [p["start"]["toolUse"]["toolUseId"], p["start"]["toolUse"]["name"], ""]
            elif event == "contentBlockDelta":
                d = p["delta"]
                exp["text"] += d.get("text", "")
                exp["reasoning"] += d.get("reasoningContent", {}).get("text", "")
                if "toolUse" in d:
                    tools[p["contentBlockIndex"]][2] += d["toolUse"]["input"]
            elif event == "messageStop":
                exp["finish_reason"] = FINISH[p["stopReason"]]
                exp["stop_reason"] = p["stopReason"]
            elif event == "metadata":
                usage = p["usage"]
        exp["tool_calls"] = [(i, n, json.loads(a or "{}")) for i, n, a in (tools[k] for k in sorted(tools))]
    else:
        doc = json.loads(interaction.body)
        for block in doc["output"]["message"]["content"]:
            exp["text"] += block.get("text", "")
            if "toolUse" in block:
                t = block["toolUse"]
                exp["tool_calls"].append((t["toolUseId"], t["name"], t["input"]))
        exp["finish_reason"] = FINISH[doc["stopReason"]]
        exp["stop_reason"] = doc["stopReason"]
        usage = doc["usage"]
    # OpenAI counts cached tokens in prompt_tokens; Anthropic reports them beside input_tokens.
    exp["input"] = usage.get("inputTokens", 0)
    exp["cache_read"] = usage.get("cacheReadInputTokens", 0)
    exp["cache_write"] = usage.get("cacheWriteInputTokens", 0)
    exp["prompt"] = exp["input"] + exp["cache_read"] + exp["cache_write"]
    exp["completion"] = usage.get("outputTokens", 0)
    return exp


def without_cache_points_and_documents(value: Any) -> Any:
    """The recorded request as an OpenAI client can say it: Chat Completions has no cache
    breakpoints and no text documents."""
    if isinstance(value, dict):
        return {k: without_cache_points_and_documents(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_cache_points_and_documents(v) for v in value
                if not (isinstance(v, dict) and ("cachePoint" in v or "document" in v))]
    return value


def openai_request(recorded: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI request an application sends for the recorded Converse request."""
    recorded = without_cache_points_and_documents(recorded)
    messages: list[dict[str, Any]] = [{"role": "system", "content": s["text"]} for s in recorded.get("system", [])]
    for m in recorded["messages"]:
        blocks = m["content"]
        if m["role"] == "assistant":
            text = "".join(b.get("text", "") for b in blocks)
            out: dict[str, Any] = {"role": "assistant", "content": text or None}
            calls = [{"id": b["toolUse"]["toolUseId"], "type": "function",
                      "function": {"name": b["toolUse"]["name"], "arguments": json.dumps(b["toolUse"]["input"])}}
                     for b in blocks if "toolUse" in b]
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
            continue
        for b in blocks:
            if "toolResult" in b:
                messages.append({"role": "tool", "tool_call_id": b["toolResult"]["toolUseId"],
                                 "content": "".join(c.get("text", "") for c in b["toolResult"]["content"])})
        texts = [b["text"] for b in blocks if "text" in b]
        if texts:
            messages.append({"role": "user", "content": texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]})
    request: dict[str, Any] = {"messages": messages}
    ic = recorded.get("inferenceConfig", {})
    for src, dst in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop")):
        if src in ic:
            request[dst] = ic[src]
    if "toolConfig" in recorded:
        tc = recorded["toolConfig"]
        request["tools"] = [{"type": "function", "function": {k: v for k, v in (("name", t["toolSpec"]["name"]),
                             ("description", t["toolSpec"].get("description")), ("parameters", t["toolSpec"]["inputSchema"]["json"])) if v is not None}}
                            for t in tc["tools"]]
        choice = tc.get("toolChoice")
        if choice:
            request["tool_choice"] = ("required" if "any" in choice else "auto" if "auto" in choice
                                      else {"type": "function", "function": {"name": choice["tool"]["name"]}})
    budget = recorded.get("additionalModelRequestFields", {}).get("thinking", {}).get("budget_tokens")
    if budget:
        request["reasoning_effort"] = {1024: "low", 4096: "medium"}.get(budget, "high")
    return request


def normalize(value: Any) -> Any:
    """Drops empty members and tool-result `status: success`, which carry no meaning here."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "status" and v == "success":
                continue
            v = normalize(v)
            if v in ({}, []) and k not in ("auto", "any", "input"):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def check_upstream(received: dict[str, Any], interaction, openai_client: bool = True) -> None:
    """The provider got the recorded Converse request, signed with our temporary credentials
    (without what an OpenAI client cannot say, for OpenAI clients)."""
    assert received["method"] == "POST"
    assert received["path"] == interaction.path
    headers = received["headers"]
    assert headers["host"] == AWS_HOST
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert f"/{REGION}/bedrock/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == SESSION_TOKEN
    assert CLIENT_KEY not in json.dumps(headers) and CLIENT_KEY not in received["body"]
    assert SECRET_ACCESS_KEY not in json.dumps(headers) and SECRET_ACCESS_KEY not in received["body"]
    ours, recorded = dict(received["json"]), dict(interaction.request_body)
    if openai_client:
        recorded = without_cache_points_and_documents(recorded)
    if "additionalModelRequestFields" in recorded:
        # With thinking on the gateway also sets maxTokens (from the defaults): Claude needs it.
        assert ours["inferenceConfig"].pop("maxTokens") == 4096
    assert normalize(ours) == normalize(recorded)


def test_recordings_present():
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert JSON_CASES and STREAM_CASES and ERROR_CASES


@pytest.mark.parametrize("name,index,interaction", JSON_CASES)
def test_json_response(bedrock, client, test_id, name, index, interaction):
    _, upstream = bedrock
    request = openai_request(interaction.request_body)
    completion = client.chat.completions.create(model=public_model(interaction), extra_headers=replay_headers(test_id, name, index), **request)
    exp = expected(interaction)
    message = completion.choices[0].message
    assert (message.content or "") == exp["text"]
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == exp["tool_calls"]
    assert completion.choices[0].finish_reason == exp["finish_reason"]
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (exp["prompt"], exp["completion"])
    assert completion.usage.total_tokens == exp["prompt"] + exp["completion"]
    details = completion.usage.prompt_tokens_details
    assert ((details.cached_tokens if details else None) or 0) == exp["cache_read"]
    assert completion.model == model_id(interaction)
    check_upstream(upstream.only(test_id), interaction)


@pytest.mark.parametrize("chunking", ["events", "split", "bytes:7"])
@pytest.mark.parametrize("name,index,interaction", STREAM_CASES)
def test_stream(bedrock, client, test_id, name, index, interaction, chunking):
    _, upstream = bedrock
    request = openai_request(interaction.request_body)
    stream = client.chat.completions.create(
        model=public_model(interaction), stream=True, stream_options={"include_usage": True},
        extra_headers=replay_headers(test_id, name, index, **{"x-replay-chunking": chunking}), **request,
    )
    text, reasoning, finish, usage, chunks = "", "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            reasoning += getattr(choice.delta, "reasoning_content", None) or (choice.delta.model_extra or {}).get("reasoning_content") or ""
            finish = choice.finish_reason or finish
    exp = expected(interaction)
    assert text == exp["text"]
    assert reasoning == exp["reasoning"]
    assert finish == exp["finish_reason"]
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (exp["prompt"], exp["completion"])
    assert chunks > 3
    check_upstream(upstream.only(test_id), interaction)


@pytest.mark.parametrize("name,index,interaction", ERROR_CASES)
def test_bedrock_error(bedrock, client, test_id, name, index, interaction):
    """test_bedrock_error and test_bedrock_streaming_error: Bedrock's 400 reaches the SDK as a
    BadRequestError in OpenAI's shape, with Bedrock's message, whether or not it streams."""
    stream = interaction.path.endswith("/converse-stream")
    request = openai_request(interaction.request_body)
    with pytest.raises(openai.BadRequestError) as info:
        result = client.chat.completions.create(model=public_model(interaction), stream=stream,
                                                extra_headers=replay_headers(test_id, name, index), **request)
        if stream:
            list(result)
    err = info.value
    assert err.status_code == 400
    assert err.body["message"] == json.loads(interaction.body)["message"]
    assert err.body["type"] == "invalid_request_error"
    _, upstream = bedrock
    check_upstream(upstream.only(test_id), interaction)


def test_a_wrong_signature_is_refused_by_the_replay(bedrock, client, test_id):
    """The replay really verifies SigV4: the provider configured with a wrong secret gets AWS's
    403, which reaches the client in OpenAI's shape with the exception name as the code."""
    name, index, interaction = next((n, i, x) for n, i, x in CASES if n == SIMPLE_CASE)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model=BAD_KEY_MODEL, extra_headers=replay_headers(test_id, name, index),
                                       **openai_request(interaction.request_body))
    assert info.value.status_code == 403
    assert info.value.body["code"] == "InvalidSignatureException"
    assert "not-the-secret" not in json.dumps(info.value.body)


def test_next_request_after_a_refusal_succeeds(bedrock, client, test_id):
    name, index, interaction = next((n, i, x) for n, i, x in CASES if n == SIMPLE_CASE)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=BAD_KEY_MODEL, extra_headers=replay_headers(test_id, name, index),
                                       **openai_request(interaction.request_body))
    completion = client.chat.completions.create(model=public_model(interaction), extra_headers=replay_headers(test_id, name, index),
                                                **openai_request(interaction.request_body))
    assert completion.choices[0].message.content == expected(interaction)["text"]


@pytest.mark.parametrize("name,code,status", [
    ("throttled", "throttlingException", None),
    ("bad_crc", "invalid_event_stream", None),
    ("truncated", "invalid_event_stream", None),
    ("bad_json", "invalid_event_stream", None),
])
def test_bedrock_streaming_error(bedrock, client, test_id, name, code, status):
    """Errors inside a 200 event stream (an exception message, a corrupt CRC, a frame cut short,
    an event whose JSON is broken) reach the SDK as an error event after the text so far, and
    the next request on the same worker (this stack has a single Envoy worker) succeeds."""
    stream = client.chat.completions.create(
        model="bedrock-e2e/us.amazon.nova-micro-v1:0", messages=[{"role": "user", "content": "Hi"}], stream=True,
        extra_headers=replay_headers(test_id, f"bedrock-synthetic/{name}.yaml", 0),
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert info.value.body["code"] == code, info.value.body
    assert info.value.body["message"]
    if name != "bad_json":
        assert text == "Hello" if name != "bad_crc" else text == ""
    # The worker is fine: a normal recorded request right after succeeds.
    rec_name, index, interaction = next((n, i, x) for n, i, x in CASES if n == SIMPLE_CASE)
    completion = client.chat.completions.create(model=public_model(interaction), extra_headers=replay_headers(uuid.uuid4().hex, rec_name, index),
                                                **openai_request(interaction.request_body))
    assert completion.choices[0].message.content == expected(interaction)["text"]


# --- embeddings: Titan text embeddings over /model/{id}/invoke -----------------------------------

@pytest.mark.parametrize("encoding", ["float", None])
def test_titan_embeddings(bedrock, client, test_id, encoding):
    """The OpenAI SDK's embeddings call reaches Titan as a signed `invoke` with `inputText`, and
    the answer comes back as OpenAI's list with Titan's token count as usage, as floats or (the
    SDK's default) base64 that the SDK decodes."""
    _, upstream = bedrock
    kwargs = {"encoding_format": encoding} if encoding else {}
    resp = client.embeddings.create(model="titan-embed", input="How do I reset my password?", dimensions=256,
                                    extra_headers=replay_headers(test_id, "bedrock-synthetic/titan-embed.yaml", 0), **kwargs)
    assert len(resp.data) == 1 and resp.data[0].index == 0
    assert resp.data[0].embedding == pytest.approx(TITAN_VALUES, abs=1e-7)
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (7, 7)
    received = upstream.only(test_id)
    assert received["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert received["json"] == {"inputText": "How do I reset my password?", "dimensions": 256}
    assert received["headers"]["x-amz-security-token"] == SESSION_TOKEN
    assert received["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert CLIENT_KEY not in json.dumps(received["headers"])


def test_titan_embeddings_one_input_per_call(bedrock, client, test_id):
    _, upstream = bedrock
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="titan-embed", input=["a", "b"], encoding_format="float", extra_headers=replay_headers(test_id))
    assert info.value.body["param"] == "input" and "one input per request" in info.value.body["message"]
    assert upstream.requests(test_id) == []


def test_titan_embeddings_validation_error_keeps_bedrock_status(bedrock, client, test_id):
    """Titan refuses 100 dimensions (the replay checks like Bedrock): 400 in OpenAI's shape with
    the exception name as code."""
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="titan-embed", input="x", dimensions=100, encoding_format="float",
                                 extra_headers=replay_headers(test_id, "bedrock-synthetic/titan-embed.yaml", 0))
    assert info.value.body["code"] == "ValidationException"
    assert "dimensions" in info.value.body["message"]
