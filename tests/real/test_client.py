"""Every FirecREST call this project makes, against the real FirecREST 2.5.6.

The server reaches the real Slurm (with accounting) over SSH as each user's
own Unix account; jobs run as that account, not as root.
"""

from __future__ import annotations

import asyncio
import pwd
import subprocess
import uuid

import httpx
import pytest

from firecrestspawner import client as fc
from firecrestspawner.cluster import (
    PooledStatusClient,
    nodes_to_choices,
    partitions_to_choices,
    reservations_to_choices,
    userinfo_to_accounts,
)
from tests.real.conftest import scancel_quietly, squeue_ids, state, wait_job

pytestmark = pytest.mark.real_firecrest

ALICE = "fsp-alice"
BOB = "fsp-bob"


def job_name(tag: str) -> str:
    return f"fcs-real-{tag}-{uuid.uuid4().hex[:8]}"


def script(name: str, body: str, workdir: str, extra: str = "") -> str:
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --output={workdir}/{name}.log\n"
        "#SBATCH --time=00:05:00\n"
        "#SBATCH --partition=debug\n"
        f"{extra}"
        f"{body}\n"
    )


async def test_systems_report_the_cluster_and_its_health(client_for, real_firecrest):
    systems = await client_for(ALICE).raw.systems()
    [cluster] = [s for s in systems if s["name"] == real_firecrest.system]
    assert cluster["scheduler"]["type"] == "slurm"
    assert {h["serviceType"] for h in cluster["servicesHealth"]} >= {"scheduler", "ssh"}
    assert all(h["healthy"] for h in cluster["servicesHealth"]), cluster["servicesHealth"]


async def test_partitions_nodes_and_reservations_become_form_choices(client_for, real_firecrest):
    subprocess.run(
        ["scontrol", "create", "reservation", "ReservationName=fsp-real-future",
         "StartTime=now+7days", "Duration=60", "Users=fsp-alice", "Nodes=ALL"],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    try:
        status = PooledStatusClient(client_for(ALICE))
        partitions = partitions_to_choices(await status.partitions(real_firecrest.system))
        assert {"normal", "debug"} <= {c.value for c in partitions}
        nodes = nodes_to_choices(await status.nodes(real_firecrest.system))
        assert nodes, "the test node is up: it must be offered"
        raw = await status.reservations(real_firecrest.system)
        assert "fsp-real-future" in {r["name"] for r in raw}
        # It starts in a week: not offered as a choice today.
        assert "fsp-real-future" not in {c.value for c in reservations_to_choices(raw)}
    finally:
        subprocess.run(
            ["scontrol", "delete", "ReservationName=fsp-real-future"],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip


async def test_userinfo_reports_the_users_slurm_accounts(client_for, real_firecrest):
    info = await client_for(ALICE).userinfo(real_firecrest.system)
    assert info["user"]["name"] == ALICE
    assert {(a["name"], a["default"]) for a in info["accounts"]} == {
        ("proj-a", True),
        ("proj-b", False),
    }
    accounts = userinfo_to_accounts(info)
    assert {c.value for c in accounts} == {"proj-a", "proj-b"}


async def test_submit_lookup_metadata_and_tail_of_a_job(client_for, real_firecrest):
    """Submit (with this client's correlation id), then every read the spawner makes."""
    alice = client_for(ALICE)
    system = real_firecrest.system
    workdir = f"/home/{ALICE}"
    name = job_name("life")
    job_id = await alice.submit_once(
        system,
        job_name=name,
        workdir=workdir,
        script=script(name, "echo started as $(id -un) in $PWD; echo done", workdir),
        env={"FSP_TEST": "value with spaces"},
    )
    assert job_id.isdigit()
    # Measured on this test bed: right after a short job ends, sacct (which
    # FirecREST prefers to squeue) may call it "allocation" for a few seconds
    # before its own name shows. So wait for both.
    done = await wait_job(
        alice, system, job_id, lambda j: state(j) == "COMPLETED" and j["name"] == name
    )
    assert done["user"] == ALICE
    assert done["status"]["exitCode"] == 0
    assert done["account"] == "proj-a", "no account asked for: the user's Slurm default"

    listed = await alice.jobs(system)
    assert job_id in {str(j["jobId"]) for j in listed}
    named = await alice.jobs_named(system, name)
    assert [str(j["jobId"]) for j in named] == [job_id]

    meta = await alice.metadata(system, job_id)
    assert meta is not None
    assert meta["standardOutput"] == f"{workdir}/{name}.log"
    assert f"--job-name={name}" in meta["script"]

    out = await alice.tail(system, f"{workdir}/{name}.log", lines=5)
    assert f"started as {ALICE} in {workdir}" in out
    assert out.rstrip().endswith("done")


async def test_the_service_account_lists_every_users_jobs(client_for, real_firecrest):
    alice, sa = client_for(ALICE), client_for(real_firecrest.sa_client_id)
    system = real_firecrest.system
    name = job_name("list")
    job_id = await alice.submit_once(
        system, job_name=name, workdir=f"/home/{ALICE}",
        script=script(name, "sleep 60", f"/home/{ALICE}"), env={},
    )  # fmt: skip
    try:
        everyone = await sa.jobs(system, allusers=True)
        mine = await sa.jobs(system)
        assert job_id in {str(j["jobId"]) for j in everyone}
        assert job_id not in {str(j["jobId"]) for j in mine}
    finally:
        scancel_quietly(job_id)


async def test_a_job_exiting_3_reads_failed_with_its_exit_code(client_for, real_firecrest):
    alice = client_for(ALICE)
    system = real_firecrest.system
    name = job_name("fail")
    job_id = await alice.submit_once(
        system, job_name=name, workdir=f"/home/{ALICE}",
        script=script(name, "exit 3", f"/home/{ALICE}"), env={},
    )  # fmt: skip
    job = await wait_job(alice, system, job_id, lambda j: state(j) == "FAILED")
    assert job["status"]["exitCode"] == 3


async def test_cancel_then_cancel_again_keeps_the_informative_error(client_for, real_firecrest):
    alice = client_for(ALICE)
    system = real_firecrest.system
    name = job_name("cancel")
    job_id = await alice.submit_once(
        system, job_name=name, workdir=f"/home/{ALICE}",
        script=script(name, "sleep 120", f"/home/{ALICE}"), env={},
    )  # fmt: skip
    await alice.cancel(system, job_id)
    job = await wait_job(alice, system, job_id, lambda j: state(j).startswith("CANCELLED"))
    assert state(job).startswith("CANCELLED")
    assert job_id not in squeue_ids()
    # The real server answers 500 with scancel --verbose's two lines; the
    # message kept is the error, not "scancel: Terminating job N".
    with pytest.raises(fc.CancelNotAccepted) as info:
        await alice.cancel(system, job_id)
    first_line = info.value.message.splitlines()[0]
    assert "completed" in first_line.lower(), info.value.message
    assert "Terminating job" not in first_line


async def test_another_user_cannot_cancel_and_sees_why(client_for, real_firecrest):
    alice, bob = client_for(ALICE), client_for(BOB)
    system = real_firecrest.system
    name = job_name("perm")
    job_id = await alice.submit_once(
        system, job_name=name, workdir=f"/home/{ALICE}",
        script=script(name, "sleep 120", f"/home/{ALICE}"), env={},
    )  # fmt: skip
    try:
        with pytest.raises(fc.CancelNotAccepted) as info:
            await bob.cancel(system, job_id)
        assert "permission denied" in info.value.message.splitlines()[0].lower()
        assert job_id in squeue_ids()
    finally:
        scancel_quietly(job_id)


async def test_the_service_account_cancels_as_slurm_operator(client_for, real_firecrest):
    alice, sa = client_for(ALICE), client_for(real_firecrest.sa_client_id)
    system = real_firecrest.system
    name = job_name("op")
    job_id = await alice.submit_once(
        system, job_name=name, workdir=f"/home/{ALICE}",
        script=script(name, "sleep 120", f"/home/{ALICE}"), env={},
    )  # fmt: skip
    try:
        await sa.cancel(system, job_id)
        await wait_job(sa, system, job_id, lambda j: state(j).startswith("CANCELLED"))
    finally:
        scancel_quietly(job_id)


async def _held_probe(client, system, user):
    """Submit a held job and cancel it: its id is the next one Slurm hands out."""
    name = job_name("probe")
    job_id = await client.submit_once(
        system, job_name=name, workdir=f"/home/{user}",
        script=script(name, "true", f"/home/{user}", extra="#SBATCH --hold\n"), env={},
    )  # fmt: skip
    await client.cancel(system, job_id)
    return int(job_id)


async def test_an_sbatch_refusal_is_definite_and_says_why(client_for, real_firecrest):
    """An invalid partition: SubmitRefused (definite: no lookup, no retry), sbatch's reason.

    That the refusal made no job is read from Slurm's job ids, which it hands
    out one after the other: a held probe just before and one just after are
    consecutive. (Counting the user's jobs was not definite: jobs of earlier
    tests reach accounting late.) The tests that use the shared Slurm run one
    at a time, so no other job is submitted in between.
    """
    alice = client_for(ALICE)
    system = real_firecrest.system
    name = job_name("refused")
    first = await _held_probe(alice, system, ALICE)
    with pytest.raises(fc.SubmitRefused) as info:
        await alice.submit_once(
            system, job_name=name, workdir=f"/home/{ALICE}",
            script=script(name, "true", f"/home/{ALICE}", extra="#SBATCH --partition=nosuch\n"),
            env={},
        )  # fmt: skip
    second = await _held_probe(alice, system, ALICE)
    assert "invalid partition" in str(info.value).lower(), str(info.value)
    assert await alice.jobs_named(system, name) == []
    assert second == first + 1, f"job ids {first} and {second}: the refusal made a job"


async def test_an_account_outside_the_users_associations_is_refused(client_for, real_firecrest):
    bob = client_for(BOB)
    name = job_name("acct")
    with pytest.raises(Exception) as info:  # noqa: PT011 - the message is what matters
        await bob.submit_once(
            real_firecrest.system, job_name=name, workdir=f"/home/{BOB}",
            script=script(name, "true", f"/home/{BOB}"), env={}, account="proj-a",
        )  # fmt: skip
    assert "invalid account" in str(info.value).lower(), str(info.value)


async def test_an_unknown_system_is_a_configuration_error_not_a_gone_job(client_for):
    alice = client_for(ALICE)
    with pytest.raises(Exception) as info:  # noqa: PT011 - any error, but not "gone"
        await alice.job("no-such-system", "1")
    assert "system" in str(info.value).lower()


async def test_a_private_file_is_written_0600_in_a_0700_directory(client_for, real_firecrest):
    alice = client_for(ALICE)
    directory = f"/home/{ALICE}/.fsp-real-{uuid.uuid4().hex[:6]}/tokens"
    path = await alice.write_private_file(real_firecrest.system, directory, "t", "secret-value")
    uid = pwd.getpwnam(ALICE).pw_uid
    st = await asyncio.to_thread(lambda: __import__("os").stat(path))
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (uid, "0o600")
    dst = await asyncio.to_thread(lambda: __import__("os").stat(directory))
    assert oct(dst.st_mode & 0o777) == "0o700"
    assert await alice.tail(real_firecrest.system, path, lines=1) == "secret-value"


async def test_a_non_uuid_correlation_id_is_refused_by_the_real_server(real_firecrest):
    """Why the client sends a UUID: the server's middleware takes nothing else."""
    url = f"{real_firecrest.url}/status/systems"
    async with httpx.AsyncClient(timeout=30) as http:
        headers = real_firecrest.headers(ALICE)
        bad = await http.get(url, headers={**headers, "X-Correlation-ID": "fcs.hub.alice"})
        good = await http.get(url, headers={**headers, "X-Correlation-ID": str(uuid.uuid4())})
    assert (bad.status_code, bad.content) == (400, b"")
    assert good.status_code == 200
