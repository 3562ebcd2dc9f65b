"""One spawn's job, as one record: what the hub stores and what is only in memory.

:class:`JobRecord` holds every per-job field the spawner used to keep in a
dozen private attributes. :meth:`JobRecord.to_state` / :meth:`JobRecord.from_state`
are the spawner's ``get_state()`` / ``load_state()``, with the state keys
JupyterHub already stores (a hub restarted on this code reads states written
by earlier versions), and :meth:`JobRecord.reset` is the one reset.

Orphans are jobs that may still run and that no spawn tracks any more: a
cancel that failed, a job of a spawn a hub restart interrupted, or a name
under which a lost submit may have created a job. They survive ``reset()``
(the hub clears the state even after a failed stop) and are cancelled at the
next start and the next stop. An orphan has a job id, a job name, or both.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..states import StateRegexes

#: Orphans kept at most (the oldest are dropped; the reaper finds those by name).
MAX_ORPHANS = 20


@dataclass(frozen=True)
class Orphan:
    """A job to cancel later: by id when known, else by name."""

    job_id: str
    system: str
    firecrest_url: str
    job_name: str
    #: ``time.time()`` when it was recorded (0: unknown, from an older state).
    recorded_at: float = 0.0

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.recorded_at:
            del data["recorded_at"]
        return data

    @classmethod
    def from_state(cls, data: Any) -> Orphan | None:
        """An orphan from a saved state; None when it names no job or no system."""
        if not isinstance(data, dict):
            return None
        orphan = cls(
            job_id=str(data.get("job_id") or ""),
            system=str(data.get("system") or ""),
            firecrest_url=str(data.get("firecrest_url") or ""),
            job_name=str(data.get("job_name") or ""),
            recorded_at=_float(data.get("recorded_at")),
        )
        if not orphan.system or not (orphan.job_id or orphan.job_name):
            return None
        return orphan

    def same_job(self, other: Orphan) -> bool:
        if self.system != other.system:
            return False
        if self.job_id and other.job_id:
            return self.job_id == other.job_id
        return bool(self.job_name) and self.job_name == other.job_name


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def job_end_time(job: dict[str, Any] | None) -> float:
    """When a started job will end (epoch seconds), from FirecREST's ``time``; 0: unknown.

    ``start + limit`` when both are known (``sacct`` reports no ``end`` for a
    running job; a limit raised with ``scontrol`` is followed), else ``end``
    (``squeue`` and slurmrestd give the expected end). A job not started yet,
    or without a limit, has no end.
    """
    times = (job or {}).get("time")
    if not isinstance(times, dict):
        return 0.0
    start, limit, end = (_float(times.get(k)) for k in ("start", "limit", "end"))
    if start <= 0:
        return 0.0
    if limit > 0:
        return start + limit
    return end if end > start else 0.0


def remaining_text(seconds: float) -> str:
    """``"2 h 05 min"``, ``"7 min"``, ``"less than a minute"``, ``"ended"``."""
    if seconds <= 0:
        return "ended"
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


#: (state key, attribute) of the string fields saved as they are.
_TEXT_KEYS = (
    ("job_id", "job_id"),
    ("job_status", "job_status"),
    ("system", "system"),
    ("firecrest_url", "firecrest_url"),
    ("job_name", "job_name"),
    ("host", "host"),
    ("profile", "profile"),
    ("log_path", "log_path"),
    ("token_file", "token_file"),
    ("notice", "notice"),
)


@dataclass
class JobRecord:
    """The current spawn's job (saved fields first, then memory-only ones)."""

    # -- saved in the hub's database (get_state)
    job_id: str = ""
    #: ``"<STATE> <nodes>"``, matched by the state regexes.
    job_status: str = ""
    system: str = ""
    firecrest_url: str = ""
    job_name: str = ""
    host: str = ""
    port: int = 0
    profile: str = ""
    submitted_at: float = 0.0
    log_path: str = ""
    #: The job's API token file while the job may still need it.
    token_file: str = ""
    #: The job has been listed once: from then on "not found" means ended.
    seen: bool = False
    #: A submit was sent and its answer is not known: a job may exist under ``job_name``.
    submit_unknown: bool = False
    orphans: list[Orphan] = field(default_factory=list)
    #: A message for the user's next visit (kept through ``reset()`` until shown).
    notice: str = ""
    #: When the running job ends (epoch seconds, from its time limit); 0: unknown.
    end_time: float = 0.0

    # -- memory only
    spawn_id: str = ""
    #: The job as FirecREST last reported it.
    job: dict[str, Any] | None = None
    last_error: str = ""
    unknown_since: float | None = None
    unknown_warned_at: float = 0.0
    #: The current job is positively gone (terminal state or not found).
    ended: bool = False
    regexes: StateRegexes = field(default_factory=StateRegexes)

    # ---------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        """The keys JupyterHub stores for this spawner (only those that are set)."""
        state: dict[str, Any] = {}
        for key, attr in _TEXT_KEYS:
            value = getattr(self, attr)
            if value:
                state[key] = value
        if self.port:
            state["port"] = self.port
        if self.submitted_at:
            state["submitted_at"] = self.submitted_at
        if self.ends_at:
            state["end_time"] = self.ends_at
        if self.seen:
            state["seen"] = True
        if self.submit_unknown and self.job_name and not self.job_id:
            state["submit_unknown"] = True
        if self.orphans:
            state["orphans"] = [o.to_state() for o in self.orphans[-MAX_ORPHANS:]]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> JobRecord:
        """A record from a saved state; states holding only ``job_id``/``job_status`` work."""
        state = state or {}
        record = cls()
        for key, attr in _TEXT_KEYS:
            setattr(record, attr, str(state.get(key) or ""))
        try:
            record.port = int(state.get("port") or 0)
        except (TypeError, ValueError):
            record.port = 0
        record.submitted_at = _float(state.get("submitted_at"))
        record.end_time = _float(state.get("end_time"))
        # A legacy state with a job status has seen its job.
        record.seen = bool(state.get("seen")) or bool(record.job_status) or not record.submitted_at
        record.submit_unknown = bool(state.get("submit_unknown")) and not record.job_id
        orphans = [Orphan.from_state(o) for o in state.get("orphans") or []]
        record.orphans = [o for o in orphans if o is not None]
        return record

    @property
    def ends_at(self) -> float:
        """When the job ends: from the last job FirecREST reported, else the saved value."""
        return job_end_time(self.job) or self.end_time

    # ---------------------------------------------------------------- orphans

    def current_as_orphan(self) -> Orphan | None:
        """The current job as an orphan: by id, or by name after a lost submit."""
        if not self.system or not (self.job_id or (self.submit_unknown and self.job_name)):
            return None
        return Orphan(
            job_id=self.job_id,
            system=self.system,
            firecrest_url=self.firecrest_url,
            job_name=self.job_name,
            recorded_at=time.time(),
        )

    def add_orphan(self, orphan: Orphan | None) -> None:
        if orphan is None or any(o.same_job(orphan) for o in self.orphans):
            return
        self.orphans.append(orphan)
        del self.orphans[:-MAX_ORPHANS]

    def remove_orphan(self, orphan: Orphan) -> None:
        self.orphans = [o for o in self.orphans if o is not orphan]

    def keep_current_as_orphan(self) -> None:
        """Record the current job as an orphan unless it is known to have ended."""
        if not self.ended:
            self.add_orphan(self.current_as_orphan())

    # ---------------------------------------------------------------- reset

    def reset(self) -> None:
        """Forget the current job (the hub's ``clear_state``), keeping orphans.

        A job not known to have ended (for example one loaded from the state
        of a spawn a hub restart interrupted) and a name a lost submit may
        have used become orphans first.
        """
        self.keep_current_as_orphan()
        orphans, notice = self.orphans, self.notice
        fresh = JobRecord()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
        self.orphans, self.notice = orphans, notice

    def new_job(self, *, system: str, firecrest_url: str, profile: str, job_name: str) -> None:
        """Start a new spawn's job (the previous one was reset)."""
        self.system = system
        self.firecrest_url = firecrest_url
        self.profile = profile
        self.job_name = job_name
        self.seen = False
        self.job = None
        self.submit_unknown = False
        self.host = ""
        self.port = 0
        self.log_path = ""
        self.token_file = ""
        self.end_time = 0.0


__all__ = ["MAX_ORPHANS", "JobRecord", "Orphan", "job_end_time", "remaining_text"]
