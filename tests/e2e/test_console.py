"""The admin console (`/ui` of the control plane) in a real headless Chromium (Debian's
`chromium`, driven by Playwright for Python), against the real control-plane binary, a real
Envoy running the filter, and the replay upstream.

The flow signs in, creates a provider, a price, a route and a key in the console, uses the key
through Envoy with the openai SDK, finds the request's tokens and cost on the usage page (chart,
table, CSV) and the overview, rotates the key (the old secret works during the grace, then 401),
revokes it (401), shows a conflict for a concurrent edit in a second browser context, and checks
that a read-only session can change nothing. Every page is screenshotted at desktop and phone
widths (target/console-screenshots/), every form control must have a label, and the browser log
must hold no error or warning beyond the API refusals the test provokes, and no request to any
other host.

It runs once on the embedded store and once on DynamoDB Local: that run happens inside
control-plane/scripts/dynamodb-local.sh's loopback-only network namespace (DynamoDB Local cannot
bind to 127.0.0.1 only), by running this file as a script there.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as stack_mod  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", REPO / "target" / "console-screenshots"))
UI = REPO / "control-plane" / "ui"

ADMIN_TOKEN = "cp-admin-console-e2e-4b1d9c7e2a"
READ_ONLY_TOKEN = "cp-readonly-console-e2e-8f2a6d3c1b"
WATCH_TOKEN = "cp-watch-console-e2e-1a2b3c4d5e"
PROVIDER_SECRET = "sk-openai-console-pushed-7c6b5a4d3e"
PROVIDER_VAR = "AI_GATEWAY_PROVIDER_CONSOLE_E2E"
PAGES = ["overview", "providers", "routes", "prices", "keys", "usage", "audit"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHAT = [{"role": "user", "content": "Say hello"}]
INPUT_PER_MTOK = 1.25
OUTPUT_PER_MTOK = 10.0
GRACE_S = 6


def usd(pusd: int) -> str:
    """The console's `fmtUsd`: dollars to the micro-dollar, at least two decimals."""
    return "$" + re.sub(r"0{1,4}$", "", f"{pusd / 1e12:.6f}")


def usd_string(pusd: int) -> str:
    """`gateway_core::pricing::pusd_to_usd_string` (the API's exact `cost_usd`)."""
    whole, frac = divmod(pusd, 10**12)
    return str(whole) if frac == 0 else f"{whole}.{frac:012d}".rstrip("0")


# --- the stack -----------------------------------------------------------------------------------

@dataclass
class Env:
    workdir: Path
    stack: stack_mod.Stack
    cp: stack_mod.ControlPlane
    store: str
    secrets: list[str] = field(default_factory=list)

    @property
    def ui(self) -> str:
        return f"{self.cp.rest_url}/ui/"

    def api(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.cp.rest_port}{path}", data=data, method=method,
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return status, (json.loads(raw) if raw else None)

    def chat_status(self, model: str, key: str) -> int:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": model, "messages": CHAT}),
                         headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def wait_status(self, model: str, key: str, status: int, limit: float) -> float:
        started = time.monotonic()
        last = 0
        while time.monotonic() - started < limit:
            last = self.chat_status(model, key)
            if last == status:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"{model}: no {status} within {limit}s (last {last})")


@contextlib.contextmanager
def running_stack(workdir: Path, fixtures: Path, wasm: Path, store: str) -> Iterator[Env]:
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    cp_env = {PROVIDER_VAR: PROVIDER_SECRET, "CP_READONLY_TOKEN": READ_ONLY_TOKEN, "CP_LOG": "info"}
    if store == "dynamodb":
        table = f"console-e2e-{os.getpid()}"
        cp_env.update({"CP_DYNAMODB_TABLE": table, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
                       "AWS_SECRET_ACCESS_KEY": "local"})
        subprocess.run([str(stack_mod.control_plane_binary()), "create-tables"], env={**os.environ, **cp_env},
                       check=True, timeout=60, capture_output=True)
    cp = stack_mod.start_control_plane(workdir / "cp-data", workdir / "control-plane.log", admin_token=ADMIN_TOKEN,
                                       watch_token=WATCH_TOKEN, env=cp_env, rest_port=rest_port,
                                       grpc_port=grpc_port, store=store)
    try:
        # Envoy starts empty and takes everything from the control plane.
        running = stack_mod.start_stack(
            workdir, {"version": 1, "providers": [], "routes": []}, replay_clusters=["replay_openai"],
            envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN}, wasm=wasm, fixtures=fixtures, chunk_delay=0.002,
            concurrency=2, log_level="info", control_plane=cp.grpc_url, replay_keys={"openai": PROVIDER_SECRET})
    except BaseException:
        cp.proc.stop()
        raise
    try:
        yield Env(workdir, running, cp, store)
    finally:
        running.stop()
        cp.proc.stop()


# --- the browser ---------------------------------------------------------------------------------

class Watch:
    """Everything a page logs or requests, for the final checks."""

    def __init__(self, origin: str):
        self.origin = origin
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.failed: list[str] = []
        self.refused: list[tuple[int, str, str]] = []

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.console.append((m.type, m.text)) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)
        page.on("requestfailed", lambda r: self.failed.append(f"{r.method} {r.url}: {r.failure}"))
        page.on("response", self._response)

    def _request(self, req: Any) -> None:
        url = req.url
        if not (url.startswith(self.origin + "/") or url.startswith("data:") or url.startswith("blob:")):
            self.foreign.append(url)

    def _response(self, resp: Any) -> None:
        if resp.status >= 400:
            self.refused.append((resp.status, resp.request.method, resp.url[len(self.origin):]))

    def check(self, allowed: set[tuple[int, str, str]]) -> None:
        assert not self.errors, f"page errors: {self.errors}"
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        assert not self.failed, f"failed requests: {self.failed}"
        unexpected = [r for r in self.refused if (r[0], r[1], r[2].split("?")[0]) not in allowed]
        assert not unexpected, f"unexpected refusals: {unexpected}"
        # Chromium logs each refused fetch as an error; nothing else may be logged.
        refusal = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")
        others = [c for c in self.console if not refusal.match(c[1])]
        assert not others, f"browser console errors or warnings: {others}"
        statuses = sorted(int(refusal.match(c[1]).group(1)) for c in self.console if refusal.match(c[1]))  # type: ignore[union-attr]
        assert statuses == sorted(r[0] for r in self.refused), (statuses, self.refused)


def assert_labelled(page: Any, where: str) -> None:
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.labels && el.labels.length && el.labels[0].textContent.trim())
                      && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map(el => el.outerHTML)""")
    assert not unlabelled, f"{where}: form controls without a label: {unlabelled}"


def goto(page: Any, env: Env, name: str) -> None:
    page.goto(f"{env.ui}#/{name}")
    page.wait_for_selector(f"h1:text-is('{name.capitalize()}')")
    page.wait_for_selector(".page[aria-busy=false]")


def sign_in(page: Any, env: Env, token: str) -> None:
    page.goto(env.ui)
    page.get_by_label("Admin or read-only token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[data-stat=cost-today]")


def screenshots(page: Any, env: Env, shots: Path) -> None:
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        for name in PAGES:
            goto(page, env, name)
            page.wait_for_timeout(150)  # charts resize to the new width
            assert_labelled(page, f"{name} ({size})")
            # No horizontal scrolling of the page itself at phone width: wide tables scroll inside their box.
            overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{name} ({size}) is {overflow}px wider than the screen"
            page.screenshot(path=str(shots / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def form(page: Any, kind: str) -> Any:
    return page.locator(f"form[data-form={kind}]")


def run_flow(env: Env, shots: Path) -> None:
    from openai import AuthenticationError, OpenAI
    from playwright.sync_api import expect, sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    allowed: set[tuple[int, str, str]] = set()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            admin_ctx = browser.new_context(viewport=DESKTOP)
            admin_ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=env.cp.rest_url)
            page = admin_ctx.new_page()
            watch = Watch(env.cp.rest_url)
            watch.attach(page)

            # The console loads without a token; the API does not answer without one.
            sign_in(page, env, ADMIN_TOKEN)
            expect(page.locator(".badge.admin")).to_have_text("admin")
            assert page.evaluate("() => document.cookie") == ""

            # Provider: the API's own validation message shows next to the field.
            goto(page, env, "providers")
            f = form(page, "providers")
            f.get_by_label("Name", exact=True).fill("openai-console")
            f.get_by_label("Kind", exact=True).select_option("openai")
            f.get_by_label("Envoy cluster", exact=True).fill("replay_openai")
            f.get_by_label("Credential reference", exact=True).fill("sk-pasted-secret-not-a-reference")
            f.get_by_role("button", name="Create provider").click()
            expect(f.locator(".field:has([name=credential]) .field-error")).to_contain_text("credential must be a reference")
            allowed.add((400, "POST", "/v1/providers"))
            f.get_by_label("Credential reference", exact=True).fill(f"env:{PROVIDER_VAR}")
            f.get_by_role("button", name="Create provider").click()
            expect(page.locator("[data-table=providers]")).to_contain_text("openai-console")

            # Price of the provider model the route targets.
            goto(page, env, "prices")
            f = form(page, "prices")
            f.get_by_label("Provider", exact=True).select_option("openai-console")
            f.get_by_label("Provider model", exact=True).fill("gpt-5-nano")
            f.get_by_label("Input, USD per million tokens", exact=True).fill(str(INPUT_PER_MTOK))
            f.get_by_label("Output, USD per million tokens", exact=True).fill(str(OUTPUT_PER_MTOK))
            f.get_by_role("button", name="Create price").click()
            expect(page.locator("[data-table=prices]")).to_contain_text("openai-console/gpt-5-nano")

            # Route with two weighted targets of the same provider model.
            goto(page, env, "routes")
            f = form(page, "routes")
            f.get_by_label("Public model name", exact=True).fill("console-gpt")
            f.get_by_label("Target 1 provider model", exact=True).fill("gpt-5-nano")
            f.get_by_role("button", name="Add target").click()
            f.get_by_label("Target 2 provider model", exact=True).fill("gpt-5-nano")
            f.get_by_label("Target 2 weight", exact=True).fill("3")
            f.get_by_role("button", name="Create route").click()
            expect(page.locator("[data-table=routes]")).to_contain_text("weight 3 (75%)")

            # Deleting a provider that a route uses: the console warns, and the API refuses.
            goto(page, env, "providers")
            page.get_by_role("button", name="Delete provider openai-console").click()
            dialog = page.locator("dialog")
            expect(dialog).to_contain_text("Still in use")
            expect(dialog).to_contain_text("route console-gpt")
            expect(dialog).to_contain_text("price openai-console/gpt-5-nano")
            dialog.get_by_role("button", name="Delete").click()
            expect(page.get_by_role("alert").filter(has_text="Not deleted")).to_contain_text("is used by route 'console-gpt'")
            allowed.add((409, "DELETE", "/v1/providers/openai-console"))
            expect(page.locator("[data-table=providers]")).to_contain_text("openai-console")

            # Key: the secret is shown once, with a copy button.
            goto(page, env, "keys")
            f = form(page, "keys")
            f.get_by_label("Name", exact=True).fill("console-team")
            f.get_by_label("Owner", exact=True).fill("platform@example.com")
            f.get_by_label("Allowed models", exact=True).fill("console-gpt")
            f.get_by_label("Requests per minute (empty: unlimited)", exact=True).fill("600")
            f.get_by_label("Budget, USD (empty: no cap)", exact=True).fill("5")
            f.get_by_role("button", name="Create key").click()
            secret_box = page.locator(".secret-box")
            expect(secret_box).to_be_visible()
            secret = secret_box.get_by_label("Secret of key console-team", exact=True).input_value()
            assert secret.startswith("sk-gw-"), secret
            env.secrets.append(secret)
            secret_box.get_by_role("button", name="Copy secret").click()
            expect(secret_box.get_by_role("status")).to_have_text("Copied.")
            page.screenshot(path=str(shots / "keys-secret-shown-once-desktop.png"), full_page=True)
            assert page.evaluate("() => navigator.clipboard.readText()") == secret
            expect(page.locator("[data-table=keys]")).to_contain_text("of $5 per month")
            # Gone after a reload: shown once.
            page.reload()
            page.wait_for_selector(".page[aria-busy=false]")
            assert secret not in page.content()
            # Edit the key's limits (PUT with If-Match): the secret stays the same.
            page.get_by_role("button", name="Edit key console-team").click()
            f = form(page, "keys")
            expect(f.get_by_label("Name", exact=True)).to_have_value("console-team")
            f.get_by_label("Tokens per minute (empty: unlimited)", exact=True).fill("200000")
            f.get_by_role("button", name="Save").click()
            expect(page.locator("[data-table=keys]")).to_contain_text("rpm 600 · tpm 200000")

            # The key through Envoy with the openai SDK.
            env.wait_status("console-gpt", secret, 200, 10.0)
            client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=secret, max_retries=0, timeout=30)
            before = usage_totals(env)
            r = client.chat.completions.create(model="console-gpt", messages=CHAT)
            assert r.choices[0].message.content and r.usage
            totals = wait_usage(env, before)
            requests = totals["requests"]
            assert totals["input_tokens"] >= r.usage.prompt_tokens and totals["output_tokens"] >= r.usage.completion_tokens
            cost = totals["input_tokens"] * round(INPUT_PER_MTOK * 1e6) + totals["output_tokens"] * round(OUTPUT_PER_MTOK * 1e6)
            assert totals["cost_pusd"] == cost, totals

            # Usage page: table, charts and CSV show the same numbers.
            goto(page, env, "usage")
            table = page.locator("[data-table=usage]")
            row = table.locator("tbody tr", has_text="console-team")
            expect(row).to_have_count(1)
            cells = row.locator("td").all_inner_texts()
            assert cells[1] == "console-team" and cells[3] == "openai-console" and cells[4] == "gpt-5-nano", cells
            assert [int(cells[5]), int(cells[6]), int(cells[7])] == [requests, totals["input_tokens"], totals["output_tokens"]], cells
            assert cells[11] == usd_string(cost), (cells, cost)
            assert page.locator(".chart canvas").count() == 2
            expect(page.locator(".chart").first).to_have_attribute("aria-label", re.compile("console-team"))
            with page.expect_download() as dl:
                page.get_by_role("button", name="Export CSV").click()
            rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
            mine = [x for x in rows if x["Key"] == "console-team"]
            assert len(mine) == 1 and mine[0]["Input tokens"] == str(totals["input_tokens"]) and mine[0]["Cost USD"] == usd_string(cost), rows

            # Overview: today's and this month's totals, top keys, the Envoys and their config version.
            goto(page, env, "overview")
            all_today = usage_totals(env)
            expect(page.locator("[data-stat=requests-today] .stat-value")).to_have_text(str(all_today["requests"]))
            expect(page.locator("[data-stat=tokens-today] .stat-value")).to_have_text(
                f"{all_today['input_tokens'] + all_today['output_tokens']:,}")
            expect(page.locator("[data-stat=cost-today] .stat-value")).to_have_text(usd(all_today["cost_pusd"]))
            expect(page.locator("[data-stat=cost-month] .stat-value")).to_have_text(usd(all_today["cost_pusd"]))
            expect(page.get_by_role("table", name="Top keys and callers this month")).to_contain_text("console-team")
            _, snap = env.api("GET", "/v1/snapshot")
            nodes = page.locator("[data-table=nodes] tbody tr")
            expect(nodes.first).to_contain_text("current")
            expect(nodes.first).to_contain_text(re.compile(r"\d+ (s|min) ago"))
            assert str(snap["version"]) in nodes.first.inner_text()

            # A concurrent edit in another tab (second browser context): the stale save shows the
            # conflict and does not overwrite.
            other_ctx = browser.new_context(viewport=DESKTOP)
            other = other_ctx.new_page()
            watch2 = Watch(env.cp.rest_url)
            watch2.attach(other)
            sign_in(other, env, ADMIN_TOKEN)
            goto(page, env, "routes")
            goto(other, env, "routes")
            page.get_by_role("button", name="Edit route console-gpt").click()
            other.get_by_role("button", name="Edit route console-gpt").click()
            form(other, "routes").get_by_label("Target 2 weight", exact=True).fill("5")
            form(other, "routes").get_by_role("button", name="Save").click()
            expect(other.locator("[data-table=routes]")).to_contain_text("weight 5")
            form(page, "routes").get_by_label("Target 1 weight", exact=True).fill("2")
            form(page, "routes").get_by_role("button", name="Save").click()
            conflict = page.locator("[data-conflict]")
            expect(conflict).to_contain_text("was changed by someone else")
            expect(conflict).to_contain_text("weight")
            page.screenshot(path=str(shots / "routes-conflict-desktop.png"), full_page=True)
            allowed.add((412, "PUT", "/v1/routes/console-gpt"))
            _, route = env.api("GET", "/v1/routes/console-gpt")
            assert [t["weight"] for t in route["targets"]] == [1, 5], route
            watch2.check(set())
            other_ctx.close()

            # Rotate with a grace period: both secrets work, then the old one is refused.
            goto(page, env, "keys")
            page.get_by_role("button", name="Rotate key console-team").click()
            dialog = page.locator("dialog")
            assert_labelled(page, "rotate dialog")
            dialog.get_by_label("Grace period of the old secret (seconds)", exact=True).fill(str(GRACE_S))
            dialog.get_by_role("button", name="Rotate").click()
            new_secret = page.locator(".secret-box").get_by_label("New secret of key console-team", exact=True).input_value()
            rotated_at = time.monotonic()
            assert new_secret.startswith("sk-gw-") and new_secret != secret
            env.secrets.append(new_secret)
            env.wait_status("console-gpt", new_secret, 200, 5.0)
            assert env.chat_status("console-gpt", secret) == 200, "the old secret must work during the grace"
            OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=secret, max_retries=0, timeout=30).chat.completions.create(
                model="console-gpt", messages=CHAT)
            assert time.monotonic() - rotated_at < GRACE_S, "the grace check ran too late to mean anything"
            env.wait_status("console-gpt", secret, 401, GRACE_S + 10.0)
            assert env.chat_status("console-gpt", new_secret) == 200
            expect(page.locator("[data-table=keys]")).to_contain_text("old secret valid until")

            # Revoke: the new secret is refused too.
            page.get_by_role("button", name="Revoke key console-team").click()
            page.locator("dialog").get_by_role("button", name="Revoke").click()
            expect(page.locator("[data-table=keys] .status")).to_have_text("revoked")
            env.wait_status("console-gpt", new_secret, 401, 5.0)
            try:
                OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=new_secret, max_retries=0,
                       timeout=30).chat.completions.create(model="console-gpt", messages=CHAT)
                raise AssertionError("a revoked key was served")
            except AuthenticationError as err:
                assert err.status_code == 401
            expect(page.get_by_role("button", name="Rotate key console-team")).to_be_disabled()

            # The audit page: every change, newest first, by this admin token's actor, via the API;
            # the refused stale edit and the refused delete are not there; no secret anywhere.
            goto(page, env, "audit")
            actor = "admin:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:8]
            entries = audit_rows(page)
            changes = [(r["Action"], r["Object"]) for r in entries]
            assert changes == [
                ("revoke", "key console-team"), ("rotate", "key console-team"), ("update", "route console-gpt"),
                ("update", "key console-team"), ("create", "key console-team"), ("create", "route console-gpt"),
                ("create", "price openai-console/gpt-5-nano"), ("create", "provider openai-console"),
            ], changes
            assert {(r["Actor"], r["Via"]) for r in entries} == {(actor, "api")}, entries
            assert "tpm: — → 200000" in entries[3]["Changes"], entries[3]
            update = entries[2]
            assert update["Version"] == "1 → 2" and "targets[1].weight: 3 → 5" in update["Changes"], update
            provider_created = entries[-1]
            assert 'credential: — → "<redacted>"' in provider_created["Changes"], provider_created
            html = page.content()
            for s in [*env.secrets, PROVIDER_SECRET, PROVIDER_VAR, *(hashlib.sha256(x.encode()).hexdigest() for x in env.secrets)]:
                assert s not in html, f"the audit page shows a secret or credential reference ({s[:10]}...)"
            # Filters: by kind and actor; another actor has no changes.
            f = form(page, "audit")
            f.get_by_label("Object kind", exact=True).select_option("key")
            f.get_by_label("Actor", exact=True).fill(actor)
            f.get_by_role("button", name="Filter").click()
            expect(page.locator("[data-table=audit] tbody tr")).to_have_count(4)
            assert [r["Action"] for r in audit_rows(page)] == ["revoke", "rotate", "update", "create"]
            f = form(page, "audit")
            f.get_by_label("Actor", exact=True).fill("read-only:" + hashlib.sha256(READ_ONLY_TOKEN.encode()).hexdigest()[:8])
            f.get_by_role("button", name="Filter").click()
            expect(page.locator("[data-table=audit] tbody")).to_have_text("Nothing yet.")

            # Every page at desktop and phone width, every control labelled.
            screenshots(page, env, shots)
            watch.check(allowed)

            # Read-only: everything visible, nothing changeable, and the API refuses anyway.
            ro_ctx = browser.new_context(viewport=DESKTOP)
            ro = ro_ctx.new_page()
            ro_watch = Watch(env.cp.rest_url)
            ro_watch.attach(ro)
            sign_in(ro, env, READ_ONLY_TOKEN)
            expect(ro.locator(".badge.ro")).to_have_text("read-only")
            for name in ("providers", "routes", "prices", "keys"):
                goto(ro, env, name)
                expect(ro.locator("[data-table]").first).not_to_contain_text("Nothing yet.")
                mutating = ro.locator("button.mutate")
                assert mutating.count() >= 2, name
                for i in range(mutating.count()):
                    expect(mutating.nth(i)).to_be_disabled()
                for el in ro.locator(f"form[data-form={name}] input, form[data-form={name}] select").all():
                    expect(el).to_be_disabled()
            ro.screenshot(path=str(shots / "keys-read-only-desktop.png"), full_page=True)
            forced = ro.evaluate("""async () => {
                const token = sessionStorage.getItem('ai-gateway-console-token');
                const h = {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'};
                const post = await fetch('/v1/providers', {method: 'POST', headers: h,
                    body: JSON.stringify({name: 'sneaky', kind: 'openai', cluster: 'c'})});
                const del = await fetch('/v1/routes/console-gpt', {method: 'DELETE', headers: h});
                return [post.status, del.status, (await post.json()).error.type];
            }""")
            assert forced == [403, 403, "permission_error"], forced
            assert env.api("GET", "/v1/providers/sneaky")[0] == 404
            assert env.api("GET", "/v1/routes/console-gpt")[0] == 200
            # The token lives in this tab's sessionStorage only: a new context starts signed out.
            fresh = ro_ctx.browser.new_context().new_page()  # type: ignore[union-attr]
            fresh.goto(env.ui)
            expect(fresh.get_by_label("Admin or read-only token", exact=True)).to_be_visible()
            # Refused writes leave no audit record.
            goto(ro, env, "audit")
            assert len(audit_rows(ro)) == 8
            ro_watch.check({(403, "POST", "/v1/providers"), (403, "DELETE", "/v1/routes/console-gpt")})
        finally:
            browser.close()

    # No secret in the control plane's log.
    log = (env.workdir / "control-plane.log").read_text(errors="replace")
    for s in [*env.secrets, PROVIDER_SECRET]:
        assert s not in log, f"a secret ({s[:8]}...) is in the control-plane log"
    print(f"\nconsole screenshots ({env.store}): {shots}")


def audit_rows(page: Any) -> list[dict[str, str]]:
    """The audit table's rows as {column: text}."""
    table = page.locator("[data-table=audit]")
    head = table.locator("thead th").all_inner_texts()
    rows = []
    for tr in table.locator("tbody tr").all():
        cells = tr.locator("td").all_inner_texts()
        if len(cells) == len(head):
            rows.append(dict(zip(head, cells)))
    return rows


def usage_totals(env: Env) -> dict[str, int]:
    status, doc = env.api("GET", "/v1/usage?period=day")
    assert status == 200, doc
    out = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_pusd": 0}
    for row in doc["data"]:
        for k in out:
            out[k] += int(row[k])
    return out


def wait_usage(env: Env, before: dict[str, int], limit: float = 20.0) -> dict[str, int]:
    """Waits until the filter's usage reports (flushed every second) reach the control plane and
    stop changing; returns the key's totals for today."""
    deadline = time.monotonic() + limit
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        status, doc = env.api("GET", "/v1/usage?period=day&key=console-team")
        assert status == 200, doc
        now = {k: sum(int(r[k]) for r in doc["data"]) for k in ("requests", "input_tokens", "output_tokens", "cost_pusd")}
        if now["requests"] >= 2 and now == last:
            return now
        last = now
        time.sleep(1.2)
    raise AssertionError(f"usage did not arrive within {limit}s: {last}")


# --- tests -----------------------------------------------------------------------------------------

def test_console_flow_embedded_store(fixtures_dir: Path, tmp_path: Path) -> None:
    wasm = Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM))
    with running_stack(tmp_path, fixtures_dir, wasm, "embedded") as env:
        run_flow(env, SHOTS / "embedded")


def test_console_flow_dynamodb_local(fixtures_dir: Path, tmp_path: Path) -> None:
    """The same flow with the DynamoDB store, inside DynamoDB Local's network namespace."""
    wasm = Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM))
    cmd = [str(REPO / "control-plane" / "scripts" / "dynamodb-local.sh"), sys.executable, __file__,
           "--store", "dynamodb", "--workdir", str(tmp_path), "--fixtures", str(fixtures_dir), "--wasm", str(wasm)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    assert "console flow passed on dynamodb" in proc.stdout


def test_console_build_is_reproducible(tmp_path: Path) -> None:
    """`npm ci && vite build` from the committed sources gives the committed dist/ byte for byte."""
    src = tmp_path / "ui"
    shutil.copytree(UI, src, ignore=shutil.ignore_patterns("node_modules", "dist"))
    npm = shutil.which("npm")
    assert npm, "npm is needed to rebuild the console (./dev setup)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=src, check=True, timeout=300)
    subprocess.run([npm, "run", "--silent", "build", "--", "--logLevel", "error"], cwd=src, check=True, timeout=300)
    built = {p.relative_to(src / "dist").as_posix(): p.read_bytes() for p in (src / "dist").rglob("*") if p.is_file()}
    committed = {p.relative_to(UI / "dist").as_posix(): p.read_bytes() for p in (UI / "dist").rglob("*") if p.is_file()}
    assert sorted(built) == sorted(committed), "rebuild the console with ./dev ui and commit control-plane/ui/dist"
    for name, data in committed.items():
        assert built[name] == data, f"{name} differs from a fresh build: ./dev ui and commit"
    size = sum(len(d) for d in committed.values())
    print(f"\nconsole assets: {len(committed)} files, {size} bytes")
    assert size < 300_000, size


def main() -> int:
    parser = argparse.ArgumentParser(description="the console flow, outside pytest (DynamoDB Local's namespace)")
    parser.add_argument("--store", choices=["embedded", "dynamodb"], required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--wasm", required=True)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    with running_stack(workdir, Path(args.fixtures), Path(args.wasm), args.store) as env:
        run_flow(env, SHOTS / args.store)
    print(f"console flow passed on {args.store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
