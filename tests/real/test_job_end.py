"""A job's end against the real FirecREST 2.5.6 and Slurm (with accounting).

- ``jobs.confirm.cancel_and_confirm`` on a job that has already finished: the
  real server refuses the cancel, and the read that follows confirms the job
  as ended (``False``), not an error; a refusal of a job that still lives
  raises.
- The end time: ``job_end_time`` of the running job is its start plus its time
  limit, as ``scontrol`` says; after the job ends, FirecREST reports when it
  really ended, as Slurm's accounting says.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from firecrestspawner import client as fc
from firecrestspawner import states
from firecrestspawner.jobs.confirm import cancel_and_confirm
from firecrestspawner.jobs.record import job_end_time
from tests.real.conftest import scancel_quietly, state, wait_job

pytestmark = pytest.mark.real_firecrest

ALICE = "fsp-alice"
BOB = "fsp-bob"
LIMIT_MINUTES = 5


def job_name(tag: str) -> str:
    return f"fcs-real-{tag}-{uuid.uuid4().hex[:8]}"


def script(name: str, body: str, workdir: str) -> str:
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --output={workdir}/{name}.log\n"
        f"#SBATCH --time=00:{LIMIT_MINUTES:02d}:00\n"
        "#SBATCH --partition=debug\n"
        f"{body}\n"
    )


async def submit(client: fc.FirecrestClient, system: str, tag: str, body: str) -> str:
    name = job_name(tag)
    workdir = f"/home/{ALICE}"
    return await client.submit_once(
        system, job_name=name, workdir=workdir, script=script(name, body, workdir), env={}
    )


def gone(job: dict) -> bool:
    return states.is_gone(state(job))


def sacct_epoch(job_id: str, field: str) -> int:
    """``Start`` or ``End`` of the job's allocation in Slurm's accounting (epoch seconds)."""
    out = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", field],
        capture_output=True, text=True, timeout=30, check=True,
        env={"SLURM_TIME_FORMAT": "%s", "PATH": "/usr/bin:/usr/local/bin:/bin"},
    )  # fmt: skip
    return int(out.stdout.split()[0])


async def test_cancel_of_a_job_that_already_ended_is_confirmed_as_ended(client_for, real_firecrest):
    alice = client_for(ALICE)
    system = real_firecrest.system
    job_id = await submit(alice, system, "ended", "true")
    await wait_job(alice, system, job_id, gone)
    # The real server refuses to cancel it (the branch under test is taken)...
    with pytest.raises(fc.CancelNotAccepted):
        await alice.cancel(system, job_id)
    # ...and cancel-and-confirm reads the job and calls it ended, without an error.
    assert await cancel_and_confirm(alice, system, job_id) is False


async def test_a_refused_cancel_of_a_living_job_raises(client_for, real_firecrest):
    alice, bob = client_for(ALICE), client_for(BOB)
    system = real_firecrest.system
    job_id = await submit(alice, system, "alive", "sleep 120")
    try:
        with pytest.raises(fc.CancelNotAccepted):
            await cancel_and_confirm(bob, system, job_id)
        job = await alice.job(system, job_id)
        assert job is not None
        assert not gone(job)
        assert await cancel_and_confirm(alice, system, job_id) is True
        await wait_job(alice, system, job_id, gone)
    finally:
        scancel_quietly(job_id)


async def test_the_end_time_while_running_and_after_the_job_ends(client_for, real_firecrest):
    alice = client_for(ALICE)
    system = real_firecrest.system
    job_id = await submit(alice, system, "end", "sleep 15")
    try:
        running = await wait_job(alice, system, job_id, lambda j: state(j) == "RUNNING")
        start = running["time"]["start"]
        assert start == sacct_epoch(job_id, "Start")
        # While it runs: start + time limit, the end Slurm plans (scontrol's EndTime).
        assert job_end_time(running) == start + LIMIT_MINUTES * 60
        done = await wait_job(
            alice, system, job_id, lambda j: state(j) == "COMPLETED" and bool(j["time"]["end"])
        )
        # After it ends: when it really ended, as Slurm's accounting has it.
        end = done["time"]["end"]
        assert end == sacct_epoch(job_id, "End")
        assert start + 15 <= end <= time.time() + 1
        assert done["time"]["start"] == start
    finally:
        scancel_quietly(job_id)
