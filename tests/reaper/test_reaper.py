"""``firecrestspawner reap`` against the emulator and a real JupyterHub.

The emulator's service account is an operator (it may cancel any user's job);
the hub API token belongs to a service whose role has only the minimal scopes
(``list:users``, ``read:servers``, ``admin:server_state``). Jobs are submitted directly through
FirecREST as their users, with names of this hub, of another hub and of no hub.
The command runs as a subprocess, as a site or a JupyterHub service runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jupyterhub.tests.conftest import new_username
from jupyterhub.tests.utils import add_user, api_request

from firecrestspawner import naming
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator
from firecrestspawner.reaper import REQUIRED_SCOPES, ReaperError, active_server_records
from tests.fixtures.emulator import default_test_config

pytestmark = pytest.mark.timeout(180)

HUB_ID = "testhub"
COMMAND = str(Path(sys.prefix) / "bin" / "firecrestspawner")
SLEEP = "#!/bin/bash\nsleep 600\n"
#: Stays PENDING (reason PartitionTimeLimit): debug allows 30 minutes.
QUEUED = "#!/bin/bash\n#SBATCH --partition=debug\n#SBATCH --time=2:00:00\nsleep 600\n"
LIVE = ("PENDING", "RUNNING", "CONFIGURING")


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    config = default_test_config()
    config.systems[0].operators = [next(iter(config.idp.clients))]
    config.systems[0].slots = None  # every test job runs at once
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture
def hub_token(app, create_service_with_scopes) -> str:
    """An API token of a service holding only the scopes the reaper needs."""
    service = create_service_with_scopes(*REQUIRED_SCOPES)
    return service.new_api_token()


@pytest.fixture
def jobs(emulator, tmp_path) -> Iterator[list[str]]:
    """Job ids submitted by a test; whatever is still live is cancelled afterwards."""
    submitted: list[str] = []
    yield submitted
    token = emulator.issue_access_token(emulator.client_id)
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for j in emulator.admin.jobs():
            if j["jobId"] in submitted and j["status"]["state"].split()[0] in LIVE:
                http.delete(f"/compute/{emulator.system}/jobs/{j['jobId']}")


def hub_api_url(app) -> str:
    return app.hub.url.rstrip("/") + "/api"


async def submit(emulator, jobs, tmp_path, user: str, name: str, script: str = SLEEP) -> str:
    token = await asyncio.to_thread(emulator.issue_access_token, user)
    async with httpx.AsyncClient(
        base_url=emulator.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        r = await http.post(
            f"/compute/{emulator.system}/jobs",
            json={"job": {"name": name, "workingDirectory": str(tmp_path), "script": script}},
        )
    assert r.status_code == 201, r.text
    jobs.append(r.json()["jobId"])
    return jobs[-1]


async def states(emulator) -> dict[str, dict]:
    return {j["jobId"]: j for j in await asyncio.to_thread(emulator.admin.jobs)}


def is_live(job: dict) -> bool:
    return job["status"]["state"].split()[0] in LIVE


async def final(emulator, job_id: str) -> dict:
    """The job once it has left COMPLETING (a cancelled job passes through it)."""
    deadline = time.monotonic() + 30
    while True:
        job = (await states(emulator))[job_id]
        state = job["status"]["state"].split()[0]
        if state not in (*LIVE, "COMPLETING") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.1)


async def wait_elapsed(emulator, job_ids, seconds: float) -> None:
    """Until every job in ``job_ids`` has been running for ``seconds`` (emulator's clock)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await states(emulator)
        if all(
            now[j]["status"]["state"] == "RUNNING" and (now[j]["time"]["elapsed"] or 0) >= seconds
            for j in job_ids
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("jobs did not get old enough")


async def start_server(app, name: str) -> None:
    r = await api_request(app, "users", name, "server", method="post")
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 30
    while not app.users[name].spawner.ready:
        assert time.monotonic() < deadline, "server did not start"
        await asyncio.sleep(0.1)


async def stop_server(app, name: str) -> None:
    r = await api_request(app, "users", name, "server", method="delete")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 30
    while app.users[name].spawner.active:
        assert time.monotonic() < deadline, "server did not stop"
        await asyncio.sleep(0.1)


async def reap(app, emulator, token: str, *args: str, env: dict | None = None):
    """Run ``firecrestspawner reap --json`` as a subprocess: (exit code, report, stderr)."""
    environ = {
        **os.environ,
        "FIRECREST_URL": emulator.url,
        "SA_CLIENT_ID": emulator.client_id,
        "SA_CLIENT_SECRET": emulator.client_secret,
        "SA_AUTH_TOKEN_URL": emulator.token_url,
        "JUPYTERHUB_API_URL": hub_api_url(app),
        "JUPYTERHUB_API_TOKEN": token,
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        COMMAND,
        "reap",
        "--json",
        "--system",
        emulator.system,
        "--hub-id",
        HUB_ID,
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, json.loads(out) if out.strip() else None, err.decode()


def by_id(entries) -> dict[str, dict]:
    return {e["job_id"]: e for e in entries}


async def test_reap_cancels_only_old_orphans_of_this_hub(app, emulator, hub_token, jobs, tmp_path):
    alive = add_user(app.db, app, name=new_username("alive"))
    await start_server(app, alive.name)
    try:
        name = naming.job_name
        active_job = await submit(
            emulator, jobs, tmp_path, alive.name, name(HUB_ID, alive.name, "", "a1")
        )
        orphan = await submit(emulator, jobs, tmp_path, "ghost", name(HUB_ID, "ghost", "", "b1"))
        # The user is active, but this named server is not.
        other_server = await submit(
            emulator, jobs, tmp_path, alive.name, name(HUB_ID, alive.name, "gpu", "c1")
        )
        other_hub = await submit(
            emulator, jobs, tmp_path, "ghost", name("otherhub", "ghost", "", "d1")
        )
        foreign = await submit(emulator, jobs, tmp_path, "ghost", "my-simulation")
        old = [active_job, orphan, other_server, other_hub, foreign]
        await wait_elapsed(emulator, old, 3)
        # Queued: FirecREST gives no submit time, so a first sighting is young.
        young = await submit(
            emulator, jobs, tmp_path, "ghost2", name(HUB_ID, "ghost2", "", "e1"), QUEUED
        )

        rc, report, err = await reap(app, emulator, hub_token, "--min-age", "3s", "--dry-run")
        assert rc == 0, err
        assert report["dry_run"] is True
        assert {e["job_id"]: e["result"] for e in report["cancel"]} == {
            orphan: "would cancel",
            other_server: "would cancel",
        }
        assert all(is_live(j) for j in (await states(emulator)).values() if j["jobId"] in jobs)

        emulator.admin.clear_requests()
        rc, report, err = await reap(app, emulator, hub_token, "--min-age", "3s")
        assert rc == 0, err
        assert {e["job_id"]: e["result"] for e in report["cancel"]} == {
            orphan: "cancelled",
            other_server: "cancelled",
        }
        kept = by_id(report["keep"])
        assert set(kept) == {active_job, young}  # other hubs' and foreign jobs are not listed
        assert kept[active_job]["reason"] == "active server"
        assert kept[young]["reason"] == "younger than min-age"

        for job_id in (orphan, other_server):
            ended = await final(emulator, job_id)
            assert ended["status"]["state"].startswith("CANCELLED")
            assert ended["killRequestUser"] == emulator.client_id
        after = await states(emulator)
        for job_id in (active_job, other_hub, foreign, young):
            assert is_live(after[job_id]), after[job_id]["status"]
        # One job list (all users) and one cancel per orphan, all as the service account.
        requests = [r for r in emulator.admin.requests() if r["route"].startswith("/compute")]
        assert sorted(r["method"] for r in requests) == ["DELETE", "DELETE", "GET"]
        assert {r["user"] for r in requests} == {emulator.client_id}
    finally:
        await stop_server(app, alive.name)


async def test_an_extra_job_of_an_active_server_and_recorded_orphans_are_reaped(
    app, emulator, hub_token, jobs, tmp_path
):
    """Jobs are matched to servers by the job name the spawner's state holds."""
    user = add_user(app.db, app, name=new_username("named"))
    await start_server(app, user.name)
    spawner = app.users[user.name].spawner
    name = naming.job_name
    current_name = name(HUB_ID, user.name, "", "cur1")
    extra_name = name(HUB_ID, user.name, "", "dup1")  # a lost submit answer's twin
    orphan_name = name(HUB_ID, user.name, "", "lost1")  # recorded by name, no id
    try:
        current = await submit(emulator, jobs, tmp_path, user.name, current_name)
        extra = await submit(emulator, jobs, tmp_path, user.name, extra_name)
        orphan = await submit(emulator, jobs, tmp_path, user.name, orphan_name)
        # What FirecRESTSpawner.get_state() reports for this server.
        spawner.get_state = lambda: {
            "job_id": current,
            "job_name": current_name,
            "system": emulator.system,
            "orphans": [{"job_name": orphan_name, "job_id": "", "system": emulator.system}],
        }
        await wait_elapsed(emulator, [current, extra, orphan], 2)
        rc, report, err = await reap(app, emulator, hub_token, "--min-age", "2s")
        assert rc == 0, err
        cancelled = by_id(report["cancel"])
        assert {j: cancelled[j]["result"] for j in cancelled} == {
            extra: "cancelled",
            orphan: "cancelled",
        }
        assert cancelled[extra]["reason"] == "not the job of the active server"
        assert cancelled[orphan]["reason"] == "recorded as an orphan by its spawner"
        assert by_id(report["keep"])[current]["reason"] == "active server"
        for job_id in (extra, orphan):
            assert (await final(emulator, job_id))["status"]["state"].startswith("CANCELLED")
        assert is_live((await states(emulator))[current])
    finally:
        spawner.__dict__.pop("get_state", None)
        await stop_server(app, user.name)


async def test_queued_orphan_is_reaped_once_seen_long_enough(
    app, emulator, hub_token, jobs, tmp_path
):
    queued = await submit(
        emulator, jobs, tmp_path, "nobody", naming.job_name(HUB_ID, "nobody", "", "q1"), QUEUED
    )
    state_file = tmp_path / "reaper-state.json"
    args = ("--min-age", "2s", "--state-file", str(state_file))
    rc, report, err = await reap(app, emulator, hub_token, *args)
    assert rc == 0, err
    assert by_id(report["keep"])[queued]["reason"] == "younger than min-age"
    assert f"{emulator.system}/{queued}" in json.loads(state_file.read_text())["first_seen"]
    await asyncio.sleep(2.5)
    rc, report, err = await reap(app, emulator, hub_token, *args)
    assert rc == 0, err
    assert by_id(report["cancel"])[queued]["result"] == "cancelled"
    assert not is_live((await states(emulator))[queued])
    # Ended jobs are forgotten once FirecREST stops listing them; live ones are kept.
    assert set(json.loads(state_file.read_text())["first_seen"]) <= {
        f"{emulator.system}/{j}" for j in (await states(emulator))
    }


async def test_token_without_server_scopes_cancels_nothing(
    app, emulator, create_service_with_scopes, jobs, tmp_path
):
    orphan = await submit(
        emulator, jobs, tmp_path, "ghost", naming.job_name(HUB_ID, "ghost", "", "f1")
    )
    await wait_elapsed(emulator, [orphan], 1)
    names_only = create_service_with_scopes("list:users").new_api_token()
    rc, report, err = await reap(app, emulator, names_only, "--min-age", "0")
    assert rc == 2, err
    assert "read:servers" in report["error"]
    assert "nothing cancelled" in report["error"]
    # Without the spawners' state, jobs cannot be matched by name.
    no_state = create_service_with_scopes("list:users", "read:servers").new_api_token()
    rc, report, err = await reap(app, emulator, no_state, "--min-age", "0")
    assert rc == 2, err
    assert "admin:server_state" in report["error"]
    # Scopes filtered to a group would hide servers too.
    filtered = create_service_with_scopes("list:users!group=x", "read:servers").new_api_token()
    rc, report, _ = await reap(app, emulator, filtered, "--min-age", "0")
    assert rc == 2
    assert "list:users" in report["error"]
    # An unreachable hub: nothing cancelled either.
    rc, report, _ = await reap(
        app,
        emulator,
        names_only,
        "--min-age",
        "0",
        "--timeout",
        "2",
        env={"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"},
    )
    assert rc == 2
    assert "unreachable" in report["error"]
    assert is_live((await states(emulator))[orphan])


async def test_secrets_never_on_the_command_line_or_in_output(app, emulator, hub_token, tmp_path):
    """The secret is read from a file or the environment; no --client-secret option exists."""
    canary = "canary-secret-on-the-command-line"
    for option in (["--client-secret", canary], [f"--client-secret={canary}"]):
        rc, _, err = await reap(app, emulator, hub_token, *option)
        assert rc == 2
        assert "--client-secret is not accepted" in err
        assert canary not in err
    secret_file = tmp_path / "sa-secret"
    secret_file.write_text(emulator.client_secret + "\n")
    proc = await asyncio.create_subprocess_exec(
        COMMAND,
        "reap",
        "--system",
        emulator.system,
        "--hub-id",
        HUB_ID,
        "--client-secret-file",
        str(secret_file),
        "--dry-run",
        env={
            **{k: v for k, v in os.environ.items() if k != "SA_CLIENT_SECRET"},
            "FIRECREST_URL": emulator.url,
            "SA_CLIENT_ID": emulator.client_id,
            "SA_AUTH_TOKEN_URL": emulator.token_url,
            "JUPYTERHUB_API_URL": hub_api_url(app),
            "JUPYTERHUB_API_TOKEN": hub_token,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.splitlines()[-1].startswith("dry run: would cancel")
    for secret in (emulator.client_secret, hub_token):
        assert secret not in text
        assert secret not in err.decode()


async def test_every_page_of_active_servers_is_read(app, hub_token):
    names = [add_user(app.db, app, name=new_username("page")).name for _ in range(3)]
    for name in names:
        await start_server(app, name)
    try:
        records = await active_server_records(hub_api_url(app), hub_token, page_size=1)
        assert {(n, "") for n in names} <= {(r.user, r.server) for r in records}
    finally:
        for name in names:
            await stop_server(app, name)
    with pytest.raises(ReaperError, match="refused the API token"):
        await active_server_records(hub_api_url(app), "not-a-token", attempts=1)


async def test_runs_as_a_managed_jupyterhub_service(
    app, emulator, create_temp_role, jobs, tmp_path
):
    """The documented service snippet: the hub starts ``reap --every`` with its own token."""
    from jupyterhub.roles import update_roles

    orphan = await submit(
        emulator, jobs, tmp_path, "ghost", naming.job_name(HUB_ID, "ghost", "", "s1")
    )
    spec = {
        "name": "firecrestspawner-reaper",
        "command": [
            COMMAND,
            "reap",
            "--every",
            "1s",
            "--min-age",
            "1s",
            "--system",
            emulator.system,
            "--hub-id",
            HUB_ID,
        ],
        "environment": {
            "FIRECREST_URL": emulator.url,
            "SA_CLIENT_ID": emulator.client_id,
            "SA_CLIENT_SECRET": emulator.client_secret,
            "SA_AUTH_TOKEN_URL": emulator.token_url,
        },
    }
    app.services = [spec]
    app.init_services()
    service = app._service_map[spec["name"]]
    role = create_temp_role(list(REQUIRED_SCOPES))
    update_roles(app.db, service.orm, roles=[role.name])
    app.db.commit()
    await service.start()
    try:
        deadline = time.monotonic() + 60
        while is_live((await states(emulator))[orphan]):
            assert service.proc.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not cancel the orphan"
            await asyncio.sleep(0.5)
        job = await final(emulator, orphan)
        assert job["status"]["state"].startswith("CANCELLED")
        assert job["killRequestUser"] == emulator.client_id
        assert service.proc.poll() is None, "--every keeps running"
    finally:
        await service.stop()
        app.services = []
        app._service_map.clear()
