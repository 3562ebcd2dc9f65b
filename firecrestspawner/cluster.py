"""Choices derived from the cluster: partitions, reservations, accounts, nodes.

The spawn form offers some choices that only FirecREST knows (which
partitions are up, which reservations are active now, which accounts the
user may charge). Fetching them must never make the form fail or hang:

- every fetch is bounded (``timeout``, default 2 s); when FirecREST is slow
  the form renders at once with what we have, while the fetch keeps running
  in the background (bounded too) and fills the cache for the next render;
- results are cached per (FirecREST URL, system, source, user or shared) for
  the profile's TTL, and a failed refresh serves the last good list
  ("stale on error") before falling back to the profile's static list;
- whatever is not live carries a visible ``note`` the form shows.

This module does no HTTP itself: it calls the status methods of a client
object (pyfirecrest's ``AsyncFirecrest`` or ``client.py``'s wrapper:
``partitions(system)``, ``reservations(system)``, ``userinfo(system)``,
``nodes(system)``), so all FirecREST traffic goes through ``client.py``.
It does not import jupyterhub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .client import describe
from .profiles.choices import ClusterChoice, ClusterChoices, Origin
from .profiles.identity import identity_choices

log = logging.getLogger(__name__)

Source = Literal["partitions", "reservations", "accounts", "nodes", "identity"]
#: ``identity``: the user's Slurm accounts and Unix groups (userinfo), for allow-lists.
SOURCES: tuple[str, ...] = ("partitions", "reservations", "accounts", "nodes", "identity")
#: Sources whose answer does not depend on the user asking (cached once per system).
SHARED_SOURCES = frozenset({"partitions", "reservations", "nodes"})

#: Longest we let a background fetch run after the form stopped waiting.
BACKGROUND_TIMEOUT = 30.0


class StatusClient(Protocol):
    """The part of pyfirecrest's ``AsyncFirecrest`` this module uses."""

    async def partitions(self, system_name: str) -> list[dict[str, Any]]: ...
    async def reservations(self, system_name: str) -> list[dict[str, Any]]: ...
    async def userinfo(self, system_name: str) -> dict[str, Any]: ...
    async def nodes(self, system_name: str) -> list[dict[str, Any]]: ...


# --------------------------------------------------------------------------
# Turning FirecREST answers into choices (pure)


def _state_words(state: Any) -> set[str]:
    if isinstance(state, str):
        return {w.upper() for w in state.replace(",", " ").replace("+", " ").split()}
    if isinstance(state, Iterable):
        return {str(w).upper() for w in state}
    return set()


def partitions_to_choices(partitions: Sequence[Mapping[str, Any]]) -> tuple[ClusterChoice, ...]:
    """Partitions that are UP; FirecREST reports their Slurm State in ``partition``."""
    out = []
    for p in partitions:
        name = str(p.get("name") or "")
        if not name:
            continue
        state = _state_words(p.get("partition", "UP"))
        if state and "UP" not in state:
            continue
        bits = []
        limits: list[tuple[str, int]] = []
        for key, limit, unit in (("totalNodes", "nodes", "nodes"), ("cpus", "cpus", "CPUs")):
            count = p.get(key)
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                bits.append(f"{count} {unit}")
                limits.append((limit, count))
        out.append(ClusterChoice(value=name, detail=", ".join(bits), limits=tuple(limits)))
    return tuple(out)


def reservations_to_choices(
    reservations: Sequence[Mapping[str, Any]], *, now: float | None = None
) -> tuple[ClusterChoice, ...]:
    """Reservations active now (FirecREST cannot tell who may use them)."""
    now = time.time() if now is None else now
    out = []
    for r in reservations:
        name = str(r.get("name") or "")
        if not name:
            continue
        state = str(r.get("state") or "").lower()
        start, end = r.get("startTime"), r.get("endTime")
        if state:
            active = state == "active"
        else:
            active = (start is None or float(start) <= now) and (end is None or now < float(end))
        if not active:
            continue
        detail = ""
        if end is not None:
            detail = "until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(end)))
        out.append(ClusterChoice(value=name, detail=detail))
    return tuple(out)


def userinfo_to_accounts(userinfo: Mapping[str, Any]) -> tuple[ClusterChoice, ...]:
    """The user's accounts; FirecREST may answer ``null``: then the primary group.

    The primary group is what the existing firecrestspawner charges by default.
    """
    accounts = userinfo.get("accounts")
    if accounts:
        out = []
        for a in accounts:
            name = str((a or {}).get("name") or "")
            if name:
                out.append(ClusterChoice(value=name, default=bool(a.get("default"))))
        return tuple(out)
    group = (userinfo.get("group") or {}).get("name")
    return (ClusterChoice(value=str(group), default=True),) if group else ()


_UNAVAILABLE_NODE_STATES = {"DOWN", "DRAIN", "DRAINED", "DRAINING", "OFFLINE", "POWERING_DOWN"}


def nodes_to_choices(nodes: Sequence[Mapping[str, Any]]) -> tuple[ClusterChoice, ...]:
    """Nodes that can take work, with their idle CPUs as a hint."""
    out = []
    for n in nodes:
        name = str(n.get("name") or "")
        if not name or _state_words(n.get("state")) & _UNAVAILABLE_NODE_STATES:
            continue
        idle = n.get("idleCpus")
        out.append(
            ClusterChoice(value=name, detail=f"{idle} idle CPUs" if idle is not None else "")
        )
    return tuple(out)


def filter_allowed(
    items: Sequence[ClusterChoice], allow: Iterable[str] | None
) -> tuple[ClusterChoice, ...]:
    """Keep only values in the profile's allow-list (None: keep all)."""
    if allow is None:
        return tuple(items)
    allowed = set(allow)
    return tuple(c for c in items if c.value in allowed)


async def _fetch(client: StatusClient, system: str, source: str) -> tuple[ClusterChoice, ...]:
    if source == "partitions":
        return partitions_to_choices(await client.partitions(system))
    if source == "reservations":
        return reservations_to_choices(await client.reservations(system))
    if source == "accounts":
        return userinfo_to_accounts(await client.userinfo(system))
    if source == "nodes":
        return nodes_to_choices(await client.nodes(system))
    if source == "identity":
        return identity_choices(await client.userinfo(system))
    raise ValueError(f"unknown cluster source {source!r}; expected one of {', '.join(SOURCES)}")


# --------------------------------------------------------------------------
# The cache


@dataclass
class _Entry:
    items: tuple[ClusterChoice, ...]
    fetched_at: float
    expires_at: float


@dataclass
class ClusterCache:
    """TTL cache of cluster choices with one fetch in flight per key.

    One instance is shared by all spawners of a hub (:data:`CACHE`).
    ``clock`` is injectable for tests.
    """

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _entries: dict[tuple[str, ...], _Entry] = field(default_factory=dict)
    _inflight: dict[tuple[str, ...], asyncio.Task] = field(default_factory=dict)
    #: Counts of FirecREST fetches started, per source (for tests and metrics).
    fetches: dict[str, int] = field(default_factory=dict)

    def clear(self) -> None:
        self._entries.clear()
        for task in self._inflight.values():
            task.cancel()
        self._inflight.clear()
        self.fetches.clear()

    @staticmethod
    def key(firecrest_url: str, system: str, source: str, user: str) -> tuple[str, ...]:
        who = "*" if source in SHARED_SOURCES else user
        return (firecrest_url.rstrip("/"), system.lower(), source, who)

    def _task(
        self,
        key: tuple[str, ...],
        fetch: Callable[[], Awaitable[tuple[ClusterChoice, ...]]],
        ttl: float,
    ) -> asyncio.Task:
        task = self._inflight.get(key)
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return task

        async def run() -> tuple[ClusterChoice, ...]:
            try:
                items = await asyncio.wait_for(fetch(), BACKGROUND_TIMEOUT)
                now = self.clock()
                self._entries[key] = _Entry(items, self.wall(), now + ttl)
                return items
            finally:
                if self._inflight.get(key) is asyncio.current_task():
                    del self._inflight[key]

        self.fetches[key[2]] = self.fetches.get(key[2], 0) + 1
        task = loop.create_task(run(), name=f"firecrestspawner-cluster-{key[2]}-{key[1]}")
        # A background fetch nobody awaits any more must not log "exception never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._inflight[key] = task
        return task

    async def get(
        self,
        client: Callable[[], Awaitable[StatusClient]],
        *,
        firecrest_url: str,
        system: str,
        source: str,
        user: str,
        ttl: float = 300.0,
        timeout: float = 2.0,
        fallback: Sequence[ClusterChoice] = (),
        allow: Iterable[str] | None = None,
    ) -> ClusterChoices:
        """The choices of ``source`` on ``system`` as seen by ``user``; never raises.

        ``client`` is an async factory of the status client, called only when
        the cache misses (so no token is fetched for a cached answer).
        """
        if source not in SOURCES:
            raise ValueError(
                f"unknown cluster source {source!r}; expected one of {', '.join(SOURCES)}"
            )
        allow = None if allow is None else tuple(allow)
        key = self.key(firecrest_url, system, source, user)
        entry = self._entries.get(key)
        if entry is not None and self.clock() < entry.expires_at:
            return self._result(source, system, entry.items, "cache", entry.fetched_at, allow)

        async def fetch() -> tuple[ClusterChoice, ...]:
            return await _fetch(await client(), system, source)

        task = self._task(key, fetch, ttl)
        try:
            items = await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            problem = f"FirecREST did not answer within {timeout:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure means "use what we have"
            problem = f"FirecREST could not list {source} ({type(e).__name__})"
            log.warning("Fetching %s of %s failed: %s", source, system, describe(e))
        else:
            return self._result(source, system, items, "live", self.wall(), allow)

        entry = self._entries.get(key)
        if entry is not None:
            age = max(0, int((self.wall() - entry.fetched_at) // 60))
            note = f"{problem}; showing the list from {age} min ago."
            return self._result(source, system, entry.items, "stale", entry.fetched_at, allow, note)
        if fallback:
            note = f"{problem}; showing the site's default list."
        else:
            note = f"{problem}; no list is available."
        return ClusterChoices(
            source=source,
            system=system,
            items=filter_allowed(tuple(fallback), allow),
            origin="fallback",
            note=note,
        )

    @staticmethod
    def _result(
        source: str,
        system: str,
        items: tuple[ClusterChoice, ...],
        origin: Origin,
        fetched_at: float,
        allow: tuple[str, ...] | None,
        note: str = "",
    ) -> ClusterChoices:
        return ClusterChoices(
            source=source,
            system=system,
            items=filter_allowed(items, allow),
            origin=origin,
            note=note,
            fetched_at=fetched_at,
        )


#: The cache shared by all spawners of a hub process.
CACHE = ClusterCache()


class PooledStatusClient:
    """Status reads through a ``client.py`` :class:`~firecrestspawner.client.FirecrestClient`.

    Uses its bounded, retried ``read`` so form traffic follows the same rules
    as every other FirecREST call.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    async def partitions(self, system_name: str) -> list[dict[str, Any]]:
        return await self.client.read("partitions", lambda: self.client.raw.partitions(system_name))

    async def reservations(self, system_name: str) -> list[dict[str, Any]]:
        return await self.client.read(
            "reservations", lambda: self.client.raw.reservations(system_name)
        )

    async def userinfo(self, system_name: str) -> dict[str, Any]:
        return await self.client.read("userinfo", lambda: self.client.raw.userinfo(system_name))

    async def nodes(self, system_name: str) -> list[dict[str, Any]]:
        return await self.client.read("nodes", lambda: self.client.raw.nodes(system_name))


__all__ = [
    "CACHE",
    "SOURCES",
    "ClusterCache",
    "ClusterChoice",
    "ClusterChoices",
    "PooledStatusClient",
    "StatusClient",
    "filter_allowed",
    "nodes_to_choices",
    "partitions_to_choices",
    "reservations_to_choices",
    "userinfo_to_accounts",
]
