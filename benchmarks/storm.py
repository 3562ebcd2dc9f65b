"""Spawn storm: many users press "start" at once.

Mode ``ours-returning`` measures each user's second spawn (steady use: the
first, unmeasured, taught the spawner the user's default account and token
directory). Mode ``floor`` runs the same harness with :class:`.floor.FloorSpawner`
(JupyterHub's spawner machinery, no remote work, no queue): the overhead of
our spawner beyond the floor is ``ours - floor`` in the report.

Every spawner's ``start()`` runs concurrently, each with a ``progress()``
consumer as a browser on the spawn-pending page would have. The jobs are the
emulator's simulated jobs (no process): they wait ``queue_delay`` seconds in
PENDING, then RUN. The job's part (``firecrestspawner-singleuser`` reporting
its port to the hub API) is played by the harness (:class:`JobPart`), which
delivers a port through the spawner's ``PortWaiter``, as the real hub handler
does. When (``report``):

``job`` (the default)
    as the job does: once the emulator shows the spawner's job RUNNING, read
    through the emulator's admin API (``/_emulator/jobs``, not counted as
    FirecREST requests), whatever the spawner's phase. The floor has no job:
    its "job" runs once it waits, and it gets its port in the same rounds,
    after the same emulator read, so both pay the same delivery delay.
``waiting``
    the harness of earlier rounds: once the spawner waits for its port
    (``phase == "waiting"``), i.e. after its own polling noticed RUNNING.
    Kept for comparison; it hides what noticing the report saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from . import baseline
from .emulator import EmulatorHandle
from .floor import FloorSpawner
from .hub import BenchHub, reset_shared_state
from .probes import CpuTimer, LagProbe, percentile
from .whatif import variant, variant_traits


@dataclass
class StormResult:
    mode: str
    n: int
    queue_delay: float
    ok: int
    failed: int
    overhead_p50_s: float
    overhead_p95_s: float
    overhead_max_s: float
    #: Part of the overhead before the job exists: start() to submit (p50, p95).
    to_submit_p50_s: float
    to_submit_p95_s: float
    firecrest_per_spawn: float
    idp_per_spawn: float
    cpu_s: float
    progress_events: int
    lag: dict[str, float] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: When the job's port was reported (:class:`JobPart`): "job" or "waiting".
    report: str = "job"
    #: CPU the harness spent reading the emulator's jobs (not in ``cpu_s``), and its reads.
    harness_cpu_s: float = 0.0
    harness_reads: int = 0
    #: CPU seconds of the emulator's process during the storm (None: not measured).
    emulator_cpu_s: float | None = None
    #: Share of one core used from the first start() to the last submit, and
    #: from then to the last return: {"submits": {"emulator": x, "hub": y, "s": wall}, ...}.
    busy: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__}


REPORT_MODES = ("job", "waiting")


class CpuSampler:
    """CPU seconds of the emulator's process and of this one, sampled over time.

    Reads ``/proc/PID/stat`` (Linux; 10 ms resolution) every ``period``
    seconds, to show which process is busy in which part of a storm.
    """

    def __init__(self, pid: int | None, period: float = 0.1) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[tuple[float, float, float]] = []  # (time.time(), emulator, hub)
        self._task: asyncio.Task | None = None
        self._tick = os.sysconf("SC_CLK_TCK")

    def _emulator_cpu(self) -> float:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime

    def sample(self) -> None:
        if self.pid is not None:
            self.samples.append((time.time(), self._emulator_cpu(), time.process_time()))

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.period)

    def start(self) -> CpuSampler:
        if self.pid is not None:
            self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    def total(self) -> float | None:
        if len(self.samples) < 2:
            return None
        return self.samples[-1][1] - self.samples[0][1]

    def busy(self, t0: float, t1: float) -> dict[str, float]:
        """Cores used by the emulator and by this process between two ``time.time()``s."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return {}
        a, b = inside[0], inside[-1]
        wall = b[0] - a[0]
        return {"emulator": (b[1] - a[1]) / wall, "hub": (b[2] - a[2]) / wall, "s": wall}


class JobPart:
    """Plays ``firecrestspawner-singleuser``: reports a port for each spawner.

    ``report="job"``: once the emulator shows the spawner's job RUNNING (for
    the floor: once it waits), read every ``period`` seconds while a job is
    due (submitted at least ``queue_delay`` ago). ``cpu_s`` is the CPU this
    process spent on those reads (in a worker thread): the harness's, not the
    hub's, and subtracted from the storm's hub CPU.
    """

    def __init__(
        self,
        spawners: list,
        *,
        emu: EmulatorHandle | None = None,
        report: str = "job",
        queue_delay: float = 0.0,
        period: float = 0.05,
    ) -> None:
        if report not in REPORT_MODES:
            raise ValueError(f"report must be one of {REPORT_MODES}, not {report!r}")
        if report == "job" and emu is None:
            raise ValueError('report="job" reads the emulator\'s jobs: pass emu')
        self.spawners = spawners
        self.emu = emu
        self.report = report
        self.queue_delay = queue_delay
        self.period = period if report == "job" else 0.02
        self.cpu_s = 0.0
        #: Reads of the emulator's job list.
        self.reads = 0
        #: ``time.time()`` of each spawner's report, by its index.
        self.reported_at: dict[int, float] = {}

    def _running(self) -> set[str]:
        """Ids of the emulator's RUNNING jobs on the storm's system (a worker thread)."""
        assert self.emu is not None
        t0 = time.thread_time()
        try:
            system = self.emu.system.lower()
            return {
                str(j["jobId"])
                for j in self.emu.admin.jobs()
                if str(j.get("system", "")).lower() == system
                and str((j.get("status") or {}).get("state", "")).split(" ")[0] == "RUNNING"
            }
        finally:
            self.cpu_s += time.thread_time() - t0

    def _due(self, s: Any, now: float) -> bool:
        """The spawner's job may run by now (submitted at least the queue delay ago)."""
        if isinstance(s, FloorSpawner):
            return s.phase == "waiting"
        submitted = getattr(s.record, "submitted_at", 0.0)
        return bool(getattr(s.record, "job_id", "")) and submitted + self.queue_delay <= now

    async def run(self, stop: asyncio.Event) -> None:
        pending = list(enumerate(self.spawners))
        while pending and not stop.is_set():
            running: set[str] = set()
            if self.report == "job" and any(self._due(s, time.time()) for _, s in pending):
                self.reads += 1
                running = await asyncio.to_thread(self._running)
            still = []
            for i, s in pending:
                waiter = s.port_waiter
                if waiter is not None and waiter.open and self._runs(s, running):
                    waiter.report(20000 + i)
                    self.reported_at[i] = time.time()
                elif s.phase not in ("ready", "failed"):
                    still.append((i, s))
            pending = still
            await asyncio.sleep(self.period)

    def _runs(self, s: Any, running: set[str]) -> bool:
        if self.report == "waiting" or isinstance(s, FloorSpawner):
            return s.phase == "waiting"
        job_id = getattr(s.record, "job_id", "")
        return bool(job_id) and str(job_id) in running


async def _consume_progress(spawner: Any) -> int:
    events = 0
    async for _event in spawner.progress():
        events += 1
    return events


async def spawn_all(
    spawners: list,
    queue_delay: float,
    to_submit: list[float] | None = None,
    *,
    emu: EmulatorHandle | None = None,
    report: str = "job",
    job_part: list[JobPart] | None = None,
) -> tuple[list[float], list[str], int]:
    """Start every spawner at once; (durations of the successful, errors, events).

    ``to_submit`` receives, per successful spawn, the seconds from ``start()``
    to the moment the spawner submitted the job. ``report``: when the job's
    port is reported (:class:`JobPart`; ``"job"`` needs ``emu``); ``job_part``
    receives the :class:`JobPart` (its CPU and reads).
    """
    stop = asyncio.Event()
    part = JobPart(spawners, emu=emu, report=report, queue_delay=queue_delay)
    if job_part is not None:
        job_part.append(part)
    reporter = asyncio.ensure_future(part.run(stop))
    durations: list[float] = []
    errors: list[str] = []

    async def timed(s: Any) -> None:
        t0 = time.monotonic()
        wall0 = time.time()
        try:
            await s.start()
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(e).__name__}: {e}"[:300])
            return
        durations.append(time.monotonic() - t0)
        if to_submit is not None:
            to_submit.append(s.record.submitted_at - wall0)

    starts = [asyncio.ensure_future(timed(s)) for s in spawners]
    await asyncio.sleep(0)  # start() has set its phase before progress is read
    progress = [asyncio.ensure_future(_consume_progress(s)) for s in spawners]
    await asyncio.gather(*starts)
    stop.set()
    reporter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reporter
    done, _ = await asyncio.wait(progress, timeout=5)
    for p in progress:
        p.cancel()
    events = sum(p.result() for p in done if not p.cancelled() and p.exception() is None)
    return durations, errors, events


async def run_storm(
    emu: EmulatorHandle,
    n: int,
    mode: str,
    *,
    queue_delay: float,
    report: str = "job",
    **traits: Any,
) -> StormResult:
    """``n`` concurrent spawns; ``emu`` configured with ``queue_delay``.

    ``report``: when the job's part reports the port (see :class:`JobPart`).
    """
    await reset_shared_state()
    baseline.reset()
    hub = BenchHub(emu)
    try:
        with variant(mode):
            return await _storm(emu, hub, n, mode, queue_delay=queue_delay, report=report, **traits)
    finally:
        await reset_shared_state()
        hub.close()


async def _storm(
    emu: EmulatorHandle,
    hub: BenchHub,
    n: int,
    mode: str,
    *,
    queue_delay: float,
    report: str,
    **traits: Any,
) -> StormResult:
    tag = "".join(c for c in mode if c.isalnum())
    users = await hub.add_users([f"s{tag}{n}u{i}" for i in range(n)])
    kw = hub.traits(service_account=(mode != "ours-user"), **{**variant_traits(mode), **traits})
    cls = baseline.BaselineSpawner if mode == "baseline" else None
    if mode == "floor":
        # JupyterHub's machinery only (benchmarks/floor.py): no traits of ours, no queue.
        spawners = [hub.new_spawner(u, FloorSpawner) for u in users]
        queue_delay = 0.0
    else:
        spawners = [
            hub.new_spawner(u, cls, **kw) if cls else hub.new_spawner(u, **kw) for u in users
        ]
    if mode == "ours-returning":
        # Steady use: every user has spawned before (unmeasured), so what the
        # spawner remembers per user (default account, token directory) is known.
        await spawn_all(spawners, queue_delay, emu=emu, report=report)
        await asyncio.gather(*(s.stop(now=True) for s in spawners), return_exceptions=True)
        spawners = [hub.new_spawner(u, **kw) for u in users]
    await asyncio.to_thread(emu.admin.reset_counters)
    probe = LagProbe().start()
    sampler = CpuSampler(emu.pid).start()
    t_start = time.time()
    cpu = CpuTimer().start()
    to_submit: list[float] = []
    parts: list[JobPart] = []
    durations, errors, events = await spawn_all(
        spawners, queue_delay, to_submit, emu=emu, report=report, job_part=parts
    )
    cpu_s, _ = cpu.stop()
    part = parts[0]
    cpu_s -= part.cpu_s  # the job's part is not the hub's work
    t_end = time.time()
    await sampler.stop()
    lag = await probe.stop()
    submitted = [s.record.submitted_at for s in spawners if s.record.submitted_at]
    t_submits = max(submitted) if submitted else t_start
    busy = {
        "submits": sampler.busy(t_start, t_submits),
        "after_submits": sampler.busy(t_submits, t_end),
    }
    counts = await asyncio.to_thread(emu.counts)
    overheads = [d - queue_delay for d in durations]
    # Clean up (not measured): cancel every job.
    await asyncio.gather(*(s.stop(now=True) for s in spawners), return_exceptions=True)
    return StormResult(
        mode=mode,
        n=n,
        queue_delay=queue_delay,
        ok=len(durations),
        failed=len(errors),
        overhead_p50_s=percentile(overheads, 50),
        overhead_p95_s=percentile(overheads, 95),
        overhead_max_s=max(overheads) if overheads else float("nan"),
        to_submit_p50_s=percentile(to_submit, 50),
        to_submit_p95_s=percentile(to_submit, 95),
        firecrest_per_spawn=counts["firecrest"] / n,
        idp_per_spawn=counts["idp"] / n,
        cpu_s=cpu_s,
        progress_events=events,
        lag=lag,
        endpoints=counts["endpoints"],
        errors=sorted(set(errors))[:5],
        report=report,
        harness_cpu_s=part.cpu_s,
        harness_reads=part.reads,
        emulator_cpu_s=sampler.total(),
        busy={k: v for k, v in busy.items() if v},
    )
