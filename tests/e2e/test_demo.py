"""The demo stack that `./dev run` starts answers the README's curl commands without any API key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import recordings
from conftest import FIXTURES, WASM, raw_request

import stack as stack_mod


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    config, real = stack_mod.demo_config(real_openai=False, real_anthropic=False)
    assert real == {}
    running = stack_mod.start_stack(
        tmp_path_factory.mktemp("demo"), config,
        replay_clusters=sorted({p["cluster"] for p in config["providers"]}),
        envoy_env={"DEMO_PROVIDER_KEY": "demo-provider-key"}, wasm=WASM, fixtures=FIXTURES, chunk_delay=0.001)
    yield running
    running.stop()


def test_readme_curl_returns_chat_completion(demo):
    body = json.dumps({"model": "claude-sonnet", "messages": [{"role": "user", "content": "Hello!"}]}).encode()
    status, headers, resp = raw_request(demo, "POST", "/v1/chat/completions", body)
    assert status == 200, resp
    doc = json.loads(resp)
    assert doc["object"] == "chat.completion"
    assert doc["choices"][0]["message"]["content"]


def test_readme_curl_stream_ends_with_done(demo):
    body = json.dumps({"model": "claude-sonnet", "stream": True,
                       "messages": [{"role": "user", "content": "Hello!"}]}).encode()
    status, headers, resp = raw_request(demo, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    data = recordings.openai_sse_data(resp)
    assert len(data) >= 3 and data[-1] == "[DONE]"
    assert all(json.loads(d)["object"] == "chat.completion.chunk" for d in data[:-1])


@pytest.mark.parametrize("model", ["gpt-4o-mini", "replay-gpt", "replay-claude"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_demo_route_answers(demo, model, stream):
    from openai import OpenAI

    client = OpenAI(base_url=f"{demo.base_url}/v1", api_key="unused", max_retries=0, timeout=30)
    result = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}], stream=stream)
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
    else:
        text = result.choices[0].message.content
    assert text


def test_real_provider_routes_render_when_keys_are_set(tmp_path):
    config, clusters = stack_mod.demo_config(real_openai=True, real_anthropic=True)
    assert clusters == {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com"}
    providers = {p["name"]: p for p in config["providers"]}
    assert providers["anthropic"]["credential"] == {"env": "ANTHROPIC_API_KEY"}
    assert providers["openai"]["credential"] == {"env": "OPENAI_API_KEY"}
    routes = {r["model"]: r["targets"][0]["provider"] for r in config["routes"]}
    assert routes["claude-sonnet"] == "anthropic" and routes["gpt-4o-mini"] == "openai"
    assert routes["replay-claude"] == "demo-anthropic"
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(config))
    all_clusters = dict(clusters, replay_anthropic="http://127.0.0.1:1", replay_openai="http://127.0.0.1:1")
    out = stack_mod.render_envoy(path, all_clusters, 10000, 9901, Path(WASM), tmp_path / "envoy.json")
    bootstrap = json.loads(out.read_text())
    text = json.dumps(bootstrap)
    assert "api.anthropic.com" in text and "api.openai.com" in text
    assert os.environ.get("ANTHROPIC_API_KEY", "\0") not in text, "secrets must not be rendered into the bootstrap"
