"""Gemini and Azure OpenAI targets through a real Envoy, called with the openai SDK.

The replay upstream answers Gemini paths (`/v1beta/models/{m}:generateContent`,
`:streamGenerateContent?alt=sse`) with the recordings in `recorded/gemini` and Azure deployment
and v1 paths with `openai/azure-chat-basic.yaml` (and OpenAI stream recordings, same wire format),
after checking the key header each provider expects. Expected values come from the recordings.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

import recordings
import stack as stack_mod
from conftest import CLIENT_KEY, FIXTURES, WASM, assert_openai_error, raw_request, replay_headers

GEMINI_KEY = "gemini-e2e-upstream-key-0123456789"
AZURE_KEY = "azure-e2e-upstream-key-0123456789"
GEMINI = "gemini-e2e"
GEMINI_UPSTREAM = "gemini-2.0-flash-e2e"
GEMINI_EMBED = "gemini-embed-e2e"
GEMINI_EMBED_UPSTREAM = "text-embedding-004"
AZURE = "azure-e2e"
AZURE_V1 = "azure-v1-e2e"
AZURE_DEPLOYMENT = "gpt-5-nano"
AZURE_API_VERSION = "2024-12-01-preview"

CASSETTES = recordings.load(FIXTURES) if FIXTURES.is_dir() else {}
GEMINI_CASES = [
    pytest.param(name, index, interaction, id=f"{name}#{index}")
    for name, cassette in sorted(CASSETTES.items())
    if name.startswith("gemini/")
    for index, interaction in enumerate(cassette.interactions)
]


def gateway_config() -> dict[str, Any]:
    azure = {"azure": {"url_form": "deployment", "api_version": AZURE_API_VERSION}}
    return {
        "version": 1,
        "providers": [
            {"name": "gemini-replay", "kind": "gemini", "cluster": "replay_gemini", "credential": {"env": "E2E_GEMINI_KEY"}},
            {"name": "gemini-wrong-key", "kind": "gemini", "cluster": "replay_gemini_wrong", "credential": {"env": "E2E_WRONG_KEY"}},
            {"name": "azure-replay", "kind": "azure_openai", "cluster": "replay_azure", "credential": {"env": "E2E_AZURE_KEY"},
             "settings": azure},
            {"name": "azure-v1", "kind": "azure_openai", "cluster": "replay_azure_v1", "credential": {"env": "E2E_AZURE_KEY"},
             "settings": {"azure": {"url_form": "v1"}}},
            {"name": "azure-wrong-key", "kind": "azure_openai", "cluster": "replay_azure_wrong", "credential": {"env": "E2E_WRONG_KEY"},
             "settings": azure},
        ],
        "routes": [
            {"model": GEMINI, "targets": [{"provider": "gemini-replay", "model": GEMINI_UPSTREAM}]},
            {"model": GEMINI_EMBED, "targets": [{"provider": "gemini-replay", "model": GEMINI_EMBED_UPSTREAM}]},
            {"model": "gemini-bad-key", "targets": [{"provider": "gemini-wrong-key", "model": GEMINI_UPSTREAM}]},
            {"model": AZURE, "targets": [{"provider": "azure-replay", "model": AZURE_DEPLOYMENT}]},
            {"model": AZURE_V1, "targets": [{"provider": "azure-v1", "model": AZURE_DEPLOYMENT}]},
            {"model": "azure-bad-key", "targets": [{"provider": "azure-wrong-key", "model": AZURE_DEPLOYMENT}]},
        ],
    }


# No batchEmbedContents exchange was recorded: a synthetic one in the documented response shape.
GEMINI_EMBED_VALUES = [[0.0125, -0.5, 0.25, 1.0], [-0.75, 0.0, 0.375, -0.125]]


def with_synthetic_fixtures(recorded: Path, root: Path) -> Path:
    """The recordings this module replays plus `gemini-synthetic/batch-embed.yaml`."""
    for family in ("gemini", "openai"):
        shutil.copytree(recorded / family, root / family)  # the replay's rglob does not follow symlinks
    (root / "gemini-synthetic").mkdir()
    response = {"embeddings": [{"values": v} for v in GEMINI_EMBED_VALUES]}
    (root / "gemini-synthetic" / "batch-embed.yaml").write_text(
        "interactions:\n- request:\n    body: '{}'\n    method: POST\n"
        f"    uri: https://generativelanguage.googleapis.com/v1beta/models/{GEMINI_EMBED_UPSTREAM}:batchEmbedContents\n"
        "  response:\n    headers:\n      content-type:\n      - application/json\n"
        f"    body:\n      string: '{json.dumps(response)}'\n"
        "    status:\n      code: 200\n      message: OK\nversion: 1\n"
    )
    return root


@pytest.fixture(scope="module")
def stack(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    workdir = tmp_path_factory.mktemp("gemini-azure")
    fixtures_dir = with_synthetic_fixtures(fixtures_dir, tmp_path_factory.mktemp("gemini-azure-fixtures"))
    running = stack_mod.start_stack(
        workdir, gateway_config(),
        replay_clusters=["replay_gemini", "replay_gemini_wrong", "replay_azure", "replay_azure_v1", "replay_azure_wrong"],
        envoy_env={"E2E_GEMINI_KEY": GEMINI_KEY, "E2E_AZURE_KEY": AZURE_KEY, "E2E_WRONG_KEY": "wrong-key"},
        wasm=WASM, fixtures=fixtures_dir, chunk_delay=0.002,
        replay_keys={"gemini": GEMINI_KEY, "azure": AZURE_KEY},
        log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "info"),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sdk(stack):
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)


def received(stack, test_id: str) -> dict[str, Any]:
    status, body = stack_mod.http_get(f"{stack.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
    assert status == 200
    entries = json.loads(body)
    assert len(entries) == 1, f"expected one upstream request, got {len(entries)}"
    return entries[0]


# --- from a recorded Gemini exchange: the OpenAI request, and what the client must see -------------

def _lower_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def openai_request_from_gemini(recorded: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if recorded.get("systemInstruction"):
        messages.append({"role": "system", "content": "".join(p.get("text", "") for p in recorded["systemInstruction"]["parts"])})
    names: dict[str, str] = {}
    for turn, content in enumerate(recorded["contents"]):
        if content["role"] == "model":
            calls = []
            for k, part in enumerate(p["functionCall"] for p in content["parts"] if "functionCall" in p):
                call_id = part.get("id") or f"call_{turn}_{k}"
                names[part["name"]] = call_id
                calls.append({"id": call_id, "type": "function", "function": {"name": part["name"], "arguments": json.dumps(part.get("args", {}))}})
            text = "".join(p.get("text", "") for p in content["parts"])
            messages.append({"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})})
            continue
        for part in content["parts"]:
            if "functionResponse" in part:
                r = part["functionResponse"]
                messages.append({"role": "tool", "tool_call_id": r.get("id") or names[r["name"]], "content": json.dumps(r["response"])})
            elif "text" in part:
                messages.append({"role": "user", "content": part["text"]})
    request: dict[str, Any] = {"messages": messages}
    config = recorded.get("generationConfig") or {}
    if "temperature" in config:
        request["temperature"] = config["temperature"]
    if "maxOutputTokens" in config:
        request["max_tokens"] = config["maxOutputTokens"]
    if recorded.get("tools"):
        request["tools"] = [
            {"type": "function", "function": {"name": d["name"], "description": d.get("description", ""), "parameters": _lower_types(d["parameters"])}}
            for d in recorded["tools"][0]["functionDeclarations"]
        ]
    mode = ((recorded.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode:
        request["tool_choice"] = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    return request


FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}


def expected_from_gemini(interaction) -> recordings.Expected:
    if interaction.is_stream:
        events = [json.loads(d) for _name, d in recordings.sse_events(interaction.body)]
    else:
        events = [json.loads(interaction.body)]
    exp = recordings.Expected()
    usage: dict[str, int] = {}
    finish = None
    for event in events:
        candidate = (event.get("candidates") or [{}])[0]
        for part in (candidate.get("content") or {}).get("parts", []):
            if "functionCall" in part:
                exp.tool_calls.append(("", part["functionCall"]["name"], part["functionCall"].get("args", {})))
            elif not part.get("thought"):
                exp.text += part.get("text", "")
        finish = candidate.get("finishReason", finish)
        usage.update(event.get("usageMetadata") or {})  # later events restate, never zero, the counts
    exp.finish_reason = "tool_calls" if exp.tool_calls and finish == "STOP" else FINISH[finish]
    exp.prompt_tokens = usage.get("promptTokenCount", 0) + usage.get("toolUsePromptTokenCount", 0)
    exp.completion_tokens = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
    exp.cached_tokens = usage.get("cachedContentTokenCount", 0)
    return exp


def check_gemini_upstream(entry: dict[str, Any], recorded: dict[str, Any], stream: bool) -> None:
    method = "streamGenerateContent" if stream else "generateContent"
    assert entry["path"] == f"/v1beta/models/{GEMINI_UPSTREAM}:{method}"
    assert entry["query"] == ("alt=sse" if stream else "")
    headers = entry["headers"]
    assert headers.get("x-goog-api-key") == GEMINI_KEY
    assert "authorization" not in headers and "api-key" not in headers
    assert CLIENT_KEY not in json.dumps(headers) and CLIENT_KEY not in entry["body"]
    body = entry["json"]
    assert [c["role"] for c in body["contents"]] == [c["role"] for c in recorded["contents"]]
    for got, want in zip(body["contents"], recorded["contents"]):
        assert [sorted(k for k in p if k != "thoughtSignature") for p in got["parts"]] == [sorted(p) for p in want["parts"]]
    if recorded.get("systemInstruction"):
        assert body["systemInstruction"]["parts"] == [{"text": p["text"]} for p in recorded["systemInstruction"]["parts"]]
    if recorded.get("tools"):
        assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == [d["name"] for d in recorded["tools"][0]["functionDeclarations"]]


def test_gemini_recordings_present():
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    assert any(x.is_stream for _n, _i, x in (c.values for c in GEMINI_CASES))
    assert any(not x.is_stream for _n, _i, x in (c.values for c in GEMINI_CASES))


@pytest.mark.parametrize("name,index,interaction", GEMINI_CASES)
def test_gemini_recording_through_envoy(stack, sdk, test_id, name, index, interaction):
    request = openai_request_from_gemini(interaction.request_body)
    messages = request.pop("messages")
    exp = expected_from_gemini(interaction)
    headers = replay_headers(test_id, name, index, **{"x-replay-chunking": "split"})
    if interaction.is_stream:
        stream = sdk.chat.completions.create(model=GEMINI, messages=messages, stream=True, stream_options={"include_usage": True},
                                             extra_headers=headers, **request)
        text, finish, usage, calls = "", [], None, {}
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": call.id, "name": call.function.name, "args": ""})
                    entry["args"] += call.function.arguments or ""
                if choice.finish_reason:
                    finish.append(choice.finish_reason)
        assert text == exp.text
        assert [(c["name"], json.loads(c["args"])) for _i, c in sorted(calls.items())] == [(n, a) for _id, n, a in exp.tool_calls]
        assert all(c["id"] for c in calls.values())
        assert finish == [exp.finish_reason]
    else:
        completion = sdk.chat.completions.create(model=GEMINI, messages=messages, extra_headers=headers, **request)
        message = completion.choices[0].message
        assert (message.content or "") == exp.text
        assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [(n, a) for _id, n, a in exp.tool_calls]
        assert completion.choices[0].finish_reason == exp.finish_reason
        usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (exp.prompt_tokens, exp.completion_tokens, exp.total_tokens)
    check_gemini_upstream(received(stack, test_id), interaction.request_body, interaction.is_stream)


def test_gemini_tool_call_id_round_trip(stack, sdk, test_id):
    """The id the gateway made up for Gemini's call finds the function's name in the next turn."""
    name = "gemini/test_google_tool_output.yaml"
    first = CASSETTES[name].interactions[0]
    request = openai_request_from_gemini(first.request_body)
    messages = request.pop("messages")
    completion = sdk.chat.completions.create(model=GEMINI, messages=messages, extra_headers=replay_headers(test_id, name, 0), **request)
    call = completion.choices[0].message.tool_calls[0]
    follow_id = test_id + "-2"
    messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                 {"role": "tool", "tool_call_id": call.id, "content": '{"return_value": "Mexico"}'}]
    second = sdk.chat.completions.create(model=GEMINI, messages=messages, extra_headers=replay_headers(follow_id, name, 1), **request)
    assert json.loads(second.choices[0].message.tool_calls[0].function.arguments) == {"city": "Mexico City", "country": "Mexico"}
    sent = received(stack, follow_id)["json"]
    assert sent["contents"][-1] == {"role": "user", "parts": [{"functionResponse": {"name": call.function.name, "response": {"return_value": "Mexico"}}}]}


def test_gemini_error_gets_openai_shape_and_status(stack, test_id):
    body = json.dumps({"model": "gemini-bad-key", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _headers, resp = raw_request(stack, "POST", "/v1/chat/completions", body, replay_headers(test_id))
    error = assert_openai_error(status, resp, 400, code="INVALID_ARGUMENT")
    assert error["type"] == "invalid_request_error" and "API key" in error["message"]


# --- Azure OpenAI ---------------------------------------------------------------------------

def test_azure_deployment_recording(stack, sdk, test_id):
    name = "openai/azure-chat-basic.yaml"
    interaction = CASSETTES[name].interactions[0]
    recorded = json.loads(interaction.body)
    raw = sdk.chat.completions.with_raw_response.create(model=AZURE, messages=interaction.request_body["messages"],
                                                         extra_headers=replay_headers(test_id, name, 0))
    assert raw.http_response.content == interaction.body  # Azure's success body is OpenAI's: untouched
    completion = raw.parse()
    assert completion.choices[0].message.content == recorded["choices"][0]["message"]["content"]
    assert completion.usage.total_tokens == recorded["usage"]["total_tokens"]
    entry = received(stack, test_id)
    assert entry["path"] == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert entry["query"] == f"api-version={AZURE_API_VERSION}"
    assert entry["headers"].get("api-key") == AZURE_KEY
    assert "authorization" not in entry["headers"] and CLIENT_KEY not in json.dumps(entry["headers"])
    assert entry["json"]["model"] == AZURE_DEPLOYMENT


@pytest.mark.parametrize("model,path,query", [
    (AZURE, f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions", f"api-version={AZURE_API_VERSION}"),
    (AZURE_V1, "/openai/v1/chat/completions", ""),
])
def test_azure_streaming(stack, sdk, test_id, model, path, query):
    name = "openai/chat-streaming.yaml"
    interaction = CASSETTES[name].interactions[0]
    chunks = [json.loads(d) for d in recordings.openai_sse_data(interaction.body) if d != "[DONE]"]
    expected_text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    stream = sdk.chat.completions.create(model=model, messages=interaction.request_body["messages"], stream=True,
                                         extra_headers=replay_headers(test_id, name, 0, **{"x-replay-chunking": "split"}))
    text, usage_chunks = "", 0
    for chunk in stream:
        usage_chunks += chunk.usage is not None
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == expected_text
    assert usage_chunks == 0, "the usage chunk the gateway asked for must not reach a client that did not"
    entry = received(stack, test_id)
    assert (entry["path"], entry["query"]) == (path, query)
    assert entry["headers"].get("api-key") == AZURE_KEY
    assert entry["json"]["stream_options"] == {"include_usage": True}


def test_azure_error_gets_openai_shape_and_status(stack, sdk, test_id):
    with pytest.raises(openai.AuthenticationError) as info:
        sdk.chat.completions.create(model="azure-bad-key", messages=[{"role": "user", "content": "hi"}], extra_headers=replay_headers(test_id))
    assert info.value.status_code == 401
    body = info.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "authentication_error"
    assert "innererror" not in json.dumps(body)


# --- embeddings on Azure OpenAI ----------------------------------------------------------------------

@pytest.mark.parametrize("model,path,query", [
    (AZURE, f"/openai/deployments/{AZURE_DEPLOYMENT}/embeddings", f"api-version={AZURE_API_VERSION}"),
    (AZURE_V1, "/openai/v1/embeddings", ""),
])
@pytest.mark.parametrize("encoding", ["float", None])
def test_azure_embeddings(stack, sdk, test_id, model, path, query, encoding):
    """The OpenAI embeddings recording replayed as Azure's answer (same wire format): the SDK gets
    the recorded vectors and usage, whether it asks for floats or (its default) base64, and
    Azure got the body at its deployment or v1 path with the api-key header."""
    name = "openai/embeddings-basic.yaml"
    interaction = CASSETTES[name].interactions[0]
    recorded = json.loads(interaction.body)
    kwargs = {"encoding_format": encoding} if encoding else {}
    resp = sdk.embeddings.create(model=model, input=interaction.request_body["input"], extra_headers=replay_headers(test_id, name, 0), **kwargs)
    if encoding == "float":
        assert [d.embedding for d in resp.data] == [d["embedding"] for d in recorded["data"]]
    assert len(resp.data) == len(recorded["data"]) and len(resp.data[0].embedding) == len(recorded["data"][0]["embedding"])
    assert resp.usage.prompt_tokens == recorded["usage"]["prompt_tokens"]
    entry = received(stack, test_id)
    assert (entry["path"], entry["query"]) == (path, query)
    assert entry["headers"].get("api-key") == AZURE_KEY
    assert "authorization" not in entry["headers"] and CLIENT_KEY not in json.dumps(entry["headers"])
    assert entry["json"]["model"] == AZURE_DEPLOYMENT
    assert entry["json"]["input"] == interaction.request_body["input"]


def test_azure_embeddings_error_gets_openai_shape(stack, sdk, test_id):
    with pytest.raises(openai.AuthenticationError) as info:
        sdk.embeddings.create(model="azure-bad-key", input="hi", encoding_format="float",
                              extra_headers=replay_headers(test_id, "openai/embeddings-basic.yaml", 0))
    assert info.value.status_code == 401
    body = info.value.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert AZURE_KEY not in json.dumps(body)


# --- embeddings on Gemini -------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["float", None])
def test_gemini_embeddings(stack, sdk, test_id, encoding):
    """Two inputs become one batchEmbedContents call with two requests (the replay checks each
    names the path's model); the vectors come back in order, as floats or base64 the SDK decodes,
    and usage is 0 because Gemini reports none."""
    kwargs = {"encoding_format": encoding} if encoding else {}
    resp = sdk.embeddings.create(model=GEMINI_EMBED, input=["first text", "second text"], dimensions=4,
                                 extra_headers=replay_headers(test_id, "gemini-synthetic/batch-embed.yaml", 0), **kwargs)
    assert [d.index for d in resp.data] == [0, 1]
    if encoding == "float":
        assert [d.embedding for d in resp.data] == GEMINI_EMBED_VALUES
    else:  # base64 carries f32, as OpenAI's does
        assert [d.embedding for d in resp.data] == [pytest.approx(v, abs=1e-7) for v in GEMINI_EMBED_VALUES]
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (0, 0)
    assert resp.model == GEMINI_EMBED_UPSTREAM
    entry = received(stack, test_id)
    assert entry["path"] == f"/v1beta/models/{GEMINI_EMBED_UPSTREAM}:batchEmbedContents"
    assert entry["headers"].get("x-goog-api-key") == GEMINI_KEY
    assert "authorization" not in entry["headers"] and CLIENT_KEY not in json.dumps(entry["headers"])
    model = f"models/{GEMINI_EMBED_UPSTREAM}"
    assert entry["json"] == {"requests": [
        {"model": model, "content": {"parts": [{"text": "first text"}]}, "outputDimensionality": 4},
        {"model": model, "content": {"parts": [{"text": "second text"}]}, "outputDimensionality": 4}]}


def test_gemini_embeddings_token_arrays_are_a_400(stack, sdk, test_id):
    with pytest.raises(openai.BadRequestError) as info:
        sdk.embeddings.create(model=GEMINI_EMBED, input=[[1, 2, 3]], encoding_format="float", extra_headers=replay_headers(test_id))
    assert info.value.body["param"] == "input"


# --- Anthropic clients on Azure OpenAI (the conversation model's Chat codec) --------------------------

@pytest.fixture(scope="module")
def anthropic_sdk(stack):
    import anthropic
    return anthropic.Anthropic(base_url=stack.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=60)


def test_azure_serves_an_anthropic_client(stack, anthropic_sdk, test_id):
    name = "openai/azure-chat-basic.yaml"
    interaction = CASSETTES[name].interactions[0]
    recorded = json.loads(interaction.body)
    text = next(m["content"] for m in interaction.request_body["messages"] if m["role"] == "user")
    raw = anthropic_sdk.messages.with_raw_response.create(
        model=AZURE, max_tokens=100, messages=[{"role": "user", "content": text}],
        extra_headers=replay_headers(test_id, name, 0))
    message = raw.parse()
    assert message.model == AZURE  # the client's model, the deployment is in x-ai-gateway-model
    assert raw.headers.get("x-ai-gateway-model") == AZURE_DEPLOYMENT
    assert message.content[0].type == "text"
    assert message.content[0].text == recorded["choices"][0]["message"]["content"]
    usage = recorded["usage"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    assert message.usage.input_tokens == usage["prompt_tokens"] - cached
    assert message.usage.output_tokens == usage["completion_tokens"]
    assert message.stop_reason == "end_turn"
    entry = received(stack, test_id)
    assert entry["path"] == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert entry["query"] == f"api-version={AZURE_API_VERSION}"
    assert entry["headers"].get("api-key") == AZURE_KEY and CLIENT_KEY not in json.dumps(entry["headers"])
    assert entry["json"]["messages"] == [{"role": "user", "content": text}]


def test_azure_streams_to_an_anthropic_client(stack, anthropic_sdk, test_id):
    name = "openai/chat-streaming.yaml"
    interaction = CASSETTES[name].interactions[0]
    chunks = [json.loads(d) for d in recordings.openai_sse_data(interaction.body) if d != "[DONE]"]
    expected_text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    text = next(m["content"] for m in interaction.request_body["messages"] if m["role"] == "user")
    with anthropic_sdk.messages.stream(model=AZURE_V1, max_tokens=100, messages=[{"role": "user", "content": text}],
                                       extra_headers=replay_headers(test_id, name, 0, **{"x-replay-chunking": "split"})) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "".join(b.text for b in final.content if b.type == "text") == expected_text
    assert final.model == AZURE_V1
    entry = received(stack, test_id)
    assert entry["path"] == "/openai/v1/chat/completions"
    assert entry["json"]["stream"] is True and entry["json"]["stream_options"] == {"include_usage": True}


def test_azure_error_reaches_an_anthropic_client_in_its_shape(stack, anthropic_sdk, test_id):
    import anthropic
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic_sdk.messages.create(model="azure-bad-key", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                                      extra_headers=replay_headers(test_id))
    assert info.value.status_code == 401
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
