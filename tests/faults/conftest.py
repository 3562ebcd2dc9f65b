"""The fault suite's stack: a real JupyterHub with configurable-http-proxy and the
FirecREST emulator (in-process scheduler, state file), 20 users at a time.

One stack serves every scenario of a test module; each scenario uses its own
users (``<prefix>-u00`` ...), so jobs and log lines are told apart by name.
Timeouts and poll intervals are short (set in the hub's configuration) so the
suite runs in minutes on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.demo import CLIENT_ID, FINAL_STATES, DemoOptions, DemoStack, free_port
from tests.e2e.conftest import E2EHub, wait_for

HERE = Path(__file__).resolve().parent
HUB_ID = "faults"
USERS = 20
SYSTEM = "local"
PROFILE = {"profile": "notebook", "partition": "normal"}
SUBMIT = "POST /compute/{system}/jobs"
JOB_LIST = "GET /compute/{system}/jobs"
JOB_ONE = "GET /compute/{system}/jobs/{jobId}"
#: A hub log line in the hub's format, and configurable-http-proxy's.
HUB_LINE = re.compile(r"^\[[DIWEC] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")
CHP_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT)?\d\d:\d\d:\d\d\.\d{3}Z? \[ConfigProxy\] ")


def users(prefix: str, n: int = USERS) -> list[str]:
    return [f"{prefix}-u{i:02d}" for i in range(n)]


@dataclass
class Outcome:
    """How one spawn ended, as the hub's progress API told it."""

    user: str
    ready: bool
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)


class FaultStack(E2EHub):
    """The stack plus what the scenarios need: faults, jobs, the reaper, the hub log."""

    def __init__(self, stack: DemoStack, service_token: str) -> None:
        super().__init__(stack, service_token)

    # -------------------------------------------------------------- emulator

    def faults(self, **changes: Any) -> dict[str, Any]:
        return self.stack.admin("PUT", "faults", json=changes)

    def fault_stats(self) -> list[dict[str, Any]]:
        return self.stack.admin("GET", "faults")["stats"]

    def clear_faults(self) -> None:
        self.stack.admin("DELETE", "faults")
        self.faults(visibility_delay=0.0)

    def statuses(self) -> dict[str, int]:
        return self.stack.admin("GET", "counters")["statuses"]

    def jobs_of(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """This hub's jobs by user (job name ``fcs.<hub_id>.<user>.<server>.<spawn>``)."""
        out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for job in self.stack.jobs():
            parts = str(job.get("name") or "").split(".")
            if len(parts) >= 3 and parts[0] == "fcs" and parts[1] == HUB_ID and parts[2] in out:
                out[parts[2]].append(job)
        return out

    # -------------------------------------------------------------- hub

    async def login_all(self, names: list[str]) -> None:
        async def one(name: str) -> None:
            client = await self.login(name)
            await client.aclose()

        await asyncio.gather(*(one(n) for n in names))

    async def spawn_and_follow(self, name: str, timeout: float = 150) -> Outcome:
        r = await self.spawn(name, PROFILE)
        assert r.status_code in (201, 202), f"{name}: {r.status_code} {r.text[:300]}"
        events = await self.progress(name, timeout=timeout)
        last = events[-1] if events else {}
        return Outcome(name, bool(last.get("ready")), str(last.get("message") or ""), events)

    async def spawn_all(
        self, names: list[str], timeout: float = 150, login: bool = True
    ) -> dict[str, Outcome]:
        """Spawn ``names`` at once (logged in first: the login stores the refresh token)."""
        if login:
            await self.login_all(names)
        results = await asyncio.gather(*(self.spawn_and_follow(n, timeout) for n in names))
        return {o.user: o for o in results}

    async def servers(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        found = await asyncio.gather(*(self.server(n) for n in names))
        return dict(zip(names, found, strict=True))

    async def stop_all(self, names: list[str], timeout: float = 90) -> None:
        """Stop every server of ``names`` and wait until the hub has none of them."""

        async def one(name: str) -> None:
            if await self.server(name) is None:
                return
            r = await self.api("DELETE", f"users/{name}/server")
            assert r.status_code in (202, 204, 400), f"stop {name}: {r.status_code} {r.text}"
            await wait_for(
                lambda: self.server(name), timeout, f"{name}'s server to stop", 0.5, True
            )

        await asyncio.gather(*(one(n) for n in names))

    def kill_hub(self) -> None:
        """SIGKILL the hub (no clean-up of any kind), then its left-over proxy."""
        proc = self.stack._hub
        assert proc is not None, "the hub is not running"
        assert proc.poll() is None, "the hub is not running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.stack.stop_hub()

    # -------------------------------------------------------------- reaper

    def reap(self) -> dict[str, Any]:
        """One pass of ``firecrestspawner reap`` (min-age 0) through the hub and the emulator."""
        env = dict(os.environ)
        env["SA_CLIENT_SECRET"] = self.stack.client_secret
        env["JUPYTERHUB_API_TOKEN"] = self.service_token
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE.parents[1]), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        argv = [
            sys.executable,
            "-m",
            "firecrestspawner",
            "reap",
            "--firecrest-url",
            self.stack.emulator_url,
            "--system",
            SYSTEM,
            "--client-id",
            CLIENT_ID,
            "--token-url",
            self.stack.token_url,
            "--hub-api-url",
            f"{self.url}hub/api",
            "--hub-id",
            HUB_ID,
            "--min-age",
            "0",
            "--timeout",
            "10",
            "--json",
        ]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"reaper failed ({done.returncode}):\n{done.stderr[-3000:]}"
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert not report["errors"], report["errors"]
        return report

    # -------------------------------------------------------------- log

    def log_mark(self) -> int:
        return self.stack.hub_log.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.stack.hub_log.open("rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")


@pytest.fixture(scope="module")
def fault_stack(chp: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    token = secrets.token_hex(24)
    wrapper = Path(sys.executable).parent / "firecrestspawner-singleuser"
    cmd = [str(wrapper), sys.executable, str(HERE / "notebook.py")]
    options = DemoOptions(
        port=free_port(),
        backend="local",
        base_dir=tmp_path_factory.mktemp("faults"),
        cleanup_servers=False,
        service_token=token,
        system_overrides={"slots": 64},
        extra_config=f"""
        c.FirecRESTSpawnerBase.hub_id = {HUB_ID!r}
        c.Spawner.cmd = {cmd!r}
        c.Spawner.args = []
        c.Spawner.default_url = ""
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 30
        c.Spawner.poll_interval = 2
        c.Spawner.poll_jitter = 0.1
        c.FirecRESTSpawnerBase.status_max_age = 1.0
        c.FirecRESTSpawnerBase.firecrest_timeout = 10.0
        c.FirecRESTSpawnerBase.firecrest_read_deadline = 8.0
        c.FirecRESTSpawnerBase.firecrest_max_retry_after = 2.0
        c.FirecRESTSpawnerBase.stop_timeout = 20.0
        c.FirecRESTSpawnerBase.unknown_grace_period = 60.0
        # The spawn API answers 202 at once, so every progress event is read.
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
        c.JupyterHub.concurrent_spawn_limit = 0
        """,
    )
    stack = DemoStack(options)
    stack.start()
    try:
        yield FaultStack(stack, token)
    finally:
        stack.stop()


def assert_invariants(
    hub: FaultStack,
    names: list[str],
    servers: dict[str, dict[str, Any] | None],
    were_ready: set[str],
) -> None:
    """After the reaper's first pass: one live job per active server, none without a record,
    no server that was ready declared dead."""
    jobs = hub.jobs_of(names)
    problems = []
    for name in names:
        live = [j for j in jobs[name] if not is_final(j)]
        server = servers[name]
        if server is None:
            if live:
                problems.append(f"{name}: no server but live jobs {_ids(live)}")
            if name in were_ready:
                problems.append(f"{name}: was ready, its server was declared dead")
            continue
        recorded = str(server["state"].get("job_id") or "")
        if [str(j["jobId"]) for j in live] != [recorded]:
            problems.append(f"{name}: server records job {recorded!r}, live jobs {_ids(live)}")
        if name in were_ready and not server["ready"]:
            problems.append(f"{name}: was ready, now {server}")
    assert not problems, "\n".join(problems)


def is_final(job: dict[str, Any]) -> bool:
    """Slurm's state word (``CANCELLED by 0`` is CANCELLED) is a final one."""
    state = str(job["status"]["state"]).split()
    return bool(state) and state[0] in FINAL_STATES


def _ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [f"{j['jobId']}:{j['name']}:{j['status']['state']}" for j in jobs]


def assert_clean_log(text: str) -> None:
    """No bare library lines (every line in the hub's or the proxy's format, or a
    continuation of a multi-line hub record) and no traceback."""
    bare = []
    in_proxy_record = False
    for line in text.splitlines():
        if HUB_LINE.match(line) or CHP_LINE.match(line):
            in_proxy_record = bool(CHP_LINE.match(line))
            continue
        if not line.strip() or in_proxy_record:
            continue  # the proxy's own multi-line records (node's error dumps)
        if line.startswith((" ", "\t")):
            continue  # continuation of the hub record above (indented by the message)
        bare.append(line)
    library = [line for line in text.splitlines() if "stamina" in line or "retry_scheduled" in line]
    assert not library, "retry library lines (retries must be summarised):\n" + "\n".join(
        library[:20]
    )
    assert "Traceback (most recent call last)" not in text, _around(text, "Traceback")
    assert not bare, f"{len(bare)} lines not in the hub's format, e.g.:\n" + "\n".join(bare[:20])


def _around(text: str, word: str, n: int = 2500) -> str:
    i = text.find(word)
    return text[max(0, i - 500) : i + n]


def fired(hub: FaultStack, route: str) -> int:
    return sum(s["fired"] for s in hub.fault_stats() if s["rule"]["route"] == route)


async def settle(seconds: float) -> None:
    """Let the hub's poll cycles run (poll_interval is 2 s)."""
    await asyncio.sleep(seconds)
