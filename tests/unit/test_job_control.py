"""Job control against the FirecREST emulator, without a hub (no traitlets, no JupyterHub).

The controller acts as one user with a static access token from the
emulator's identity provider; every fault test asserts that its fault fired.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from firecrestspawner import client as fc
from firecrestspawner import naming, status
from firecrestspawner.errors import HTTPError
from firecrestspawner.jobs import (
    Backoff,
    JobAccess,
    JobController,
    JobRecord,
    JobSettings,
    deadline_in,
)
from firecrestspawner.request import SpawnRequest
from firecrestspawner.states import JobStatus

pytestmark = pytest.mark.timeout(120)

USER = "ctl-user"
SLEEPER = (
    "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={workdir}/{name}.log\nsleep 600\n"
)


class StaticToken:
    """A credential with one access token (what auth.py gives, without an IdP round trip)."""

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
    status.reset()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def controller(emulator, record: JobRecord | None = None, **settings) -> JobController:
    token = StaticToken(emulator.admin.issue_access_token(USER, lifetime=3600))
    client_settings = fc.ClientSettings(read_attempts=2, read_deadline=10, request_timeout=10)

    async def user(url: str) -> fc.FirecrestClient:
        return fc.get_client(url, f"user:{USER}", token, client_settings)

    if record is None:
        record = JobRecord(system=emulator.system, firecrest_url=emulator.url, job_name=new_name())
    defaults = {"startup_poll_interval": 0.1, "startup_poll_max_interval": 0.3, "stop_timeout": 10}
    return JobController(
        record,
        JobAccess(owner=USER, user=user, poll_with_service=False),
        JobSettings(**{**defaults, **settings}),
        logging.getLogger("test.jobs"),
    )


def new_name() -> str:
    return naming.job_name("ctl", USER, "", naming.new_spawn_id())


def request_for(emulator, workdir: Path) -> SpawnRequest:
    return SpawnRequest(
        system=emulator.system, firecrest_url=emulator.url, template="-", workdir=str(workdir)
    )


def plain(workdir: Path):
    async def prepare(name: str) -> tuple[str, dict[str, str]]:
        return SLEEPER.format(name=name, workdir=workdir), {}

    return prepare


def with_token_file(jc: JobController, workdir: Path):
    async def prepare(name: str) -> tuple[str, dict[str, str]]:
        path = await jc.upload_token(str(workdir), "not-a-real-token")
        return SLEEPER.format(name=name, workdir=workdir), {"FIRECRESTSPAWNER_TOKEN_FILE": path}

    return prepare


def named(emulator, name: str) -> list[dict]:
    return [j for j in emulator.admin.jobs() if j["name"] == name]


def live(emulator, name: str) -> list[dict]:
    return [
        j
        for j in named(emulator, name)
        if j["status"]["state"].split()[0] in ("PENDING", "RUNNING", "CONFIGURING")
    ]


def submits(emulator) -> list[dict]:
    return [
        r
        for r in emulator.admin.requests()
        if r["method"] == "POST" and r["route"] == "/compute/{system}/jobs"
    ]


async def test_submit_wait_cancel_and_confirm(emulator, workdir):
    jc = controller(emulator)
    job_id = await jc.submit(request_for(emulator, workdir), plain(workdir), new_name)
    assert jc.record.job_id == job_id
    assert [j["jobId"] for j in named(emulator, jc.record.job_name)] == [job_id]
    await jc.wait_until_running(deadline_in(30), 30)
    assert jc.record.job_status.startswith("RUNNING")
    await jc.stop(now=False)
    assert not live(emulator, jc.record.job_name)
    assert jc.record.ended


@pytest.mark.parametrize("delay", [0, 8, 15])
async def test_a_lost_submit_answer_never_gives_two_jobs(emulator, workdir, delay):
    """The job shows up only after ``delay`` s: it is found by name and adopted."""
    emulator.admin.set_faults(
        visibility_delay=delay,
        rules=[
            {"route": "POST /compute/*/jobs", "effect": "error_after", "status": 504, "times": 1}
        ],
    )
    jc = controller(emulator, lookup_window=25)
    name = jc.record.job_name
    job_id = await jc.submit(request_for(emulator, workdir), plain(workdir), new_name)
    assert [r["status"] for r in submits(emulator)] == [504]  # the fault fired, once
    assert [j["jobId"] for j in named(emulator, name)] == [job_id]
    assert jc.record.job_name == name
    assert jc.record.orphans == []
    emulator.admin.set_faults(visibility_delay=0)
    await jc.stop(now=True)


async def test_a_submit_that_never_shows_up_is_repeated_under_a_new_name(emulator, workdir):
    emulator.admin.set_faults(
        rules=[{"route": "POST /compute/*/jobs", "effect": "error", "status": 500, "times": 1}]
    )
    jc = controller(emulator, lookup_window=1.5, submit_attempts=2)
    first = jc.record.job_name
    first_token = workdir / ".firecrestspawner" / f"{first}.token"
    job_id = await jc.submit(request_for(emulator, workdir), with_token_file(jc, workdir), new_name)
    posted = submits(emulator)
    assert [r["status"] for r in posted] == [500, 201]  # the fault fired, then a new submit
    second = jc.record.job_name
    assert second != first
    assert [r["correlation_id"] for r in posted] == [
        fc.correlation_id_for(first),
        fc.correlation_id_for(second),
    ]
    # The first name is an orphan to cancel should it show up; its token file is gone.
    assert [(o.job_id, o.job_name) for o in jc.record.orphans] == [("", first)]
    assert not first_token.exists()
    assert jc.record.token_file == str(workdir / ".firecrestspawner" / f"{second}.token")
    assert [j["jobId"] for j in named(emulator, second)] == [job_id]
    assert not named(emulator, first)
    await jc.stop(now=True)


async def test_no_new_attempt_when_the_token_went_in_the_environment(emulator, workdir):
    """Without a token file of its own, a late job could still use the token: give up."""
    emulator.admin.set_faults(
        rules=[{"route": "POST /compute/*/jobs", "effect": "error", "status": 500, "times": 1}]
    )
    jc = controller(emulator, lookup_window=1.5, submit_attempts=3)
    first = jc.record.job_name
    with pytest.raises(HTTPError) as info:
        await jc.submit(request_for(emulator, workdir), plain(workdir), new_name)
    assert info.value.reason == "submit-unknown"
    assert [r["status"] for r in submits(emulator)] == [500]  # the fault fired; no resubmit
    assert [(o.job_id, o.job_name) for o in jc.record.orphans] == [("", first)]


async def test_an_orphan_by_name_survives_reset_and_goes_at_the_next_stop(
    emulator, workdir, caplog
):
    """Lost submit answer plus a failing job list: the name is kept, then cancelled."""
    emulator.admin.set_faults(
        rules=[
            {"route": "POST /compute/*/jobs", "effect": "error_after", "status": 504, "times": 1},
            {"route": "GET /compute/{system}/jobs", "status": 503},
        ]
    )
    jc = controller(emulator, lookup_window=2)
    name = jc.record.job_name
    with pytest.raises(HTTPError) as info:
        await jc.submit(request_for(emulator, workdir), plain(workdir), new_name)
    assert info.value.reason == "submit-unknown"
    assert live(emulator, name), "the job exists although the answer was lost"
    assert jc.record.submit_unknown
    caplog.set_level(logging.INFO)
    caplog.clear()
    found, cancelled = _orphan_counts()
    await jc.stop(now=False)  # the job list still fails: one line, no exception
    lines = [r for r in caplog.records if name in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(lines) == 1
    assert "could not be cancelled now" in lines[0].getMessage()
    assert lines[0].exc_info is None
    fired = emulator.admin.counters()["statuses"].get("GET /compute/{system}/jobs 503")
    assert fired, "the job list fault fired"
    # What JupyterHub does after stop(): clear the state, save it, maybe restart.
    jc.record.reset()
    saved = jc.record.to_state()
    assert [o["job_name"] for o in saved["orphans"]] == [name]
    emulator.admin.reset_faults()
    later = controller(emulator, record=JobRecord.from_state(saved))
    await later.stop(now=True)  # no job of its own: it cancels the orphan
    assert not live(emulator, name)
    assert later.record.orphans == []
    # The metrics counted the orphan once (the reset did not count it again).
    assert _orphan_counts() == (found + 1, cancelled + 1)


def _orphan_counts() -> tuple[float, float]:
    from prometheus_client import REGISTRY

    return tuple(  # type: ignore[return-value]
        REGISTRY.get_sample_value(f"firecrestspawner_orphans_{what}_total", {"source": "spawner"})
        or 0.0
        for what in ("found", "cancelled")
    )


async def test_an_orphan_by_name_never_seen_is_kept_until_its_grace_is_over(emulator, workdir):
    record = JobRecord.from_state(
        {
            "orphans": [
                {
                    "job_id": "",
                    "job_name": new_name(),
                    "system": emulator.system,
                    "firecrest_url": emulator.url,
                    "recorded_at": time.time(),
                }
            ]
        }
    )
    jc = controller(emulator, record=record, not_found_grace_period=3600)
    await jc.cancel_orphans()
    assert len(jc.record.orphans) == 1  # may still be listed late
    record.orphans = [o.__class__(**{**o.__dict__, "recorded_at": 1.0}) for o in record.orphans]
    await jc.cancel_orphans()
    assert jc.record.orphans == []


async def test_a_failed_job_gives_its_state_and_log_tail(emulator, workdir):
    async def failing(name: str) -> tuple[str, dict[str, str]]:
        script = (
            f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={workdir}/{name}.log\n"
            "echo 'error: module <jupyter> not found'\nexit 3\n"
        )
        return script, {}

    jc = controller(emulator)
    await jc.submit(request_for(emulator, workdir), failing, new_name)
    async for _ in Backoff(deadline_in(30), first=0.1, most=0.5):
        if await jc.status(max_age=0) is JobStatus.NOTFOUND:
            break
    with pytest.raises(HTTPError) as info:
        await jc.raise_job_ended("before the server started")
    message = info.value.jupyterhub_message
    assert "state FAILED" in message
    assert "exit code 3" in message
    assert "module <jupyter> not found" in message  # the log tail
