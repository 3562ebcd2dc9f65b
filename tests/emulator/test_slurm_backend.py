"""The ``slurm`` backend against a real slurmctld/slurmd/munge (never skipped in CI)."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from firecrest.FirecrestException import UnexpectedStatusException
from firecrest.v2 import AsyncFirecrest

from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

from .helpers import EmulatorAuth, SpecChecker, wait_for_state

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(240)]

SYS = "fsp"
USER = "fsp-alice"


@pytest.fixture(scope="module")
def emu(slurm) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        systems=[SystemConfig(name=SYS, backend="slurm", cluster_name="fsp", retention=600)]
    )
    with running_emulator(config) as e:
        yield e


@pytest.fixture(scope="module")
def checker() -> SpecChecker:
    return SpecChecker()


@pytest.fixture
async def client(emu, checker) -> AsyncIterator[AsyncFirecrest]:
    c = AsyncFirecrest(emu.url, authorization=EmulatorAuth(emu, USER))
    c.timeout = 60
    c._session.event_hooks["response"].append(checker.hook)
    yield c
    await c.close_session()
    await asyncio.to_thread(emu.admin.reset_faults)


@pytest.fixture
def home(slurm) -> Path:
    path = Path(pwd.getpwnam(USER).pw_dir) / "emulator-tests"
    path.mkdir(exist_ok=True)
    os.chown(path, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
    return path


def script(out: Path, body: str, name: str = "slurm-test") -> str:
    return f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={out}\n{body}\n"


async def test_status_endpoints(client, slurm):
    names = {p["name"] for p in await client.partitions(SYS)}
    assert names == {"normal", "debug"}
    nodes = await client.nodes(SYS)
    assert nodes[0]["name"] == slurm.node
    assert nodes[0]["state"][0] in ("IDLE", "MIXED", "ALLOCATED")
    assert await client.reservations(SYS) == []
    info = await client.userinfo(SYS)
    assert info["user"] == {"id": str(pwd.getpwnam(USER).pw_uid), "name": USER}


async def test_job_runs_as_the_token_user(client, home, slurm):
    out = home / "life.out"
    body = 'echo "id=$(id -un) job=$SLURM_JOB_ID node=$SLURM_JOB_NODELIST A=$A B=$B"; sleep 2'
    job_id = (
        await client.submit(
            SYS,
            str(home),
            script_str=script(out, body),
            env_vars={"A": "x,y", "B": "two words"},
        )
    )["jobId"]
    running = await wait_for_state(client, SYS, job_id, ("RUNNING",), timeout=60)
    assert running["nodes"] == slurm.node
    assert running["user"] == USER
    assert running["name"] == "slurm-test"
    done = await wait_for_state(client, SYS, job_id, ("COMPLETED",), timeout=60)
    assert done["status"]["exitCode"] == 0
    assert out.stat().st_uid == pwd.getpwnam(USER).pw_uid
    line = (await client.tail(SYS, str(out), num_lines=1))["content"].strip()
    # The comma truncation comes from real sbatch here.
    assert line == f"id={USER} job={job_id} node={slurm.node} A=x B=two words"
    meta = (await client.job_metadata(SYS, job_id))[0]
    assert meta["standardOutput"] == str(out)
    assert meta["script"].startswith("#!/bin/bash")
    assert job_id in [j["jobId"] for j in await client.job_info(SYS)]


async def test_env_comma_truncation_can_be_switched_off(client, emu, home):
    await asyncio.to_thread(emu.admin.set_faults, env_comma_truncation=False)
    out = home / "env.out"
    job_id = (
        await client.submit(
            SYS, str(home), script_str=script(out, 'echo "A=$A"'), env_vars={"A": "x,y"}
        )
    )["jobId"]
    await wait_for_state(client, SYS, job_id, ("COMPLETED",), timeout=60)
    assert out.read_text() == "A=x,y\n"


async def test_failed_and_cancelled(client, home):
    failing = (await client.submit(SYS, str(home), script_str=script(home / "f.out", "exit 3")))[
        "jobId"
    ]
    sleeper = (await client.submit(SYS, str(home), script_str=script(home / "s.out", "sleep 120")))[
        "jobId"
    ]
    failed = await wait_for_state(client, SYS, failing, ("FAILED",), timeout=60)
    assert failed["status"]["exitCode"] == 3
    await wait_for_state(client, SYS, sleeper, ("RUNNING",), timeout=60)
    await client.cancel_job(SYS, sleeper)
    cancelled = await wait_for_state(client, SYS, sleeper, ("CANCELLED",), timeout=60)
    assert cancelled["status"]["state"] == f"CANCELLED by {pwd.getpwnam(USER).pw_uid}"
    # Cancelling again: scancel's error, 500 as FirecREST's SSH mode answers.
    with pytest.raises(UnexpectedStatusException) as e:
        await client.cancel_job(SYS, sleeper)
    assert e.value.responses[-1].status_code == 500


async def test_operator_cancels_another_users_job(client, emu, home):
    """``operators`` run scancel as the emulator's user (root): any job; others may not."""
    other = AsyncFirecrest(emu.url, authorization=EmulatorAuth(emu, "fsp-bob"))
    other.timeout = 60
    operator = AsyncFirecrest(emu.url, authorization=EmulatorAuth(emu))  # client credentials
    operator.timeout = 60
    try:
        job_id = (
            await client.submit(SYS, str(home), script_str=script(home / "o.out", "sleep 120"))
        )["jobId"]
        await wait_for_state(client, SYS, job_id, ("RUNNING",), timeout=60)
        # A plain other user: Slurm itself refuses (scancel runs as fsp-bob).
        with pytest.raises(UnexpectedStatusException) as e:
            await other.cancel_job(SYS, job_id)
        assert e.value.responses[-1].status_code == 500
        assert "permission denied" in e.value.responses[-1].json()["message"].lower()
        # The service account is no operator by default either.
        with pytest.raises(UnexpectedStatusException):
            await operator.cancel_job(SYS, job_id)
        await asyncio.to_thread(emu.admin.set_system, SYS, operators=[emu.client_id])
        listed = await operator.job_info(SYS, allusers=True)
        assert job_id in [j["jobId"] for j in listed]
        await operator.cancel_job(SYS, job_id)
        cancelled = await wait_for_state(client, SYS, job_id, ("CANCELLED",), timeout=60)
        assert cancelled["user"] == USER
    finally:
        await asyncio.to_thread(emu.admin.set_system, SYS, operators=[])
        await other.close_session()
        await operator.close_session()


async def test_node_failure(client, emu, home):
    job_id = (await client.submit(SYS, str(home), script_str=script(home / "n.out", "sleep 120")))[
        "jobId"
    ]
    await wait_for_state(client, SYS, job_id, ("RUNNING",), timeout=60)
    await asyncio.to_thread(emu.admin.node_fail, SYS, job_id)
    await wait_for_state(client, SYS, job_id, ("NODE_FAIL",), timeout=60)


async def test_unknown_job_and_bad_partition(client, home):
    with pytest.raises(UnexpectedStatusException) as e:
        await client.job_info(SYS, "999999")
    assert e.value.responses[-1].status_code == 404
    assert e.value.responses[-1].json()["message"] == "Job not found."
    with pytest.raises(UnexpectedStatusException) as e:
        await client.submit(
            SYS, str(home), script_str=script(home / "p.out", "true"), partition="nope"
        )
    assert e.value.responses[-1].status_code == 500
    assert "invalid partition" in e.value.responses[-1].json()["message"].lower()


async def test_user_without_local_account(emu, home, checker, tmp_path):
    """Submitted as the emulator's own user, reported as the token's user."""
    c = AsyncFirecrest(emu.url, authorization=EmulatorAuth(emu, "no-such-user"))
    c.timeout = 60
    c._session.event_hooks["response"].append(checker.hook)
    try:
        out = tmp_path / "nouser.out"
        job_id = (await c.submit(SYS, str(tmp_path), script_str=script(out, "id -un")))["jobId"]
        job = await wait_for_state(c, SYS, job_id, ("COMPLETED",), timeout=60)
        assert job["user"] == "no-such-user"
        assert [j["jobId"] for j in await c.job_info(SYS)] == [job_id]
        assert out.read_text().strip() == pwd.getpwuid(os.geteuid()).pw_name
    finally:
        await c.close_session()


def test_command_timeout_is_408(slurm):
    config = EmulatorConfig(
        systems=[SystemConfig(name=SYS, backend="slurm", command_timeout=0.0001)]
    )
    with running_emulator(config) as emu:
        token = emu.issue_access_token(USER)
        r = httpx.get(f"{emu.url}/status/{SYS}/nodes", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 408
        assert r.json()["message"] == "Command execution timeout limit exceeded."


def test_responses_matched_the_spec(checker):
    """Every response above went through the spec check."""
    statuses = {s for _, _, s in checker.seen}
    assert {200, 201, 204, 404, 500} <= statuses


async def test_finished_jobs_are_remembered_after_slurm_forgets(slurm):
    """Without accounting, scontrol forgets jobs after MinJobAge; the backend does not."""
    from firecrestspawner.emulator.backends.base import JobNotFound, JobRecord
    from firecrestspawner.emulator.backends.slurm import SlurmBackend, _Known
    from firecrestspawner.emulator.config import FaultConfig

    backend = SlurmBackend(SystemConfig(name=SYS, backend="slurm", retention=60), FaultConfig())
    record = JobRecord(
        job_id="987654",
        name="old",
        user=USER,
        group=USER,
        partition="normal",
        working_directory="/tmp",
        cluster="fsp",
        state="COMPLETED",
        exit_code=0,
        end_time=time.time(),
    )
    backend._known["987654"] = _Known(owner=USER, record=record)
    # Slurm itself does not know the id: the remembered record answers.
    assert (await backend.get_job(USER, "987654")).state == "COMPLETED"
    assert "987654" in [r.job_id for r in await backend.list_jobs(USER, allusers=False)]
    record.end_time = time.time() - 61
    with pytest.raises(JobNotFound):
        await backend.get_job(USER, "987654")
