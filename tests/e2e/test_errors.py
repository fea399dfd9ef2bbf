"""Every error the gateway itself produces, in OpenAI's error shape with the right status."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import (CLAUDE, CLAUDE_BAD_KEY, CLAUDE_DOWN, CLIENT_KEY, DEFAULT_MAX_TOKENS, GPT, GPT_DOWN,
                      MAX_REQUEST_BYTES, assert_openai_error, raw_request, replay_headers)

HELLO = [{"role": "user", "content": "Hello!"}]


def test_bad_json_is_400(gateway, upstream, test_id):
    status, _, body = raw_request(gateway, "POST", "/v1/chat/completions", b'{"model": "claude-e2e", "messages": [',
                                  headers={"x-test-id": test_id})
    assert_openai_error(status, body, 400)
    assert upstream.requests(test_id) == []


@pytest.mark.parametrize("payload", [b"[]", b'"just a string"', b"null", b""])
def test_body_that_is_not_an_object_is_400(gateway, upstream, test_id, payload):
    status, _, body = raw_request(gateway, "POST", "/v1/chat/completions", payload, headers={"x-test-id": test_id})
    assert_openai_error(status, body, 400)
    assert upstream.requests(test_id) == []


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_missing_messages_is_400(gateway, upstream, test_id, model):
    status, _, body = raw_request(gateway, "POST", "/v1/chat/completions", json.dumps({"model": model}).encode(),
                                  headers={"x-test-id": test_id})
    error = assert_openai_error(status, body, 400)
    assert error["param"] == "messages"
    assert upstream.requests(test_id) == []


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_empty_messages_is_400(client, upstream, test_id, model):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=[], extra_headers=replay_headers(test_id))
    assert info.value.status_code == 400
    assert info.value.param == "messages"
    assert_openai_error(400, info.value.response.content, 400)
    assert upstream.requests(test_id) == []


def test_missing_model_is_400(gateway, test_id):
    status, _, body = raw_request(gateway, "POST", "/v1/chat/completions", json.dumps({"messages": HELLO}).encode())
    error = assert_openai_error(status, body, 400)
    assert error["param"] == "model"


def test_unknown_model_is_404_model_not_found(client, upstream, test_id):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=HELLO, extra_headers=replay_headers(test_id))
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
    assert_openai_error(404, info.value.response.content, 404, code="model_not_found")
    assert upstream.requests(test_id) == []


def test_unknown_model_when_streaming_is_404(client, test_id):
    with pytest.raises(openai.NotFoundError) as info:
        for _ in client.chat.completions.create(model="no-such-model", messages=HELLO, stream=True,
                                                extra_headers=replay_headers(test_id)):
            pass
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_body_over_limit_is_413(client, upstream, test_id, model):
    big = "x" * (MAX_REQUEST_BYTES + 1024)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": big}],
                                       extra_headers=replay_headers(test_id))
    assert info.value.status_code == 413
    assert_openai_error(413, info.value.response.content, 413)
    assert upstream.requests(test_id) == []


def test_body_just_under_limit_is_served(client, test_id):
    content = "y" * (MAX_REQUEST_BYTES - 4096)
    resp = client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": content}],
                                          extra_headers=replay_headers(test_id))
    assert resp.object == "chat.completion"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405(gateway, method):
    status, _, body = raw_request(gateway, method, "/v1/chat/completions",
                                  None if method in ("GET", "DELETE") else b"{}")
    assert_openai_error(status, body, 405)


@pytest.mark.parametrize("path", ["/v1/unknown", "/", "/v1/completions", "/v2/chat/completions"])
def test_unknown_path_is_404(gateway, path):
    body = json.dumps({"model": CLAUDE, "messages": HELLO}).encode()
    status, _, resp = raw_request(gateway, "POST", path, body)
    assert_openai_error(status, resp, 404)


def test_n_greater_than_one_to_anthropic_is_400(client, upstream, test_id):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CLAUDE, messages=HELLO, n=2, extra_headers=replay_headers(test_id))
    assert info.value.param == "n"
    assert upstream.requests(test_id) == []


def test_n_greater_than_one_to_openai_is_forwarded(client, upstream, test_id):
    client.chat.completions.create(model=GPT, messages=HELLO, n=2, extra_headers=replay_headers(test_id))
    assert upstream.only(test_id)["json"]["n"] == 2


def test_default_max_tokens_from_config(client, upstream, test_id):
    client.chat.completions.create(model=CLAUDE, messages=HELLO, extra_headers=replay_headers(test_id))
    assert upstream.only(test_id)["json"]["max_tokens"] == DEFAULT_MAX_TOKENS


def test_system_and_developer_messages_go_to_system(client, upstream, test_id):
    client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Answer in French."},
                  {"role": "user", "content": "Hello!"}],
        extra_headers=replay_headers(test_id))
    sent = upstream.only(test_id)["json"]
    system = sent["system"] if isinstance(sent["system"], str) else " ".join(b["text"] for b in sent["system"])
    assert "Be brief." in system and "Answer in French." in system
    assert all(m["role"] in ("user", "assistant") for m in sent["messages"])


def test_temperature_out_of_anthropic_range_is_relayed_as_400(client, test_id):
    """OpenAI allows temperature up to 2, Anthropic up to 1: the provider's 400 reaches the client."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=CLAUDE, messages=HELLO, temperature=1.5,
                                       extra_headers=replay_headers(test_id))
    assert "temperature" in info.value.message


def test_provider_rejecting_the_key_is_401(client, upstream, test_id):
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model=CLAUDE_BAD_KEY, messages=HELLO, extra_headers=replay_headers(test_id))
    assert info.value.status_code == 401
    assert_openai_error(401, info.value.response.content, 401)
    assert "sk-ant-wrong-key" not in info.value.response.text


@pytest.mark.parametrize("model", [CLAUDE_DOWN, GPT_DOWN])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_down_is_503(client, model, stream, test_id):
    with pytest.raises(openai.APIStatusError) as info:
        result = client.chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                extra_headers=replay_headers(test_id))
        if stream:
            for _ in result:
                pass
    assert info.value.status_code == 503
    error = assert_openai_error(503, info.value.response.read(), 503)
    assert "127.0.0.1" not in error["message"], "upstream addresses must not leak to clients"


def test_client_credentials_never_reach_a_provider(client, upstream, test_id):
    client.chat.completions.create(
        model=CLAUDE, messages=HELLO,
        extra_headers={**replay_headers(test_id), "x-api-key": CLIENT_KEY, "api-key": CLIENT_KEY,
                       "proxy-authorization": CLIENT_KEY})
    client.chat.completions.create(
        model=GPT, messages=HELLO,
        extra_headers={**replay_headers(test_id), "x-api-key": CLIENT_KEY, "api-key": CLIENT_KEY})
    received = upstream.requests(test_id)
    assert len(received) == 2
    for request in received:
        assert CLIENT_KEY not in json.dumps(request["headers"])
