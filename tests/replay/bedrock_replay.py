"""Bedrock Runtime side of the replay upstream: SigV4 verification and request validation.

The replay answers ``POST /model/{modelId}/converse`` and ``/converse-stream``, InvokeModel
(``/invoke``, ``/invoke-with-response-stream``: Titan embeddings, or Claude's Anthropic Messages
body) and ``/count-tokens`` from the Bedrock recordings. Before it does, it checks what AWS would
check:

* the SigV4 signature, recomputed here from the received method, path, headers and body with
  the test credentials (``--bedrock-key``, a JSON document ``{"access_key_id", "secret_access_key",
  "session_token"?}``), so a wrong signature, a stale ``x-amz-date``, a payload hash that does
  not match the body or a missing session token fails the request with AWS's 403;
* the Converse body (known top-level fields, alternating roles, one member per content block,
  object schemas for tools, toolConfig present when the history has tool blocks), with
  Bedrock's 400 ``ValidationException``;
* Claude's InvokeModel body: ``anthropic_version: bedrock-2023-05-31``, no ``model`` or ``stream``
  (the path carries both), only members Bedrock's Claude Messages API takes, ``anthropic_beta`` a
  non-empty list of strings when present;
* the ``count-tokens`` envelope (``input.invokeModel.body`` base64 of a Claude InvokeModel body,
  or ``input.converse``).

Standard library only.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import struct
import time
from typing import Any
from urllib.parse import quote

PATH_RE = re.compile(r"^/model/[^/]+/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$")
STREAM_ACTIONS = ("/converse-stream", "/invoke-with-response-stream")
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_CLOCK_SKEW_SECONDS = 15 * 60

CONVERSE_FIELDS = {
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
}
BLOCK_MEMBERS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint", "reasoningContent"}
INFERENCE_FIELDS = {"maxTokens", "temperature", "topP", "stopSequences"}


class BedrockReject(Exception):
    """A request Bedrock would refuse: HTTP status, exception name (x-amzn-errortype), message."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def is_bedrock_path(path: str) -> bool:
    return bool(PATH_RE.match(path))


def _hmac(key: bytes, data: str) -> bytes:
    return hmac.new(key, data.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(secret: str, method: str, raw_path: str, query: str, headers: dict[str, str],
                       signed: list[str], payload: bytes, amz_date: str, region: str, service: str) -> str:
    """SigV4 as AWS computes it for every service but S3 (the path is URI-encoded once more)."""
    canonical_uri = quote(raw_path, safe="/~")
    pairs = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, _, v in (p.partition("=") for p in query.split("&") if p))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    canonical = "\n".join([method, canonical_uri, canonical_query, canonical_headers, ";".join(signed),
                           hashlib.sha256(payload).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(f"AWS4{secret}".encode("utf-8"), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_sigv4(method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes,
                 credentials: dict[str, str], now: float | None = None) -> dict[str, str]:
    """Raises BedrockReject unless the request is signed by `credentials`; returns the scope."""
    auth = headers.get("authorization", "")
    if not auth:
        raise BedrockReject(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    m = AUTH_RE.match(auth)
    if not m:
        raise BedrockReject(403, "IncompleteSignatureException", "Authorization header is not a SigV4 header.")
    if m["akid"] != credentials["access_key_id"]:
        raise BedrockReject(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if m["service"] != "bedrock":
        raise BedrockReject(403, "InvalidSignatureException", f"Credential should be scoped to correct service: 'bedrock', not {m['service']!r}.")
    signed = m["signed"].split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed:
            raise BedrockReject(403, "IncompleteSignatureException", f"{required} must be a signed header.")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise BedrockReject(403, "IncompleteSignatureException", "x-amz-date is missing or malformed.") from None
    if abs((now if now is not None else time.time()) - signed_at) > MAX_CLOCK_SKEW_SECONDS or m["date"] != amz_date[:8]:
        raise BedrockReject(403, "InvalidSignatureException", "Signature expired or not yet valid (x-amz-date is off).")
    if headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
        raise BedrockReject(400, "ValidationException", "x-amz-content-sha256 does not match the request body.")
    token = credentials.get("session_token")
    if token is not None:
        if headers.get("x-amz-security-token") != token or "x-amz-security-token" not in signed:
            raise BedrockReject(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    if region_host := headers.get("host", ""):
        if region_host.split(":")[0] != f"bedrock-runtime.{m['region']}.amazonaws.com":
            raise BedrockReject(403, "InvalidSignatureException",
                                f"Host {region_host!r} is not the Bedrock Runtime endpoint of {m['region']}.")
    want = expected_signature(credentials["secret_access_key"], method, raw_path, query, headers, signed, body,
                              amz_date, m["region"], m["service"])
    if not hmac.compare_digest(want, m["signature"]):
        raise BedrockReject(
            403, "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.",
        )
    return {"region": m["region"], "date": amz_date}


TITAN_EMBED_FIELDS = {"inputText", "dimensions", "normalize", "embeddingTypes"}


def validate_titan_embed(body: Any) -> None:
    """Raises BedrockReject for what Titan text embeddings (`/model/{id}/invoke`) would reject."""
    if not isinstance(body, dict) or not isinstance(body.get("inputText"), str) or not body["inputText"]:
        raise BedrockReject(400, "ValidationException", "Malformed input request: required key [inputText] not found")
    extra = sorted(set(body) - TITAN_EMBED_FIELDS)
    if extra:
        raise BedrockReject(400, "ValidationException", f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
    if "dimensions" in body and body["dimensions"] not in (256, 512, 1024):
        raise BedrockReject(400, "ValidationException", "Malformed input request: dimensions must be one of 256, 512, 1024")


# Members of Bedrock's Claude Messages body (InvokeModel).
ANTHROPIC_INVOKE_FIELDS = {
    "anthropic_version", "anthropic_beta", "max_tokens", "system", "messages", "temperature", "top_p", "top_k",
    "tools", "tool_choice", "stop_sequences", "thinking", "metadata", "context_management", "output_config",
}


def is_stream_path(path: str) -> bool:
    return path.endswith(STREAM_ACTIONS)


def validate_anthropic_invoke(body: Any) -> None:
    """Raises BedrockReject for what InvokeModel with a Claude model would reject (a useful subset)."""

    def bad(message: str) -> BedrockReject:
        return BedrockReject(400, "ValidationException", message)

    if not isinstance(body, dict):
        raise bad("Malformed input request, please reformat your input and try again.")
    if body.get("anthropic_version") != "bedrock-2023-05-31":
        raise bad("Malformed input request: anthropic_version must be bedrock-2023-05-31")
    extra = sorted(set(body) - ANTHROPIC_INVOKE_FIELDS)
    if extra:
        raise bad(f"Malformed input request: #: extraneous key [{extra[0]}] is not permitted")
    beta = body.get("anthropic_beta")
    if beta is not None and (not isinstance(beta, list) or not beta or not all(isinstance(b, str) for b in beta)):
        raise bad("invalid beta flag")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad("Malformed input request: #: required key [max_tokens] not found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("Malformed input request: #: required key [messages] not found")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")


def validate_count_tokens(body: Any) -> None:
    """Raises BedrockReject unless `body` is a count-tokens envelope around a valid request."""
    import base64

    inner = body.get("input") if isinstance(body, dict) else None
    if not isinstance(inner, dict) or len(inner) != 1:
        raise BedrockReject(400, "ValidationException", "Malformed input request: input must hold invokeModel or converse")
    if "converse" in inner:
        return
    encoded = (inner.get("invokeModel") or {}).get("body")
    try:
        decoded = json.loads(base64.b64decode(encoded, validate=True))
    except (TypeError, ValueError):
        raise BedrockReject(400, "ValidationException", "input.invokeModel.body must be base64 JSON") from None
    validate_anthropic_invoke(decoded)


def validate_converse(body: Any) -> None:
    """Raises BedrockReject for what the Converse API would reject (a useful subset)."""

    def bad(message: str) -> BedrockReject:
        return BedrockReject(400, "ValidationException", message)

    if not isinstance(body, dict):
        raise bad("Malformed input request, please reformat your input and try again.")
    extra = sorted(set(body) - CONVERSE_FIELDS)
    if extra:
        raise bad(f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("A conversation must start with a user message.")
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f"messages.{i}.role must be user or assistant")
        if i == 0 and role != "user":
            raise bad("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
        if i > 0 and messages[i - 1].get("role") == role:
            raise bad("A conversation must alternate between user and assistant roles.")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise bad(f"messages.{i}.content must be a non-empty list")
        for j, block in enumerate(content):
            if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in BLOCK_MEMBERS:
                raise bad(f"messages.{i}.content.{j} must have exactly one known member")
            member, value = next(iter(block.items()))
            # Whitespace beside other content is accepted (test_bedrock_cache_write_and_read sends "\n").
            blank = not any(isinstance(b, dict) and str(b.get("text", "x")).strip() for b in content)
            if member == "text" and (not isinstance(value, str) or not value or (not value.strip() and blank)):
                raise bad("The text field in the ContentBlock object is blank. Add text to the text field, and try again.")
            if member in ("toolUse", "toolResult"):
                uses_tools = True
            if member == "toolUse" and (role != "assistant" or not isinstance(value.get("input"), dict) or not value.get("toolUseId")):
                raise bad(f"messages.{i}.content.{j}.toolUse is malformed")
            if member == "toolResult" and (role != "user" or not value.get("toolUseId") or not value.get("content")):
                raise bad(f"messages.{i}.content.{j}.toolResult is malformed")
            if member == "image":
                if value.get("format") not in ("png", "jpeg", "gif", "webp") or not isinstance(value.get("source", {}).get("bytes"), str):
                    raise bad(f"messages.{i}.content.{j}.image needs format and source.bytes")
    for k, s in enumerate(body.get("system") or []):
        if isinstance(s, dict) and set(s) == {"cachePoint"}:  # Bedrock takes cache points in system and tools
            continue
        if not isinstance(s, dict) or not isinstance(s.get("text"), str) or not s["text"].strip():
            raise bad(f"system.{k} must be a non-blank text block")
    extra = sorted(set(body.get("inferenceConfig") or {}) - INFERENCE_FIELDS)
    if extra:
        raise bad(f"inferenceConfig: extraneous key [{extra[0]}] is not permitted")
    tool_config = body.get("toolConfig")
    if uses_tools and not tool_config:
        raise bad("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    if tool_config is not None:
        tools = tool_config.get("tools")
        if not isinstance(tools, list) or not tools:
            raise bad("toolConfig.tools must be a non-empty list")
        for k, tool in enumerate(tools):
            if isinstance(tool, dict) and set(tool) == {"cachePoint"}:
                continue
            spec = tool.get("toolSpec") if isinstance(tool, dict) else None
            schema = (spec or {}).get("inputSchema", {}).get("json")
            if not isinstance(spec, dict) or not spec.get("name"):
                raise bad(f"toolConfig.tools.{k}.toolSpec.name is required")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise bad(f"The value at toolConfig.tools.{k}.toolSpec.inputSchema.json.type must be one of the following: object.")
        choice = tool_config.get("toolChoice")
        if choice is not None and (not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool")):
            raise bad("toolConfig.toolChoice must be one of auto, any, tool")


def split_frames(body: bytes, chunking: str) -> list[bytes]:
    """Cuts an event stream into the chunks the replay sends: one message per chunk (``events``),
    every message cut in two (``split``), or fixed ``bytes:N`` pieces."""
    if chunking.startswith("bytes:"):
        try:
            size = max(1, int(chunking.split(":", 1)[1]))
        except ValueError:
            size = 16
        return [body[i:i + size] for i in range(0, len(body), size)]
    frames: list[bytes] = []
    i = 0
    while i + 4 <= len(body):
        total = struct.unpack(">I", body[i:i + 4])[0]
        if total < 16:
            break
        frames.append(body[i:i + total])
        i += total
    if i < len(body):
        frames.append(body[i:])
    if chunking == "split":
        return [p for f in frames for p in (f[:len(f) // 2], f[len(f) // 2:]) if p]
    return frames


def parse_credentials(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    doc = json.loads(text)
    return {k: v for k, v in doc.items() if k in ("access_key_id", "secret_access_key", "session_token")}
