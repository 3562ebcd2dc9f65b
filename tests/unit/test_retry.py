"""Retry-After is honoured by the read that met it and by the client's next reads."""

from __future__ import annotations

import asyncio
import logging

import pytest
from firecrest.FirecrestException import UnexpectedStatusException

from firecrestspawner import auth
from firecrestspawner import client as fc

pytestmark = pytest.mark.timeout(60)

JOBS = "GET /compute/{system}/jobs"


@pytest.fixture
async def sa_client(emulator):
    sa = auth.ServiceAccountAuth(emulator.client_id, emulator.client_secret, emulator.token_url)
    settings = fc.ClientSettings(read_attempts=2, max_retry_after=0.2, backoff_jitter=0)
    yield fc.get_client(emulator.url, "sa:gate", sa, settings)
    await asyncio.to_thread(emulator.admin.reset_faults)
    await fc.close_all()


async def test_after_a_429_give_up_the_next_read_waits_for_retry_after(emulator, sa_client):
    await asyncio.to_thread(
        emulator.admin.set_faults, rules=[{"route": JOBS, "status": 429, "retry_after": 5}]
    )
    with pytest.raises(UnexpectedStatusException) as info:
        await sa_client.jobs(emulator.system, allusers=True)
    assert fc.http_status(info.value) == 429
    (rule,) = (await asyncio.to_thread(emulator.admin.faults))["stats"]
    assert rule["fired"] == 2
    assert 0 < sa_client.gate.remaining() <= 0.2  # Retry-After 5, capped by the settings
    await asyncio.to_thread(emulator.admin.reset_faults)
    waits = sa_client.gate.waits
    # Another reader of the same identity (a different request) waits first.
    await sa_client.userinfo(emulator.system)
    assert sa_client.gate.waits == waits + 1
    assert sa_client.gate.remaining() == 0


async def test_a_read_without_a_429_does_not_wait(emulator, sa_client):
    await sa_client.jobs(emulator.system, allusers=True)
    assert sa_client.gate.waits == 0


async def test_a_read_that_gives_up_is_one_line_and_its_retries_are_counted(
    emulator, sa_client, caplog
):
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    from firecrestspawner.logs import RetrySummary, install_retry_summary

    hooks = get_on_retry_hooks()
    summary = install_retry_summary(RetrySummary())
    try:
        await asyncio.to_thread(emulator.admin.set_faults, rules=[{"route": JOBS, "status": 503}])
        caplog.set_level(logging.INFO)
        with pytest.raises(UnexpectedStatusException):
            await sa_client.jobs(emulator.system, allusers=True)
    finally:
        set_on_retry_hooks(hooks)
    (rule,) = (await asyncio.to_thread(emulator.admin.faults))["stats"]
    assert rule["fired"] == 2
    lines = [r for r in caplog.records if r.name.startswith(("firecrestspawner", "stamina"))]
    assert [r.name for r in lines] == ["firecrestspawner.retry"]
    assert "job list" in lines[0].getMessage()
    assert "gave up after 2 attempts" in lines[0].getMessage()
    assert "HTTP 503" in lines[0].getMessage()
    assert summary.counts == {"HTTP 503": 1}  # the one retry, counted, not logged
