"""Steady state: N running servers polled as JupyterHub polls them.

Each spawner gets ``start_polling()`` (tornado ``PeriodicCallback`` every
``poll_interval`` seconds with JupyterHub's 10 % jitter), after a first poll
of all servers at once as the hub does at start-up. The window measured
starts half an interval after the first full round, so it holds whole rounds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import baseline
from .emulator import EmulatorHandle
from .hub import BenchHub, issue_tokens, reset_shared_state
from .probes import CpuTimer, LagProbe, rss_bytes

log = logging.getLogger("benchmarks")

MODES = ("ours", "ours-user", "baseline")
JOB_SCRIPT = "#!/bin/bash\n#SBATCH --job-name={name}\nsleep infinity\n"


@dataclass
class SteadyResult:
    mode: str
    n: int
    poll_interval: float
    #: Poll rounds started in the window (polls / N); fewer than measured
    #: intervals means the hub could not keep up with poll_interval.
    rounds: float
    intervals: int
    firecrest_per_interval: float
    idp_per_interval: float
    cpu_per_round_s: float
    mem_per_server_kib: float
    rss_per_server_kib: float
    #: The hub's start-up check: every server polled at once (seconds).
    startup_poll_s: float
    lag: dict[str, float] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__}


async def submit_jobs(emu: EmulatorHandle, hub: BenchHub, users: list, concurrency: int = 32):
    """One running job per user, submitted as that user; returns state dicts."""
    tokens = await issue_tokens(emu, [u.name for u in users], "access", lifetime=3600)
    sem = asyncio.Semaphore(concurrency)
    states: list[dict[str, Any]] = [{} for _ in users]

    async with httpx.AsyncClient(base_url=emu.url, timeout=60) as http:

        async def one(i: int) -> None:
            user = users[i]
            name = f"fcs.bench.{user.name}.{secrets.token_hex(3)}"
            body = {
                "job": {
                    "name": name,
                    "script": JOB_SCRIPT.format(name=name),
                    "workingDirectory": str(hub.workroot / user.name),
                }
            }
            async with sem:
                r = await http.post(
                    f"/compute/{emu.system}/jobs",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[i]}"},
                )
            r.raise_for_status()
            states[i] = {
                "job_id": str(r.json()["jobId"]),
                "job_status": "RUNNING localhost",
                "system": emu.system,
                "firecrest_url": emu.url,
                "job_name": name,
                "host": "localhost",
                "port": 40000 + i % 20000,
                "submitted_at": time.time(),
                "seen": True,
            }

        await asyncio.gather(*(one(i) for i in range(len(users))))
    return states


def make_spawners(hub: BenchHub, users: list, states: list[dict], mode: str, **traits: Any):
    cls = baseline.BaselineSpawner if mode == "baseline" else None
    kw = hub.traits(service_account=(mode != "ours-user"), **traits)
    spawners = []
    for user, state in zip(users, states, strict=True):
        s = hub.new_spawner(user, cls, **kw) if cls else hub.new_spawner(user, **kw)
        s.load_state(state)
        spawners.append(s)
    return spawners


class PollCounter:
    """Counts poll() calls (started and in flight) by wrapping each spawner's method."""

    def __init__(self, spawners: list) -> None:
        self.count = 0
        self.active = 0
        self.tasks: set[asyncio.Task] = set()
        for s in spawners:
            s.poll = self._wrap(s.poll)

    def _wrap(self, poll):
        async def counted():
            self.count += 1
            self.active += 1
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                return await poll()
            finally:
                self.active -= 1
                self.tasks.discard(task)  # type: ignore[arg-type]

        return counted

    async def drain(self, timeout: float) -> None:
        """Wait for polls in flight; cancel what is left (it must not load the next run)."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:  # noqa: ASYNC110 - a bounded drain
            await asyncio.sleep(0.1)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=30)


async def run_steady(
    emu: EmulatorHandle,
    n: int,
    mode: str,
    *,
    poll_interval: float,
    status_max_age: float,
    rounds: int,
    measure_memory: bool = True,
    startup_timeout: float = 240,
) -> SteadyResult:
    """One steady-state measurement; ``emu`` must be fresh (no other jobs)."""
    await reset_shared_state()
    baseline.reset()
    hub = BenchHub(emu)
    try:
        # Polling with the service account never reads the users' auth_state.
        users = await hub.add_users(
            [f"{mode.replace('-', '')}{n}u{i}" for i in range(n)],
            refresh_tokens=(mode == "ours-user"),
        )
        log.info("  %d users", n)
        states = await submit_jobs(emu, hub, users)
        log.info("  %d jobs", n)

        gc.collect()
        rss0 = rss_bytes()
        if measure_memory:
            tracemalloc.start()
        spawners = make_spawners(
            hub,
            users,
            states,
            mode,
            poll_interval=int(poll_interval) if poll_interval >= 1 else poll_interval,
            status_max_age=status_max_age,
        )
        # The hub's start-up check: every server polled at once.
        log.info("  %d spawners", n)
        t0 = time.monotonic()
        try:
            first = await asyncio.wait_for(
                asyncio.gather(*(s.poll() for s in spawners)), startup_timeout
            )
        except (asyncio.TimeoutError, TimeoutError):
            startup_poll_s = float("inf")
            log.warning("  start-up poll of all servers: not done in %.0f s", startup_timeout)
        else:
            startup_poll_s = time.monotonic() - t0
            log.info("  start-up poll of all servers: %.1f s", startup_poll_s)
            if any(code is not None for code in first):
                raise RuntimeError(f"{sum(c is not None for c in first)} servers not running")
        mem = tracemalloc.get_traced_memory()[0] / n if measure_memory else float("nan")
        if measure_memory:
            tracemalloc.stop()
        rss = (rss_bytes() - rss0) / n

        counter = PollCounter(spawners)
        t_start = time.monotonic()
        for s in spawners:
            s.start_polling()
        # Rounds cluster around t_start + k * interval (+-5 % jitter): measure
        # from 1.5 intervals to (1.5 + rounds) intervals, between clusters.
        await asyncio.sleep(max(0.0, t_start + 1.5 * poll_interval - time.monotonic()))
        await asyncio.to_thread(emu.admin.reset_counters)
        polls0 = counter.count
        probe = LagProbe().start()
        cpu = CpuTimer().start()
        await asyncio.sleep(max(0.0, t_start + (1.5 + rounds) * poll_interval - time.monotonic()))
        cpu_s, _wall = cpu.stop()
        lag = await probe.stop()
        counts = await asyncio.to_thread(emu.counts)
        done = (counter.count - polls0) / n
        per = (lambda x: x / done) if done > 0 else (lambda x: float("nan"))
        for s in spawners:
            s.stop_polling()
        await counter.drain(120)
        return SteadyResult(
            mode=mode,
            n=n,
            poll_interval=poll_interval,
            rounds=done,
            intervals=rounds,
            firecrest_per_interval=per(counts["firecrest"]),
            idp_per_interval=per(counts["idp"]),
            cpu_per_round_s=per(cpu_s),
            mem_per_server_kib=mem / 1024,
            rss_per_server_kib=rss / 1024,
            startup_poll_s=startup_poll_s,
            lag=lag,
            endpoints=counts["endpoints"],
        )
    finally:
        await reset_shared_state()
        hub.close()


async def poll_rounds(spawners: list, rounds: int, gap: float) -> list[int | None]:
    """Poll every server ``rounds`` times, all at once, ``gap`` seconds apart.

    The deterministic driver for request counts (CI): each round is one
    ``gather`` of ``poll_and_notify()``, as if every PeriodicCallback fired
    together; ``gap`` must exceed ``status_max_age``.
    """
    last: list[int | None] = []
    for i in range(rounds):
        if i:
            await asyncio.sleep(gap)
        last = await asyncio.gather(*(s.poll_and_notify() for s in spawners))
    return last


async def setup_servers(emu: EmulatorHandle, hub: BenchHub, n: int, mode: str, **traits: Any):
    """``n`` users with a running job each and their spawners (state loaded)."""
    users = await hub.add_users([f"{mode.replace('-', '')}{n}c{i}" for i in range(n)])
    states = await submit_jobs(emu, hub, users)
    return make_spawners(hub, users, states, mode, **traits)
