"""Which jobs the reaper cancels: the pure decision of ``firecrestspawner reap``.

Split from :mod:`firecrestspawner.reaper` (which re-exports every name here):
given the jobs FirecREST lists, the hub's active servers with the job each
spawner's state names, and how long each job has existed, :func:`plan`
decides what to cancel. No I/O; table-tested in ``tests/reaper/test_plan.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import naming, states

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``600``, ``90s``, ``10m``, ``2h`` or ``1d`` to seconds; ValueError otherwise."""
    match = _DURATION_RE.match(str(text))
    if match is None:
        raise ValueError(f"not a duration: {text!r} (examples: 600, 90s, 10m, 2h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def hub_slug(hub_id: str) -> str:
    """The ``<hub>`` part of this hub's job names (as :func:`naming.job_name` writes it)."""
    parsed = naming.parse_job_name(naming.job_name(hub_id, "u", "", "0"))
    assert parsed is not None  # noqa: S101 - job_name always parses
    return parsed.hub


def server_key(user: str, server: str) -> tuple[str, str]:
    """The ``(<user>, <server>)`` parts of job names of one server."""
    parsed = naming.parse_job_name(naming.job_name("hub", user, server, "0"))
    assert parsed is not None  # noqa: S101 - job_name always parses
    return parsed.user, parsed.server


@dataclass(frozen=True)
class ActiveServer:
    """An active server as the hub reports it, with the job its spawner names.

    ``job_name``/``job_id`` come from the spawner's state (``get_state()``);
    ``orphans`` are the jobs the spawner recorded as to be cancelled, by
    name and, where it knew one, by ``(system, job id)``.
    """

    user: str
    server: str = ""
    #: The hub reported the spawner's state (False: match by user and server only).
    state_known: bool = False
    job_name: str = ""
    job_id: str = ""
    system: str = ""
    #: ``"spawn"`` or ``"stop"`` while one is in progress.
    pending: str = ""
    orphan_names: frozenset[str] = frozenset()
    orphan_ids: frozenset[tuple[str, str]] = frozenset()

    @property
    def key(self) -> tuple[str, str]:
        return server_key(self.user, self.server)

    def owns(self, name: str, system: str, job_id: str) -> bool | None:
        """Whether the job is this server's current one; None when the state cannot tell."""
        if not self.state_known or self.pending == "spawn":
            return None
        if self.job_name:
            return name == self.job_name
        if self.job_id:
            same_system = not self.system or self.system.lower() == system.lower()
            return same_system and job_id == self.job_id
        return None

    @classmethod
    def from_model(cls, user: str, server: str, model: Mapping[str, Any]) -> ActiveServer:
        """From the hub's server model (``state`` present with ``admin:server_state``)."""
        state = model.get("state")
        pending = str(model.get("pending") or "")
        if not isinstance(state, dict):
            return cls(user, server, pending=pending)
        names: set[str] = set()
        ids: set[tuple[str, str]] = set()
        for orphan in state.get("orphans") or []:
            if not isinstance(orphan, dict):
                continue
            if orphan.get("job_name"):
                names.add(str(orphan["job_name"]))
            if orphan.get("job_id") and orphan.get("system"):
                ids.add((str(orphan["system"]).lower(), str(orphan["job_id"])))
        return cls(
            user,
            server,
            state_known=True,
            job_name=str(state.get("job_name") or ""),
            job_id=str(state.get("job_id") or ""),
            system=str(state.get("system") or ""),
            pending=pending,
            orphan_names=frozenset(names),
            orphan_ids=frozenset(ids),
        )


@dataclass
class Decision:
    """What the reaper does with one job of this hub."""

    system: str
    job_id: str
    name: str
    user: str
    state: str
    #: Seconds; None when unknown (a queued job seen for the first time).
    age: float | None
    action: str  # "cancel" or "keep"
    reason: str
    result: str = ""


def job_age(job: Mapping[str, Any], now: float, first_seen: float | None) -> float | None:
    """How long the job has existed, as far as can be told (a lower bound).

    Running: its elapsed time (FirecREST computes it, no clock skew) or
    ``now - start``. Queued: FirecREST has no submit time, so the time since
    the reaper first saw it. Whichever is larger.
    """
    ages: list[float] = []
    if first_seen is not None:
        ages.append(max(0.0, now - first_seen))
    if states.phase(states.state_of(job)) is states.Phase.ALLOCATED:
        times = job.get("time") or {}
        elapsed, start = times.get("elapsed"), times.get("start")
        if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
            ages.append(float(elapsed))
        elif isinstance(start, int | float) and not isinstance(start, bool) and start > 0:
            ages.append(max(0.0, now - start))
    return max(ages) if ages else None


def plan(
    jobs: Iterable[Mapping[str, Any]],
    *,
    system: str,
    hub_id: str,
    active: Iterable[ActiveServer | tuple[str, str]],
    min_age: float,
    now: float,
    first_seen: Mapping[str, float],
) -> list[Decision]:
    """Decide, for each live job of this hub on ``system``, whether to cancel it.

    ``active`` holds the :class:`ActiveServer` of every active server (or, as
    before, their :func:`server_key`: then a job is matched by user and server
    name only); ``first_seen`` maps :func:`seen_key` to the epoch the reaper
    first saw a job. Jobs of other hubs, foreign jobs and ended jobs are left
    out of the result. Nothing younger than ``min_age`` is cancelled.
    """
    hub = hub_slug(hub_id)
    servers: dict[tuple[str, str], ActiveServer | None] = {}
    recorded_names: set[str] = set()
    recorded_ids: set[tuple[str, str]] = set()
    for server in active:
        if isinstance(server, ActiveServer):
            servers[server.key] = server
            recorded_names |= server.orphan_names
            recorded_ids |= server.orphan_ids
        else:
            servers[tuple(server)] = None  # type: ignore[index]
    out: list[Decision] = []
    for job in jobs:
        name = str(job.get("name") or "")
        parsed = naming.parse_job_name(name)
        if parsed is None or parsed.hub != hub:
            continue
        state = states.state_of(job)
        phase = states.phase(state)
        job_id = str(job.get("jobId") or "")
        if phase not in (states.Phase.QUEUED, states.Phase.ALLOCATED) or not job_id:
            continue  # ended, ending or unknown: nothing to do (or not safe to)
        age = job_age(job, now, first_seen.get(seen_key(system, job_id)))
        decision = Decision(
            system=system,
            job_id=job_id,
            name=name,
            user=str(job.get("user") or ""),
            state=state,
            age=age,
            action="keep",
            reason="",
        )
        out.append(decision)
        key = (parsed.user, parsed.server)
        if name in recorded_names or (system.lower(), job_id) in recorded_ids:
            why = "recorded as an orphan by its spawner"
        elif key not in servers:
            why = "no active server"
        else:
            match = servers[key]
            owned = match.owns(name, system, job_id) if match is not None else None
            if owned is None or owned:
                decision.reason = (
                    "spawn in progress"
                    if match is not None and match.pending == "spawn"
                    else "active server"
                )
                continue
            why = "not the job of the active server"
        if age is None or age < min_age:
            decision.reason = "younger than min-age"
        else:
            decision.action = "cancel"
            decision.reason = why
    return out


def seen_key(system: str, job_id: str) -> str:
    return f"{system.lower()}/{job_id}"


__all__ = [
    "ActiveServer",
    "Decision",
    "hub_slug",
    "job_age",
    "parse_duration",
    "plan",
    "seen_key",
    "server_key",
]
