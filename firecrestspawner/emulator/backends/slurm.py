"""The real local Slurm, driven like FirecREST's SSH backend drives a cluster.

``sbatch`` (script on stdin, ``--export=ALL,K=V,...``), ``scontrol show job -o``,
``scancel --verbose``; every command an asyncio subprocess with the system's
``command_timeout`` (408 like FirecREST's SSH timeout). There is no accounting
database, so the backend remembers finished jobs itself (state and exit code
as ``scontrol`` last showed them) until ``retention`` passes.

Jobs are submitted as the token's user (``runuser -u USER --``) when the
emulator runs as root and that account exists, else as the emulator's own
user; the emulator remembers which token user submitted each job.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

from .base import (
    TIMEOUT_MESSAGE,
    Backend,
    BackendError,
    JobNotFound,
    JobRecord,
    JobRequest,
    identity,
    parse_time_limit,
    scancel_error,
    slurm_error,
    user_exists,
)
from .environment import login_environment

log = logging.getLogger(__name__)

#: ``scancel``'s output holds an error even when it exits 0 (FirecREST's check).
_HAS_ERROR = re.compile(r".+error:.*", re.IGNORECASE)
_SUBMITTED = re.compile(r"Submitted batch job (\d+)")
_QOS_LIMIT = re.compile(r"(QOS|Assoc)(Max|Min)\w*Limit")
_ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING")
_NODE_STATES = {
    "IDLE",
    "ALLOCATED",
    "MIXED",
    "DOWN",
    "DRAIN",
    "OFFLINE",
    "RESERVED",
    "COMPLETING",
    "BUSY",
    "POWERING_DOWN",
    "POWERING_UP",
    "UNKNOWN",
}


@dataclass
class _Known:
    """What the backend remembers of a job it submitted or saw."""

    owner: str | None = None
    script: str | None = None
    cancelled_by: int | None = None
    node_fail: bool = False
    record: JobRecord | None = None
    gone_since: float | None = None

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data["record"] = self.record.to_state() if self.record is not None else None
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> _Known:
        data = dict(data)
        record = data.pop("record")
        return cls(**data, record=JobRecord.from_state(record) if record is not None else None)


def parse_scontrol_line(line: str) -> dict[str, str]:
    """``Key=Value Key=Value ...`` of ``scontrol -o``; values may contain spaces."""
    out: dict[str, str] = {}
    key = None
    for token in line.strip().split(" "):
        if not token:
            continue
        k, eq, v = token.partition("=")
        if eq and re.fullmatch(r"[A-Za-z][\w:/]*", k):
            key = k
            out[key] = v
        elif key is not None:
            out[key] += " " + token
    return out


def _epoch(value: str | None) -> int | None:
    if not value or value in ("Unknown", "None", "N/A", "(null)"):
        return None
    try:
        return int(dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").timestamp())
    except ValueError:
        return None


def _duration(value: str | None) -> int | None:
    if not value or value in ("UNLIMITED", "INFINITE", "NONE", "Partition_Limit"):
        return None
    try:
        return parse_time_limit(value)
    except ValueError:
        return None


class SlurmBackend(Backend):
    kind = "slurm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[str, _Known] = {}
        self._task: asyncio.Task | None = None

    async def start(self, state: dict[str, Any] | None = None) -> None:
        # Slurm keeps the jobs themselves; what the backend adds (the token
        # user of each job, its script, who cancelled it, finished records)
        # comes back from the state.
        for job_id, known in ((state or {}).get("known") or {}).items():
            self._known[job_id] = _Known.from_state(known)
        self._task = asyncio.create_task(self._watch())

    def dump_state(self) -> dict[str, Any]:
        return {"known": {job_id: k.to_state() for job_id, k in self._known.items()}}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def userinfo(self, user: str) -> dict[str, Any]:
        """Accounts from the configuration, else from ``sacctmgr`` as the user, like FirecREST.

        Without Slurm accounting ``sacctmgr`` fails, and so does the real
        server's userinfo (500).
        """
        info = await super().userinfo(user)
        if self.system.accounts:
            return info
        prefix, env = self._as_user(user)
        code, out, _ = await self._run(
            [*prefix, "sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account"],
            env=env,
        )
        if code != 0:
            raise BackendError(500, "Error executing Slurm command.")
        accounts = sorted({line.strip() for line in out.splitlines() if line.strip()})
        code, out, _ = await self._run(
            [*prefix, "sacctmgr", "-n", "-P", "show", "user", user, "format=defaultaccount"],
            env=env,
        )
        default = out.strip().splitlines()[0].strip() if code == 0 and out.strip() else None
        info["accounts"] = (
            [{"name": a, "default": a == default} for a in accounts] if accounts else None
        )
        return info

    # -- commands ------------------------------------------------------------------
    def _as_user(self, user: str) -> tuple[list[str], dict[str, str]]:
        """Command prefix and environment to run a command as ``user``.

        The environment is a login's (the user's, else the emulator's own
        account's), never the emulator's: sbatch's ``--export=ALL`` hands
        sbatch's environment to the job.
        """
        ident = identity(user)
        if self.system.submit_as_user and os.geteuid() == 0 and ident.exists and ident.uid != 0:
            return ["runuser", "-u", user, "--"], login_environment(user)
        return [], login_environment()

    async def _run(
        self, argv: list[str], *, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        argv = [shutil.which(argv[0]) or argv[0], *argv[1:]]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as e:
            raise BackendError(500, f"Error executing Slurm command. {e.strerror}") from e
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None),
                self.system.command_timeout,
            )
        except asyncio.TimeoutError as e:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise BackendError(408, TIMEOUT_MESSAGE) from e
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    @staticmethod
    def _unexpected(rc: int, err: str) -> BackendError:
        return slurm_error(rc, err)

    # -- API -----------------------------------------------------------------------------
    async def submit(self, user: str, request: JobRequest) -> str:
        prefix, env = self._as_user(user)
        argv = [*prefix, "sbatch", f"--chdir={request.working_directory}"]
        for flag, value in (
            ("--job-name", request.name),
            ("--account", request.account),
            ("--partition", request.partition),
            ("--reservation", request.reservation),
            ("--input", request.standard_input),
            ("--output", request.standard_output),
            ("--error", request.standard_error),
            ("--constraint", request.constraints),
        ):
            if value:
                argv.append(f"{flag}={value}")
        if self.faults.env_comma_truncation:
            # As FirecREST does: the values go on sbatch's command line, where
            # sbatch splits the list on commas.
            exports = ",".join(f"{k}={v}" for k, v in request.env.items())
            argv.append(f"--export=ALL,{exports}" if exports else "--export=ALL")
        else:
            env = {**env, **request.env}
            argv.append("--export=ALL")
        if request.script is None and request.script_path:
            argv += ["--", request.script_path]
            rc, out, err = await self._run(argv, env=env)
        else:
            rc, out, err = await self._run(argv, stdin=request.script or "", env=env)
        m = _SUBMITTED.search(out)
        if rc != 0 or m is None:
            if _QOS_LIMIT.search(err):
                raise BackendError(
                    403,
                    "Job submission rejected: accounting/QOS policy limit exceeded. " + err.strip(),
                )
            raise self._unexpected(rc, err)
        job_id = m.group(1)
        self._known[job_id] = _Known(owner=user, script=request.script)
        self.on_change()
        return job_id

    async def _scontrol_jobs(self, job_id: str | None = None) -> list[dict[str, str]] | None:
        """Jobs as ``scontrol show job -o`` lists them; None if the id is unknown to it."""
        argv = ["scontrol", "show", "job", "-o"]
        if job_id is not None:
            argv.append(job_id)
        rc, out, err = await self._run(argv)
        if rc != 0:
            if "Invalid job id" in err:
                return None
            raise self._unexpected(rc, err)
        return [parse_scontrol_line(line) for line in out.splitlines() if line.startswith("JobId=")]

    def _record(self, fields: dict[str, str]) -> JobRecord:
        job_id = fields["JobId"]
        known = self._known.setdefault(job_id, _Known())
        user_field = fields.get("UserId", "")
        slurm_user = user_field.split("(")[0]
        uid_text = user_field.partition("(")[2].rstrip(")")
        user = known.owner if known.owner and not user_exists(known.owner) else slurm_user
        state = fields.get("JobState", "UNKNOWN")
        reason = fields.get("Reason", "None")
        if known.node_fail and state not in _ACTIVE:
            state, reason = "NODE_FAIL", "NodeDown"
        elif state == "CANCELLED":
            by = known.cancelled_by if known.cancelled_by is not None else uid_text or "0"
            state = f"CANCELLED by {by}"
        exit_code, _, sig = fields.get("ExitCode", "0:0").partition(":")
        terminal = state not in _ACTIVE
        nodes = fields.get("NodeList", "")
        if nodes in ("(null)", "None assigned"):
            nodes = ""
        start = _epoch(fields.get("StartTime")) if state != "PENDING" else None
        end = _epoch(fields.get("EndTime")) if terminal else None
        account = fields.get("Account")
        record = JobRecord(
            job_id=job_id,
            name=fields.get("JobName", ""),
            user=user,
            group=fields.get("GroupId", "").split("(")[0],
            partition=fields.get("Partition", ""),
            working_directory=fields.get("WorkDir", ""),
            cluster=self.system.cluster_name,
            account=account if account not in (None, "(null)") else None,
            script=known.script,
            standard_input=fields.get("StdIn"),
            standard_output=fields.get("StdOut"),
            standard_error=fields.get("StdErr"),
            state=state,
            reason=reason,
            exit_code=int(exit_code) if terminal and exit_code.isdigit() else None,
            signal=int(sig) if terminal and sig.isdigit() and int(sig) else None,
            submit_time=float(_epoch(fields.get("SubmitTime")) or time.time()),
            start_time=start,
            end_time=end,
            time_limit=_duration(fields.get("TimeLimit")),
            nodes=nodes,
            kill_user=None,
            priority=int(fields["Priority"]) if fields.get("Priority", "").isdigit() else None,
        )
        if known.cancelled_by is not None:
            record.kill_user = known.owner
        if known.record is None or (known.record.state, known.record.end_time) != (
            record.state,
            record.end_time,
        ):
            self.on_change()
        known.record = record
        known.gone_since = None
        return record

    def _remembered(self, job_id: str) -> JobRecord | None:
        known = self._known.get(job_id)
        if known is None or known.record is None:
            return None
        if known.record.state.split()[0] in _ACTIVE:
            return None  # it vanished while active: Slurm forgot it
        end = known.record.end_time or known.gone_since or time.time()
        if end + self.system.retention < time.time():
            del self._known[job_id]
            self.on_change()
            return None
        return known.record

    async def list_jobs(self, user: str, allusers: bool) -> list[JobRecord]:
        rows = await self._scontrol_jobs() or []
        records = {r.job_id: r for r in (self._record(f) for f in rows)}
        for job_id in list(self._known):
            if job_id not in records:
                rec = self._remembered(job_id)
                if rec is not None:
                    records[job_id] = rec
        out = list(records.values())
        return out if allusers else [r for r in out if r.user == user]

    async def get_job(self, user: str, job_id: str) -> JobRecord:
        rows = await self._scontrol_jobs(job_id)
        if rows:
            return self._record(rows[0])
        rec = self._remembered(job_id)
        if rec is None:
            raise JobNotFound()
        return rec

    async def cancel(self, user: str, job_id: str) -> None:
        try:
            rec = await self.get_job(user, job_id)
        except JobNotFound:
            if self.system.connection_mode == "rest":
                raise JobNotFound("Job not found") from None
            raise scancel_error(job_id, "Invalid job id specified", exit_status=0) from None
        if rec.state.split()[0] not in _ACTIVE or rec.state == "COMPLETING":
            raise scancel_error(job_id, "Job/step already completing or completed", exit_status=0)
        if self.is_operator(user):
            # A Slurm operator: scancel as the emulator's own user (root when
            # the emulator runs as root), which may cancel any job.
            prefix: list[str] = []
            env = login_environment()
        else:
            prefix, env = self._as_user(user)
        if rec.user != user and not prefix and not self.is_operator(user):
            raise scancel_error(job_id, "Access/permission denied")
        # As FirecREST runs it; its output says "Terminating job N" before any error.
        rc, _, err = await self._run([*prefix, "scancel", "--verbose", job_id], env=env)
        if rc != 0 or _HAS_ERROR.search(err):
            raise self._unexpected(rc, err)
        self._known.setdefault(job_id, _Known(owner=user)).cancelled_by = identity(user).uid
        self.on_change()

    async def node_fail(self, job_id: str) -> None:
        """Kill the job at once and report it as NODE_FAIL.

        A real node failure (``scontrol update state=down``) would take the
        only node of this test cluster down and requeue jobs; SIGKILL from
        Slurm plus the remembered state shows the spawner the same thing.
        """
        rec = await self.get_job("", job_id)
        if rec.state != "RUNNING":
            raise BackendError(400, f"Job {job_id} is not running")
        self._known.setdefault(job_id, _Known()).node_fail = True
        self.on_change()
        rc, _, err = await self._run(["scancel", "--signal=KILL", "--full", job_id])
        if rc != 0:
            raise self._unexpected(rc, err)

    def all_jobs(self) -> list[JobRecord]:
        return [k.record for k in self._known.values() if k.record is not None]

    async def _watch(self) -> None:
        """Keep the records of our active jobs fresh so that endings are remembered."""
        while True:
            await asyncio.sleep(5)
            active = [
                j
                for j, k in self._known.items()
                if k.record is None or k.record.state.split()[0] in _ACTIVE
            ]
            if not active:
                continue
            try:
                rows = await self._scontrol_jobs() or []
            except BackendError as e:
                log.warning("scontrol failed: %s", e.message)
                continue
            for fields in rows:
                if fields.get("JobId") in self._known:
                    self._record(fields)

    # -- status endpoints ------------------------------------------------------------------
    async def partitions(self, show_hidden: bool = False) -> list[dict[str, Any]]:
        argv = ["scontrol", "-a" if show_hidden else "", "show", "-o", "partitions"]
        rc, out, err = await self._run([a for a in argv if a])
        if rc != 0:
            raise self._unexpected(rc, err)
        parts = []
        for line in out.splitlines():
            f = parse_scontrol_line(line)
            if "PartitionName" not in f:
                continue
            parts.append(
                {
                    "name": f["PartitionName"],
                    "partition": f.get("State", "UP"),
                    "cpus": int(f["TotalCPUs"]) if f.get("TotalCPUs", "").isdigit() else None,
                    "totalNodes": (
                        int(f["TotalNodes"]) if f.get("TotalNodes", "").isdigit() else None
                    ),
                }
            )
        return parts

    async def reservations(self) -> list[dict[str, Any]]:
        rc, out, err = await self._run(["scontrol", "show", "-o", "reservations"])
        if rc != 0:
            raise self._unexpected(rc, err)
        res = []
        now = time.time()
        for line in out.splitlines():
            f = parse_scontrol_line(line)
            if "ReservationName" not in f:
                continue
            start = _epoch(f.get("StartTime")) or 0
            end = _epoch(f.get("EndTime")) or 0
            state = f.get("State")
            res.append(
                {
                    "name": f["ReservationName"],
                    "nodeList": f.get("Nodes", ""),
                    "startTime": start,
                    "endTime": end,
                    "features": None if f.get("Features") in (None, "(null)") else f["Features"],
                    "state": (
                        state.lower() if state else ("active" if start <= now < end else "inactive")
                    ),
                }
            )
        return res

    async def nodes(self) -> list[dict[str, Any]]:
        rc, out, err = await self._run(["scontrol", "show", "node", "-o"])
        if rc != 0:
            raise self._unexpected(rc, err)
        nodes = []
        for line in out.splitlines():
            f = parse_scontrol_line(line)
            if "NodeName" not in f:
                continue
            states = []
            for s in f.get("State", "UNKNOWN").split("+"):
                s = s.rstrip("*~#!%$@^-")
                s = {"ALLOC": "ALLOCATED", "MIX": "MIXED", "IDLE": "IDLE"}.get(s, s)
                states.append(s if s in _NODE_STATES else "UNKNOWN")
            cpus = int(f.get("CPUTot", "0") or 0)
            alloc = int(f.get("CPUAlloc", "0") or 0)

            def num(key: str, fields: dict[str, str] = f) -> int | None:
                value = fields.get(key, "")
                return int(value) if value.isdigit() else None

            load = f.get("CPULoad", "")
            nodes.append(
                {
                    "name": f["NodeName"],
                    "hostname": f.get("NodeHostName"),
                    "address": f.get("NodeAddr"),
                    "cpus": cpus,
                    "idleCpus": cpus - alloc,
                    "allocCpus": alloc,
                    "cpuLoad": float(load) if re.fullmatch(r"[\d.]+", load) else None,
                    "freeMemory": num("FreeMem"),
                    "allocMemory": num("RealMemory"),
                    "features": (
                        None
                        if f.get("AvailableFeatures") in (None, "(null)")
                        else f["AvailableFeatures"].split(",")
                    ),
                    "partitions": f.get("Partitions", "").split(",") if f.get("Partitions") else [],
                    "state": states,
                    "weight": num("Weight"),
                    # FirecREST 2.5.6 fills all three from the sockets value.
                    "sockets": num("Sockets"),
                    "cores": num("Sockets"),
                    "threads": num("Sockets"),
                }
            )
        return nodes
