"""The job-status cache shared by all spawners of a hub process.

There is one :class:`SystemStatus` per (event loop, FirecREST URL, system).
Spawners ask it for their job with a maximum age; it answers from the last
batched job list when that is fresh enough and otherwise fetches a new list,
sharing the request with every concurrent caller. So the number of FirecREST
requests grows with the number of *identities* polled per interval, not with
the number of spawners: with the service account (``allusers``) it is one
list per system per interval.

A job missing from the list (firecrest-v2 #177, or aged out of it) is asked
for by id, once per interval, and only that job. Errors are results too: an
:class:`Observation` with ``error`` set means "unknown", never "gone".

A failed fetch whose answer named a ``Retry-After`` (a 429 whose tries were
used up) is not repeated before that time, whatever age the callers accept:
they get the failed observation until then (at most :data:`MAX_RETRY_AFTER`).

``since`` asks for an answer fetched after a moment (a job reported that it
runs): a fetch in flight that started earlier is not joined but awaited, then
a new one is made; concurrent callers with the same need still share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .firecrest_errors import retry_after

#: Longest a ``Retry-After`` holds back the cache's next fetch (seconds).
MAX_RETRY_AFTER = 120.0

ListFetcher = Callable[[], Awaitable[list[dict]]]
JobFetcher = Callable[[], Awaitable[dict | None]]


@dataclass(frozen=True)
class Observation:
    """What is known about one job at ``fetched_at`` (monotonic seconds)."""

    job: dict | None
    fetched_at: float
    #: A transient failure: the job's state is unknown.
    error: BaseException | None = None

    @property
    def found(self) -> bool:
        return self.job is not None and self.error is None

    @property
    def missing(self) -> bool:
        """FirecREST positively does not know the job (404 / not listed)."""
        return self.job is None and self.error is None


@dataclass
class _Snapshot:
    fetched_at: float = -1e18
    #: When the fetch that gave ``jobs`` (or ``error``) started.
    started_at: float = -1e18
    jobs: dict[str, dict] = field(default_factory=dict)
    error: BaseException | None = None
    task: asyncio.Task | None = None
    #: When the fetch in flight (``task``) started.
    task_started_at: float = -1e18
    #: No new fetch before this time (monotonic; a Retry-After of the last error).
    not_before: float = -1e18


def _consume(task: asyncio.Task) -> None:
    # Errors are delivered through the snapshot; never "exception never retrieved".
    if not task.cancelled():
        task.exception()


class SystemStatus:
    """Cached job lists (per identity) and by-id lookups for one system."""

    def __init__(self, url: str, system: str, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.system = system
        self._clock = clock
        self._lists: dict[str, _Snapshot] = {}
        self._by_id: dict[str, _Snapshot] = {}
        #: Requests made, for tests and metrics: {"list": n, "job": n}.
        self.requests = {"list": 0, "job": 0}
        #: Fetches not made because a Retry-After had not elapsed.
        self.held_back = 0

    async def _refresh(
        self,
        snap: _Snapshot,
        max_age: float,
        fetch: Callable[[], Awaitable],
        since: float | None = None,
    ) -> None:
        """Bring ``snap`` to at most ``max_age`` old, sharing in-flight fetches.

        With ``since``: from a fetch that started at or after it. Not before
        the server said it may be asked again (``Retry-After``).
        """
        while True:
            now = self._clock()
            if snap.task is None:
                fresh = now - snap.fetched_at <= max_age and (
                    since is None or snap.started_at >= since
                )
                if fresh or now < snap.not_before:
                    if now < snap.not_before:
                        self.held_back += 1
                    return
                break
            if since is None or snap.task_started_at >= since:
                break
            # In flight, but asked before ``since``: its answer may be older.
            await asyncio.shield(snap.task)
        if snap.task is None:
            started = self._clock()

            async def run() -> None:
                try:
                    result = await fetch()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - any failure is "unknown"
                    snap.error = e
                    wait = retry_after(e)
                    if wait is not None:
                        snap.not_before = self._clock() + min(wait, MAX_RETRY_AFTER)
                else:
                    snap.error = None
                    snap.jobs = result
                finally:
                    snap.fetched_at = self._clock()
                    snap.started_at = started
                    snap.task = None

            snap.task = asyncio.ensure_future(run())
            snap.task_started_at = started
            snap.task.add_done_callback(_consume)
        # A caller that is cancelled (hub timeout) must not cancel the shared fetch.
        await asyncio.shield(snap.task)

    async def observe(
        self,
        job_id: str,
        *,
        identity: str,
        list_jobs: ListFetcher,
        get_job: JobFetcher,
        max_age: float,
        since: float | None = None,
    ) -> Observation:
        """The job ``job_id`` as seen at most ``max_age`` seconds ago.

        ``since`` (this cache's clock, ``time.monotonic`` by default): only
        from a request that started at or after it.
        """
        snap = self._lists.setdefault(identity, _Snapshot())

        async def fetch_list() -> dict[str, dict]:
            self.requests["list"] += 1
            jobs = await list_jobs()
            return {str(j.get("jobId")): j for j in jobs or []}

        await self._refresh(snap, max_age, fetch_list, since)
        if snap.fetched_at:
            metrics.status_cache_age(self.system, self._clock() - snap.fetched_at)
        if snap.error is not None:
            return Observation(None, snap.fetched_at, snap.error)
        job = snap.jobs.get(str(job_id))
        if job is not None:
            return Observation(job, snap.fetched_at)

        # Not in the list: ask for this job alone (firecrest-v2 #177).
        one = self._by_id.setdefault(str(job_id), _Snapshot())

        async def fetch_one() -> dict[str, dict]:
            self.requests["job"] += 1
            found = await get_job()
            return {str(job_id): found} if found is not None else {}

        await self._refresh(one, max_age, fetch_one, since)
        self._prune()
        if one.error is not None:
            return Observation(None, one.fetched_at, one.error)
        return Observation(one.jobs.get(str(job_id)), one.fetched_at)

    def invalidate(self, job_id: str | None = None) -> None:
        """Forget cached answers (after submit or cancel) so the next call fetches.

        A pending ``Retry-After`` still holds: the server asked for a pause.
        """
        for snap in self._lists.values():
            if snap.task is None:
                snap.fetched_at = -1e18
        if job_id is not None:
            self._by_id.pop(str(job_id), None)

    def _prune(self, keep: float = 600.0) -> None:
        now = self._clock()
        for key in [
            k for k, s in self._by_id.items() if s.task is None and now - s.fetched_at > keep
        ]:
            self._by_id.pop(key, None)


_caches: dict[tuple[int, str, str], tuple[Any, SystemStatus]] = {}


def get_status(url: str, system: str) -> SystemStatus:
    """The shared cache for (running loop, ``url``, ``system``)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), url.rstrip("/"), system.lower())
    entry = _caches.get(key)
    if entry is None or entry[0] is not loop:
        entry = (loop, SystemStatus(url, system))
        _caches[key] = entry
    return entry[1]


def reset() -> None:
    """Drop every cache (tests)."""
    for _loop, status in _caches.values():
        for snap in [*status._lists.values(), *status._by_id.values()]:
            if snap.task is not None:
                with contextlib.suppress(RuntimeError):
                    snap.task.cancel()
    _caches.clear()


__all__ = ["MAX_RETRY_AFTER", "Observation", "SystemStatus", "get_status", "reset"]
