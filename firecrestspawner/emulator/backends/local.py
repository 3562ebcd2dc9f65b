"""The in-process scheduler: job scripts run as real subprocesses on this machine.

Slurm-like on the points the spawner observes: FIFO queue with a configurable
delay (reason ``Priority``) and capacity (reason ``Resources``), ``#SBATCH``
name/time/output/error/partition/account honoured, ``--time`` enforced
(SIGTERM, then SIGKILL after ``kill_wait``), COMPLETING before the final state,
``CANCELLED by <uid>``, NODE_FAIL through the admin endpoint, retention of
finished jobs, then 404. ``simulate: true`` jobs hold no process, for
benchmarks with thousands of jobs.

Each job script runs under :mod:`.jobwrap`, which records how it ended in the
spool. With a state file the jobs outlive the emulator, as Slurm jobs outlive
a FirecREST restart: a restarted emulator adopts the processes still running
(same pid and start time) and reads the recorded ending of the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .base import (
    INVALID_ACCOUNT,
    INVALID_PARTITION,
    NOT_A_BATCH_SCRIPT,
    Backend,
    BackendError,
    JobNotFound,
    JobRecord,
    JobRequest,
    expand_output_pattern,
    identity,
    parse_sbatch_directives,
    parse_time_limit,
    sbatch_error,
    scancel_error,
    unknown_sbatch_option,
    unrecognized_option,
)
from .environment import login_environment
from .processes import JOBWRAP, killpg, process_start, wait_for_exit

log = logging.getLogger(__name__)


@dataclass
class _Job:
    record: JobRecord
    env: dict[str, str]
    simulated: bool
    eligible_at: float
    stdin_path: str | None = None
    proc: asyncio.subprocess.Process | None = None
    #: The job's process (its group leader), also when adopted after a restart.
    pid: int | None = None
    #: Its start time (/proc), so that a restart never adopts a reused pid.
    pid_start: str | None = None
    alive: bool = False
    watcher: asyncio.Task | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    end_state: str | None = None
    end_reason: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "record": self.record.to_state(),
            # Only a job still to start needs its environment.
            "env": self.env if self.record.state == "PENDING" else {},
            "simulated": self.simulated,
            "eligible_at": self.eligible_at,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "end_state": self.end_state,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> _Job:
        return cls(
            record=JobRecord.from_state(data["record"]),
            env=dict(data["env"]),
            simulated=bool(data["simulated"]),
            eligible_at=float(data["eligible_at"]),
            pid=data["pid"],
            pid_start=data["pid_start"],
            end_state=data["end_state"],
            end_reason=data["end_reason"],
        )


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jobs: dict[str, _Job] = {}
        self._pending: list[_Job] = []
        self._running: dict[str, _Job] = {}
        self._finished: deque[_Job] = deque()
        self._next_id = 1
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._spool: Path | None = None
        self._own_spool = False
        # Every job watcher, including those of jobs already out of _running
        # (COMPLETING), so that stop() leaves no task behind.
        self._watchers: set[asyncio.Task] = set()

    # -- lifecycle -----------------------------------------------------------
    async def start(self, state: dict[str, Any] | None = None) -> None:
        if self.system.spool_dir:
            self._spool = Path(self.system.spool_dir)
        elif self.spool_root is not None:
            self._spool = self.spool_root / self.system.name.lower()
        else:
            self._spool = Path(tempfile.mkdtemp(prefix="f7t-emulator-spool-"))
            self._own_spool = True
        self._spool.mkdir(parents=True, exist_ok=True)
        if state:
            self._restore(state)
        self._task = asyncio.create_task(self._scheduler())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.persistent:
            # The jobs outlive the emulator; a restart re-arms their timers.
            # One being terminated is not left to outlive its SIGKILL.
            for job in self._jobs.values():
                for t in job.timers:
                    t.cancel()
                if job.end_state is not None and job.alive and job.pid is not None:
                    killpg(job.pid, signal.SIGKILL)
        else:
            for job in list(self._running.values()):
                if job.alive and job.pid is not None:
                    killpg(job.pid, signal.SIGKILL)
            for job in list(self._running.values()):
                if job.watcher:
                    job.watcher.cancel()
                if job.proc:
                    with contextlib.suppress(ProcessLookupError, asyncio.CancelledError):
                        await asyncio.wait_for(job.proc.wait(), 5)
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)
        if self._own_spool and self._spool:
            shutil.rmtree(self._spool, ignore_errors=True)

    def dump_state(self) -> dict[str, Any]:
        return {
            "next_id": self._next_id,
            "jobs": [job.to_state() for job in self._jobs.values()],
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Carry on from a saved state: queue, adopt or finish each job."""
        jobs = sorted(
            (_Job.from_state(j) for j in state["jobs"]), key=lambda j: int(j.record.job_id)
        )
        self._next_id = max([int(state["next_id"]), *(int(j.record.job_id) + 1 for j in jobs)])
        now = time.time()
        for job in jobs:
            rec = job.record
            self._jobs[rec.job_id] = job
            if rec.state == "PENDING":
                self._pending.append(job)
            elif rec.state not in ("RUNNING", "COMPLETING"):
                self._finished.append(job)
            elif job.simulated:
                self._running[rec.job_id] = job
                self._arm_timers(job, now)
            elif job.pid is not None and process_start(job.pid) == job.pid_start:
                self._adopt(job, job.pid, now)
            else:
                self._finish_from_status(job)
        self._finished = deque(sorted(self._finished, key=lambda j: j.record.end_time or now))

    def _adopt(self, job: _Job, pid: int, now: float) -> None:
        """Watch a job process started by an earlier emulator."""
        job.alive = True
        self._running[job.record.job_id] = job
        self._arm_timers(job, now)
        job.watcher = asyncio.create_task(self._watch_adopted(job, pid))
        self._watchers.add(job.watcher)
        job.watcher.add_done_callback(self._watchers.discard)
        log.info("job %s (pid %s) adopted from the state file", job.record.job_id, job.pid)

    def _arm_timers(self, job: _Job, now: float) -> None:
        rec = job.record
        loop = asyncio.get_running_loop()
        if rec.state == "COMPLETING" and job.pid is not None:
            # Terminated before the restart: SIGKILL after kill_wait, as then.
            job.timers.append(
                loop.call_later(self.system.kill_wait, killpg, job.pid, signal.SIGKILL)
            )
        elif rec.time_limit is not None and rec.start_time is not None:
            left = max(0.0, rec.start_time + rec.time_limit - now)
            job.timers.append(loop.call_later(left, self._on_time_limit, job))

    async def _watch_adopted(self, job: _Job, pid: int) -> None:
        await wait_for_exit(pid)
        job.alive = False
        self._running.pop(job.record.job_id, None)
        self._wake.set()
        for t in job.timers:
            t.cancel()
        self._finish_from_status(job)

    def _finish_from_status(self, job: _Job) -> None:
        """End a job whose process this emulator did not start, from what jobwrap recorded."""
        exit_code, sig, ended = self._recorded_status(job.record.job_id)
        if job.record.end_time is None:
            job.record.end_time = ended
        state, reason = _outcome(job, exit_code, sig)
        self._end(job, state, reason=reason, exit_code=exit_code, sig=sig)

    def _recorded_status(self, job_id: str) -> tuple[int, int | None, float]:
        """(exit code, signal, end time) from the spool; SIGKILL if nothing was recorded."""
        path = self._status_path(job_id)
        try:
            kind, _, number = path.read_text().partition(" ")
            ended = path.stat().st_mtime
        except OSError:
            return 0, signal.SIGKILL, time.time()
        if kind == "signal":
            return 0, int(number), ended
        return int(number), None, ended

    def _status_path(self, job_id: str) -> Path:
        if self._spool is None:
            raise RuntimeError("backend not started")
        return self._spool / f"job{job_id}.status"

    def wake(self) -> None:
        self._wake.set()

    # -- API -------------------------------------------------------------------
    async def submit(self, user: str, request: JobRequest) -> str:
        script = request.script
        if script is None and request.script_path:
            try:
                script = await asyncio.to_thread(Path(request.script_path).read_text)
            except OSError as e:
                raise sbatch_error(f"Unable to open file {request.script_path}") from e
        if script is None:
            raise BackendError(400, "Either script or scriptPath must be provided", "validation")
        # sbatch's own checks in its order (script, #SBATCH options), then the controller's.
        if not script.startswith("#!"):
            raise sbatch_error(*NOT_A_BATCH_SCRIPT)
        unknown = unknown_sbatch_option(script, self.system.sbatch_plugin_options)
        if unknown is not None:
            raise unrecognized_option(unknown)
        opts = parse_sbatch_directives(script)
        # Command-line options (FirecREST's) override #SBATCH lines of the same name.
        name = request.name or opts.get("job-name") or "sbatch"
        partition_name = request.partition or opts.get("partition") or self.default_partition()
        partition = next((p for p in self.system.partitions if p.name == partition_name), None)
        if partition is None:
            raise sbatch_error(f"invalid partition specified: {partition_name}", INVALID_PARTITION)
        time_limit = partition.max_time
        if "time" in opts:
            try:
                time_limit = parse_time_limit(opts["time"])
            except ValueError as e:
                raise sbatch_error("Invalid --time specification") from e
        account = request.account or opts.get("account") or None
        accounts = self.accounts_of(user)
        if accounts:
            # Accounting enforced: a job goes to one of the user's accounts.
            account = account or self.default_account_of(user)
            if account not in accounts:
                raise sbatch_error(INVALID_ACCOUNT)
        ident = identity(user)
        job_id = str(self._next_id)
        self._next_id += 1
        workdir = request.working_directory
        out_pattern = request.standard_output or opts.get("output") or "slurm-%j.out"
        err_pattern = request.standard_error or opts.get("error") or out_pattern
        node = self.system.node_name
        stdout = _absolute(expand_output_pattern(out_pattern, job_id, name, user, node), workdir)
        stderr = _absolute(expand_output_pattern(err_pattern, job_id, name, user, node), workdir)
        now = time.time()
        record = JobRecord(
            job_id=job_id,
            name=name,
            user=user,
            group=ident.group,
            partition=partition.name,
            working_directory=workdir,
            cluster=self.system.cluster_name,
            account=account,
            script=script,
            standard_input=request.standard_input or opts.get("input") or "/dev/null",
            standard_output=stdout,
            standard_error=stderr,
            submit_time=now,
            time_limit=time_limit,
            priority=4294901760 - int(job_id),
            reason="Priority" if self.system.queue_delay > 0 else "None",
        )
        job = _Job(
            record=record,
            env=self.export_env(request.env),
            simulated=self.system.simulate,
            eligible_at=now + self.system.queue_delay,
        )
        if (
            partition.max_time is not None
            and time_limit is not None
            and time_limit > partition.max_time
        ):
            record.reason = "PartitionTimeLimit"
        if partition.max_time is not None and time_limit is None:
            record.reason = "PartitionTimeLimit"
        self._jobs[job_id] = job
        self._pending.append(job)
        self._wake.set()
        self.on_change()
        return job_id

    async def list_jobs(self, user: str, allusers: bool) -> list[JobRecord]:
        if allusers:
            return [j.record for j in self._jobs.values()]
        return [j.record for j in self._jobs.values() if j.record.user == user]

    async def get_job(self, user: str, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound()
        return job.record

    async def cancel(self, user: str, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            if self.system.connection_mode == "rest":
                raise JobNotFound("Job not found")
            raise scancel_error(job_id, "Invalid job id specified", exit_status=0)
        rec = job.record
        if rec.user != user and not self.is_operator(user):
            raise scancel_error(job_id, "Access/permission denied")
        if rec.state not in ("PENDING", "RUNNING"):
            raise scancel_error(job_id, "Job/step already completing or completed", exit_status=0)
        cancelled = f"CANCELLED by {identity(user).uid}"
        rec.kill_user = user
        if rec.state == "PENDING":
            self._pending.remove(job)
            self._end(job, cancelled, reason="None", exit_code=0)
            return
        self._terminate(job, cancelled)
        self.on_change()

    async def node_fail(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound()
        if job.record.state != "RUNNING":
            raise BackendError(400, f"Job {job_id} is not running")
        self._node_fail(job)

    def _node_fail(self, job: _Job) -> None:
        job.end_state = "NODE_FAIL"
        job.end_reason = "NodeDown"
        self.on_change()
        if job.alive and job.pid is not None:
            killpg(job.pid, signal.SIGKILL)
        elif job.proc is None and job.watcher is None:  # simulated
            self._running.pop(job.record.job_id, None)
            for t in job.timers:
                t.cancel()
            self._wake.set()
            self._end(job, "NODE_FAIL", reason="NodeDown", exit_code=0)

    def all_jobs(self) -> list[JobRecord]:
        return [j.record for j in self._jobs.values()]

    async def nodes(self) -> list[dict[str, Any]]:
        cpus = self.system.slots or os.cpu_count() or 1
        busy = len(self._running)
        alloc = min(busy, cpus)
        state = "IDLE" if busy == 0 else ("ALLOCATED" if alloc >= cpus else "MIXED")
        return [
            {
                "name": self.system.node_name,
                "hostname": self.system.node_name,
                "address": self.system.node_name,
                "cpus": cpus,
                "idleCpus": cpus - alloc,
                "allocCpus": alloc,
                "cpuLoad": round(os.getloadavg()[0], 2),
                "freeMemory": None,
                "allocMemory": None,
                "features": None,
                "partitions": [p.name for p in self.system.partitions],
                "state": [state],
                "weight": 1,
                "sockets": 1,
                "cores": cpus,
                "threads": 1,
            }
        ]

    # -- the scheduler ----------------------------------------------------------
    async def _scheduler(self) -> None:
        while True:
            now = time.time()
            next_wake = self._schedule(now)
            self._purge(now)
            timeout = 1.0 if next_wake is None else max(0.01, min(1.0, next_wake - now))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _free_slots(self) -> float:
        if self.system.slots is None:
            return float("inf")
        return self.system.slots - len(self._running)

    def _schedule(self, now: float) -> float | None:
        next_wake: float | None = None
        blocked = False
        still: list[_Job] = []
        for job in self._pending:
            rec = job.record
            if rec.reason == "PartitionTimeLimit":
                still.append(job)
                continue
            if now < job.eligible_at:
                rec.reason = "Priority"
                next_wake = (
                    job.eligible_at if next_wake is None else min(next_wake, job.eligible_at)
                )
                still.append(job)
                continue
            if blocked or self._free_slots() < 1:
                rec.reason = "Priority" if blocked else "Resources"
                blocked = True
                still.append(job)
                continue
            self._start(job, now)
        self._pending = still
        return next_wake

    def _purge(self, now: float) -> None:
        retention = self.system.retention
        while self._finished:
            job = self._finished[0]
            end = job.record.end_time or now
            if end + retention > now:
                break
            self._finished.popleft()
            self._jobs.pop(job.record.job_id, None)
            with contextlib.suppress(OSError):
                self._status_path(job.record.job_id).unlink()
            self.on_change()

    def _start(self, job: _Job, now: float) -> None:
        rec = job.record
        rec.state = "RUNNING"
        rec.reason = "None"
        rec.start_time = now
        rec.nodes = self.system.node_name
        self._running[rec.job_id] = job
        loop = asyncio.get_running_loop()
        if rec.time_limit is not None:
            job.timers.append(loop.call_later(rec.time_limit, self._on_time_limit, job))
        if self.faults.node_fail_after is not None:
            job.timers.append(loop.call_later(self.faults.node_fail_after, self._on_node_fail, job))
        self.on_change()
        if job.simulated:
            return
        job.watcher = asyncio.create_task(self._run(job))
        self._watchers.add(job.watcher)
        job.watcher.add_done_callback(self._watchers.discard)

    async def _run(self, job: _Job) -> None:
        rec = job.record
        try:
            proc = await self._spawn(job)
        except OSError as e:
            log.warning("job %s could not start: %s", rec.job_id, e)
            self._running.pop(rec.job_id, None)
            self._end(job, "FAILED", exit_code=1)
            return
        job.proc, job.pid, job.alive = proc, proc.pid, True
        job.pid_start = process_start(proc.pid)
        self.on_change()
        if job.end_state is not None:  # cancelled while starting
            killpg(proc.pid, signal.SIGTERM)
        rc = await proc.wait()
        job.alive = False
        self._running.pop(rec.job_id, None)
        self._wake.set()
        for t in job.timers:
            t.cancel()
        exit_code = rc if rc >= 0 else 0
        sig = -rc if rc < 0 else None
        state, reason = _outcome(job, exit_code, sig)
        rec.end_time = time.time()
        if self.system.completing_time > 0:
            rec.state = "COMPLETING"
            self.on_change()
            await asyncio.sleep(self.system.completing_time)
        self._end(job, state, reason=reason, exit_code=exit_code, sig=sig)

    async def _spawn(self, job: _Job) -> asyncio.subprocess.Process:
        rec = job.record
        stdin, out, err, script = await asyncio.to_thread(self._prepare_files, rec)
        status = self._status_path(rec.job_id)
        # A login's environment (as the emulator's account, which the job runs
        # as) plus the submit's, never the emulator's own (see environment.py).
        env = login_environment()
        env.update(job.env)
        env.update(
            {
                "SLURM_JOB_ID": rec.job_id,
                "SLURM_JOBID": rec.job_id,
                "SLURM_JOB_NAME": rec.name,
                "SLURM_JOB_NODELIST": rec.nodes,
                "SLURM_NODELIST": rec.nodes,
                "SLURMD_NODENAME": rec.nodes,
                "SLURM_JOB_PARTITION": rec.partition,
                "SLURM_JOB_USER": rec.user,
                "SLURM_JOB_NUM_NODES": "1",
                "SLURM_NNODES": "1",
                "SLURM_CLUSTER_NAME": rec.cluster,
                "SLURM_SUBMIT_DIR": rec.working_directory,
                "SLURM_JOB_ACCOUNT": rec.account or "",
            }
        )
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                JOBWRAP,
                str(status),
                str(script),
                cwd=rec.working_directory,
                stdin=stdin,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        finally:
            stdin.close()
            out.close()
            if err is not out:
                err.close()

    def _prepare_files(self, rec: JobRecord) -> tuple[IO[bytes], IO[bytes], IO[bytes], Path]:
        """Write the script to the spool and open stdin/stdout/stderr (in a thread)."""
        if self._spool is None:
            raise RuntimeError("backend not started")
        workdir = Path(rec.working_directory)
        if not workdir.is_dir():
            raise OSError(f"working directory {workdir} does not exist")
        script = self._spool / f"job{rec.job_id}.sh"
        script.write_text(rec.script or "")
        script.chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            self._status_path(rec.job_id).unlink()
        out_path = Path(rec.standard_output or workdir / f"slurm-{rec.job_id}.out")
        err_path = Path(rec.standard_error or out_path)
        out = open(out_path, "ab")  # noqa: SIM115 - handed to the child
        err = out if err_path == out_path else open(err_path, "ab")  # noqa: SIM115
        stdin = open(rec.standard_input or "/dev/null", "rb")  # noqa: SIM115
        return stdin, out, err, script

    def _on_node_fail(self, job: _Job) -> None:
        if job.record.state == "RUNNING":
            self._node_fail(job)

    def _on_time_limit(self, job: _Job) -> None:
        if job.record.state == "RUNNING":
            job.end_reason = "TimeLimit"
            self._terminate(job, "TIMEOUT")

    def _terminate(self, job: _Job, final_state: str) -> None:
        """scancel / time limit: SIGTERM the job, SIGKILL after kill_wait."""
        rec = job.record
        job.end_state = final_state
        if job.simulated or (job.proc is None and job.watcher is None):
            self._running.pop(rec.job_id, None)
            self._wake.set()
            for t in job.timers:
                t.cancel()
            self._end(job, final_state, reason=job.end_reason or "None", exit_code=0)
            return
        rec.state = "COMPLETING"
        self.on_change()
        if job.alive and job.pid is not None:
            killpg(job.pid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            pid = job.pid
            job.timers.append(loop.call_later(self.system.kill_wait, killpg, pid, signal.SIGKILL))

    def _end(
        self,
        job: _Job,
        state: str,
        *,
        reason: str = "None",
        exit_code: int | None = None,
        sig: int | None = None,
    ) -> None:
        rec = job.record
        rec.state = state
        rec.reason = reason
        rec.exit_code = exit_code
        rec.signal = sig
        if rec.end_time is None:
            rec.end_time = time.time()
        self._finished.append(job)
        self.on_change()


def _outcome(job: _Job, exit_code: int, sig: int | None) -> tuple[str, str]:
    """Final state and reason of a job whose process ended so."""
    if job.end_state is not None:
        return job.end_state, job.end_reason or "None"
    if exit_code == 0 and sig is None:
        return "COMPLETED", "None"
    return "FAILED", "NonZeroExitCode"


def _absolute(path: str, workdir: str) -> str:
    return path if path.startswith("/") else os.path.join(workdir, path)
