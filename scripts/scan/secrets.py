"""Secret scan of the tracked tree (`./dev scan`, the lefthook pre-commit hook).

Runs detect-secrets (the bc-detect-secrets build that checkov already brings into the ops venv)
over the files git tracks and fails on any finding that .secrets.baseline does not list. The
comparison ignores line numbers, so edits elsewhere in a file do not fail the scan, and it never
writes the baseline: `--update` does, after a person has checked each new finding is a fake.

    python scripts/scan/secrets.py [--root DIR] [--update] [FILE ...]

With FILEs only those are scanned (the pre-commit hook passes the staged files).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "secret_plugins.py"
BASELINE = ".secrets.baseline"
# Noise without value here: "secret"/"token" are domain words in this code base (KeywordDetector),
# and SHA-256 test vectors are hex (HexHighEntropyString). Key formats are caught by the
# specific detectors (AWS, private keys, GitHub, Slack, Stripe, ...) and LlmProviderKeyDetector.
DISABLED = ["KeywordDetector", "HexHighEntropyString"]
# Recorded provider traffic and request fixtures are made of opaque base64 (thinking signatures,
# encrypted reasoning, Bedrock bodies, event-stream frames): there the generic entropy detector only
# finds payloads. Every specific key detector still runs on them.
PAYLOAD_DIRS = ("fixtures/recorded/", "gateway-core/tests/fixtures/")
PAYLOAD_ONLY_TYPES = {"Base64 High Entropy String"}


def detect_secrets() -> str:
    """detect-secrets next to this interpreter (the ops venv), else on PATH."""
    here = Path(sys.executable).parent / "detect-secrets"
    found = str(here) if here.exists() else shutil.which("detect-secrets")
    if not found:
        sys.exit("detect-secrets not found: run ./dev ops setup (requirements-ops.txt)")
    return found


def scan(root: Path, files: list[str]) -> dict:
    cmd = [detect_secrets(), "scan", "--plugin", str(PLUGINS)]
    for name in DISABLED:
        cmd += ["--disable-plugin", name]
    cmd += files  # none: detect-secrets scans what `git ls-files` lists
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"detect-secrets failed ({out.returncode}):\n{out.stderr[-2000:]}")
    report = json.loads(out.stdout)
    for path in list(report.get("results", {})):
        if path.startswith(PAYLOAD_DIRS):
            kept = [r for r in report["results"][path] if r["type"] not in PAYLOAD_ONLY_TYPES]
            if kept:
                report["results"][path] = kept
            else:
                del report["results"][path]
    return report


def keys(results: dict) -> set[tuple[str, str, str]]:
    return {(path, r["type"], r["hashed_secret"]) for path, found in results.items() for r in found}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path.cwd(), help="git work tree to scan")
    ap.add_argument("--update", action="store_true", help="write the current findings as the baseline")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    root = args.root.resolve()
    report = scan(root, args.files)
    # The plugin's absolute path differs per checkout: keep the baseline machine-independent.
    for plugin in report.get("plugins_used", []):
        if "path" in plugin:
            plugin["path"] = "file://scripts/scan/secret_plugins.py"
    report.pop("generated_at", None)
    baseline_path = root / BASELINE
    if args.update:
        baseline_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"wrote {BASELINE}: {sum(len(v) for v in report['results'].values())} known findings")
        return 0
    known = keys(json.loads(baseline_path.read_text())["results"]) if baseline_path.exists() else set()
    new = [(path, r) for path, found in sorted(report["results"].items()) for r in found
           if (path, r["type"], r["hashed_secret"]) not in known]
    for path, r in new:
        # Never print the value: the location and kind are enough to find it.
        print(f"{path}:{r['line_number']}: possible secret ({r['type']})", file=sys.stderr)
    if new:
        print(f"{len(new)} possible secret(s) not in {BASELINE}. Remove them, or if each is a fake "
              f"test value, run: ./dev scan secrets-baseline", file=sys.stderr)
        return 1
    scanned = len(args.files) if args.files else "tracked"
    print(f"secret scan: {scanned} files, no findings outside {BASELINE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
