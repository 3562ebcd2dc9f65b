"""Spawner lifecycle against the FirecREST emulator's local backend (unit level).

The job reports its port through the spawner's PortWaiter as the hub handler
would; the full path through the real handler and a real single-user server
is in test_hub.py.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    while spawner.phase != "waiting":
        await asyncio.sleep(0.05)
    assert spawner.port_waiter.report(port)


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
    assert state["job_name"] == spawner.record.job_name
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
    assert not live(emulator, spawner.record.job_name)


async def test_start_timeout_cancels_the_job(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(spawner.start(), timeout=3)
    name = spawner.record.job_name
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
    while spawner.phase != "waiting":
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not live(emulator, spawner.record.job_name)


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
    spawner.api_token = secrets.token_hex(16)  # as the hub gives every spawn (a file per attempt)
    emulator.admin.clear_requests()
    emulator.admin.set_faults(rules=[{"route": "POST /compute/*/jobs", "times": 1, **effect}])
    await started(spawner)
    emulator.admin.reset_faults()
    assert posts(emulator)[0]["status"] != 201  # the fault fired
    mine = [
        j
        for j in emulator.admin.jobs()
        if (parsed := naming.parse_job_name(j["name"]))
        and parsed.user == fcs_user.name
        and j["status"]["state"].split()[0] in ("PENDING", "RUNNING", "CONFIGURING")
    ]
    assert [j["jobId"] for j in mine] == [spawner.job_id]  # one job, whatever its name
    assert jobs_named(emulator, spawner.record.job_name)[0]["jobId"] == spawner.job_id
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
    assert len(jobs_named(emulator, spawner.record.job_name)) == 1
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
        # The job failed without reading it: the failed start removed it.
        assert not path.exists()
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert "token_file" not in spawner.get_state()
    else:
        assert job.env.get("JUPYTERHUB_API_TOKEN") == canary


async def test_classic_mode_user_options_reach_the_template_checked(fcs_user, emulator, workroot):
    """As the existing firecrestspawner did: options override ``req_*`` values, form lists
    answer ``[0]``; unlike it, values are checked and the site's fragments are not choosable."""
    template = SLEEPER.replace(
        "sleep 600", "echo partition={{ partition }} time={{ runtime[0] }}; sleep 600"
    )
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=template, req_partition="normal"
    )
    spawner.user_options = {"partition": ["debug"], "runtime": "0:10:00", "_xsrf": ["x"]}
    await started(spawner)
    backend = emulator.emulator.backends[emulator.system]
    script = backend._jobs[spawner.job_id].record.script
    assert "partition=debug time=0:10:00" in script
    await spawner.stop()

    for options, field in (
        ({"partition": "debug\n#SBATCH --qos=high"}, "partition"),
        ({"cmd": ["rm", "-rf"]}, "cmd"),
    ):
        spawner = new_spawner(
            fcs_user, emulator, workroot, batch_script=template, req_partition="normal"
        )
        spawner.clear_state()  # as the hub does before a spawn
        spawner.user_options = options
        with pytest.raises(Exception) as info:  # noqa: PT011 - the message is checked
            await spawner.start()
        assert getattr(info.value, "status_code", None) == 400, info.value
        assert f"Invalid option {field!r}" in getattr(info.value, "jupyterhub_message", "")
        assert not spawner.job_id


ACCOUNT_SCRIPT = SLEEPER.replace(
    "#SBATCH --output",
    "{% if account %}#SBATCH --account={{ account }}\n{% endif %}#SBATCH --output",
).replace("sleep 600", "echo account={{ account }}; sleep 600")


async def test_no_accounts_means_no_account_not_the_unix_group(fcs_user, emulator, workroot):
    """FirecREST reports ``accounts: null`` (no accounting): Slurm picks the account."""
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=ACCOUNT_SCRIPT)
    await started(spawner)
    backend = emulator.emulator.backends[emulator.system]
    record = backend._jobs[spawner.job_id].record
    assert "echo account=;" in record.script
    assert "--account" not in record.script
    assert record.group  # the user has a Unix group; it is not used as an account
    assert record.account is None
    await spawner.stop()


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        pytest.param({}, "proj2", id="userinfo-default"),
        pytest.param({"req_account": "proj1"}, "proj1", id="admin-configured"),
    ],
)
async def test_account_is_the_users_default_account(
    app, auth_state_enabled, workroot, fcs_user, traits, expected
):
    """userinfo's account marked ``default`` (not the first listed); config wins."""
    from firecrestspawner import auth
    from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
    from firecrestspawner.emulator.testing import running_emulator

    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name="cluster",
                node_name="127.0.0.1",
                accounts={"*": ["proj1", "proj2"]},
                default_account={"*": "proj2"},
            )
        ]
    )
    with running_emulator(config) as emu:
        await fcs_user.save_auth_state({"refresh_token": emu.issue_refresh_token(fcs_user.name)})
        auth.forget_user(fcs_user.name)
        try:
            spawner = new_spawner(fcs_user, emu, workroot, batch_script=ACCOUNT_SCRIPT, **traits)
            await started(spawner)
            record = emu.emulator.backends[emu.system]._jobs[spawner.job_id].record
            assert f"echo account={expected};" in record.script
            assert record.account == expected
            await spawner.stop()
        finally:
            auth.forget_user(fcs_user.name)


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


def posts(emulator):
    return [
        r
        for r in emulator.admin.requests()
        if r["method"] == "POST" and r["route"] == "/compute/{system}/jobs"
    ]


async def test_submit_correlation_id_is_a_uuid_of_the_job_name(fcs_user, emulator, workroot):
    """FirecREST accepts only UUIDs in X-Correlation-ID (anything else: 400, empty body)."""
    import uuid

    from firecrestspawner import client as fc

    emulator.admin.clear_requests()
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    [submit] = posts(emulator)
    assert submit["status"] == 201
    assert submit["correlation_id"] == fc.correlation_id_for(spawner.record.job_name)
    assert uuid.UUID(submit["correlation_id"]).version == 5
    await spawner.stop()


def token_path(workroot, user, job_name):
    return workroot / user.name / ".firecrestspawner" / f"{job_name}.token"


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        pytest.param(
            SLEEPER.replace("#SBATCH --output", "#SBATCH --partition=nosuch\n#SBATCH --output"),
            "sbatch: error: invalid partition specified: nosuch",
            id="invalid-partition",
        ),
        pytest.param(
            SLEEPER.replace("#SBATCH --output", "#SBATCH --nosuch=1\n#SBATCH --output"),
            "sbatch: unrecognized option '--nosuch=1'",
            id="unknown-option",
        ),
        pytest.param(
            SLEEPER.replace("#!/bin/bash\n", ""),
            "sbatch: error: This does not look like a batch script.",
            id="not-a-batch-script",
        ),
    ],
)
async def test_sbatch_refusal_fails_at_once_with_sbatchs_reason(
    fcs_user, emulator, workroot, caplog, script, reason
):
    """One submit, no lookup by name, the reason in the spawn error, no token left."""
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=script)
    spawner.api_token = secrets.token_hex(16)
    emulator.admin.clear_requests()
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert loop.time() - began < 5
    message = user_message(info.value)
    assert f"refused by the scheduler:\n{reason}" in message
    assert [r["status"] for r in posts(emulator)] == [500]
    listed = [r for r in emulator.admin.requests() if r["route"] == "/compute/{system}/jobs"]
    assert [r["method"] for r in listed] == ["POST"], "no lookup by name after a refusal"
    assert not spawner.job_id
    assert await spawner.poll() == 0
    assert not any("submitting again" in r.getMessage() for r in caplog.records)
    # The token file uploaded for the job is gone again.
    assert not token_path(workroot, fcs_user, spawner.record.job_name).exists()
    assert any(
        r["method"] == "DELETE" and r["route"] == "/filesystem/{system}/ops/rm"
        for r in emulator.admin.requests()
    )


async def test_failing_submits_log_only_what_happens(fcs_user, emulator, workroot, caplog):
    """An ambiguous 500 each time: looked up by name, then submitted again under a NEW name."""
    spawner = new_spawner(
        fcs_user,
        emulator,
        workroot,
        batch_script=SLEEPER,
        firecrest_submit_attempts=2,
        not_found_grace_period=1,
    )
    spawner.api_token = secrets.token_hex(16)  # delivered in a file of each attempt
    emulator.admin.set_faults(rules=[{"route": "POST /compute/*/jobs", "status": 500}])
    emulator.admin.clear_requests()
    caplog.set_level(logging.INFO)
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    submits = posts(emulator)
    assert [r["status"] for r in submits] == [500, 500]  # the fault fired twice
    # Each attempt had its own name (the correlation id is derived from it).
    assert len({r["correlation_id"] for r in submits}) == 2
    again = [r.getMessage() for r in caplog.records if "Submitting again as" in r.getMessage()]
    assert len(again) == 1
    assert "attempt 2 of 2" in again[0]
    assert any("giving up" in r.getMessage() for r in caplog.records)
    assert "could not be submitted" in user_message(info.value)
    # Both names are recorded, to be cancelled should a job show up under them later.
    names = [o["job_name"] for o in spawner.get_state()["orphans"]]
    assert len(set(names)) == 2
    assert spawner.record.job_name in names
    for name in names:
        assert not jobs_named(emulator, name)
        assert not token_path(workroot, fcs_user, name).exists()  # each attempt's own file, removed


async def test_abandoned_spawn_removes_the_token_file(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    spawner.api_token = secrets.token_hex(16)
    task = asyncio.ensure_future(spawner.start())
    while spawner.phase != "waiting":
        await asyncio.sleep(0.05)
    path = token_path(workroot, fcs_user, spawner.record.job_name)
    assert path.exists(), "the job never ran the wrapper: the file is still there"
    assert path.stat().st_mode & 0o777 == 0o600
    task.cancel()  # the hub gives up on the spawn
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not path.exists()
    assert not live(emulator, spawner.record.job_name)


async def test_stop_removes_a_token_file_left_by_an_interrupted_spawn(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    spawner.api_token = secrets.token_hex(16)
    task = asyncio.ensure_future(spawner.start())
    try:
        while spawner.phase != "waiting":
            await asyncio.sleep(0.05)
        # The hub restarts now: what it saved names the job and the token file.
        saved = spawner.orm_spawner.state
        path = token_path(workroot, fcs_user, spawner.record.job_name)
        assert saved["token_file"] == str(path)
        assert path.exists()
        fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
        fresh.load_state(saved)
        await fresh.stop()
        assert not path.exists()
        assert "token_file" not in fresh.get_state()
        assert not live(emulator, saved["job_name"])
    finally:
        # The old start() may have seen its job end meanwhile: either way it is over.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, errors.HTTPError):
            await task


async def test_lookup_after_an_ambiguous_submit_shares_its_correlation_id(
    fcs_user, emulator, workroot
):
    from firecrestspawner import client as fc

    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    emulator.admin.set_faults(
        rules=[
            {"route": "POST /compute/*/jobs", "effect": "error_after", "status": 504, "times": 1}
        ]
    )
    emulator.admin.clear_requests()
    await started(spawner)
    cid = fc.correlation_id_for(spawner.record.job_name)
    [submit] = posts(emulator)
    assert (submit["status"], submit["correlation_id"]) == (504, cid)  # the fault fired
    lookups = [
        r
        for r in emulator.admin.requests()
        if r["method"] == "GET"
        and r["route"] == "/compute/{system}/jobs"
        and r["user"] == fcs_user.name
    ]
    assert lookups
    assert {r["correlation_id"] for r in lookups} == {cid}
    await spawner.stop()
