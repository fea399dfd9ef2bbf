"""What both Bedrock Runtime APIs share: SigV4 verification, event-stream frames, errors.

SigV4 is checked by the replay's own verifier (`tests/replay/bedrock_replay.py`): the request must
be signed for `bedrock` with the test credentials, the session token included, for the host
`bedrock-runtime.{region}.amazonaws.com` (the test's Envoy cluster sends that Host).
"""

from __future__ import annotations

import json
import re
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))
import bedrock_replay  # noqa: E402  (sibling test package)

from script import Reject, Reply, Request  # noqa: E402

# Beta families (`<family><date>`) Bedrock accepts in an InvokeModel body's `anthropic_beta` (and
# Converse's additionalModelRequestFields.anthropic_beta): the Bedrock user guide's Claude pages
# (computer use, 128K output, interleaved and full thinking, token-efficient tools) and LiteLLM's
# `bedrock` beta table for the newer ones. Any other flag is a 400 `invalid beta flag` there.
BEDROCK_BETA_FAMILIES = (
    "computer-use-", "token-efficient-tools-", "interleaved-thinking-", "output-128k-", "dev-full-thinking-",
    "context-1m-", "context-management-", "tool-search-tool-", "tool-examples-", "fine-grained-tool-streaming-",
    "effort-", "compact-", "thinking-binding-controls-", "thinking-display-updates-",
    "mid-conversation-output-config-", "mid-conversation-tool-changes-",
)
VALIDATION = "ValidationException"
EVENTSTREAM = "application/vnd.amazon.eventstream"
# Bedrock pads every stream payload with a "p" field of varying length (side-channel mitigation).
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers and both CRCs."""
    raw = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
                   for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(raw) + len(payload), len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind: str, payload: dict[str, Any], n: int) -> bytes:
    """An `:event-type` event whose JSON payload carries Bedrock's padding."""
    doc = dict(payload, p=PADDING[: 3 + (n * 7) % 50])
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(doc, separators=(",", ":")).encode())


def error_reply(reject: Reject) -> Reply:
    kind = reject.kind if reject.kind.endswith("Exception") else VALIDATION if reject.status == 400 else "InternalServerException"
    body = json.dumps({"message": reject.message}).encode()
    return Reply(reject.status, {"content-type": "application/json",
                                 "x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}, body)


def verify(request: Request, credentials: dict[str, str]) -> None:
    """Raises Reject unless SigV4-signed by `credentials` for Bedrock Runtime."""
    try:
        bedrock_replay.verify_sigv4(request.method, request.path, request.raw_query, request.headers, request.raw,
                                    credentials)
    except bedrock_replay.BedrockReject as err:
        raise Reject(err.status, err.kind, err.message) from None


def model_of(path: str) -> str:
    """The model id of `/model/{id}/...` (percent-decoded)."""
    from urllib.parse import unquote

    parts = path.split("/")
    return unquote(parts[2]) if len(parts) > 3 else ""


def check_betas(betas: Any, where: str) -> list[str]:
    if betas is None:
        return []
    if not isinstance(betas, list) or not all(isinstance(b, str) for b in betas):
        raise Reject(400, VALIDATION, f"Malformed input request: #/{where}: expected type: JSONArray of strings")
    unknown = sorted(b for b in betas if not any(b.startswith(f) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", b[len(f):])
                                                 for f in BEDROCK_BETA_FAMILIES))
    if unknown:
        raise Reject(400, VALIDATION, f"invalid beta flag: {unknown[0]}")
    return betas


def count_tokens(request: Request, credentials: dict[str, str]) -> Reply:
    """`POST /model/{id}/count-tokens`: `{"input": {"invokeModel": {"body"}} | {"converse": {...}}}`."""
    verify(request, credentials)
    body = request.json
    source = body.get("input") if isinstance(body, dict) else None
    if not isinstance(source, dict) or len(source) != 1 or next(iter(source)) not in ("invokeModel", "converse"):
        raise Reject(400, VALIDATION, "input must hold exactly one of invokeModel, converse")
    size = len(json.dumps(source))
    return Reply(200, {"content-type": "application/json"}, json.dumps({"inputTokens": max(1, size // 4)}).encode())
