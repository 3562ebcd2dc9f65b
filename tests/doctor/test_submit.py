"""The doctor's submit (``doctor.jobs.submit``) against the emulator, with faults.

One request under a name unique to the run, never a second job under one name
(the spawner's rule): a lost answer is looked up by name and adopted, a submit
FirecREST did not act on is reported and not repeated, and a submit interrupted
in flight cancels the job that carries its name. Every fault test asserts that
its fault fired.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from firecrestspawner import client as fc
from firecrestspawner import states
from firecrestspawner.doctor.jobs import JobPlan, SubmitNotConfirmed, submit

pytestmark = pytest.mark.timeout(120)

USER = "doctor-submit"
SUBMIT_ROUTE = "POST /compute/*/jobs"


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(autouse=True)
def _clean(emulator):
    emulator.admin.reset_faults()
    emulator.admin.clear_requests()
    yield
    emulator.admin.reset_faults()


@pytest.fixture
async def client(emulator):
    token = StaticToken(emulator.admin.issue_access_token(USER, lifetime=3600))
    settings = fc.ClientSettings(
        read_attempts=2, read_deadline=10, request_timeout=10, lookup_grace=5.0
    )
    c = fc.get_client(emulator.url, f"user:{USER}:{uuid.uuid4().hex}", token, settings)
    yield c
    await fc.close_all()


def plan_for(emulator, workdir: Path) -> JobPlan:
    def render(cmd: str, job_name: str) -> str:
        return (
            f"#!/bin/bash\n#SBATCH --job-name={job_name}\n"
            f"#SBATCH --output={workdir}/{job_name}.log\n{cmd}\n"
        )

    return JobPlan(
        url=emulator.url,
        system=emulator.system,
        workdir=str(workdir),
        scheduler="slurm",
        profile="",
        regexes=states.StateRegexes(),
        render=render,
    )


def doctor_with(client: fc.FirecrestClient) -> SimpleNamespace:
    """What ``submit`` uses of the doctor: the user's client."""
    return SimpleNamespace(user_client=lambda url: client)


def name() -> str:
    return f"fcs-doctor.{uuid.uuid4().hex[:10]}.probe"


def submits(emulator) -> list[int]:
    return [
        r["status"]
        for r in emulator.admin.requests()
        if r["method"] == "POST" and r["route"] == "/compute/{system}/jobs"
    ]


def lookups(emulator) -> list[dict]:
    """Reads of the job list (what a lookup by name sends)."""
    return [
        r
        for r in emulator.admin.requests()
        if r["method"] == "GET" and r["route"] == "/compute/{system}/jobs"
    ]


def named(emulator, job_name: str) -> list[dict]:
    return [j for j in emulator.admin.jobs() if j["name"] == job_name]


def live(emulator, job_name: str) -> list[dict]:
    return [j for j in named(emulator, job_name) if not states.is_gone(j["status"]["state"])]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


async def test_a_lost_submit_answer_is_adopted_never_submitted_twice(emulator, client, workdir):
    emulator.admin.set_faults(
        rules=[{"route": SUBMIT_ROUTE, "effect": "error_after", "status": 504, "times": 1}]
    )
    job_name = name()
    job_id = await submit(
        doctor_with(client), plan_for(emulator, workdir), "sleep 60", job_name, {}
    )
    try:
        assert submits(emulator) == [504]  # the fault fired, and no second submit
        assert [j["jobId"] for j in named(emulator, job_name)] == [job_id]
    finally:
        await client.cancel(emulator.system, job_id)


async def test_a_submit_firecrest_did_not_act_on_is_reported_not_repeated(
    emulator, client, workdir
):
    emulator.admin.set_faults(
        rules=[{"route": SUBMIT_ROUTE, "effect": "error", "status": 503, "times": 1}]
    )
    job_name = name()
    with pytest.raises(Exception) as info:  # noqa: PT011 - the 503 as the client raises it
        await submit(doctor_with(client), plan_for(emulator, workdir), "sleep 60", job_name, {})
    assert fc.is_unprocessed(info.value)
    assert submits(emulator) == [503]
    assert not named(emulator, job_name)
    # Not looked up either: FirecREST said it did nothing.
    assert not lookups(emulator)


async def test_an_ambiguous_submit_that_never_shows_up_names_the_job(emulator, client, workdir):
    emulator.admin.set_faults(
        rules=[{"route": SUBMIT_ROUTE, "effect": "error", "status": 500, "times": 1}]
    )
    job_name = name()
    with pytest.raises(SubmitNotConfirmed) as info:
        await submit(doctor_with(client), plan_for(emulator, workdir), "sleep 60", job_name, {})
    assert submits(emulator) == [500]  # never submitted again
    assert len(lookups(emulator)) >= 2  # looked up by name, more than once
    assert f"scancel --name {job_name}" in str(info.value)
    assert not named(emulator, job_name)


async def test_a_sbatch_refusal_raises_at_once(emulator, client, workdir):
    job_name = name()
    plan = plan_for(emulator, workdir)
    refused = JobPlan(**{**plan.__dict__, "render": lambda cmd, n: "true\n"})
    with pytest.raises(fc.SubmitRefused):
        await submit(doctor_with(client), refused, "true", job_name, {})
    assert len(submits(emulator)) == 1
    assert not lookups(emulator)


async def test_an_interrupted_submit_cancels_the_job_by_its_name(emulator, client, workdir):
    """Cancelled while the request is in flight: the job it created is cancelled by name."""
    # The emulator holds the request 1 s, then creates the job (the client has gone).
    emulator.admin.set_faults(
        rules=[{"route": SUBMIT_ROUTE, "effect": "latency", "delay": 1.0, "times": 1}]
    )
    job_name = name()
    task = asyncio.create_task(
        submit(doctor_with(client), plan_for(emulator, workdir), "sleep 600", job_name, {})
    )
    for _ in range(100):
        if emulator.admin.requests() or task.done():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        assert len(named(emulator, job_name)) == 1, "the interrupted submit created the job"
        assert not live(emulator, job_name), named(emulator, job_name)
    finally:
        for job in live(emulator, job_name):
            with contextlib.suppress(Exception):
                await client.cancel(emulator.system, str(job["jobId"]))
