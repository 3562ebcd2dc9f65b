"""pyfirecrest's v2 AsyncFirecrest drives the emulator (local backend)."""

from __future__ import annotations

import pytest
from firecrest.v2 import AsyncFirecrest

from .helpers import EmulatorAuth, wait_for_state

SCRIPT = """#!/bin/bash
#SBATCH --job-name=pyf-test
#SBATCH --output={out}
echo "started $SLURM_JOB_ID on $SLURM_JOB_NODELIST as $SLURM_JOB_NAME"
echo "GREETING=$GREETING"
sleep {sleep}
echo done
"""


@pytest.fixture
async def client(emulator):
    c = AsyncFirecrest(emulator.url, authorization=EmulatorAuth(emulator, "alice"))
    c.timeout = 30
    yield c
    await c.close_session()


async def test_status_endpoints(client, emulator):
    systems = await client.systems()
    assert [s["name"] for s in systems] == ["cluster"]
    assert await client.server_version() == "2.5.6"
    info = await client.userinfo("cluster")
    assert info["user"]["name"] == "alice"
    partitions = await client.partitions("cluster")
    assert {p["name"] for p in partitions} == {"normal", "debug"}
    assert await client.reservations("cluster") == []
    nodes = await client.nodes("cluster")
    assert nodes[0]["name"] == "127.0.0.1"


async def test_job_lifecycle(client, tmp_path):
    out = tmp_path / "job.out"
    job = await client.submit(
        "cluster",
        working_dir=str(tmp_path),
        script_str=SCRIPT.format(out=out, sleep=1),
        env_vars={"GREETING": "hello world"},
    )
    job_id = job["jobId"]
    assert isinstance(job_id, str)
    running = await wait_for_state(client, "cluster", job_id, ("RUNNING",))
    assert running["nodes"] == "127.0.0.1"
    assert running["name"] == "pyf-test"
    assert running["user"] == "alice"
    meta = await client.job_metadata("cluster", job_id)
    assert meta[0]["standardOutput"] == str(out)
    done = await wait_for_state(client, "cluster", job_id, ("COMPLETED",))
    assert done["status"]["exitCode"] == 0
    tail = await client.tail("cluster", str(out), num_lines=3)
    lines = tail["content"].splitlines()
    assert lines[0] == f"started {job_id} on 127.0.0.1 as pyf-test"
    assert lines[1] == "GREETING=hello world"
    head = await client.head("cluster", str(out), num_lines=1)
    assert head["content"].startswith("started")
    assert "done" in await client.view("cluster", str(out))
    listed = await client.job_info("cluster")
    assert job_id in [j["jobId"] for j in listed]


async def test_cancel_running_job(client, tmp_path):
    job_id = (
        await client.submit(
            "cluster",
            working_dir=str(tmp_path),
            script_str=SCRIPT.format(out=tmp_path / "c.out", sleep=60),
        )
    )["jobId"]
    await wait_for_state(client, "cluster", job_id, ("RUNNING",))
    assert await client.cancel_job("cluster", job_id) == {}
    job = await wait_for_state(client, "cluster", job_id, ("CANCELLED",))
    assert job["status"]["state"].startswith("CANCELLED by ")
    assert job["killRequestUser"] == "alice"


def test_sync_client_with_pyfirecrest_client_credentials(emulator):
    """pyfirecrest's own ClientCredentialsAuth gets tokens from the emulator's IdP."""
    from firecrest import ClientCredentialsAuth
    from firecrest.v2 import Firecrest

    auth = ClientCredentialsAuth(
        emulator.client_id, emulator.client_secret, emulator.token_url, min_token_validity=40
    )
    client = Firecrest(emulator.url, authorization=auth)
    client.timeout = 30
    assert client.userinfo("cluster")["user"]["name"] == emulator.client_id


async def test_wait_for_job(client, tmp_path):
    job_id = (
        await client.submit(
            "cluster", working_dir=str(tmp_path), script_str="#!/bin/bash\nsleep 0.5\n"
        )
    )["jobId"]
    job = await client.wait_for_job("cluster", job_id, timeout=60)
    assert job[0]["status"]["state"] == "COMPLETED"
