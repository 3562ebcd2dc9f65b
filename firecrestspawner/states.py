"""Scheduler state strings -> what the spawner should do (pure).

FirecREST reports a job as JSON (``status.state``, ``status.stateReason``,
``status.exitCode``, ``nodes``). The documented spawner API works on one
string, ``job_status = "<STATE> <nodes>"``, matched with configurable regular
expressions. This module does both, in one place:

* :func:`phase` maps a state to a :class:`Phase` from the table in
  firecrest-v2.md §5 (an open set: unknown strings are never "gone");
* :func:`classify` combines the site's regexes with that table into the
  documented :class:`JobStatus`;
* :func:`gethost` extracts the execution host from ``job_status`` with the
  ``state_exechost_re``/``state_exechost_exp`` pair and expands Slurm hostlists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hostlist


class JobStatus(enum.Enum):
    """Enumeration representing the status of a job.

    NOTFOUND: the job was not found / is gone (0); RUNNING (1); PENDING (2);
    UNKNOWN: the status could not be determined (3).
    """

    NOTFOUND = 0
    RUNNING = 1
    PENDING = 2
    UNKNOWN = 3


class Phase(enum.Enum):
    """What a scheduler state means for the notebook server."""

    QUEUED = "queued"
    ALLOCATED = "allocated"
    #: The batch step is over, the allocation is being released.
    ENDING = "ending"
    FINISHED = "finished"
    UNKNOWN = "unknown"


_QUEUED = (
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
)
_ALLOCATED = ("RUNNING", "SUSPENDED", "STOPPED", "SIGNALING", "RESIZING")
_ENDING = ("COMPLETING", "STAGE_OUT")
_FINISHED = (
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
    "SPECIAL_EXIT",
)
#: Finished states that mean success when no exit code is reported.
_SUCCESS = ("COMPLETED",)

_TABLE: tuple[tuple[tuple[str, ...], Phase], ...] = (
    (_QUEUED, Phase.QUEUED),
    (_ALLOCATED, Phase.ALLOCATED),
    (_ENDING, Phase.ENDING),
    (_FINISHED, Phase.FINISHED),
)

#: Defaults of the documented regex traits (Slurm).
DEFAULT_PENDING_RE = r"^(?:PENDING|CONFIGURING)"
DEFAULT_RUNNING_RE = r"^(?:RUNNING|COMPLETING)"
DEFAULT_UNKNOWN_RE = (
    r"^slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)"
)
DEFAULT_EXECHOST_RE = r"^\S+\s+(\S+)\s*$"

_NO_NODES = {"", "none assigned", "(null)", "none"}


def _state_word(state: str) -> str:
    # "CANCELLED by 1000" -> "CANCELLED"; REST mode may give a list cut to one item.
    return state.strip().split(" ", 1)[0].upper() if state else ""


def phase(state: str | None) -> Phase:
    """Map a scheduler state string to a :class:`Phase` (prefix match, open set)."""
    word = _state_word(state or "")
    for names, result in _TABLE:
        if word in names:
            return result
    return Phase.UNKNOWN


def is_gone(state: str | None) -> bool:
    """True when the notebook server of a job in this state can no longer run."""
    return phase(state) in (Phase.ENDING, Phase.FINISHED)


def _matches(pattern: str | None, text: str) -> bool:
    return bool(pattern) and re.search(pattern, text) is not None  # type: ignore[arg-type]


def job_status_string(state: str | None, nodes: str | None) -> str:
    """The documented ``job_status`` string: ``"<STATE> <nodes>"``."""
    state = (state or "").strip()
    node_text = (nodes or "").strip()
    if node_text.lower() in _NO_NODES:
        return state
    return f"{state} {node_text}".strip()


def is_pending(job_status: str, pending_re: str) -> bool:
    return _matches(pending_re, job_status)


def is_running(job_status: str, running_re: str) -> bool:
    return _matches(running_re, job_status)


def is_unknown(job_status: str, unknown_re: str) -> bool:
    return _matches(unknown_re, job_status)


def classify(
    job_status: str,
    *,
    pending_re: str = DEFAULT_PENDING_RE,
    running_re: str = DEFAULT_RUNNING_RE,
    unknown_re: str = DEFAULT_UNKNOWN_RE,
) -> JobStatus:
    """Combine the site's regexes with the state table.

    Order, safest first: a match of ``unknown_re`` keeps the job (UNKNOWN); a
    state the table knows as ended or finished is gone (NOTFOUND), even if a
    legacy ``running_re`` still lists COMPLETING; then the regexes for running
    and pending; then the table; anything else is UNKNOWN, never gone.
    """
    if not job_status:
        return JobStatus.UNKNOWN
    if is_unknown(job_status, unknown_re):
        return JobStatus.UNKNOWN
    p = phase(job_status)
    if p in (Phase.ENDING, Phase.FINISHED):
        return JobStatus.NOTFOUND
    if is_running(job_status, running_re):
        return JobStatus.RUNNING
    if is_pending(job_status, pending_re):
        return JobStatus.PENDING
    if p is Phase.QUEUED:
        return JobStatus.PENDING
    if p is Phase.ALLOCATED:
        return JobStatus.RUNNING
    return JobStatus.UNKNOWN


def expand_nodes(nodes: str | None) -> list[str]:
    """Expand a Slurm hostlist (``nid[001-003],vm``); empty for "no nodes yet"."""
    text = (nodes or "").strip()
    if text.lower() in _NO_NODES:
        return []
    try:
        return [str(n) for n in hostlist.expand_hostlist(text)]
    except hostlist.BadHostlist:
        return [text]


def gethost(job_status: str, exechost_re: str, exechost_exp: str = "") -> str:
    """The first execution host in ``job_status`` ("" when there is none).

    ``exechost_re`` must have a capture group; with ``exechost_exp`` the match
    is expanded (``re.Match.expand``) instead of taking group 1. The result is
    a hostlist and its first node is returned.
    """
    if not exechost_re:
        return ""
    match = re.search(exechost_re, job_status or "")
    if match is None:
        return ""
    raw = match.expand(exechost_exp) if exechost_exp else (match.group(1) or "")
    nodes = expand_nodes(raw)
    return nodes[0] if nodes else ""


def exit_status(job: Mapping[str, Any] | None) -> int:
    """The exit status to report for a job that is gone (0 when unknown)."""
    if not job:
        return 0
    status = job.get("status") or {}
    code = status.get("exitCode")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    word = _state_word(str(status.get("state") or ""))
    if not word or word in _SUCCESS or phase(word) is not Phase.FINISHED:
        return 0
    return 1


def state_of(job: Mapping[str, Any] | None) -> str:
    """``status.state`` of a FirecREST JobModel (a list in REST mode: first item)."""
    if not job:
        return ""
    state = (job.get("status") or {}).get("state") or ""
    if isinstance(state, list):
        state = state[0] if state else ""
    return str(state)


def reason_of(job: Mapping[str, Any] | None) -> str:
    """``status.stateReason``, with Slurm's literal ``"None"`` turned into ""."""
    if not job:
        return ""
    reason = str((job.get("status") or {}).get("stateReason") or "")
    return "" if reason in ("None", "(null)") else reason


@dataclass(frozen=True)
class StateRegexes:
    """The documented regex traits, as used on ``job_status`` (classic or a profile's)."""

    pending: str = DEFAULT_PENDING_RE
    running: str = DEFAULT_RUNNING_RE
    unknown: str = DEFAULT_UNKNOWN_RE
    exechost: str = DEFAULT_EXECHOST_RE
    exechost_exp: str = ""


__all__ = [
    "DEFAULT_EXECHOST_RE",
    "DEFAULT_PENDING_RE",
    "DEFAULT_RUNNING_RE",
    "DEFAULT_UNKNOWN_RE",
    "JobStatus",
    "Phase",
    "StateRegexes",
    "classify",
    "exit_status",
    "expand_nodes",
    "gethost",
    "is_gone",
    "job_status_string",
    "phase",
    "reason_of",
    "state_of",
]
