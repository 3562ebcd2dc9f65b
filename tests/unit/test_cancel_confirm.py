"""``jobs.confirm.cancel_and_confirm`` against the emulator: the spawner's orphans and
the reaper cancel through it, so each of its three outcomes is pinned here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from firecrestspawner import client as fc
from firecrestspawner import naming, states
from firecrestspawner.jobs.confirm import cancel_and_confirm

pytestmark = pytest.mark.timeout(120)


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def client_of(emulator, user: str) -> fc.FirecrestClient:
    token = StaticToken(emulator.admin.issue_access_token(user, lifetime=3600))
    settings = fc.ClientSettings(read_attempts=2, read_deadline=10, request_timeout=10)
    return fc.get_client(emulator.url, f"user:{user}:confirm", token, settings)


async def submit(client: fc.FirecrestClient, system: str, workdir: Path, body: str) -> str:
    name = naming.job_name("cc", "u", "", naming.new_spawn_id())
    script = (
        f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={workdir}/{name}.log\n{body}\n"
    )
    job_id = await client.submit_once(
        system, job_name=name, workdir=str(workdir), script=script, env={}
    )
    return str(job_id)


async def state(client: fc.FirecrestClient, system: str, job_id: str) -> str:
    job = await client.job(system, job_id)
    return "" if job is None else states.state_of(job)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o777)
    return tmp_path


async def test_a_live_job_is_cancelled(emulator, workdir):
    client = client_of(emulator, "cc-alice")
    job_id = await submit(client, emulator.system, workdir, "sleep 600")
    assert await cancel_and_confirm(client, emulator.system, job_id) is True
    for _ in range(50):
        if states.is_gone(await state(client, emulator.system, job_id)):
            break
        await asyncio.sleep(0.1)
    assert states.is_gone(await state(client, emulator.system, job_id))


async def test_a_job_that_has_ended_is_confirmed_gone_not_an_error(emulator, workdir):
    client = client_of(emulator, "cc-alice")
    job_id = await submit(client, emulator.system, workdir, "true")
    for _ in range(100):
        if states.is_gone(await state(client, emulator.system, job_id)):
            break
        await asyncio.sleep(0.1)
    requests_before = len(emulator.admin.requests())
    assert await cancel_and_confirm(client, emulator.system, job_id) is False
    routes = [(r["method"], r["route"]) for r in emulator.admin.requests()[requests_before:]]
    # The cancel was asked, refused, and the refusal confirmed by a read of the job.
    assert routes == [
        ("DELETE", "/compute/{system}/jobs/{job_id}"),
        ("GET", "/compute/{system}/jobs/{job_id}"),
    ]


async def test_a_refusal_of_a_live_job_stands(emulator, workdir):
    owner = client_of(emulator, "cc-alice")
    other = client_of(emulator, "cc-bob")
    job_id = await submit(owner, emulator.system, workdir, "sleep 600")
    try:
        with pytest.raises(fc.CancelNotAccepted):
            await cancel_and_confirm(other, emulator.system, job_id)
        assert not states.is_gone(await state(owner, emulator.system, job_id))
    finally:
        await cancel_and_confirm(owner, emulator.system, job_id)
