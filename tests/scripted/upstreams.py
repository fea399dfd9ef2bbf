#!/usr/bin/env python3
"""Scripted model upstreams, one per provider API (see script.py for what the model does).

Tests build them in-process with `build(...)`; run alone, one serves until Ctrl-C and prints
each request it saw, e.g. to point a gateway at it by hand:

    python3 tests/scripted/upstreams.py anthropic --port 18080 --key sk-test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anthropic_api import AnthropicMessages, BedrockInvoke  # noqa: E402
from converse_api import BedrockConverse  # noqa: E402
from gemini_api import Gemini  # noqa: E402
from openai_api import OpenAIChat  # noqa: E402
from responses_api import OpenAIResponses  # noqa: E402
from script import RESULT_FILE, Model, Upstream  # noqa: E402

BACKENDS = ("anthropic", "bedrock-invoke", "bedrock-converse", "openai", "azure_openai", "gemini")


def build(backend: str, nonce: str, api_key: str = "", aws_credentials: dict[str, str] | None = None,
          port: int = 0, responses: bool = False) -> Upstream:
    """A scripted upstream for `backend` (one of BACKENDS), not started yet.

    `api_key` is the provider key the gateway must send; `aws_credentials`
    (`access_key_id`, `secret_access_key`, `session_token`) the ones it must sign with.
    `responses`: OpenAI and Azure OpenAI speak the Responses API instead of Chat Completions
    (what the gateway passes a Responses client's requests through to).
    """
    model = Model(nonce, backend)
    if backend == "anthropic":
        api = AnthropicMessages(model, api_key)
    elif backend == "bedrock-invoke":
        api = BedrockInvoke(model, aws_credentials or {})
    elif backend == "bedrock-converse":
        api = BedrockConverse(model, aws_credentials or {})
    elif backend in ("openai", "azure_openai") and responses:
        api = OpenAIResponses(model, api_key, azure=backend == "azure_openai")
    elif backend in ("openai", "azure_openai"):
        api = OpenAIChat(model, api_key, azure=backend == "azure_openai")
    elif backend == "gemini":
        api = Gemini(model, api_key)
    else:
        raise ValueError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    return Upstream(api, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", choices=BACKENDS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default="", help="provider key the gateway must send")
    parser.add_argument("--aws", default=None, help='JSON {"access_key_id","secret_access_key","session_token"?}')
    parser.add_argument("--responses", action="store_true", help="openai/azure_openai: the Responses API, not Chat")
    parser.add_argument("--nonce", default="scripted-done", help=f"what the tool call writes into {RESULT_FILE}")
    args = parser.parse_args(argv)
    upstream = build(args.backend, args.nonce, args.key, json.loads(args.aws) if args.aws else None, args.port,
                     args.responses).start()
    print(f"scripted {args.backend} upstream on {upstream.url}", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            for line in upstream.summary()[seen:]:
                print(json.dumps(line), flush=True)
                seen += 1
    except KeyboardInterrupt:
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
