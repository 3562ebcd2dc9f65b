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


async def test_a_429_give_up_is_not_asked_again_before_retry_after(emulator):
    """After a read used up its tries on 429, the cache waits for Retry-After."""
    from firecrestspawner import auth
    from firecrestspawner import client as fc

    clock = Clock()
    cache = SystemStatus(emulator.url, emulator.system, clock=clock)
    sa = auth.ServiceAccountAuth(emulator.client_id, emulator.client_secret, emulator.token_url)
    settings = fc.ClientSettings(read_attempts=2, max_retry_after=0.01, backoff_jitter=0)
    client = fc.get_client(emulator.url, "sa:retry-after", sa, settings)
    route = "GET /compute/{system}/jobs"
    await asyncio.to_thread(
        emulator.admin.set_faults, rules=[{"route": route, "status": 429, "retry_after": 30}]
    )
    try:

        async def observe():
            return await cache.observe(
                "1",
                identity="sa",
                list_jobs=lambda: client.jobs(emulator.system, allusers=True),
                get_job=lambda: client.job(emulator.system, "1"),
                max_age=0.5,
            )

        first = await observe()
        assert fc.http_status(first.error) == 429
        (rule,) = (await asyncio.to_thread(emulator.admin.faults))["stats"]
        assert rule["fired"] == 2  # both tries of the read met the 429
        clock.now += 29  # far beyond max_age, still within Retry-After
        again = await observe()
        assert again.error is first.error
        assert cache.requests["list"] == 1
        assert cache.held_back == 1
        (rule,) = (await asyncio.to_thread(emulator.admin.faults))["stats"]
        assert rule["matches"] == 2  # FirecREST was not asked
        await asyncio.to_thread(emulator.admin.reset_faults)
        clock.now += 2  # Retry-After elapsed: asked again
        later = await observe()
        assert later.error is None
        assert cache.requests["list"] == 2
    finally:
        await asyncio.to_thread(emulator.admin.reset_faults)
        await fc.close_all()


async def test_retry_after_is_capped():
    from firecrestspawner.status import MAX_RETRY_AFTER

    clock = Clock()
    cache = SystemStatus("http://f7t", "cluster", clock=clock)
    calls: list[str] = []
    import httpx
    from firecrest.FirecrestException import UnexpectedStatusException

    answer = httpx.Response(
        429, headers={"Retry-After": "86400"}, request=httpx.Request("GET", "http://f7t/x")
    )
    error = UnexpectedStatusException([answer], 200)

    async def observe():
        return await cache.observe(
            "1",
            identity="sa",
            list_jobs=lister([], calls, error=error),
            get_job=getter(None, calls),
            max_age=1,
        )

    await observe()
    clock.now += MAX_RETRY_AFTER - 1
    await observe()
    assert calls == ["list"]
    clock.now += 2
    await observe()
    assert calls == ["list", "list"]


async def test_since_waits_out_an_older_fetch_and_shares_a_newer_one():
    """``since`` (a job reported that it runs): an answer from a request made after it.

    A fetch already in flight that started before ``since`` may carry the old
    state: it is not joined, a new one is made; callers with the same need
    share that one.
    """
    clock = Clock()
    cache = SystemStatus("http://f7t", "cluster", clock=clock)
    calls: list[str] = []
    state = {"now": "PENDING"}

    async def list_jobs():
        calls.append("list")
        seen = state["now"]  # the state when the request is made
        await asyncio.sleep(0.05)
        return [{"jobId": "1", "status": {"state": seen}}]

    kw = {"identity": "sa", "list_jobs": list_jobs, "get_job": getter(None, calls)}
    older = asyncio.ensure_future(cache.observe("1", max_age=10, **kw))
    await asyncio.sleep(0.01)  # the older fetch is in flight
    clock.now += 1
    state["now"] = "RUNNING"
    since = clock.now  # the report
    fresh = [
        asyncio.ensure_future(cache.observe("1", max_age=0, since=since, **kw)) for _ in range(3)
    ]
    assert (await older).job["status"]["state"] == "PENDING"
    assert [(await f).job["status"]["state"] for f in fresh] == ["RUNNING"] * 3
    assert calls == ["list", "list"]
    # An answer from after ``since`` satisfies the next asker within max_age.
    again = await cache.observe("1", max_age=10, since=since, **kw)
    assert again.job["status"]["state"] == "RUNNING"
    assert calls == ["list", "list"]
