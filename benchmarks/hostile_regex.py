"""``/hub/health`` latency while hostile-regex validations run (issue #12, finding 4).

::

    .venv/bin/python -m benchmarks.hostile_regex [--seconds 20] [--rounds 4] [--concurrency 20]

Starts a real JupyterHub (a subprocess, with configurable-http-proxy) in
profile mode, with a FirecREST emulator, and a profile whose text option has
the pattern ``(a+)+$`` (catastrophic backtracking in Python's ``re``). Then
``--concurrency`` clients, in a load process of their own (not in the
prober's event loop), send a 4001-character value that does not match, each
in a closed loop: ``opt-`` links (``GET /hub/spawn/<user>?opt-...``, logged
in as that user; ``--path link``, the default) or the REST API (``POST
/hub/api/users/<user>/server``). Meanwhile this process GETs ``/hub/health``
in a loop. Phases: the hostile pattern, a benign control pattern, and the
floor (the same clients on ``/hub/health`` and on ``/hub/home``: requests
that never reach firecrestspawner's code). Prints, per phase, the health
latency percentiles, the load's requests, status codes, rate and average
number in flight (all hostile answers must be 400), the hub's CPU time per
request and its memory, the load process's own CPU; and, for contrast, how
long Python's ``re`` takes for the pattern on only 24 characters. The hub
validates with RE2 (``firecrestspawner/profiles/regex.py``). Figures and
their reading: docs/benchmarks.md, "Issue 12".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from firecrestspawner.demo import free_port
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


async def _login(base: str, user: str, limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """A browser-like client logged in as ``user`` (the dummy authenticator)."""
    client = httpx.AsyncClient(timeout=60, limits=limits or httpx.Limits())
    await client.get(f"{base}/hub/login")
    xsrf = client.cookies.get("_xsrf") or ""
    r = await client.post(
        f"{base}/hub/login?next=",
        data={"username": user, "password": "x", "_xsrf": xsrf},
    )
    if r.status_code not in (200, 302):
        raise RuntimeError(f"login of {user}: {r.status_code}")
    return client


#: What the load process sends, each of ``concurrency`` clients in a closed loop:
#: ``link``: ``GET /hub/spawn/<user>?opt-profile=..&opt-label=<value>`` (validated
#: before any spawn, refused with 400 and the form); ``rest``: ``POST
#: /hub/api/users/<user>/server`` (validated inside the spawn); ``health`` and
#: ``home``: the floor, requests that never reach firecrestspawner's code
#: (``/hub/health``; ``/hub/home``, a logged-in page rendered by JupyterHub).
#:
#: The phases, in the order they run by default.
PHASES = ("hostile", "control", "floor_health", "floor_home")


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """The load process: log in, say ``ready``, wait for ``go``, run, report."""
    base, kind, profile = spec["base"], spec["kind"], spec.get("profile", "hostile")
    users: list[str] = spec["users"]
    value = spec.get("value", HOSTILE_VALUE)
    shared = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=len(users) + 4))
    if kind in ("link", "home"):
        clients = [await _login(base, u) for u in users]
    else:
        clients = [shared] * len(users)
    headers = {"Authorization": f"token {spec['token']}"}
    body = json.dumps({"profile": profile, "label": value})
    params = {"opt-profile": profile, "opt-label": value}
    codes: list[int] = []
    latencies: list[float] = []
    stop = asyncio.Event()

    async def one(client: httpx.AsyncClient, user: str) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            if kind == "link":
                r = await client.get(f"{base}/hub/spawn/{user}", params=params)
            elif kind == "rest":
                r = await client.post(
                    f"{base}/hub/api/users/{user}/server", content=body, headers=headers
                )
            elif kind == "home":
                r = await client.get(f"{base}/hub/home")
            else:
                r = await client.get(f"{base}/hub/health")
            latencies.append(time.perf_counter() - start)
            codes.append(r.status_code)

    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.perf_counter()
    cpu = time.process_time()
    tasks = [asyncio.create_task(one(c, u)) for c, u in zip(clients, users, strict=True)]
    await asyncio.sleep(spec["seconds"])
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    for c in {id(c): c for c in [*clients, shared]}.values():
        await c.aclose()
    return {
        "status_codes": sorted(set(codes)),
        "latencies": latencies,
        "elapsed": elapsed,
        "cpu": cpu,
    }


def _load_summary(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """What the load did over its slices: requests, rate, in flight, its own CPU."""
    latencies = [x for s in slices for x in s["latencies"]]
    elapsed = sum(s["elapsed"] for s in slices) or float("nan")
    return {
        "requests": len(latencies),
        "status_codes": sorted({c for s in slices for c in s["status_codes"]}),
        "rate_per_s": len(latencies) / elapsed,
        # Little's law: requests the hub had in flight on average (the clients'
        # own time between a response and the next request is not in it).
        "in_flight": sum(latencies) / elapsed,
        "latency_p50_ms": percentile(latencies, 50) * 1e3,
        # The load process's own CPU (of the machine's cores) while it ran.
        "load_cpu_share": sum(s["cpu"] for s in slices) / elapsed,
    }


async def _phase(
    base: str, spec: dict[str, Any], seconds: float, cpus: set[int] | None
) -> tuple[list[float], dict[str, Any]]:
    """Health latencies while a load process (its own process, not this one) runs ``spec``."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.hostile_regex",
        "--load",
        json.dumps({**spec, "base": base, "seconds": seconds}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if line.strip() != b"ready":
        await proc.wait()
        raise RuntimeError(f"the load process did not start: {line!r}")
    samples: list[float] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=60) as client:
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        health = asyncio.create_task(_health_loop(client, base, stop, samples))
        await asyncio.sleep(seconds)
        stop.set()
        await health
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode != 0:
        raise RuntimeError(f"the load process failed ({proc.returncode})")
    return samples, json.loads(out.decode().strip().splitlines()[-1])


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` so far (Linux), NaN if unknown."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int | None) -> float:
    """Resident memory of process ``pid`` in MB (Linux), NaN if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return float("nan")


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "samples": len(samples),
        "p50_ms": percentile(samples, 50) * 1e3,
        "p99_ms": percentile(samples, 99) * 1e3,
        "max_ms": max(samples) * 1e3 if samples else float("nan"),
    }


async def measure(
    base: str,
    token: str,
    seconds: float,
    concurrency: int,
    path: str = "link",
    *,
    floor: bool = True,
    load_cpus: set[int] | None = None,
    order: tuple[str, ...] = (),
    hub_pid: int | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Health latencies idle, under the floor loads and under ``concurrency`` hostile clients."""
    users = [f"bench-{i}" for i in range(concurrency)]
    async with httpx.AsyncClient(timeout=60) as client:
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

    phases: dict[str, Any] = {}
    plan = {
        "hostile": (path, "hostile"),
        "control": (path, "control"),
        "floor_health": ("health", ""),
        "floor_home": ("home", ""),
    }
    names = order or (PHASES if floor else PHASES[:2])
    samples: dict[str, list[float]] = {name: [] for name in names}
    slices: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    hub_cpu = dict.fromkeys(names, 0.0)
    # ``rounds`` > 1: the phases take turns in shorter slices, so that a change
    # of the machine's load during the run weighs on every phase alike.
    for _ in range(max(1, rounds)):
        for name in names:
            kind, profile = plan[name]
            spec = {"kind": kind, "profile": profile, "users": users, "token": token}
            cpu = _cpu_seconds(hub_pid)
            health, load = await _phase(base, spec, seconds / max(1, rounds), load_cpus)
            hub_cpu[name] += _cpu_seconds(hub_pid) - cpu
            samples[name] += health
            slices[name].append(load)
    for name in names:
        load = _load_summary(slices[name])
        # The hub's CPU time per request of the load (its health probes are few and cheap).
        load["hub_cpu_ms"] = hub_cpu[name] / max(1, load["requests"]) * 1e3
        load["hub_rss_mb"] = _rss_mb(hub_pid)
        phases[name] = {"health": _stats(samples[name]), "load": load}
    missing = {"health": _stats([]), "load": {"requests": 0, "status_codes": []}}
    result: dict[str, Any] = {
        "idle": _stats(idle),
        "under_load": phases.get("hostile", missing)["health"],
        "hostile_requests": phases.get("hostile", missing)["load"]["requests"],
        "hostile_status_codes": phases.get("hostile", missing)["load"]["status_codes"],
        "control": phases.get("control", missing)["health"],
        "control_requests": phases.get("control", missing)["load"]["requests"],
        "phases": phases,
        "concurrency": concurrency,
        "seconds": seconds,
        "rounds": max(1, rounds),
        "path": path,
    }
    return result


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


def run(
    seconds: float = 20,
    concurrency: int = 20,
    path: str = "link",
    *,
    floor: bool = True,
    pin: bool = False,
    phases: tuple[str, ...] = (),
    hub_log: str | None = None,
    rounds: int = 1,
) -> dict[str, Any]:
    """Start the emulator and a hub, measure, stop both (``hub_log``: keep its log there).

    ``pin``: the hub runs on CPU 0 only and the load process on the others, as
    when clients are on other machines (needs two CPUs or more).
    """
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
        port = free_port()
        (Path(tmp) / "jupyterhub_config.py").write_text(
            CONFIG.format(
                port=port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
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
                    load_cpus = None
                    if pin:
                        cpus = sorted(os.sched_getaffinity(0))
                        if len(cpus) < 2:
                            raise RuntimeError("--pin needs two CPUs or more")
                        os.sched_setaffinity(proc.pid, {cpus[0]})
                        load_cpus = set(cpus[1:])
                    return await measure(
                        base,
                        token,
                        seconds,
                        concurrency,
                        path,
                        floor=floor,
                        load_cpus=load_cpus,
                        order=phases,
                        hub_pid=proc.pid,
                        rounds=rounds,
                    )

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
                if hub_log:
                    shutil.copyfile(Path(tmp) / "hub.log", hub_log)
    result["pinned"] = pin
    result["load_average"] = os.getloadavg()
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
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the floor phases (the same clients on /hub/health and /hub/home)",
    )
    parser.add_argument(
        "--pin", action="store_true", help="the hub on CPU 0, the load process on the others"
    )
    parser.add_argument(
        "--phases",
        default="",
        help=f"comma-separated phases to run, in this order (default: {','.join(PHASES)})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the phases in turn this many times, --seconds/ROUNDS each (noise spreads "
        "evenly over the phases)",
    )
    parser.add_argument("--hub-log", help="copy the hub's log to this file at the end")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the load process (internal)
    args = parser.parse_args(argv)
    if args.load:
        print(json.dumps(asyncio.run(_load(json.loads(args.load)))), flush=True)
        return 0
    order = tuple(p for p in args.phases.split(",") if p)
    if set(order) - set(PHASES):
        parser.error(f"--phases: choose among {', '.join(PHASES)}")
    result = run(
        args.seconds,
        args.concurrency,
        args.path,
        floor=not args.no_floor,
        pin=args.pin,
        phases=order,
        hub_log=args.hub_log,
        rounds=args.rounds,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    def line(label: str, st: dict[str, float]) -> str:
        return (
            f"{label:<38} p50 {st['p50_ms']:7.1f} ms, p99 {st['p99_ms']:7.1f} ms, "
            f"max {st['max_ms']:7.1f} ms ({st['samples']} requests)"
        )

    labels = {
        "hostile": f"{args.path}, hostile pattern",
        "control": f"{args.path}, control pattern",
        "floor_health": "floor: clients on /hub/health",
        "floor_home": "floor: clients on /hub/home",
    }
    print(line("/hub/health idle:", result["idle"]))
    for name, phase in result["phases"].items():
        load = phase["load"]
        print(line(f"/hub/health, {labels[name]}:", phase["health"]))
        print(
            f"{'':<38} load: {load['requests']} requests, {load['rate_per_s']:.0f}/s, "
            f"status {load['status_codes']}, {load['in_flight']:.1f} in flight on average, "
            f"p50 {load['latency_p50_ms']:.1f} ms; hub CPU {load['hub_cpu_ms']:.2f} ms/request, "
            f"hub RSS {load['hub_rss_mb']:.0f} MB; load process CPU {load['load_cpu_share']:.0%}"
        )
    print(
        f"{result['concurrency']} clients at once, {result['seconds']:.0f} s per phase "
        f"(in {result['rounds']} turn(s)), hostile "
        f"values of {len(HOSTILE_VALUE)} characters, load in its own process"
        f"{', hub pinned to one CPU' if result['pinned'] else ''}; load average after: "
        + " ".join(f"{x:.2f}" for x in result["load_average"])
    )
    print(
        f"one validation of the hostile value (RE2, in process): "
        f"{result['validation_s'] * 1e6:.0f} us; Python re: {result['python_re_24_chars_s']:.2f} s "
        "for only 24 characters (doubling per character)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
