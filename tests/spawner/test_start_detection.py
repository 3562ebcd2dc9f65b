"""start() notices a running job by its port report, not only by polling (#17).

The job's wrapper reports its port as soon as the job runs; that report
proves the job runs, so start() stops waiting for its next poll and reads the
job's state once, from a request made after the report: the host always comes
from FirecREST's job record, never from the report.

The emulator's jobs are simulated (no process) on a system with no free slot,
so a job stays PENDING until a test gives the system a slot. Polling is set to
an hour: without the wake on the report, start() would not see the job run
within the tests' bound (60 s), so these tests fail if the wake is removed. No
time is asserted.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from firecrestspawner import errors
from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import running_emulator

from .conftest import new_spawner

pytestmark = pytest.mark.timeout(180)

NODE = "nid00042"
LIST = "GET /compute/{system}/jobs"
JOB = "GET /compute/{system}/jobs/{job_id}"
HOUR = 3600
BOUND = 60  # seconds a step may take on a loaded machine; polling alone takes an hour


@pytest.fixture(scope="module")
def emulator():
    config = EmulatorConfig(systems=[SystemConfig(name="cluster", node_name=NODE, simulate=True)])
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _no_slot(emulator):
    """No free slot: a job stays PENDING until the test calls ``free_slot``."""
    emulator.admin.reset_faults()
    emulator.admin.set_system(emulator.system, slots=0)
    yield
    emulator.admin.reset_faults()
    emulator.admin.set_system(emulator.system, slots=4)


def slow_polling_spawner(user, emulator, workroot, **overrides):
    spawner = new_spawner(
        user,
        emulator,
        workroot,
        startup_poll_interval=HOUR,
        startup_poll_max_interval=HOUR,
        status_max_age=HOUR,
        start_timeout=2 * HOUR,
        **overrides,
    )
    spawner.api_token = secrets.token_hex(16)
    return spawner


async def until(check, what: str):
    """Wait (bounded) until ``check()`` is true; ``check`` may block (run in a thread)."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"no {what} within {BOUND} s")
        await asyncio.sleep(0.05)


def emulator_state(emulator, job_id: str) -> str:
    for job in emulator.admin.jobs():
        if str(job["jobId"]) == str(job_id):
            return job["status"]["state"].split()[0]
    return "gone"


async def queued_and_read_once(spawner, emulator) -> asyncio.Future:
    """start() in a task, until it has read the job once (PENDING) and sleeps."""
    task = asyncio.ensure_future(spawner.start())
    await until(lambda: spawner.record.job_status.startswith("PENDING"), "first read")
    assert spawner.phase == "queued"
    return task


async def job_runs(spawner, emulator) -> None:
    emulator.admin.set_system(emulator.system, slots=4)
    job_id = spawner.record.job_id
    await until(lambda: emulator_state(emulator, job_id) == "RUNNING", "job RUNNING")


async def finished(task: asyncio.Future, what: str):
    try:
        return await asyncio.wait_for(asyncio.shield(task), BOUND)
    except asyncio.TimeoutError:  # TimeoutError from Python 3.11
        task.cancel()
        pytest.fail(f"start() did not notice {what} within {BOUND} s (its next poll is in an hour)")


async def test_a_port_report_ends_the_wait_and_the_host_comes_from_firecrest(
    fcs_user, emulator, workroot
):
    spawner = slow_polling_spawner(fcs_user, emulator, workroot)
    task = await queued_and_read_once(spawner, emulator)
    emulator.admin.reset_counters()
    await job_runs(spawner, emulator)

    assert spawner.report_port(45678)  # what the hub's handler calls
    host, port = await finished(task, "the port report")

    assert (host, port) == (NODE, 45678)  # the node from FirecREST's job record
    assert spawner.record.job_status.startswith("RUNNING")
    # One read of the job after the report (the shared job list, as the
    # service account), none before it: nothing else woke start().
    endpoints = emulator.admin.counters()["endpoints"]
    reads = {k: v for k, v in endpoints.items() if k in (LIST, JOB)}
    assert reads == {LIST: 1}
    await spawner.stop(now=True)


async def test_a_report_during_an_outage_keeps_the_spawn_and_the_job(fcs_user, emulator, workroot):
    spawner = slow_polling_spawner(fcs_user, emulator, workroot)
    task = await queued_and_read_once(spawner, emulator)
    job_id = spawner.record.job_id
    emulator.admin.add_fault(route="GET /compute/{system}/jobs*", status=503)
    await job_runs(spawner, emulator)
    emulator.admin.reset_counters()

    assert spawner.report_port(45679)

    def refused() -> int:
        statuses = emulator.admin.counters()["statuses"]
        return sum(v for k, v in statuses.items() if k.startswith("GET /compute/") and "503" in k)

    # Several reads refused (more than one read's retries: firecrest_read_attempts=3)...
    await until(lambda: refused() > 3, "reads answered 503")
    # ...and the spawn goes on, with its job, which nobody cancelled.
    assert not task.done()
    assert spawner.phase == "queued"
    assert spawner.record.job_id == job_id
    assert spawner.record.orphans == []
    assert emulator_state(emulator, job_id) == "RUNNING"

    emulator.admin.reset_faults()
    host, port = await finished(task, "the job once FirecREST answered again")
    assert (host, port) == (NODE, 45679)
    assert spawner.record.job_id == job_id
    await spawner.stop(now=True)


async def test_a_failing_report_ends_the_spawn_at_once(fcs_user, emulator, workroot):
    spawner = slow_polling_spawner(fcs_user, emulator, workroot)
    task = await queued_and_read_once(spawner, emulator)
    job_id = spawner.record.job_id
    await job_runs(spawner, emulator)

    # What the handler does for {"port": 0}, the existing project's wrapper.
    assert spawner.report_port(None, problem="an older wrapper reported port 0")
    with pytest.raises(errors.HTTPError) as info:
        await finished(task, "the failing report")
    message = getattr(info.value, "message", None) or getattr(info.value, "jupyterhub_message", "")
    assert "port 0" in message
    # The failed start cancels its job.
    await until(lambda: emulator_state(emulator, job_id) != "RUNNING", "job cancelled")


async def test_a_report_of_a_job_that_ended_since_ends_the_spawn(fcs_user, emulator, workroot):
    spawner = slow_polling_spawner(fcs_user, emulator, workroot)
    task = await queued_and_read_once(spawner, emulator)
    job_id = spawner.record.job_id
    await job_runs(spawner, emulator)
    emulator.admin.node_fail(emulator.system, job_id)

    assert spawner.report_port(45680)
    with pytest.raises(errors.HTTPError) as info:
        await finished(task, "the report")
    message = getattr(info.value, "message", None) or getattr(info.value, "jupyterhub_message", "")
    assert "NODE_FAIL" in message
    assert "ended before the server started" in message
