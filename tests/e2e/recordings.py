"""Reading the recorded provider exchanges: what a client would have sent, what it must get back.

Expected values are always derived from the recordings here, never written into the tests, so
the end-to-end tests check the gateway against what the providers really said.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _load_replay_module():
    spec = importlib.util.spec_from_file_location("replay_server", REPO / "tests" / "replay" / "server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


replay = _load_replay_module()
Interaction = replay.Interaction


def load(fixtures_dir: Path) -> dict[str, Any]:
    """All cassettes, keyed by path relative to the fixtures root."""
    return replay.load_fixtures(fixtures_dir)


def sse_events(body: bytes | str) -> list[tuple[str | None, str]]:
    """(event name, data) for every event of an SSE body (LF, CRLF or CR line ends)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        if data:
            events.append((name, "\n".join(data)))
    return events


# --- Anthropic recordings -------------------------------------------------------------------

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@dataclass
class Expected:
    """What an OpenAI client must see for one recorded provider answer."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, input)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _prompt_tokens(usage: dict[str, Any]) -> tuple[int, int]:
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_creation = usage.get("cache_creation_input_tokens") or 0
    return (usage.get("input_tokens") or 0) + cache_read + cache_creation, cache_read


def expected_from_anthropic_json(body: bytes) -> Expected:
    message = json.loads(body)
    exp = Expected()
    for block in message.get("content", []):
        if block["type"] == "text":
            exp.text += block["text"]
        elif block["type"] == "thinking":
            exp.reasoning += block.get("thinking", "")
        elif block["type"] == "tool_use":
            exp.tool_calls.append((block["id"], block["name"], block["input"]))
    exp.finish_reason = FINISH_REASONS.get(message.get("stop_reason"), "stop")
    exp.prompt_tokens, exp.cached_tokens = _prompt_tokens(message.get("usage", {}))
    exp.completion_tokens = message.get("usage", {}).get("output_tokens", 0)
    return exp


def expected_from_anthropic_sse(body: bytes) -> Expected:
    exp = Expected()
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    for _name, data in sse_events(body):
        event = json.loads(data)
        kind = event.get("type")
        if kind == "message_start":
            usage.update(event["message"].get("usage", {}))
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"], partial_json="")
        elif kind == "content_block_delta":
            delta = event["delta"]
            block = blocks[event["index"]]
            if delta["type"] == "text_delta":
                exp.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                exp.reasoning += delta["thinking"]
            elif delta["type"] == "input_json_delta":
                block["partial_json"] += delta["partial_json"]
        elif kind == "message_delta":
            # message_delta usage is cumulative and may repeat input counts.
            usage.update({k: v for k, v in event.get("usage", {}).items() if v is not None})
            if event["delta"].get("stop_reason"):
                exp.finish_reason = FINISH_REASONS.get(event["delta"]["stop_reason"], "stop")
    for index in sorted(blocks):
        block = blocks[index]
        if block["type"] == "tool_use":
            args = json.loads(block["partial_json"]) if block["partial_json"] else block.get("input", {})
            exp.tool_calls.append((block["id"], block["name"], args))
    exp.prompt_tokens, exp.cached_tokens = _prompt_tokens(usage)
    exp.completion_tokens = usage.get("output_tokens", 0)
    return exp


def expected_from_anthropic(interaction) -> Expected:
    if interaction.is_stream:
        return expected_from_anthropic_sse(interaction.body)
    return expected_from_anthropic_json(interaction.body)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def openai_request_from_anthropic(recorded: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI Chat Completions request that a gateway should turn into `recorded`."""
    messages: list[dict[str, Any]] = []
    if recorded.get("system"):
        messages.append({"role": "system", "content": _text_of(recorded["system"])})
    for message in recorded["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if message["role"] == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": _text_of(blocks) or None}
            calls = [
                {"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": json.dumps(b["input"])}}
                for b in blocks if b["type"] == "tool_use"
            ]
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
            continue
        for b in blocks:
            if b["type"] == "tool_result":
                messages.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": _text_of(b.get("content", ""))})
        parts = []
        for b in blocks:
            if b["type"] == "text":
                parts.append({"type": "text", "text": b["text"]})
            elif b["type"] == "image":
                src = b["source"]
                url = src["url"] if src["type"] == "url" else f"data:{src['media_type']};base64,{src['data']}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
        if parts:
            if len(parts) == 1 and parts[0]["type"] == "text":
                messages.append({"role": "user", "content": parts[0]["text"]})
            else:
                messages.append({"role": "user", "content": parts})
    request: dict[str, Any] = {"messages": messages}
    if "max_tokens" in recorded:
        request["max_tokens"] = recorded["max_tokens"]
    if recorded.get("stream"):
        request["stream"] = True
    if recorded.get("tools"):
        request["tools"] = []
        for tool in recorded["tools"]:
            function = {"name": tool["name"], "parameters": tool["input_schema"]}
            if tool.get("description"):
                function["description"] = tool["description"]
            request["tools"].append({"type": "function", "function": function})
    choice = recorded.get("tool_choice")
    if choice:
        request["tool_choice"] = {
            "auto": "auto", "any": "required", "none": "none",
        }.get(choice["type"]) or {"type": "function", "function": {"name": choice.get("name")}}
    thinking = recorded.get("thinking")
    if thinking and thinking.get("type") == "enabled":
        # The gateway documents low = 1024 budget tokens, which is what these recordings used.
        request["reasoning_effort"] = {1024: "low", 4096: "medium", 16384: "high"}.get(thinking["budget_tokens"], "low")
    return request


def normalize_anthropic_request(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of an Anthropic request that decide the answer, in one canonical form."""

    def norm_block(block: dict[str, Any]) -> dict[str, Any]:
        block = {k: v for k, v in block.items() if k != "cache_control"}
        if block.get("type") == "tool_result":
            if block.get("is_error") is False:
                block.pop("is_error")
            block["content"] = _text_of(block.get("content", ""))
        return block

    messages = []
    for message in body.get("messages", []):
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        messages.append({"role": message["role"], "content": [norm_block(b) for b in blocks]})
    out: dict[str, Any] = {
        "messages": messages,
        "system": _text_of(body["system"]) if body.get("system") else None,
        "max_tokens": body.get("max_tokens"),
        "stream": bool(body.get("stream")),
        "tools": [
            {"name": t["name"], "description": t.get("description") or None, "input_schema": t["input_schema"]}
            for t in body.get("tools") or []
        ],
        "tool_choice": ({"type": body["tool_choice"]["type"], "name": body["tool_choice"].get("name")}
                        if body.get("tool_choice") else None),
    }
    if body.get("thinking"):
        out["thinking"] = {"type": body["thinking"]["type"], "budget_tokens": body["thinking"].get("budget_tokens")}
    return out


# --- OpenAI recordings ----------------------------------------------------------------------

def openai_sse_data(body: bytes | str) -> list[str]:
    """The data payloads of an OpenAI stream, in order ([DONE] included)."""
    return [data for _name, data in sse_events(body)]


def is_usage_only_chunk(data: str) -> bool:
    if data == "[DONE]":
        return False
    chunk = json.loads(data)
    return bool(chunk.get("usage")) and not chunk.get("choices")
