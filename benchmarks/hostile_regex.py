"""``/hub/health`` latency while hostile-regex validations run (issue #12, finding 4).

::

    .venv/bin/python -m benchmarks.hostile_regex [--seconds 20] [--concurrency 20]

Starts a real JupyterHub (a subprocess, with configurable-http-proxy) in
profile mode, with a FirecREST emulator, and a profile whose text option has
the pattern ``(a+)+$`` (catastrophic backtracking in Python's ``re``). Then
``--concurrency`` clients POST ``/hub/api/users/<name>/server`` with a
4001-character value that does not match, over and over, while one client
GETs ``/hub/health`` in a loop. Prints the health latency percentiles (idle,
then under load), the hostile requests answered (all must be 400) and, for
contrast, how long Python's ``re`` takes for the same pattern on only 24
characters. The hub validates with RE2 (``firecrestspawner/profiles/regex.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import running_emulator

from .probes import percentile

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_PATTERN = "(a+)+$"
HOSTILE_VALUE = "a" * 4000 + "!"

SITE = """\
version: 1
firecrest_url: {url}
systems:
  - name: cluster
    workdir: {workdir}
profiles:
  - id: hostile
    display_name: Hostile pattern
    system: cluster
    default: true
    options:
      - id: label
        display_name: Label
        kind: text
        pattern: '{pattern}'
        max_length: 4096
        req: label
  - id: control
    display_name: Plain pattern
    system: cluster
    options:
      - id: label
        display_name: Label
        kind: text
        pattern: '[a-z]*'
        max_length: 4096
        req: label
"""

CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{tmp}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/cookie_secret"
c.JupyterHub.pid_file = "{tmp}/jupyterhub.pid"
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.ConfigurableHTTPProxy.pid_file = "{tmp}/proxy.pid"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "firecrestspawner.spawner.SlurmSpawner"
c.SlurmSpawner.profiles_dir = "{tmp}/profiles"
c.SlurmSpawner.firecrest_url = "{url}"
c.SlurmSpawner.token_url = "{token_url}"
c.JupyterHub.services = [{{"name": "bench", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [
    {{"name": "bench", "scopes": ["admin:users", "admin:servers"], "services": ["bench"]}}
]
c.JupyterHub.log_level = "WARN"
c.SlurmSpawner.allow_link_spawn = True
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_re_seconds(length: int = 24) -> float:
    """How long Python's backtracking ``re`` takes for the hostile pattern on ``length`` chars."""
    start = time.perf_counter()
    re.fullmatch(HOSTILE_PATTERN, "a" * length + "!")
    return time.perf_counter() - start


async def _wait_up(client: httpx.AsyncClient, base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}")
        try:
            r = await client.get(f"{base}/hub/health")
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the hub did not answer /hub/health within 90 s")


async def _health_loop(
    client: httpx.AsyncClient, base: str, stop: asyncio.Event, out: list[float]
) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        r = await client.get(f"{base}/hub/health")
        r.raise_for_status()
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)


async def _hostile_loop(
    client: httpx.AsyncClient,
    base: str,
    user: str,
    token: str,
    stop: asyncio.Event,
    codes: list[int],
    profile: str,
) -> None:
    """REST: ``POST /hub/api/users/<user>/server``; validated inside the spawn."""
    body = json.dumps({"profile": profile, "label": HOSTILE_VALUE})
    headers = {"Authorization": f"token {token}"}
    while not stop.is_set():
        r = await client.post(f"{base}/hub/api/users/{user}/server", content=body, headers=headers)
        codes.append(r.status_code)


async def _login(base: str, user: str) -> httpx.AsyncClient:
    """A browser-like client logged in as ``user`` (the dummy authenticator)."""
    client = httpx.AsyncClient(timeout=60)
    await client.get(f"{base}/hub/login")
    xsrf = client.cookies.get("_xsrf") or ""
    r = await client.post(
        f"{base}/hub/login?next=",
        data={"username": user, "password": "x", "_xsrf": xsrf},
    )
    if r.status_code not in (200, 302):
        raise RuntimeError(f"login of {user}: {r.status_code}")
    return client


async def _link_loop(
    client: httpx.AsyncClient,
    base: str,
    user: str,
    stop: asyncio.Event,
    codes: list[int],
    profile: str,
) -> None:
    """``opt-`` link: ``GET /hub/spawn/<user>?opt-...``; validated before any spawn."""
    params = {"opt-profile": profile, "opt-label": HOSTILE_VALUE}
    while not stop.is_set():
        r = await client.get(f"{base}/hub/spawn/{user}", params=params)
        codes.append(r.status_code)


async def measure(
    base: str, token: str, seconds: float, concurrency: int, path: str = "link"
) -> dict[str, Any]:
    """Health latencies idle and under ``concurrency`` hostile clients for ``seconds``."""
    users = [f"bench-{i}" for i in range(concurrency)]
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        r = await client.post(
            f"{base}/hub/api/users",
            json={"usernames": users},
            headers={"Authorization": f"token {token}"},
        )
        if r.status_code not in (201, 409):
            raise RuntimeError(f"creating users: {r.status_code} {r.text[:200]}")
        idle: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(_health_loop(client, base, stop, idle))
        await asyncio.sleep(min(5.0, seconds / 2))
        stop.set()
        await task

        browsers = [] if path == "rest" else [await _login(base, u) for u in users]
        phases = {}
        for profile in ("hostile", "control"):
            loaded: list[float] = []
            codes: list[int] = []
            stop = asyncio.Event()
            if path == "rest":
                tasks = [
                    asyncio.create_task(_hostile_loop(client, base, u, token, stop, codes, profile))
                    for u in users
                ]
            else:
                tasks = [
                    asyncio.create_task(_link_loop(b, base, u, stop, codes, profile))
                    for b, u in zip(browsers, users, strict=True)
                ]
            health = asyncio.create_task(_health_loop(client, base, stop, loaded))
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks, health)
            phases[profile] = (loaded, codes)
        for b in browsers:
            await b.aclose()

    def stats(samples: list[float]) -> dict[str, float]:
        return {
            "samples": len(samples),
            "p50_ms": percentile(samples, 50) * 1e3,
            "p99_ms": percentile(samples, 99) * 1e3,
            "max_ms": max(samples) * 1e3 if samples else float("nan"),
        }

    return {
        "idle": stats(idle),
        "under_load": stats(phases["hostile"][0]),
        "hostile_requests": len(phases["hostile"][1]),
        "hostile_status_codes": sorted(set(phases["hostile"][1])),
        "control": stats(phases["control"][0]),
        "control_requests": len(phases["control"][1]),
        "concurrency": concurrency,
        "seconds": seconds,
        "path": path,
    }


def validation_seconds(repeat: int = 200) -> float:
    """Mean time of one validation of the hostile value, in this process (RE2)."""
    from firecrestspawner.profiles import load_profile_text
    from firecrestspawner.profiles.models import ProfileSet
    from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options

    text = SITE.format(url="http://x.invalid", workdir="/w", pattern=HOSTILE_PATTERN)
    profiles = ProfileSet(load_profile_text(text, name="site.yaml").profiles)
    start = time.perf_counter()
    for _ in range(repeat):
        with contextlib.suppress(OptionError):
            validate_options(
                profiles, {"profile": "hostile", "label": HOSTILE_VALUE}, user=UserInfo("u")
            )
    return (time.perf_counter() - start) / repeat


def run(seconds: float = 20, concurrency: int = 20, path: str = "link") -> dict[str, Any]:
    """Start the emulator and a hub, measure, stop both."""
    chp = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if not chp.exists():
        raise SystemExit("configurable-http-proxy is missing: run scripts/setup.sh")
    config = EmulatorConfig(systems=[SystemConfig(name="cluster", node_name="127.0.0.1")])
    with running_emulator(config) as emu, tempfile.TemporaryDirectory(prefix="fcs-bench-") as tmp:
        (Path(tmp) / "profiles").mkdir()
        (Path(tmp) / "profiles" / "site.yaml").write_text(
            SITE.format(url=emu.url, workdir=tmp, pattern=HOSTILE_PATTERN), encoding="utf-8"
        )
        token = secrets.token_hex(16)
        port = _free_port()
        (Path(tmp) / "jupyterhub_config.py").write_text(
            CONFIG.format(
                port=port,
                hub_port=_free_port(),
                proxy_api_port=_free_port(),
                tmp=tmp,
                chp=chp,
                url=emu.url,
                token_url=emu.token_url,
                token=token,
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        with open(Path(tmp) / "hub.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", f"{tmp}/jupyterhub_config.py"],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                base = f"http://127.0.0.1:{port}"

                async def main() -> dict[str, Any]:
                    async with httpx.AsyncClient(timeout=5) as client:
                        await _wait_up(client, base, proc)
                    return await measure(base, token, seconds, concurrency, path)

                try:
                    result = asyncio.run(main())
                except RuntimeError as e:
                    tail = (Path(tmp) / "hub.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{e}; the hub's log ends with:\n{tail}") from None
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    result["python_re_24_chars_s"] = python_re_seconds(24)
    result["validation_s"] = validation_seconds()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--path",
        choices=["link", "rest"],
        default="link",
        help="link: opt- links (validated before any spawn); rest: the REST API (validated "
        "inside the spawn, after JupyterHub's own bookkeeping)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.concurrency, args.path)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    idle, loaded, control = result["idle"], result["under_load"], result["control"]

    def line(label: str, st: dict[str, float]) -> str:
        return (
            f"{label:<34} p50 {st['p50_ms']:7.1f} ms, p99 {st['p99_ms']:7.1f} ms, "
            f"max {st['max_ms']:7.1f} ms ({st['samples']} requests)"
        )

    print(line("/hub/health idle:", idle))
    print(line("/hub/health, hostile pattern:", loaded))
    print(line("/hub/health, control pattern:", control))
    print(
        f"hostile validations: {result['hostile_requests']} answered "
        f"(status {result['hostile_status_codes']}), control: {result['control_requests']}; "
        f"{result['concurrency']} at once through {result['path']} for {result['seconds']:.0f} s "
        f"each, values of {len(HOSTILE_VALUE)} characters"
    )
    print(
        f"one validation of the hostile value (RE2, in process): "
        f"{result['validation_s'] * 1e6:.0f} us; Python re: {result['python_re_24_chars_s']:.2f} s "
        "for only 24 characters (doubling per character)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
