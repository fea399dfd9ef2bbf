"""Client × backend outcomes of an e2e run, for the compatibility matrix (docs/clients.md).

A test joins a matrix cell either with the marker `@pytest.mark.compat(client, version)` and a
`backend` parameter (test_claude_code.py), or through CELLS below, which maps existing SDK tests
by module and test name. At the end of the session every cell that had at least one of its tests run is written to
`.run/compat/<client>--<backend>.json` (E2E_COMPAT_DIR overrides the folder): client, client
version, backend, pass/fail, the counts, each test's outcome, the date and the commit. A cell
passes only when its tests ran and passed, none failed, was skipped or was left out by `-k`
(then it is `partial`). `scripts/clients_matrix.py` turns the files into docs/clients.md.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("E2E_COMPAT_DIR") or REPO / ".run" / "compat")

# (module, test-name pattern) -> (client, backend): the SDK tests that exercise one backend with
# that SDK as the application would (recorded provider traffic behind the gateway).
CELLS: list[tuple[str, str, str, str]] = [
    ("test_openai_passthrough.py", r"test_(json_passthrough|stream_passthrough|stream_with_sdk|provider_error_passthrough)", "openai SDK", "openai"),
    ("test_anthropic_recordings.py", r"test_(json_response|stream|provider_error|provider_error_when_streaming)$", "openai SDK", "anthropic"),
    ("test_bedrock.py", r"test_(json_response|stream|bedrock_error|bedrock_streaming_error)$", "openai SDK", "bedrock-converse"),
    ("test_gemini_azure.py", r"test_gemini_(recording_through_envoy|tool_call_id_round_trip|error_gets_openai_shape_and_status)$", "openai SDK", "gemini"),
    ("test_gemini_azure.py", r"test_azure_(deployment_recording|streaming|error_gets_openai_shape_and_status)$", "openai SDK", "azure_openai"),
    ("test_anthropic_client.py", r"test_passthrough_(json|stream|provider_error)$", "anthropic SDK", "anthropic"),
    ("test_anthropic_client.py", r"test_(openai_served_(json|stream|provider_error)|anthropic_requests_served_by_openai)$", "anthropic SDK", "openai"),
    ("test_anthropic_bedrock.py", r"test_(json_response|stream|bedrock_error_in_anthropic_shape|in_stream_failure_is_an_anthropic_error_event)$", "anthropic SDK", "bedrock-converse"),
    ("test_anthropic_bedrock_invoke.py", r"test_(cache_recording_through_invoke|accepted_betas_move_into_the_body|stream_reaches_the_sdk_as_the_recorded_events|bedrock_error_in_anthropic_shape)$", "anthropic SDK", "bedrock-invoke"),
    ("test_anthropic_bedrock_invoke.py", r"test_openai_sdk_on_claude_through_invoke$", "openai SDK", "bedrock-invoke"),
    ("test_anthropic_conversation.py", r"test_anthropic_client_(on_gemini|gemini_tool_round_trip)$", "anthropic SDK", "gemini"),
    ("test_anthropic_conversation.py", r"test_(mid_conversation_system_and_context_management_on_converse|thinking_signature_round_trip_on_converse)$", "anthropic SDK", "bedrock-converse"),
    ("test_gemini_azure.py", r"test_azure_(serves_an_anthropic_client|streams_to_an_anthropic_client|error_reaches_an_anthropic_client_in_its_shape)$", "anthropic SDK", "azure_openai"),
]


def sdk_version(client: str) -> str:
    try:
        if client == "openai SDK":
            import openai
            return f"openai (Python) {openai.__version__}"
        if client == "anthropic SDK":
            import anthropic
            return f"anthropic (Python) {anthropic.__version__}"
    except ImportError:
        pass
    return "unknown"


class Collector:
    """Per cell: each test's outcome; written at the session's end."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_item: dict[str, tuple[str, str]] = {}
        self.deselected: dict[tuple[str, str], int] = {}
        self.commit = "unknown"

    def cell(self, client: str, version: str, backend: str) -> dict[str, Any]:
        return self.cells.setdefault((client, backend), {"client": client, "client_version": version,
                                                         "backend": backend, "tests": {}})

    def key_of(self, item: pytest.Item) -> tuple[str, str, str] | None:
        """(client, version, backend) of the cell `item` belongs to, if any."""
        marker = item.get_closest_marker("compat")
        if marker is not None and hasattr(item, "callspec") and "backend" in item.callspec.params:
            return marker.args[0], marker.args[1], item.callspec.params["backend"]
        module = Path(str(item.fspath)).name
        name = getattr(item, "originalname", item.name)
        for mod, pattern, client, backend in CELLS:
            if mod == module and re.match(pattern, name):
                return client, sdk_version(client), backend
        return None

    def note_commit(self) -> None:
        """The commit the session's code comes from (taken at its start, "-dirty" with local changes)."""
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        self.commit = (commit or "unknown") + ("-dirty" if dirty else "")

    def write(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
        for (client, backend), cell in self.cells.items():
            outcomes = list(cell["tests"].values())
            if not outcomes:
                continue
            counts = {k: outcomes.count(k) for k in ("passed", "failed", "skipped")}
            counts["deselected"] = self.deselected.get((client, backend), 0)
            if counts["failed"]:
                result = "fail"
            elif counts["passed"] and not counts["skipped"] and not counts["deselected"]:
                result = "pass"
            else:
                result = "partial"
            doc = dict(cell, result=result, **counts, date=now, commit=self.commit)
            OUT.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^a-z0-9_-]+", "-", f"{client}--{backend}".lower())
            (OUT / f"{slug}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


COLLECTOR = Collector()


def pytest_configure(config: pytest.Config) -> None:
    COLLECTOR.note_commit()
    config.addinivalue_line("markers", "compat(client, version): the test's outcome counts for the (client, backend "
                                       "parameter) cell of the compatibility matrix")


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        key = COLLECTOR.key_of(item)
        if key is not None:
            cell = (key[0], key[2])
            COLLECTOR.deselected[cell] = COLLECTOR.deselected.get(cell, 0) + 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        key = COLLECTOR.key_of(item)
        if key is not None:
            COLLECTOR.by_item[item.nodeid] = (key[0], key[2])
            COLLECTOR.cell(*key)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    key = COLLECTOR.by_item.get(item.nodeid)
    if key is None or key not in COLLECTOR.cells:
        return
    tests = COLLECTOR.cells[key]["tests"]
    # The worst phase wins: a failing setup or teardown fails the test, a skip in setup skips it.
    if report.failed:
        tests[item.nodeid] = "failed"
    elif report.skipped and tests.get(item.nodeid) != "failed":
        tests[item.nodeid] = "skipped"
    elif report.when == "call" and report.passed:
        tests.setdefault(item.nodeid, "passed")


def pytest_sessionfinish(session: pytest.Session) -> None:
    COLLECTOR.write()
