"""Hub level: a real JupyterHub spawns a real single-user server in an emulator job.

The job runs ``firecrestspawner-singleuser`` (token file, free port, port
report through the hub's ``/hub/api/firecrestspawner``) and a real
``jupyterhub-singleuser``; the hub waits for it over HTTP, then stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from unittest import mock

import httpx
import pytest
from jupyterhub.tests.utils import api_request

from firecrestspawner import naming
from firecrestspawner.spawner import SlurmSpawner

from .conftest import spawner_traits

pytestmark = pytest.mark.timeout(180)


def configured(emulator, workroot, **overrides):
    traits = spawner_traits(emulator, workroot, start_timeout=90, **overrides)

    class ConfiguredSlurmSpawner(SlurmSpawner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**traits, **kwargs})

    return ConfiguredSlurmSpawner


async def wait_for(predicate, timeout=90.0, interval=0.25):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")


async def server_model(app, name):
    r = await api_request(app, "users", name)
    r.raise_for_status()
    return r.json()["servers"].get("")


@pytest.mark.parametrize("delivery", ["file", "env"])
async def test_hub_spawns_real_server_and_stops_it(
    app, fcs_user, emulator, workroot, delivery, caplog
):
    caplog.set_level(logging.DEBUG)
    cls = configured(emulator, workroot, api_token_delivery=delivery)
    name = fcs_user.name
    with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (201, 202), r.text

        async def ready():
            model = await server_model(app, name)
            return model if model and model.get("ready") else None

        model = await wait_for(ready)
        spawner = app.users[name].spawner
        assert isinstance(spawner, cls)
        job_id = spawner.job_id
        api_token = spawner.api_token
        assert job_id
        assert spawner.server.port == spawner.record.port
        assert spawner.server.ip == "127.0.0.1"
        assert model["state"]["job_id"] == job_id  # admin API shows the saved state
        assert await spawner.poll() is None

        # A real jupyter server answers on the node at the reported port.
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(spawner.server.url.rstrip("/") + "/api")
        assert r.status_code == 200
        assert "version" in r.json()

        r = await api_request(app, "users", name, "server", method="delete")
        assert r.status_code in (202, 204), r.text

        async def stopped():
            return (await server_model(app, name)) is None

        await wait_for(stopped)
    # The server's API token reached the job, but no log line of the hub.
    assert api_token
    assert api_token not in caplog.text
    backend = emulator.emulator.backends[emulator.system]
    assert api_token not in (backend._jobs[job_id].record.script or "")
    jobs = [j for j in emulator.admin.jobs() if j["jobId"] == job_id]
    assert jobs
    assert jobs[0]["status"]["state"].split()[0] in ("CANCELLED", "COMPLETING", "COMPLETED")


async def test_port_handler_refuses_anything_but_a_port(app, fcs_user, emulator, workroot):
    """The token of a running server cannot set spawner attributes."""
    cls = configured(emulator, workroot)
    name = fcs_user.name
    with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (201, 202), r.text

        async def ready():
            model = await server_model(app, name)
            return model if model and model.get("ready") else None

        await wait_for(ready)
        spawner = app.users[name].spawner
        before = spawner.batch_script
        r = await api_request(
            app,
            "firecrestspawner",
            method="post",
            headers={"Authorization": f"token {spawner.api_token}"},
            data=json.dumps({"port": 1234, "batch_script": "#!/bin/bash\nrm -rf ~"}),
        )
        assert r.status_code == 400
        r = await api_request(
            app,
            "firecrestspawner",
            method="post",
            headers={"Authorization": f"token {spawner.api_token}"},
            data=json.dumps({"port": 1234}),
        )
        assert r.status_code == 409  # not starting any more
        assert spawner.batch_script == before
        r = await api_request(app, "users", name, "server", method="delete")
        assert r.status_code in (202, 204)
        await wait_for(lambda: _is_none(server_model(app, name)))


def next_event(lines):
    """The next ``data:`` event of a server-sent event stream, or None at its end."""
    for line in lines:
        if line.startswith("data:"):
            return json.loads(line.split(":", 1)[1])
    return None


async def _is_none(coro):
    return (await coro) is None


async def test_hub_start_timeout_cancels_the_job(app, fcs_user, emulator, workroot):
    sleeper = "#!/bin/bash\n#SBATCH --job-name={{ job_name }}\nsleep 600\n"
    traits = spawner_traits(emulator, workroot, start_timeout=4, batch_script=sleeper)

    class SlowSpawner(SlurmSpawner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**traits, **kwargs})

    name = fcs_user.name
    with mock.patch.dict(app.tornado_settings, {"spawner_class": SlowSpawner}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (202, 500), r.text
        spawner = app.users[name].spawner

        async def failed():
            return not spawner.pending and (await server_model(app, name)) is None

        await wait_for(failed, timeout=30)
    # The hub cleared the spawner state after the failure: find the job by name.
    jobs = [
        j
        for j in emulator.admin.jobs()
        if (parsed := naming.parse_job_name(j["name"])) and parsed.user == name
    ]
    assert len(jobs) == 1
    assert jobs[0]["status"]["state"].split()[0] in ("CANCELLED", "COMPLETING")


async def test_progress_stream_through_the_hub(
    request, app, no_patience, fcs_user, emulator, workroot
):
    from jupyterhub.tests.utils import async_requests

    cls = configured(emulator, workroot)
    name = fcs_user.name
    with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code == 202, r.text
        r = await api_request(app, "users", name, "server/progress", stream=True)
        r.raise_for_status()
        request.addfinalizer(r.close)
        lines = iter(r.iter_lines(decode_unicode=True))
        events = []
        while True:
            event = await async_requests.executor.submit(next_event, lines)
            if event is None:
                break
            events.append(event)
            if event.get("ready") or event.get("failed"):
                break
        messages = [e["message"] for e in events]
        assert events[-1].get("ready"), messages
        assert any("Submit" in m for m in messages), messages
        assert any("waiting for the server" in m for m in messages), messages
        for event in events[:-1]:
            assert "<" not in event.get("html_message", "")
        r = await api_request(app, "users", name, "server", method="delete")
        assert r.status_code in (202, 204)
        await wait_for(lambda: _is_none(server_model(app, name)))


async def test_stop_during_submit_retries_answers_at_once(app, fcs_user, emulator, workroot):
    """Issue #12 finding 8: stopping a spawn that retries its submit is a 202/204, not a 500."""
    route = "POST /compute/{system}/jobs 503"
    emulator.admin.reset_counters()
    emulator.admin.set_faults(rules=[{"route": "POST /compute/*/jobs", "status": 503}])
    cls = configured(emulator, workroot, firecrest_submit_attempts=100)
    name = fcs_user.name
    try:
        with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}):
            r = await api_request(app, "users", name, "server", method="post")
            assert r.status_code == 202, r.text
            spawner = app.users[name].spawner

            async def retrying():
                return emulator.admin.counters()["statuses"].get(route, 0) >= 2

            await wait_for(retrying, timeout=30)  # the fault fired, the spawn retries
            assert spawner.pending == "spawn"
            r = await api_request(app, "users", name, "server", method="delete")
            assert r.status_code in (202, 204), r.text
            await wait_for(lambda: _is_none(server_model(app, name)), timeout=30)
            assert not spawner.pending
            fired = emulator.admin.counters()["statuses"][route]
    finally:
        emulator.admin.reset_faults()
    # No submit got through, so there is no job; and the retries stopped.
    await asyncio.sleep(1)
    assert emulator.admin.counters()["statuses"][route] == fired
    assert not [
        j
        for j in emulator.admin.jobs()
        if (parsed := naming.parse_job_name(j["name"])) and parsed.user == name
    ]
