"""The scripted Responses API upstream (tests/scripted/responses_api.py) on its own, without the gateway.

test_codex.py and test_agents_sdk.py trust it to accept what OpenAI accepts and to refuse what
OpenAI refuses. Here the real openai SDK (and the Agents SDK) plays both turns against it directly:
JSON and streamed, OpenAI's and Azure's paths, the reasoning item's `encrypted_content` sent back
as issued; and each broken rule gets OpenAI's 4xx in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from typing import Any, Iterator

import openai
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "scripted"))
import upstreams as scripted  # noqa: E402
from script import FINAL_TEXT, NONCE_TOOL, THINKING_TEXT  # noqa: E402

KEY = "scripted-responses-self-test-key"
NONCE = "nonce-responses-self-test"
TOOL = {"type": "function", "name": NONCE_TOOL, "description": "Saves the nonce.", "strict": True,
        "parameters": {"type": "object", "properties": {"nonce": {"type": "string"}}, "required": ["nonce"],
                       "additionalProperties": False}}
TURN1 = dict(model="gpt-5.1", input="Save the nonce.", tools=[TOOL], store=False,
             include=["reasoning.encrypted_content"], reasoning={"effort": "low", "summary": "auto"})


@pytest.fixture(params=["openai", "azure_openai"])
def upstream(request: pytest.FixtureRequest) -> Iterator[Any]:
    up = scripted.build(request.param, NONCE, KEY, responses=True).start()
    try:
        yield up
    finally:
        up.stop()


def sdk(up: Any) -> openai.OpenAI:
    if up.api.azure:  # Azure's v1 API: the OpenAI client at /openai/v1 with the `api-key` header
        return openai.OpenAI(base_url=up.url + "/openai/v1", api_key="unused", default_headers={"api-key": KEY},
                             max_retries=0, timeout=10)
    return openai.OpenAI(base_url=up.url + "/v1", api_key=KEY, max_retries=0, timeout=10)


def two_turns(client: openai.OpenAI, stream: bool) -> tuple[Any, Any]:
    if stream:
        with client.responses.stream(**TURN1) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(**TURN1)
    call = next(item for item in first.output if item.type == "function_call")
    history = [{"role": "user", "content": "Save the nonce."}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "saved"})
    turn2 = dict(TURN1, input=history)
    if stream:
        with client.responses.stream(**turn2) as events:
            return first, events.get_final_response()
    return first, client.responses.create(**turn2)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_two_turns_with_the_openai_sdk(upstream: Any, stream: bool) -> None:
    first, second = two_turns(sdk(upstream), stream)
    reasoning = next(item for item in first.output if item.type == "reasoning")
    assert reasoning.encrypted_content and reasoning.summary[0].text == THINKING_TEXT
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == NONCE_TOOL and call.arguments == '{"nonce":"%s"}' % NONCE
    assert first.usage.output_tokens_details.reasoning_tokens == 30
    assert second.output_text == FINAL_TEXT and second.status == "completed"
    kinds = [(r.kind, r.status, r.signature_back) for r in upstream.records]
    assert kinds == [("call", 200, None), ("result", 200, True)], upstream.summary()


def test_stored_reasoning_by_reference(upstream: Any) -> None:
    """With `store` on (the default), a reasoning item may come back without its encrypted content."""
    client = sdk(upstream)
    body = dict(TURN1, include=[])
    body.pop("store")
    first = client.responses.create(**body)
    assert not next(item for item in first.output if item.type == "reasoning").encrypted_content
    second = client.responses.create(**dict(broken(first), include=[], store=True))
    assert second.output_text == FINAL_TEXT and upstream.records[-1].signature_back is True


def test_previous_response_id_when_stored(upstream: Any) -> None:
    client = sdk(upstream)
    first = client.responses.create(**dict(TURN1, store=True))
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(**dict(TURN1, store=True, previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "saved"}]))
    assert second.output_text == FINAL_TEXT
    assert upstream.records[-1].signature_back is True


def broken(first: Any) -> dict[str, Any]:
    """A valid turn 2 body for `first`, to break one rule at a time."""
    call = next(item for item in first.output if item.type == "function_call")
    history = [{"role": "user", "content": "Save the nonce."}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "saved"})
    return dict(TURN1, input=history)


def without_call(body: dict[str, Any]) -> None:
    body["input"] = [i for i in body["input"] if i.get("type") != "function_call"]


def tampered(body: dict[str, Any]) -> None:
    reasoning = next(i for i in body["input"] if i.get("type") == "reasoning")
    reasoning["encrypted_content"] = "A" + reasoning["encrypted_content"][1:]


def unencrypted(body: dict[str, Any]) -> None:
    reasoning = next(i for i in body["input"] if i.get("type") == "reasoning")
    del reasoning["encrypted_content"]


def answered_twice(body: dict[str, Any]) -> None:
    body["input"].append(copy.deepcopy(body["input"][-1]))


@pytest.mark.parametrize("breakage, status, words", [
    (without_call, 400, "No tool call found for function call output"),
    (tampered, 400, "could not be verified"),
    (unencrypted, 404, "Items are not persisted when `store` is set to false"),
    (answered_twice, 400, "Duplicate function_call_output"),
    (lambda b: b.update(stream_optionz={}), 400, "Unknown parameter: 'stream_optionz'"),
    (lambda b: b.update(tools=[{"type": "hosted_magic"}]), 400, "Invalid value: 'hosted_magic'"),
    (lambda b: b["input"].insert(0, {"type": "bogus_item"}), 400, "Invalid value: 'bogus_item'"),
    (lambda b: b["input"].insert(0, {"role": "user", "content": [{"type": "output_text", "text": "x"}]}), 400,
     "Invalid value: 'output_text'"),
    (lambda b: b.update(max_output_tokens=8), 400, "integer below minimum value"),
    (lambda b: b.update(previous_response_id="resp_unknown"), 404, "Previous response with id 'resp_unknown' not found"),
    (lambda b: b.pop("model"), 400, "Missing required parameter: 'model'"),
], ids=["output-without-call", "tampered-encrypted-content", "reasoning-without-encrypted-content", "answered-twice",
        "unknown-field", "unknown-tool-type", "unknown-item-type", "wrong-part-for-role", "max-output-tokens",
        "unknown-previous-response", "no-model"])
def test_broken_rules_get_openais_error(upstream: Any, breakage: Any, status: int, words: str) -> None:
    client = sdk(upstream)
    body = broken(client.responses.create(**TURN1))
    breakage(body)
    with pytest.raises(openai.APIStatusError) as err:
        client.post("/responses", body=body, cast_to=object)
    assert err.value.status_code == status
    error = err.value.body if isinstance(err.value.body, dict) else {}
    assert error.get("type") == "invalid_request_error" and words in str(error.get("message")), err.value.body


def test_wrong_key_and_path(upstream: Any) -> None:
    wrong = openai.OpenAI(base_url=sdk(upstream).base_url, api_key="wrong", default_headers={"api-key": "wrong"},
                          max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        wrong.responses.create(**TURN1)
    with pytest.raises(openai.NotFoundError):
        sdk(upstream).post("/chat/responses", body=TURN1, cast_to=object)


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_agents_sdk_against_the_upstream_directly(streamed: bool) -> None:
    """The Agents SDK's default model (the Responses API) is what the upstream expects, with no gateway."""
    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel

    up = scripted.build("openai", NONCE, KEY, responses=True).start()
    saved: list[str] = []

    @function_tool(name_override=NONCE_TOOL)
    def save_nonce(nonce: str) -> str:
        """Saves the nonce."""
        saved.append(nonce)
        return "saved"

    async def run() -> str:
        client = openai.AsyncOpenAI(base_url=up.url + "/v1", api_key=KEY, max_retries=0, timeout=10)
        agent = Agent(name="saver", instructions="Save the nonce with the tool.", tools=[save_nonce],
                      model=OpenAIResponsesModel("gpt-5.1", client))
        if streamed:
            result = Runner.run_streamed(agent, "Save the nonce.")
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, "Save the nonce.")
        return str(result.final_output)

    set_tracing_disabled(True)
    try:
        assert asyncio.run(run()) == FINAL_TEXT, up.summary()
    finally:
        up.stop()
    assert saved == [NONCE]
    assert [(r.kind, r.status) for r in up.records] == [("call", 200), ("result", 200)], up.summary()


def test_code_mode_custom_tool_in_additional_tools(upstream: Any) -> None:
    """Codex's own models: tools in an `additional_tools` item, the shell through the custom `exec` tool."""
    client = sdk(upstream)
    exec_tool = {"type": "custom", "name": "exec", "description": "Run JavaScript",
                 "format": {"type": "grammar", "syntax": "lark", "definition": "start: /[\\s\\S]+/"}}
    tools_item = {"type": "additional_tools", "id": "at_1", "role": "developer",
                  "tools": [{"type": "namespace", "name": "functions", "description": "", "tools": [exec_tool]}]}
    body = dict(TURN1, input=[tools_item, {"role": "user", "content": "Save the nonce."}])
    body.pop("tools")
    first = client.post("/responses", body=body, cast_to=object)
    call = next(item for item in first["output"] if item["type"] == "custom_tool_call")
    assert call["name"] == "exec" and "tools.exec_command" in call["input"] and NONCE in call["input"]
    history = body["input"] + first["output"] + [{"type": "custom_tool_call_output", "call_id": call["call_id"],
                                                  "output": [{"type": "input_text", "text": "exit 0"}]}]
    with pytest.raises(openai.BadRequestError):  # a function_call_output cannot answer a custom call
        client.post("/responses", body=dict(body, input=body["input"] + first["output"] + [
            {"type": "function_call_output", "call_id": call["call_id"], "output": "x"}]), cast_to=object)
    second = client.post("/responses", body=dict(body, input=history), cast_to=object)
    assert second["output"][-1]["content"][0]["text"] == FINAL_TEXT
    assert upstream.records[-1].kind == "result" and upstream.records[-1].signature_back is True
