"""Each fault type, and what a client (pyfirecrest or plain httpx) sees."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from firecrest.FirecrestException import UnexpectedStatusException
from firecrest.v2 import AsyncFirecrest

from .helpers import EmulatorAuth, wait_for_state

pytestmark = pytest.mark.timeout(120)

SYS = "cluster"
SLEEPER = "#!/bin/bash\n#SBATCH --job-name={name}\nsleep 60\n"


@pytest.fixture
async def client(emulator):
    c = AsyncFirecrest(emulator.url, authorization=EmulatorAuth(emulator, "fault-user"))
    c.timeout = 30
    yield c
    await c.close_session()
    await asyncio.to_thread(emulator.admin.reset_faults)
    for job in await asyncio.to_thread(emulator.admin.jobs):
        if job["user"] == "fault-user" and job["status"]["state"] in ("PENDING", "RUNNING"):
            await c.create_new_session()
            await c.cancel_job(SYS, job["jobId"])


def faults(emulator, **changes):
    return asyncio.to_thread(emulator.admin.set_faults, **changes)


def status_of(exc_info) -> int:
    return exc_info.value.responses[-1].status_code


async def test_error_status_is_what_the_client_gets(client, emulator):
    await faults(emulator, rules=[{"route": "GET /status/{system}/partitions", "status": 503}])
    with pytest.raises(UnexpectedStatusException) as e:
        await client.partitions(SYS)
    assert status_of(e) == 503
    body = e.value.responses[-1].json()
    assert body["message"] == "Service Unavailable"
    # Other routes are untouched.
    assert await client.nodes(SYS)


async def test_scripted_sequence_then_success(client, emulator):
    await faults(emulator, rules=[{"route": "GET /status/systems", "sequence": [500, 503, "ok"]}])
    seen = []
    for _ in range(4):
        try:
            await client.systems()
            seen.append(200)
        except UnexpectedStatusException as e:
            seen.append(e.responses[-1].status_code)
    assert seen == [500, 503, 200, 200]


async def test_error_rate_with_seed(client, emulator):
    await faults(
        emulator,
        seed=7,
        rules=[{"route": "GET /status/{system}/nodes", "status": 500, "probability": 0.5}],
    )
    failures = 0
    for _ in range(40):
        try:
            await client.nodes(SYS)
        except UnexpectedStatusException:
            failures += 1
    assert 5 < failures < 35


async def test_429_with_retry_after_is_retried_by_pyfirecrest(client, emulator):
    await asyncio.to_thread(emulator.admin.reset_counters)
    await faults(
        emulator,
        rules=[
            {"route": "GET /status/{system}/userinfo", "status": 429, "retry_after": 0, "times": 2}
        ],
    )
    info = await client.userinfo(SYS)
    assert info["user"]["name"] == "fault-user"
    counters = await asyncio.to_thread(emulator.admin.counters)
    assert counters["endpoints"]["GET /status/{system}/userinfo"] == 3
    assert counters["statuses"]["GET /status/{system}/userinfo 429"] == 2


async def test_429_carries_retry_after_header(emulator):
    await faults(emulator, rules=[{"route": "*", "status": 429, "retry_after": 7, "times": 1}])
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{emulator.url}/status/liveness/")
    finally:
        await asyncio.to_thread(emulator.admin.reset_faults)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"


async def test_submit_creates_job_but_loses_response_408(client, emulator, tmp_path):
    await faults(
        emulator,
        rules=[{"route": "POST /compute/{system}/jobs", "effect": "error_after", "status": 408}],
    )
    with pytest.raises(UnexpectedStatusException) as e:
        await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="lost-408"))
    assert status_of(e) == 408
    assert e.value.responses[-1].json()["message"] == "Command execution timeout limit exceeded."
    # The job exists anyway: a client that lists jobs by name finds it.
    jobs = [j for j in await client.job_info(SYS) if j["name"] == "lost-408"]
    assert len(jobs) == 1


async def test_submit_creates_job_then_drops_connection(client, emulator, tmp_path):
    await faults(emulator, rules=[{"route": "POST /compute/*", "effect": "drop_after"}])
    with pytest.raises(httpx.RemoteProtocolError):
        await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="lost-drop"))
    await client.create_new_session()
    jobs = [j for j in await client.job_info(SYS) if j["name"] == "lost-drop"]
    assert len(jobs) == 1


async def test_drop_before_work_creates_nothing(client, emulator, tmp_path):
    await faults(emulator, rules=[{"route": "POST /compute/*", "effect": "drop", "times": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="never"))
    await client.create_new_session()
    assert [j for j in await client.job_info(SYS) if j["name"] == "never"] == []


async def test_added_latency_trips_client_timeout(client, emulator):
    await faults(
        emulator, rules=[{"route": "GET /status/systems", "effect": "latency", "delay": 3}]
    )
    client.timeout = 0.3
    with pytest.raises(httpx.ReadTimeout):
        await client.systems()
    client.timeout = 30
    await client.create_new_session()
    # A slow but successful answer arrives when the client waits long enough.
    await faults(
        emulator, rules=[{"route": "GET /status/systems", "effect": "latency", "delay": 0.2}]
    )
    assert await client.systems()


async def test_rule_for_one_user_only(client, emulator):
    await faults(emulator, rules=[{"route": "GET /status/systems", "user": "someone-else"}])
    assert await client.systems()
    await faults(emulator, rules=[{"route": "GET /status/systems", "user": "fault-user"}])
    with pytest.raises(UnexpectedStatusException):
        await client.systems()


async def test_node_failure_kills_the_job(client, emulator, tmp_path):
    job_id = (await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="victim")))[
        "jobId"
    ]
    await wait_for_state(client, SYS, job_id, ("RUNNING",))
    await asyncio.to_thread(emulator.admin.node_fail, SYS, job_id)
    job = await wait_for_state(client, SYS, job_id, ("NODE_FAIL",))
    assert job["status"]["stateReason"] == "NodeDown"


async def test_quirk_delayed_visibility_after_submit(client, emulator, tmp_path):
    """Right after submit, Slurm may not list the job yet: 404 for a while (off by default)."""
    job_id = (await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="visible")))[
        "jobId"
    ]
    assert (await client.job_info(SYS, job_id))[0]["jobId"] == job_id  # default: visible
    await faults(emulator, visibility_delay=1.0)
    hidden = (await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="hidden")))[
        "jobId"
    ]
    with pytest.raises(UnexpectedStatusException) as e:
        await client.job_info(SYS, hidden)
    assert status_of(e) == 404
    assert e.value.responses[-1].json()["message"] == "Job not found."
    assert hidden not in [j["jobId"] for j in await client.job_info(SYS)]
    await asyncio.sleep(1.1)
    assert (await client.job_info(SYS, hidden))[0]["jobId"] == hidden


ENV_SCRIPT = '#!/bin/bash\n#SBATCH --output={out}\necho "A=$A"\necho "B=$B"\n'


async def test_quirk_env_comma_truncation(client, emulator, tmp_path):
    """sbatch --export splits on commas: a value "x,y" arrives as "x" (on by default)."""
    out = tmp_path / "env.out"
    env = {"A": "x,y", "B": "spaces $ and 'quotes' survive"}
    job_id = (
        await client.submit(SYS, str(tmp_path), script_str=ENV_SCRIPT.format(out=out), env_vars=env)
    )["jobId"]
    await wait_for_state(client, SYS, job_id, ("COMPLETED",))
    assert out.read_text() == "A=x\nB=spaces $ and 'quotes' survive\n"
    # Switched off, the value arrives whole.
    await faults(emulator, env_comma_truncation=False)
    out2 = tmp_path / "env2.out"
    job_id = (
        await client.submit(
            SYS, str(tmp_path), script_str=ENV_SCRIPT.format(out=out2), env_vars=env
        )
    )["jobId"]
    await wait_for_state(client, SYS, job_id, ("COMPLETED",))
    assert out2.read_text().splitlines()[0] == "A=x,y"


async def test_faults_are_reset_and_listed(emulator):
    state = await faults(emulator, rules=[{"route": "GET /status/systems", "times": 1}])
    assert state["rules"][0]["times"] == 1
    assert state["stats"][0]["fired"] == 0
    state = await asyncio.to_thread(emulator.admin.reset_faults)
    assert state["rules"] == []
    assert state["env_comma_truncation"] is True
    with pytest.raises(RuntimeError, match="400"):
        await faults(emulator, rules=[{"route": "*", "sequence": ["bogus"]}])


async def test_node_failure_after_n_seconds_for_every_job(client, emulator, tmp_path):
    await faults(emulator, node_fail_after=0.5)
    job_id = (await client.submit(SYS, str(tmp_path), script_str=SLEEPER.format(name="doomed")))[
        "jobId"
    ]
    job = await wait_for_state(client, SYS, job_id, ("NODE_FAIL",))
    assert job["status"]["interruptSignal"] == 9
