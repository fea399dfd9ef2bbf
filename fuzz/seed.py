#!/usr/bin/env python3
"""Seeds the fuzz corpora from the recorded provider traffic (fixtures/recorded).

Request bodies seed `request_translation` (Anthropic ones and the Claude Code request fixture
also `codec_anthropic`); Bedrock responses seed `codec_converse`; response bodies, prefixed with
the control byte the
target reads (bit 0: JSON vs SSE, bit 7: error status), seed `response_translation` and
`sse_framer`; Gemini and OpenAI responses also seed `codec_gemini` and `codec_openai_chat`.
"""
import hashlib
import json
import pathlib
import sys

import yaml


def body_bytes(message: dict) -> bytes | None:
    body = message.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None and "parsed_body" in message:
        return json.dumps(message["parsed_body"]).encode()
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes):
        return body
    return None


def status_of(response: dict) -> int:
    status = response.get("status")
    if isinstance(status, dict):
        return int(status.get("code", 200))
    return int(response.get("code", 200))


def content_type(response: dict) -> str:
    for name, value in (response.get("headers") or {}).items():
        if name.lower() == "content-type":
            return value[0] if isinstance(value, list) else str(value)
    return ""


def write(directory: pathlib.Path, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data, usedforsecurity=False).hexdigest()).write_bytes(data)


def field(value: str) -> bytes:
    """One length-prefixed field of gateway_core::accounting's queue encoding."""
    raw = value.encode()
    return str(len(raw)).encode() + b":" + raw


def accounting_seeds() -> list[bytes]:
    """Valid queue records, budget states and acks, so the fuzzer starts inside each format."""
    usage = b"U" + b"".join(field(v) for v in ("key:ab12", "anthropic", "claude", "2026-11-27", "12", "34", "0", "0", "5", "1234567"))
    ack = json.dumps({"batch_id": "b", "duplicate": False, "spend": [{
        "caller": "key:fuzz", "day": "2026-11-27", "day_cost_pusd": 99, "month": "2026-11", "month_cost_pusd": 1999}]}).encode()
    amounts = (1000).to_bytes(8, "little") + (500).to_bytes(8, "little") + (10**9 + 1).to_bytes(8, "little") \
        + (1_795_737_600).to_bytes(8, "little")
    return [usage, b"B" + field("jwt:svc"), b"m 2026-11 10 20 30 1", b"d 2026-11-27 0 0 0 0", amounts + ack]


def main() -> int:
    fixtures = pathlib.Path(sys.argv[1])
    corpus = pathlib.Path(sys.argv[2])
    count = 0
    for path in sorted(fixtures.glob("*/*.yaml")):
        for interaction in yaml.safe_load(path.read_text()).get("interactions", []):
            request, response = interaction.get("request", {}), interaction.get("response", {})
            if (body := body_bytes(request)) is not None:
                write(corpus / "request_translation", body)
                write(corpus / "accounting", body)
                if path.parent.name == "anthropic":
                    write(corpus / "codec_anthropic", body)
                if path.parent.name == "openai-responses":
                    write(corpus / "codec_responses", body)
            if (body := body_bytes(response)) is not None:
                ctype = content_type(response)
                is_json = not ctype.startswith(("text/event-stream", "application/vnd.amazon.eventstream"))
                if ctype.startswith("application/vnd.amazon.eventstream"):
                    write(corpus / "aws_eventstream", bytes([7]) + body)
                control = (0x80 if status_of(response) >= 400 else 0) | int(is_json)
                write(corpus / "response_translation", bytes([control]) + body)
                write(corpus / "sse_framer", bytes([3]) + body)
                if path.parent.name == "bedrock":
                    # codec_converse: bits 0-1 pick stream (0), JSON answer (1) or error (2);
                    # bit 7 the model (0 Claude, 1 Nova); bits 2-6 the chunk size.
                    mode = 2 if status_of(response) >= 400 else int(is_json)
                    write(corpus / "codec_converse", bytes([mode | 0x1C]) + body)
                    write(corpus / "codec_converse", bytes([mode | 0x80]) + body)
                codec = {"gemini": "codec_gemini", "openai": "codec_openai_chat"}.get(path.parent.name)
                if codec:
                    write(corpus / codec, bytes([control]) + body)
                count += 1
    # A Claude Code-sized request: system blocks, 24 tools, thinking, a mid-conversation system turn.
    claude_code = fixtures.parent.parent / "gateway-core" / "tests" / "fixtures" / "claude_code_request.json"
    if claude_code.exists():
        write(corpus / "codec_anthropic", claude_code.read_bytes())
    for seed in accounting_seeds():
        write(corpus / "accounting", seed)
    print(f"seeded corpora from {count} recorded responses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
