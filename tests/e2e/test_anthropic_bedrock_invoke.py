"""Claude on Bedrock through InvokeModel, called with the official `anthropic` and `openai` SDKs
through Envoy against the signature-verifying Bedrock replay.

The recorded exchange is pydantic-ai's prompt-caching run against Claude Haiku 4.5 on Bedrock
(`bedrock-invoke/test_anthropic_cache_bedrock_real_api.yaml`, eu-central-1): the Anthropic SDK
sends what the recording's request says, the replay checks the SigV4 signature and answers with
the recording, and the tests check that

* the provider received the recorded InvokeModel body exactly (`anthropic_version` added, no
  `model`, every `cache_control` intact), at `/model/{id}/invoke` signed for eu-central-1, with
  no `anthropic-*` header and the client's `anthropic-beta` values moved into `anthropic_beta`
  when Bedrock accepts them (the others dropped and named in `x-ai-gateway-dropped`);
* the SDK sees the recorded text and usage, cache writes and reads included, and the answer names
  the model the client asked for;
* a stream (InvokeModelWithResponseStream: each Anthropic event base64 in an event-stream `chunk`
  frame, built here from the recorded Anthropic thinking stream, since no InvokeModel stream was
  recorded) reaches the SDK as the recorded events, thinking and signature included;
* Bedrock's errors arrive in Anthropic's shape with Bedrock's status, and OpenAI SDK clients on the
  same model get the answer in OpenAI's shape.
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
from urllib.parse import quote

import anthropic
import openai
import pytest

import recordings
import stack as stack_mod
from conftest import CLIENT_KEY, FIXTURES, WASM, Upstream, replay_headers

REGION = "eu-central-1"
AWS_HOST = f"bedrock-runtime.{REGION}.amazonaws.com"
ACCESS_KEY_ID = "AKIDE2EINVOKE00001"
SECRET_ACCESS_KEY = "e2e/Invoke+Secret/0123456789abcdefghij"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjE2E-invoke-session-token"
CACHE_FIXTURE = "bedrock-invoke/test_anthropic_cache_bedrock_real_api.yaml"
THINKING_SSE = "anthropic/test_anthropic_model_thinking_part_stream.yaml"
PUBLIC = "claude-haiku-4-5"  # what the client asks for; the route maps it to the Bedrock id

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
CACHE = CASSETTES.get(CACHE_FIXTURE)
MODEL_ID = CACHE.interactions[0].path.split("/")[2] if CACHE else "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
INVOKE_PATH = f"/model/{quote(MODEL_ID, safe='')}/invoke"


def gateway_config() -> dict[str, Any]:
    aws = {"access_key_id_env": "E2E_AWS_ACCESS_KEY_ID", "secret_access_key_env": "E2E_AWS_SECRET_ACCESS_KEY",
           "session_token_env": "E2E_AWS_SESSION_TOKEN"}
    return {
        "version": 1,
        "providers": [{"name": "bedrock-invoke", "kind": "bedrock", "cluster": "replay_bedrock", "credential": {"aws": aws},
                       "settings": {"bedrock": {"region": REGION}}}],
        "routes": [{"model": PUBLIC, "targets": [{"provider": "bedrock-invoke", "model": MODEL_ID}]}],
        "defaults": {"max_tokens": 4096},
    }


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers and valid CRCs."""
    raw = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode() for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(raw) + len(payload), len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def chunk(data: str) -> bytes:
    """An InvokeModelWithResponseStream `chunk` carrying one Anthropic event, as Bedrock sends it."""
    payload = json.dumps({"bytes": base64.b64encode(data.encode()).decode(), "p": "abcdefgh"}).encode()
    return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def recorded_sse() -> list[tuple[str | None, str]]:
    return recordings.sse_events(CASSETTES[THINKING_SSE].interactions[0].body)


def cassette(uri: str, status: int, content_type: str, body: bytes, extra_headers: dict[str, str] | None = None) -> str:
    headers = "".join(f"      {k}:\n      - '{v}'\n" for k, v in (extra_headers or {}).items())
    return (
        "interactions:\n- request:\n    body: '{}'\n    method: POST\n"
        f"    uri: https://{AWS_HOST}{uri}\n"
        f"  response:\n    headers:\n      content-type:\n      - {content_type}\n{headers}"
        f"    body:\n      string: !!binary |\n        {base64.b64encode(body).decode()}\n"
        f"    status:\n      code: {status}\n      message: X\nversion: 1\n"
    )


def synthetic_fixtures(root: Path) -> None:
    """The recordings this module replays, plus an InvokeModel stream and a throttling error."""
    (root / "bedrock-invoke").mkdir(parents=True)
    shutil.copy(FIXTURES / CACHE_FIXTURE, root / CACHE_FIXTURE)
    synthetic = root / "bedrock-invoke-synthetic"
    synthetic.mkdir()
    stream = b"".join(chunk(data) for _name, data in recorded_sse())
    (synthetic / "thinking_stream.yaml").write_text(
        cassette(f"{INVOKE_PATH}-with-response-stream", 200, "application/vnd.amazon.eventstream", stream))
    (synthetic / "throttled.yaml").write_text(
        cassette(INVOKE_PATH, 429, "application/json", b'{"message":"Too many requests, please wait before trying again."}',
                 {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}))


@pytest.fixture(scope="module")
def invoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack_mod.Stack, Upstream]]:
    if CACHE is None:
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    workdir = Path(os.environ.get("E2E_WORKDIR") or tmp_path_factory.mktemp("invoke")) / "bedrock-invoke"
    workdir.mkdir(parents=True, exist_ok=True)
    fixtures = Path(tmp_path_factory.mktemp("invoke-fixtures"))
    synthetic_fixtures(fixtures)
    credentials = json.dumps({"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "session_token": SESSION_TOKEN})
    replay, port = stack_mod.start_replay(workdir / "replay-invoke.log", fixtures, 0.002, other_keys={"bedrock": credentials})
    try:
        running = stack_mod.start_stack(
            workdir, gateway_config(), replay_clusters=[],
            extra_clusters={"replay_bedrock": f"http://127.0.0.1:{port}#{AWS_HOST}"},
            envoy_env={"E2E_AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "E2E_AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                       "E2E_AWS_SESSION_TOKEN": SESSION_TOKEN},
            wasm=WASM, fixtures=FIXTURES, log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "info"), concurrency=1,
        )
    except BaseException:
        replay.stop()
        raise
    yield running, Upstream(f"http://127.0.0.1:{port}")
    running.stop()
    replay.stop()


@pytest.fixture(scope="module")
def sdk(invoke):
    running, _ = invoke
    return anthropic.Anthropic(base_url=running.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60)


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex


def client_request(recorded: dict[str, Any]) -> dict[str, Any]:
    """What the Anthropic SDK sends for the recorded InvokeModel body: the same minus the Bedrock parts."""
    return {k: v for k, v in recorded.items() if k not in ("anthropic_version", "anthropic_beta")}


def check_upstream(received: dict[str, Any], expected_body: dict[str, Any], path: str = INVOKE_PATH) -> None:
    assert received["path"] == path
    assert received["json"] == expected_body
    headers = received["headers"]
    assert not any(h.startswith("anthropic-") for h in headers), headers
    assert CLIENT_KEY not in json.dumps(headers)
    assert f"/{REGION}/bedrock/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == SESSION_TOKEN


@pytest.mark.parametrize("index", range(len(CACHE.interactions)) if CACHE else [])
def test_cache_recording_through_invoke(invoke, sdk, test_id, index):
    """Betas Bedrock refuses are dropped (named in the response header); the body reaching
    Bedrock is then exactly the recorded one, and the SDK gets the recorded text and usage."""
    _, upstream = invoke
    interaction = CACHE.interactions[index]
    recorded = interaction.request_body
    raw = sdk.messages.with_raw_response.create(
        model=PUBLIC, **client_request(recorded),
        extra_headers=replay_headers(test_id, CACHE_FIXTURE, index, **{"anthropic-beta": "claude-code-20250219,prompt-caching-scope-2026-01-05"}))
    message = raw.parse()
    answer = json.loads(interaction.body)
    assert message.model == PUBLIC
    assert raw.headers["x-ai-gateway-model"] == MODEL_ID
    assert "anthropic-beta" in raw.headers["x-ai-gateway-dropped"].split(",")
    assert [b.text for b in message.content if b.type == "text"] == [b["text"] for b in answer["content"] if b["type"] == "text"]
    assert message.stop_reason == answer["stop_reason"]
    usage = answer["usage"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert message.usage.cache_creation_input_tokens == usage["cache_creation_input_tokens"]
    assert message.usage.cache_read_input_tokens == usage["cache_read_input_tokens"]
    received = upstream.only(test_id)
    check_upstream(received, recorded)
    assert received["json"]["anthropic_version"] == "bedrock-2023-05-31" and "model" not in received["json"]
    cache_marks = json.dumps(received["json"]).count('"cache_control"')
    assert cache_marks == json.dumps(recorded).count('"cache_control"') and cache_marks > 0


def test_accepted_betas_move_into_the_body(invoke, sdk, test_id):
    _, upstream = invoke
    recorded = CACHE.interactions[0].request_body
    sdk.messages.create(model=PUBLIC, **client_request(recorded), extra_headers=replay_headers(
        test_id, CACHE_FIXTURE, 0,
        **{"anthropic-beta": "interleaved-thinking-2025-05-14,claude-code-20250219,context-management-2025-06-27"}))
    check_upstream(upstream.only(test_id), dict(recorded, anthropic_beta=["interleaved-thinking-2025-05-14", "context-management-2025-06-27"]))


@pytest.mark.parametrize("chunking", ["events", "bytes:7"])
def test_stream_reaches_the_sdk_as_the_recorded_events(invoke, sdk, test_id, chunking):
    _, upstream = invoke
    events = recorded_sse()
    expected_thinking = expected_signature = expected_text = ""
    usage: dict[str, Any] = {}
    for _name, data in events:
        doc = json.loads(data)
        if doc["type"] == "content_block_delta":
            d = doc["delta"]
            expected_thinking += d.get("thinking", "")
            expected_signature += d.get("signature", "")
            expected_text += d.get("text", "")
        elif doc["type"] == "message_start":
            usage.update(doc["message"]["usage"])
        elif doc["type"] == "message_delta":
            usage.update(doc["usage"])
    kinds: list[str] = []
    thinking = signature = text = ""
    model = None
    with sdk.messages.stream(model=PUBLIC, max_tokens=2048, messages=[{"role": "user", "content": "How do I cross the street?"}],
                             thinking={"type": "enabled", "budget_tokens": 1024},
                             extra_headers=replay_headers(test_id, "bedrock-invoke-synthetic/thinking_stream.yaml", 0,
                                                          **{"x-replay-chunking": chunking})) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "message_start":
                model = event.message.model
            elif event.type == "content_block_delta":
                d = event.delta
                thinking += getattr(d, "thinking", "") or ""
                signature += getattr(d, "signature", "") or ""
                text += getattr(d, "text", "") or ""
        final = stream.get_final_message()
    assert model == PUBLIC and final.model == PUBLIC
    assert [k for k in kinds if not k.startswith(("text", "thinking", "signature", "input_json", "citation"))] == \
        [json.loads(d)["type"] for _n, d in events if json.loads(d)["type"] != "ping"]
    assert (thinking, signature, text) == (expected_thinking, expected_signature, expected_text)
    assert thinking and signature
    assert [b.signature for b in final.content if b.type == "thinking"] == [expected_signature]
    assert final.usage.input_tokens == usage["input_tokens"] and final.usage.output_tokens == usage["output_tokens"]
    received = upstream.only(test_id)
    assert received["path"] == f"{INVOKE_PATH}-with-response-stream"
    assert "stream" not in received["json"] and "model" not in received["json"]
    assert received["json"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_bedrock_error_in_anthropic_shape(invoke, sdk, test_id):
    with pytest.raises(anthropic.RateLimitError) as info:
        sdk.messages.create(model=PUBLIC, max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                            extra_headers=replay_headers(test_id, "bedrock-invoke-synthetic/throttled.yaml", 0))
    assert info.value.status_code == 429
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": "Too many requests, please wait before trying again."}}


def test_openai_sdk_on_claude_through_invoke(invoke, test_id):
    running, upstream = invoke
    client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)
    interaction = CACHE.interactions[1]
    answer = json.loads(interaction.body)
    completion = client.chat.completions.create(
        model=PUBLIC, messages=[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Summarize."}],
        max_tokens=100, extra_headers=replay_headers(test_id, CACHE_FIXTURE, 1))
    assert completion.choices[0].message.content == "".join(b["text"] for b in answer["content"] if b["type"] == "text")
    usage = answer["usage"]
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, usage["output_tokens"])
    assert completion.usage.prompt_tokens_details.cached_tokens == usage["cache_read_input_tokens"]
    received = upstream.only(test_id)
    assert received["path"] == INVOKE_PATH
    assert received["json"]["anthropic_version"] == "bedrock-2023-05-31"
    assert received["json"]["system"] == "You are a helpful assistant."
    assert "model" not in received["json"]


def test_mid_conversation_system_turn_is_folded_for_bedrock(invoke, sdk, test_id):
    """Claude Code's system turns inside `messages` (a beta Bedrock does not take) reach Bedrock as
    a `<system-reminder>` block at the end of the next user turn; the replay, like Bedrock,
    refuses any role but user and assistant."""
    _, upstream = invoke
    recorded = CACHE.interactions[1].request_body
    request = client_request(recorded)
    messages = list(request["messages"])
    messages.insert(len(messages) - 1, {"role": "system", "content": "Answer in one sentence."})
    message = sdk.messages.create(model=PUBLIC, **dict(request, messages=messages),
                                  extra_headers=replay_headers(test_id, CACHE_FIXTURE, 1,
                                                               **{"anthropic-beta": "mid-conversation-system-2026-01-01"}))
    assert message.content[0].text
    sent = upstream.only(test_id)["json"]
    assert [m["role"] for m in sent["messages"]] == [m["role"] for m in recorded["messages"]]
    last = sent["messages"][-1]["content"]
    assert last[:-1] == recorded["messages"][-1]["content"]
    assert last[-1] == {"type": "text", "text": "<system-reminder>\nAnswer in one sentence.\n</system-reminder>"}
    assert sent["messages"][:-1] == recorded["messages"][:-1]
