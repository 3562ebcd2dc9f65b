"""What every backend provides, the job record and the parsing they share."""

from __future__ import annotations

import grp
import pwd
import re
import shlex
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import FaultConfig, SystemConfig

JOB_NOT_FOUND = "Job not found."
TIMEOUT_MESSAGE = "Command execution timeout limit exceeded."


class BackendError(Exception):
    """A FirecREST error answer (status and ApiResponseError message)."""

    def __init__(self, status: int, message: str, error_type: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class JobNotFound(BackendError):
    def __init__(self, message: str = JOB_NOT_FOUND) -> None:
        super().__init__(404, message)


def slurm_error(exit_status: int, stderr: str) -> BackendError:
    """FirecREST's 500 for a failed scheduler command: the whole stderr, unstripped."""
    return BackendError(
        500, f"Unexpected Slurm command response. exit_status:{exit_status} std_err:{stderr}"
    )


def scancel_error(job_id: str, reason: str, exit_status: int = 1) -> BackendError:
    """What ``scancel --verbose`` (FirecREST's cancel) prints before and with its error.

    scancel exits 0 for a job already completing or completed and for an
    unknown job id, yet FirecREST answers 500 since the output holds ``error:``.
    """
    return slurm_error(
        exit_status,
        f"scancel: Terminating job {job_id}\n"
        f"scancel: error: Kill job error on job id {job_id}: {reason}\n",
    )


def sbatch_error(*lines: str, exit_status: int = 1) -> BackendError:
    """sbatch refusing a job: each line prefixed ``sbatch: error:``, exit status 1."""
    return slurm_error(exit_status, "".join(f"sbatch: error: {line}\n" for line in lines))


INVALID_PARTITION = "Batch job submission failed: Invalid partition name specified"
INVALID_ACCOUNT = (
    "Batch job submission failed: Invalid account or account/partition combination specified"
)
NOT_A_BATCH_SCRIPT = (
    "This does not look like a batch script.  The first",
    "line must start with #! followed by the path to an interpreter.",
    "For instance: #!/bin/sh",
)


def unrecognized_option(option: str) -> BackendError:
    """sbatch's refusal of an option it does not know (getopt's words, exit 255)."""
    return slurm_error(
        255,
        f"sbatch: unrecognized option '{option}'\nTry \"sbatch --help\" for more information\n",
    )


@dataclass
class JobRequest:
    """A validated submit request (``JobDescriptionModel``), snake_case."""

    working_directory: str
    script: str | None = None
    script_path: str | None = None
    name: str | None = None
    account: str | None = None
    partition: str | None = None
    reservation: str | None = None
    standard_input: str | None = None
    standard_output: str | None = None
    standard_error: str | None = None
    constraints: str | None = None
    env: dict[str, str] = field(default_factory=lambda: {"F7T_version": "v2.0.0"})


@dataclass
class JobRecord:
    """What a backend knows about one job; rendered as ``JobModel``."""

    job_id: str
    name: str
    user: str
    group: str
    partition: str
    working_directory: str
    cluster: str
    account: str | None = None
    script: str | None = None
    standard_input: str | None = None
    standard_output: str | None = None
    standard_error: str | None = None
    state: str = "PENDING"
    reason: str = "None"
    exit_code: int | None = None
    signal: int | None = None
    submit_time: float = field(default_factory=time.time)
    start_time: float | None = None
    end_time: float | None = None
    time_limit: int | None = None
    nodes: str = ""
    kill_user: str | None = None
    priority: int | None = None

    @property
    def finished(self) -> bool:
        return self.end_time is not None and self.state not in ("COMPLETING", "RUNNING", "PENDING")

    def to_model(self, now: float | None = None) -> dict[str, Any]:
        """The job as FirecREST's ``JobModel`` (camelCase)."""
        now = time.time() if now is None else now
        start = int(self.start_time) if self.start_time is not None else None
        end = int(self.end_time) if self.end_time is not None else None
        if start is None:
            elapsed = 0
        else:
            elapsed = int((self.end_time if self.end_time is not None else now) - self.start_time)  # type: ignore[operator]
        status = {
            "state": self.state,
            "stateReason": self.reason,
            "exitCode": self.exit_code,
            "interruptSignal": self.signal,
        }
        jtime = {
            "elapsed": elapsed,
            "start": start,
            "end": end,
            "suspended": 0,
            "limit": self.time_limit,
        }
        tasks = None
        if start is not None:
            tasks = [
                {"id": f"{self.job_id}.batch", "name": "batch", "status": status, "time": jtime}
            ]
        return {
            "jobId": self.job_id,
            "name": self.name,
            "status": status,
            "tasks": tasks,
            "time": jtime,
            "account": self.account if self.account is not None else "(null)",
            "allocationNodes": 1,
            "cluster": self.cluster,
            "group": self.group,
            "nodes": self.nodes,
            "partition": self.partition,
            "killRequestUser": self.kill_user,
            "user": self.user,
            "workingDirectory": self.working_directory,
            "priority": self.priority,
        }

    def to_state(self) -> dict[str, Any]:
        """The record as the state file keeps it (see :meth:`from_state`)."""
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> JobRecord:
        return cls(**data)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "script": self.script,
            "standardInput": self.standard_input,
            "standardOutput": self.standard_output,
            "standardError": self.standard_error,
        }


class Backend(ABC):
    """A scheduler for one system. All methods run on the emulator's loop."""

    #: Name of the backend in the state file (a state of another backend is not restored).
    kind = ""

    def __init__(self, system: SystemConfig, faults: FaultConfig) -> None:
        self.system = system
        self.faults = faults
        #: Called after the jobs changed (the emulator then saves its state file).
        self.on_change: Callable[[], None] = lambda: None
        #: True when the emulator has a state file: the jobs then outlive the
        #: emulator, as Slurm jobs outlive a FirecREST restart.
        self.persistent = False
        #: Where a persistent backend keeps job files (per system) unless
        #: ``spool_dir`` is configured.
        self.spool_root: Path | None = None

    async def start(self, state: dict[str, Any] | None = None) -> None:  # noqa: B027
        """Start background work, carrying on from ``state`` (:meth:`dump_state`) if given."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work (and, without a state file, the jobs' processes)."""

    def dump_state(self) -> dict[str, Any]:
        """What a restarted emulator needs to know of this backend's jobs (JSON data)."""
        return {}

    def wake(self) -> None:  # noqa: B027 - optional hook
        """Re-evaluate the queue now (after a configuration change)."""

    def is_operator(self, user: str) -> bool:
        """Whether ``user`` may cancel other users' jobs (``operators``)."""
        return bool(user) and user in self.system.operators

    @abstractmethod
    async def submit(self, user: str, request: JobRequest) -> str: ...

    @abstractmethod
    async def list_jobs(self, user: str, allusers: bool) -> list[JobRecord]: ...

    @abstractmethod
    async def get_job(self, user: str, job_id: str) -> JobRecord: ...

    @abstractmethod
    async def cancel(self, user: str, job_id: str) -> None: ...

    @abstractmethod
    async def node_fail(self, job_id: str) -> None:
        """Kill the job as a node failure would (state NODE_FAIL)."""

    @abstractmethod
    def all_jobs(self) -> list[JobRecord]:
        """Every job the backend remembers (for the admin endpoint)."""

    # -- status endpoints -------------------------------------------------------
    async def partitions(self, show_hidden: bool = False) -> list[dict[str, Any]]:
        slots = self.system.slots or 1
        return [
            {"name": p.name, "partition": p.state, "cpus": slots, "totalNodes": 1}
            for p in self.system.partitions
            if show_hidden or not p.hidden
        ]

    async def reservations(self) -> list[dict[str, Any]]:
        now = int(time.time())
        out = []
        for r in self.system.reservations:
            start = r.start_time if r.start_time is not None else now - 60
            end = r.end_time if r.end_time is not None else now + 86400
            out.append(
                {
                    "name": r.name,
                    "nodeList": self.system.node_name,
                    "startTime": start,
                    "endTime": end,
                    "features": r.features,
                    "state": "active" if start <= now < end else "inactive",
                }
            )
        return out

    @abstractmethod
    async def nodes(self) -> list[dict[str, Any]]: ...

    def accounts_of(self, user: str) -> list[str]:
        """The user's Slurm accounts (``accounts``); empty without accounting."""
        return list(self.system.accounts.get(user, self.system.accounts.get("*")) or [])

    def unix_groups_of(self, user: str) -> list[str]:
        """Supplementary groups the configuration adds (``unix_groups``)."""
        groups = self.system.unix_groups
        return list(groups.get(user, groups.get("*")) or [])

    def default_account_of(self, user: str) -> str | None:
        """sacctmgr's DefaultAccount of ``user`` (see ``default_account``)."""
        accounts = self.accounts_of(user)
        defaults = self.system.default_account
        if user in defaults:
            return defaults[user]
        if "*" in defaults:
            return defaults["*"]
        return accounts[0] if accounts else None

    def has_ssh_credentials(self, user: str) -> bool:
        """Whether the server could open an SSH session for ``user`` (``ssh_users``)."""
        return self.system.ssh_users is None or user in self.system.ssh_users

    async def userinfo(self, user: str) -> dict[str, Any]:
        ident = identity(user)
        accounts = self.accounts_of(user)
        default = self.default_account_of(user)
        return {
            "user": {"id": str(ident.uid), "name": user},
            "group": {"id": str(ident.gid), "name": ident.group},
            "groups": [{"id": str(g), "name": n} for g, n in ident.groups]
            + [{"id": str(30000 + k), "name": n} for k, n in enumerate(self.unix_groups_of(user))],
            "accounts": (
                [{"name": a, "default": a == default} for a in accounts] if accounts else None
            ),
        }

    # -- shared helpers -----------------------------------------------------------
    def default_partition(self) -> str:
        for p in self.system.partitions:
            if p.default:
                return p.name
        return self.system.partitions[0].name if self.system.partitions else "normal"

    def export_env(self, env: dict[str, str]) -> dict[str, str]:
        """The environment as it reaches the job through ``sbatch --export``."""
        if not self.faults.env_comma_truncation:
            return dict(env)
        return {k: v.split(",", 1)[0] for k, v in env.items()}


@dataclass
class Identity:
    uid: int
    gid: int
    group: str
    groups: list[tuple[int, str]]
    exists: bool
    home: str | None


def user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def identity(user: str) -> Identity:
    """Unix identity of ``user``: the real one if the account exists, else a stable fake."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        fake = 20000 + zlib.crc32(user.encode()) % 40000
        return Identity(fake, fake, user, [(fake, user)], False, None)
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = str(pw.pw_gid)
    groups = [(pw.pw_gid, group)]
    for g in grp.getgrall():
        if user in g.gr_mem and g.gr_gid != pw.pw_gid:
            groups.append((g.gr_gid, g.gr_name))
    return Identity(pw.pw_uid, pw.pw_gid, group, groups, True, pw.pw_dir)


# -- sbatch directives ------------------------------------------------------------

_SHORT = {
    "-J": "job-name",
    "-t": "time",
    "-o": "output",
    "-e": "error",
    "-p": "partition",
    "-A": "account",
    "-i": "input",
    "-D": "chdir",
    "-N": "nodes",
    "-C": "constraint",
}


#: sbatch 22.05's long options (``sbatch --help`` and the hidden ones).
SBATCH_LONG_OPTIONS = frozenset(
    [
        "account",
        "acctg-freq",
        "array",
        "batch",
        "bb",
        "bbf",
        "begin",
        "chdir",
        "cluster-constraint",
        "clusters",
        "comment",
        "constraint",
        "container",
        "contiguous",
        "core-spec",
        "cores-per-socket",
        "cpu-freq",
        "cpus-per-gpu",
        "cpus-per-task",
        "deadline",
        "delay-boot",
        "dependency",
        "distribution",
        "error",
        "exclude",
        "exclusive",
        "export",
        "export-file",
        "extra-node-info",
        "get-user-env",
        "gid",
        "gpu-bind",
        "gpu-freq",
        "gpus",
        "gpus-per-node",
        "gpus-per-socket",
        "gpus-per-task",
        "gres",
        "gres-flags",
        "help",
        "hint",
        "hold",
        "ignore-pbs",
        "input",
        "job-name",
        "kill-on-invalid-dep",
        "licenses",
        "mail-type",
        "mail-user",
        "mcs-label",
        "mem",
        "mem-bind",
        "mem-per-cpu",
        "mem-per-gpu",
        "mincpus",
        "network",
        "nice",
        "no-kill",
        "no-requeue",
        "nodefile",
        "nodelist",
        "nodes",
        "ntasks",
        "ntasks-per-core",
        "ntasks-per-gpu",
        "ntasks-per-node",
        "ntasks-per-socket",
        "open-mode",
        "output",
        "overcommit",
        "oversubscribe",
        "parsable",
        "partition",
        "power",
        "prefer",
        "priority",
        "profile",
        "propagate",
        "qos",
        "quiet",
        "reboot",
        "requeue",
        "reservation",
        "signal",
        "sockets-per-node",
        "spread-job",
        "switches",
        "test-only",
        "thread-spec",
        "threads-per-core",
        "time",
        "time-min",
        "tmp",
        "tres-per-task",
        "uid",
        "usage",
        "use-min-nodes",
        "verbose",
        "version",
        "wait",
        "wait-all-nodes",
        "wckey",
        "wrap",
    ]
)
#: sbatch's short options.
SBATCH_SHORT_OPTIONS = frozenset("ACDFGHJLMNOQSVWabcdehikmnopqstvwx")


def unknown_sbatch_option(script: str, extra: Sequence[str] = ()) -> str | None:
    """The first ``#SBATCH`` option sbatch would not recognise, as written; None if all are known.

    Long options may be abbreviated as getopt allows; ``extra`` are the
    site's spank plugin options.
    """
    known = SBATCH_LONG_OPTIONS | set(extra)
    for words in _directive_words(script):
        for word in words:
            if word == "--":
                break
            if word.startswith("--"):
                name = word[2:].partition("=")[0]
                if name not in known and not any(k.startswith(name) for k in known if name):
                    return word
            elif word.startswith("-") and len(word) > 1 and word[1] not in SBATCH_SHORT_OPTIONS:
                return word
    return None


def _directive_words(script: str) -> list[list[str]]:
    """The words of each ``#SBATCH`` line sbatch reads (up to the first command)."""
    out = []
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        if not stripped.startswith("#SBATCH"):
            continue
        try:
            out.append(shlex.split(stripped[len("#SBATCH") :], comments=True))
        except ValueError:
            continue
    return out


def parse_sbatch_directives(script: str) -> dict[str, str]:
    """``#SBATCH`` options of a script, as sbatch reads them (up to the first command)."""
    options: dict[str, str] = {}
    for words in _directive_words(script):
        i = 0
        while i < len(words):
            word = words[i]
            if word.startswith("--"):
                key, eq, value = word[2:].partition("=")
                if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
                    value = words[i + 1]
                    i += 1
                options[key] = value
            elif word[:2] in _SHORT:
                value = word[2:]
                if not value and i + 1 < len(words):
                    value = words[i + 1]
                    i += 1
                options[_SHORT[word[:2]]] = value
            i += 1
    return options


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time_limit(value: str) -> int | None:
    """Slurm ``--time`` to seconds (None for unlimited); raises ValueError."""
    value = value.strip()
    if value.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return None
    m = _TIME.match(value)
    if not m:
        raise ValueError(f"Invalid time limit specification: {value}")
    days, a, b, c = m.groups()
    if days is not None:
        # D-H, D-H:M, D-H:M:S
        h, mi, s = int(a), int(b or 0), int(c or 0)
        return int(days) * 86400 + h * 3600 + mi * 60 + s
    if b is None:
        return int(a) * 60  # minutes
    if c is None:
        return int(a) * 60 + int(b)  # M:S
    return int(a) * 3600 + int(b) * 60 + int(c)  # H:M:S


def expand_output_pattern(pattern: str, job_id: str, name: str, user: str, node: str) -> str:
    """sbatch filename patterns: %j %x %u %N %% (the ones batch scripts use)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            repl = {
                "j": job_id,
                "J": job_id,
                "A": job_id,
                "x": name,
                "u": user,
                "N": node,
                "%": "%",
            }
            if code in repl:
                out.append(repl[code])
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)
