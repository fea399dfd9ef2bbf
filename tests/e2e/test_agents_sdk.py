"""The OpenAI Agents SDK, through Envoy + the filter, on every backend (issue 14, "Tests").

The real SDK (`openai-agents`, pinned in requirements-dev.txt) with its default model class
(`OpenAIResponsesModel`, the Responses API) runs a tool-using agent: a `function_tool` the model
must call with a nonce, then the final answer. The SDK's client is the gateway
(`set_default_openai_client(AsyncOpenAI(base_url=gateway, api_key=gateway key))`), tracing off
(no network). Reasoning is on; two modes are stateless (`store: false`, `include:
["reasoning.encrypted_content"]`), so the reasoning item travels back on the second turn.

One Envoy for the module: per backend and per mode (`Runner.run`, `Runner.run_streamed`) its own
scripted model upstream (tests/scripted/: the Responses API for openai and azure_openai, the
provider's own API for the others), provider and route (`agents-<backend>-<mode>`), so each run's
upstream records are its own. Outcomes go to `.run/compat/` for docs/clients.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

import stack as stack_mod
from conftest import WASM
from test_claude_code import AWS, AWS_HOST, BACKENDS, PROVIDER_KEY, scripted
from script import FINAL_TEXT, NONCE_TOOL, Upstream  # noqa: E402 (tests/scripted, on the path via test_claude_code)

try:
    from importlib.metadata import version as _version
    AGENTS_VERSION = _version("openai-agents")
except Exception:  # reported by the tests below when the import fails
    AGENTS_VERSION = "unknown"

CLIENT_KEY = "agents-gateway-key-must-not-reach-a-provider"
# `run_defaults`: the SDK's own defaults but for reasoning (no `store`, no `include`): OpenAI and
# Azure store the response and get the reasoning item back by id; translated providers must still
# get their signed reasoning back, because the gateway stores nothing.
MODES = ("run", "run_streamed", "run_defaults")
RUN_TIMEOUT = 30  # seconds for one agent run; each takes well under one when all is well


def route(backend: str, mode: str) -> str:
    return f"agents-{backend}-{mode}"


@dataclass
class Gateway:
    """One Envoy, and per (backend, mode) its scripted upstream and nonce."""

    envoy: stack_mod.Proc
    upstreams: dict[tuple[str, str], Upstream]
    nonces: dict[tuple[str, str], str]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.envoy.port}"  # type: ignore[attr-defined]


def start_gateway(workdir: Path) -> Gateway:
    upstreams: dict[tuple[str, str], Upstream] = {}
    nonces: dict[tuple[str, str], str] = {}
    providers, routes, clusters = [], [], {}
    for backend, (provider, target) in BACKENDS.items():
        for mode in MODES:
            key = (backend, mode)
            nonces[key] = f"agents-{mode}-" + secrets.token_hex(6)
            upstreams[key] = scripted.build(backend, nonces[key], PROVIDER_KEY, AWS, responses=True).start()
            name = f"scripted-{backend}-{mode}"
            cluster = name.replace("-", "_")
            clusters[cluster] = upstreams[key].url + (f"#{AWS_HOST}" if backend.startswith("bedrock") else "")
            providers.append(dict(provider, name=name, cluster=cluster))
            routes.append({"model": route(backend, mode), "targets": [{"provider": name, "model": target}]})
    config = workdir / "gateway.json"
    config.write_text(json.dumps({"version": 1, "providers": providers, "routes": routes}, indent=2))
    env = dict(os.environ, CC_PROVIDER_KEY=PROVIDER_KEY, CC_AWS_ACCESS_KEY_ID=AWS["access_key_id"],
               CC_AWS_SECRET_ACCESS_KEY=AWS["secret_access_key"], CC_AWS_SESSION_TOKEN=AWS["session_token"])
    last: Exception | None = None
    for _ in range(3):  # a port picked as free can be taken before Envoy binds it
        port, admin = stack_mod.free_port(), stack_mod.free_port()
        bootstrap = stack_mod.render_envoy(config, clusters, port, admin, WASM, workdir / "envoy.yaml")
        try:
            envoy = stack_mod.start_envoy(bootstrap, admin, workdir / "envoy.log", env=env, concurrency=1,
                                          log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "warning"))
        except RuntimeError as err:
            last = err
            continue
        envoy.port = port  # type: ignore[attr-defined]
        return Gateway(envoy, upstreams, nonces)
    for up in upstreams.values():
        up.stop()
    raise RuntimeError(f"envoy failed to start: {last}")


@pytest.fixture(scope="module")
def agents_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if not WASM.exists():
        raise RuntimeError(f"{WASM} is missing: ./dev build")
    gw = start_gateway(tmp_path_factory.mktemp("agents-sdk"))
    try:
        yield gw
    finally:
        gw.envoy.stop()
        for up in gw.upstreams.values():
            up.stop()


async def run_agent(base_url: str, model: str, streamed: bool, saved: list[str],
                    defaults: bool = False) -> tuple[Any, list[str]]:
    """The agent as an application writes it; answers the result and the stream's event types."""
    from agents import (Agent, ModelSettings, Runner, function_tool, set_default_openai_api,
                        set_default_openai_client, set_tracing_disabled)
    from openai.types.shared import Reasoning

    @function_tool(name_override=NONCE_TOOL)
    def save_nonce(nonce: str) -> str:
        """Saves the nonce the user gives."""
        saved.append(nonce)
        return "saved"

    set_tracing_disabled(True)
    set_default_openai_api("responses")
    set_default_openai_client(openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=CLIENT_KEY, max_retries=0,
                                                 timeout=RUN_TIMEOUT), use_for_tracing=False)
    agent = Agent(name="nonce-saver", instructions="Save the nonce the user gives with the save_nonce tool.",
                  tools=[save_nonce], model=model,
                  model_settings=(ModelSettings(reasoning=Reasoning(effort="low", summary="auto")) if defaults else
                                  ModelSettings(reasoning=Reasoning(effort="low", summary="auto"), store=False,
                                                response_include=["reasoning.encrypted_content"])))
    if not streamed:
        return await Runner.run(agent, "Save the nonce I was given."), []
    result = Runner.run_streamed(agent, "Save the nonce I was given.")
    events = [event.type async for event in result.stream_events()]
    return result, events


@pytest.mark.compat("OpenAI Agents SDK", f"openai-agents (Python) {AGENTS_VERSION}")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_agents_sdk(backend: str, mode: str, agents_gateway: Gateway) -> None:
    """A tool-using agent completes through the gateway: the tool ran with the nonce, the final answer came back."""
    saved: list[str] = []
    upstream = agents_gateway.upstreams[(backend, mode)]
    try:
        result, events = asyncio.run(asyncio.wait_for(
            run_agent(agents_gateway.url, route(backend, mode), mode == "run_streamed", saved,
                      defaults=mode == "run_defaults"), RUN_TIMEOUT))
    except Exception as err:
        pytest.fail(f"{backend} {mode}: {err!r}\nupstream saw:\n" + "\n".join(json.dumps(r) for r in upstream.summary())
                    + f"\n--- envoy.log (tail) ---\n{agents_gateway.envoy.log_tail(4000)}")
    explain = "upstream saw:\n" + "\n".join(json.dumps(r) for r in upstream.summary())
    assert result.final_output == FINAL_TEXT, explain
    assert saved == [agents_gateway.nonces[(backend, mode)]], explain
    if mode == "run_streamed":
        assert "raw_response_event" in events and "run_item_stream_event" in events, events
    records = upstream.records
    refused = [f"{r.status} {r.error}" for r in records if r.error is not None]
    assert not refused, f"the provider refused requests the gateway sent: {refused}\n{explain}"
    kinds = [r.kind for r in records]
    assert kinds == ["call", "result"], explain
    assert records[0].call_tool == NONCE_TOOL and len(records[1].tool_result_ids) == 1, explain
    assert records[0].thinking_requested, explain
    # The reasoning item came back on the second turn: OpenAI's encrypted_content as issued, or
    # Claude's thinking block with its signature, or Gemini's thoughtSignature, restored by the gateway.
    assert records[1].signature_back is True, explain
    assert all(CLIENT_KEY not in json.dumps(r.headers) for r in records)
