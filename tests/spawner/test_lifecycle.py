"""Spawner lifecycle against the FirecREST emulator's local backend (unit level).

The job reports its port through the spawner's PortWaiter as the hub handler
would; the full path through the real handler and a real single-user server
is in test_hub.py.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest

from firecrestspawner import errors, naming, status
from firecrestspawner.spawner import JobStatus, SlurmSpawner

from .conftest import new_spawner

pytestmark = pytest.mark.timeout(120)

SLEEPER = """#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --output={{ workdir }}/{{ job_name }}.log
echo "job {{ job_name }} on $SLURMD_NODENAME"
sleep 600
"""

FAILING = """#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --output={{ workdir }}/{{ job_name }}.log
echo "loading modules"
echo "error: module <jupyter> not found" >&2
exit 3
"""


def user_message(exc):
    """The text JupyterHub shows the user (SpawnException on 6, HTTPError on 5)."""
    return getattr(exc, "message", None) or getattr(exc, "jupyterhub_message", "")


def jobs_named(emulator, name):
    return [j for j in emulator.admin.jobs() if j["name"] == name]


def live(emulator, name):
    return [
        j
        for j in jobs_named(emulator, name)
        if j["status"]["state"].split()[0] in ("PENDING", "RUNNING", "CONFIGURING")
    ]


async def report_port_when_waiting(spawner, port):
    """Play the job's part: report a port once start() waits for it."""
    while spawner._phase != "waiting":
        await asyncio.sleep(0.05)
    assert spawner._port_waiter.report(port)


async def started(spawner, port=45678):
    reporter = asyncio.ensure_future(report_port_when_waiting(spawner, port))
    try:
        host, got = await spawner.start()
    finally:
        reporter.cancel()
    return host, got


@pytest.fixture(autouse=True)
def _no_faults(emulator):
    emulator.admin.reset_faults()
    yield
    emulator.admin.reset_faults()


async def test_poll_with_empty_state_is_zero(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot)
    assert await spawner.poll() == 0


async def test_start_poll_stop_and_state_round_trip(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    spawner.api_token = secrets.token_hex(16)
    host, port = await started(spawner)
    assert (host, port) == ("127.0.0.1", 45678)
    assert spawner.state_isrunning()
    assert await spawner.poll() is None

    state = spawner.get_state()
    assert state["job_id"] == spawner.job_id
    assert state["job_status"].startswith("RUNNING")
    assert state["system"] == emulator.system
    assert state["firecrest_url"] == emulator.url
    assert state["job_name"] == spawner._job_name
    assert naming.parse_job_name(state["job_name"]).user == fcs_user.name
    assert len(live(emulator, state["job_name"])) == 1

    # Simulated hub restart: a fresh spawner from the saved state.
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(state)
    assert fresh.job_id == spawner.job_id
    assert await fresh.poll() is None
    await fresh.stop()
    assert not live(emulator, state["job_name"])
    assert isinstance(await fresh.poll(), int)
    # stop is idempotent
    await fresh.stop()
    await fresh.stop(now=True)
    fresh.clear_state()
    assert fresh.get_state().get("job_id") is None
    assert await fresh.poll() == 0


async def test_legacy_state_with_only_job_id(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    legacy = {"job_id": spawner.job_id, "job_status": spawner.job_status}
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(legacy)
    assert await fresh.poll() is None
    await fresh.stop()
    assert isinstance(await fresh.poll(), int)


async def test_failed_job_reports_state_reason_and_log_tail(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=FAILING)
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    message = user_message(info.value)
    assert "FAILED" in message
    assert "exit code 3" in message
    assert "module <jupyter> not found" in message
    # The job stays known so the hub's poll()/stop() after the failure work.
    assert spawner.job_id
    assert isinstance(await spawner.poll(), int)
    assert not live(emulator, spawner._job_name)


async def test_start_timeout_cancels_the_job(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(spawner.start(), timeout=3)
    name = spawner._job_name
    assert jobs_named(emulator, name), "the job was submitted"
    assert not live(emulator, name), "the timed-out spawn left its job running"
    for _ in range(50):  # COMPLETING for a moment, then CANCELLED
        state = jobs_named(emulator, name)[0]["status"]["state"]
        if state != "COMPLETING":
            break
        await asyncio.sleep(0.1)
    assert state.startswith("CANCELLED")


async def test_cancelled_start_cancels_the_job(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    task = asyncio.ensure_future(spawner.start())
    while spawner._phase != "waiting":
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not live(emulator, spawner._job_name)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 408}, id="408"),
        pytest.param({"status": 429, "retry_after": 1}, id="429"),
        pytest.param({"effect": "drop"}, id="dropped-connection"),
    ],
)
async def test_firecrest_errors_during_poll_never_clear_state(fcs_user, emulator, workroot, rule):
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, firecrest_read_attempts=2
    )
    await started(spawner)
    before = spawner.get_state()
    emulator.admin.set_faults(rules=[{"route": "GET /compute/*", **rule}])
    try:
        for _ in range(2):
            await asyncio.sleep(0.3)  # older than status_max_age: a new request
            assert await spawner.poll() is None
            await asyncio.sleep(0.3)
            assert await spawner.query_job_status() is JobStatus.UNKNOWN
        assert spawner.get_state()["job_id"] == before["job_id"]
        assert spawner.get_state()["system"] == before["system"]
    finally:
        emulator.admin.reset_faults()
    assert await spawner.poll() is None
    assert spawner.state_isrunning()
    await spawner.stop()
    assert not live(emulator, before["job_name"])


@pytest.mark.parametrize(
    "effect",
    [
        pytest.param({"effect": "error_after", "status": 504}, id="504-after-submit"),
        pytest.param({"effect": "error_after", "status": 408}, id="408-after-submit"),
        pytest.param({"effect": "drop_after"}, id="response-lost"),
        pytest.param({"effect": "error", "status": 504}, id="504-not-submitted"),
        pytest.param({"effect": "drop"}, id="dropped-before-submit"),
    ],
)
async def test_ambiguous_submit_creates_exactly_one_job(fcs_user, emulator, workroot, effect):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    emulator.admin.set_faults(rules=[{"route": "POST /compute/*/jobs", "times": 1, **effect}])
    await started(spawner)
    emulator.admin.reset_faults()
    jobs = jobs_named(emulator, spawner._job_name)
    assert len(jobs) == 1
    assert jobs[0]["jobId"] == spawner.job_id
    await spawner.stop()


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 429, "retry_after": 1}, id="429-retry-after"),
    ],
)
async def test_refused_submit_is_retried(fcs_user, emulator, workroot, rule):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    emulator.admin.set_faults(rules=[{"route": "POST /compute/*/jobs", "times": 1, **rule}])
    await started(spawner)
    assert len(jobs_named(emulator, spawner._job_name)) == 1
    await spawner.stop()


async def test_polls_share_one_request_per_system(emulator, workroot, app, auth_state_enabled):
    from jupyterhub.tests.conftest import new_username
    from jupyterhub.tests.utils import add_user

    users = []
    for _ in range(4):
        user = add_user(app.db, app, name=new_username("fcsn"))
        (workroot / user.name).mkdir()
        await user.save_auth_state({"refresh_token": emulator.issue_refresh_token(user.name)})
        users.append(user)
    spawners = [
        new_spawner(u, emulator, workroot, batch_script=SLEEPER, status_max_age=30) for u in users
    ]
    await asyncio.gather(*(started(s) for s in spawners))
    emulator.admin.reset_counters()
    # Forget what start() saw, so that the first poll needs a fresh list.
    status.get_status(emulator.url, emulator.system).invalidate()
    for _ in range(3):
        results = await asyncio.gather(*(s.poll() for s in spawners))
        assert results == [None] * len(spawners)
    counters = emulator.admin.counters()["endpoints"]
    assert counters.get("GET /compute/{system}/jobs") == 1
    assert not counters.get("GET /compute/{system}/jobs/{job_id}")
    await asyncio.gather(*(s.stop() for s in spawners))


@pytest.mark.parametrize("delivery", ["file", "env"])
async def test_canary_token_stays_out_of_logs_scripts_and_errors(
    fcs_user, emulator, workroot, caplog, delivery
):
    canary = "canary" + secrets.token_hex(12)
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=FAILING, api_token_delivery=delivery
    )
    spawner.api_token = canary
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert canary not in str(info.value)
    assert canary not in user_message(info.value)
    assert canary not in (getattr(info.value, "log_message", "") or "")
    assert canary not in caplog.text
    backend = emulator.emulator.backends[emulator.system]
    job = backend._jobs[spawner.job_id]
    assert canary not in (job.record.script or "")
    if delivery == "file":
        assert canary not in repr(job.env)
        token_file = job.env["FIRECRESTSPAWNER_TOKEN_FILE"]
        assert token_file.startswith(str(workroot / fcs_user.name))
        from pathlib import Path

        path = Path(token_file)
        assert path.read_text() == canary
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    else:
        assert job.env.get("JUPYTERHUB_API_TOKEN") == canary


async def test_classic_mode_ignores_user_options(fcs_user, emulator, workroot):
    template = SLEEPER.replace("sleep 600", "echo partition={{ partition }}; sleep 600")
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=template, req_partition="normal"
    )
    spawner.user_options = {"partition": "debug\n#SBATCH --qos=high", "cmd": ["rm", "-rf"]}
    await started(spawner)
    backend = emulator.emulator.backends[emulator.system]
    script = backend._jobs[spawner.job_id].record.script
    assert "partition=normal" in script
    assert "debug" not in script
    assert "--qos" not in script
    assert "rm -rf" not in script
    await spawner.stop()


async def test_account_defaults_to_primary_group(fcs_user, emulator, workroot):
    template = SLEEPER.replace("sleep 600", "echo account={{ account }}; sleep 600")
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=template)
    await started(spawner)
    backend = emulator.emulator.backends[emulator.system]
    script = backend._jobs[spawner.job_id].record.script
    group = backend._jobs[spawner.job_id].record.group
    assert f"account={group}" in script
    await spawner.stop()


async def test_progress_messages_are_escaped(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    events = []

    async def collect():
        async for event in spawner.progress():
            events.append(event)

    collector = asyncio.ensure_future(collect())
    await started(spawner)
    await asyncio.wait_for(collector, 5)
    messages = [e["message"] for e in events]
    assert any(f"job {spawner.job_id}" in m.lower() for m in messages)
    assert any("waiting for the server" in m for m in messages)
    for event in events:
        assert 0 <= event["progress"] <= 100
        assert "<" not in event["html_message"]
    await spawner.stop()


def test_firecrest_url_defaults_to_environment(monkeypatch, fcs_user, emulator, workroot):
    monkeypatch.setenv("FIRECREST_URL", "https://f7t.example.org/v2")
    monkeypatch.setenv("SA_CLIENT_ID", "sa-from-env")
    _ = fcs_user.spawner
    spawner = fcs_user._new_spawner("", spawner_class=SlurmSpawner)
    assert spawner.firecrest_url == "https://f7t.example.org/v2"
    assert spawner.service_account_client_id == "sa-from-env"
