"""The shared status cache: one fetch per identity per interval, errors are "unknown"."""

from __future__ import annotations

import asyncio

import pytest

from firecrestspawner.status import SystemStatus


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def lister(jobs, calls, delay=0.01, error=None):
    async def list_jobs():
        calls.append("list")
        await asyncio.sleep(delay)
        if error is not None:
            raise error
        return jobs

    return list_jobs


def getter(job, calls):
    async def get_job():
        calls.append("job")
        return job

    return get_job


async def test_concurrent_observers_share_one_list_request():
    cache = SystemStatus("http://f7t", "cluster")
    calls: list[str] = []
    jobs = [{"jobId": str(i), "status": {"state": "RUNNING"}} for i in range(20)]
    results = await asyncio.gather(
        *(
            cache.observe(
                str(i),
                identity="sa",
                list_jobs=lister(jobs, calls),
                get_job=getter(None, calls),
                max_age=10,
            )
            for i in range(20)
        )
    )
    assert calls == ["list"]
    assert all(r.found for r in results)
    assert [r.job["jobId"] for r in results] == [str(i) for i in range(20)]


async def test_fresh_list_is_reused_and_stale_list_refetched():
    clock = Clock()
    cache = SystemStatus("http://f7t", "cluster", clock=clock)
    calls: list[str] = []
    jobs = [{"jobId": "1"}]
    kw = {"identity": "u", "list_jobs": lister(jobs, calls), "get_job": getter(None, calls)}
    await cache.observe("1", max_age=10, **kw)
    clock.now += 5
    await cache.observe("1", max_age=10, **kw)
    assert calls == ["list"]
    clock.now += 6
    await cache.observe("1", max_age=10, **kw)
    assert calls == ["list", "list"]


async def test_job_missing_from_list_is_fetched_by_id_only_for_it():
    cache = SystemStatus("http://f7t", "cluster")
    calls: list[str] = []
    listed = [{"jobId": "1"}]
    hidden = {"jobId": "2", "status": {"state": "PENDING"}}
    one = await cache.observe(
        "1", identity="u", list_jobs=lister(listed, calls), get_job=getter(None, calls), max_age=10
    )
    two = await cache.observe(
        "2",
        identity="u",
        list_jobs=lister(listed, calls),
        get_job=getter(hidden, calls),
        max_age=10,
    )
    assert one.found
    assert two.found
    assert two.job is hidden
    assert calls == ["list", "job"]
    gone = await cache.observe(
        "3", identity="u", list_jobs=lister(listed, calls), get_job=getter(None, calls), max_age=10
    )
    assert gone.missing


async def test_errors_are_unknown_not_missing():
    cache = SystemStatus("http://f7t", "cluster")
    calls: list[str] = []
    obs = await cache.observe(
        "1",
        identity="u",
        list_jobs=lister([], calls, error=RuntimeError("503")),
        get_job=getter(None, calls),
        max_age=10,
    )
    assert obs.error is not None
    assert not obs.missing
    assert not obs.found


async def test_cancelled_observer_does_not_cancel_shared_fetch():
    cache = SystemStatus("http://f7t", "cluster")
    calls: list[str] = []
    kw = {
        "identity": "u",
        "list_jobs": lister([{"jobId": "1"}], calls, delay=0.2),
        "get_job": getter(None, calls),
        "max_age": 10,
    }
    first = asyncio.ensure_future(cache.observe("1", **kw))
    second = asyncio.ensure_future(cache.observe("1", **kw))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).found
    assert calls == ["list"]
