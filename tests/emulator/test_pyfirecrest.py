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


# -- firecrestspawner's client (client.py) on top of pyfirecrest ------------------


@pytest.mark.parametrize("app_version", ["2.x.x", "2", "dev", ""])
async def test_non_release_app_version_never_pins_an_old_api(app_version, tmp_path):
    """Builds from FirecREST's main branch answer ``F7T-AppVersion: 2.x.x``."""
    from firecrestspawner import client as fc
    from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
    from firecrestspawner.emulator.testing import running_emulator

    config = EmulatorConfig(app_version=app_version, systems=[SystemConfig(name="cluster")])
    with running_emulator(config) as emu:
        settings = fc.ClientSettings(read_attempts=1)
        client = fc.get_client(emu.url, "sa:test", EmulatorAuth(emu), settings)
        try:
            assert await client.ensure_version() is None
            # What an API pinned at "2" refuses (NotImplementedOnAPIversion):
            assert isinstance(await client.jobs("cluster", allusers=True), list)
            assert isinstance(await client.raw.job_info("cluster", account="x"), list)
            job_id = await client.submit_once(
                "cluster",
                job_name="fcs.test.v",
                workdir=str(tmp_path),
                script="#!/bin/bash\ntrue\n",
                env={},
            )
            # After many responses carrying the header, still not pinned.
            assert await client.job("cluster", job_id) is not None
            assert isinstance(await client.jobs("cluster", allusers=True), list)
        finally:
            await fc.close_all()


async def test_release_app_version_is_pinned(emulator):
    from packaging.version import Version

    from firecrestspawner import client as fc

    client = fc.get_client(emulator.url, "sa:pin", EmulatorAuth(emulator), fc.ClientSettings())
    try:
        assert await client.ensure_version() == Version("2.5.6")
        assert client.raw._api_version == Version("2.5.6")
    finally:
        await fc.close_all()


async def test_unknown_system_is_a_configuration_error_never_a_gone_job(emulator, tmp_path):
    from firecrestspawner import client as fc

    client = fc.get_client(
        emulator.url, "user:alice", EmulatorAuth(emulator, "alice"), fc.ClientSettings()
    )
    try:
        for call in (
            lambda: client.job("nosuch", "1"),
            lambda: client.metadata("nosuch", "1"),
            lambda: client.jobs("nosuch"),
            lambda: client.userinfo("nosuch"),
            lambda: client.cancel("nosuch", "1"),
            lambda: client.remove_file("nosuch", str(tmp_path / "x")),
        ):
            with pytest.raises(fc.SystemNotFound) as info:
                await call()
            assert "'nosuch'" in str(info.value)
        # A job FirecREST does not know is None ("Job not found.").
        assert await client.job("cluster", "424242") is None
        assert await client.metadata("cluster", "424242") is None
    finally:
        await fc.close_all()


async def test_remove_file(emulator, tmp_path):
    from firecrestspawner import client as fc

    client = fc.get_client(
        emulator.url, "user:alice", EmulatorAuth(emulator, "alice"), fc.ClientSettings()
    )
    try:
        path = await client.write_private_file("cluster", str(tmp_path / "d"), "f.token", "x")
        assert (tmp_path / "d" / "f.token").exists()
        assert await client.remove_file("cluster", path) is True
        assert not (tmp_path / "d" / "f.token").exists()
        assert await client.remove_file("cluster", path) is False
    finally:
        await fc.close_all()


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        pytest.param(
            "#!/bin/bash\n#SBATCH --partition=nosuch\ntrue\n",
            "sbatch: error: invalid partition specified: nosuch",
            id="partition",
        ),
        pytest.param(
            "#!/bin/bash\n#SBATCH --nosuch=1\ntrue\n",
            "sbatch: unrecognized option '--nosuch=1'",
            id="option",
        ),
        pytest.param(
            "true\n", "sbatch: error: This does not look like a batch script.", id="script"
        ),
    ],
)
async def test_sbatch_refusal_is_definite(emulator, tmp_path, script, reason):
    """Not repeated, not looked up by name: sbatch created no job."""
    from firecrestspawner import client as fc

    client = fc.get_client(
        emulator.url, "user:alice", EmulatorAuth(emulator, "alice"), fc.ClientSettings()
    )
    emulator.admin.clear_requests()
    try:
        with pytest.raises(fc.SubmitRefused) as info:
            await client.submit_once(
                "cluster", job_name="fcs.refused", workdir=str(tmp_path), script=script, env={}
            )
    finally:
        await fc.close_all()
    assert info.value.reason.startswith(reason)
    calls = [
        (r["method"], r["route"], r["status"])
        for r in emulator.admin.requests()
        if r["route"].startswith("/compute/")
    ]
    assert calls == [("POST", "/compute/{system}/jobs", 500)]
