"""The service account at a site that makes it a scheduler operator.

The emulator runs with the hub's service account (client credentials) in
``operators``, as a site configures its FirecREST service account as a Slurm
operator: it lists every user's jobs and may cancel them. What the spawner
does with that depends on ``stop_with_service_account`` (the site's policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from unittest import mock

import pytest
from jupyterhub.tests.conftest import new_username
from jupyterhub.tests.utils import add_user

from firecrestspawner import auth, errors
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator
from firecrestspawner.spawner import SlurmSpawner
from tests.fixtures.emulator import default_test_config

from .conftest import new_spawner, spawner_traits
from .test_lifecycle import SLEEPER, jobs_named, live, started, user_message

pytestmark = pytest.mark.timeout(120)

LIST_ROUTE = "GET /compute/{system}/jobs"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """This module's emulator: the service account is an operator of ``cluster``."""
    config = default_test_config()
    sa = next(iter(config.idp.clients))
    config.systems[0].operators = [sa]
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _no_faults(emulator):
    emulator.admin.reset_faults()
    yield
    emulator.admin.reset_faults()


def expire_session(emulator, user):
    """The IdP revokes the user's refresh tokens; the hub forgets cached access tokens."""
    assert emulator.admin.revoke(username=user.name) >= 1
    auth.forget_user(user.name)


async def log_in_again(emulator, user):
    await user.save_auth_state({"refresh_token": emulator.issue_refresh_token(user.name)})
    auth.forget_user(user.name)


async def final(emulator, job_id):
    """The job once it has left COMPLETING (a cancelled job passes through it)."""
    for _ in range(300):
        job = next(j for j in emulator.admin.jobs() if j["jobId"] == job_id)
        if job["status"]["state"] != "COMPLETING":
            break
        await asyncio.sleep(0.1)
    return job


def deletes_of(emulator, job_id):
    return [
        r
        for r in emulator.admin.requests()
        if r["method"] == "DELETE" and r["path"].endswith(f"/jobs/{job_id}")
    ]


async def test_expired_session_stop_cancels_through_operator_service_account(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    state = spawner.get_state()
    expire_session(emulator, fcs_user)
    # As after a hub restart: a new spawner with the saved state.
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    assert fresh.stop_with_service_account
    fresh.load_state(state)
    emulator.admin.clear_requests()

    await fresh.stop()

    # The user's credential failed; the cancel went out as the service account.
    assert [r["user"] for r in deletes_of(emulator, state["job_id"])] == [emulator.client_id]
    assert [r["status"] for r in deletes_of(emulator, state["job_id"])] == [204]
    ended = await final(emulator, state["job_id"])
    assert ended["status"]["state"].startswith("CANCELLED")
    assert ended["killRequestUser"] == emulator.client_id
    assert not live(emulator, state["job_name"])
    assert not fresh.access_token_is_valid
    assert isinstance(await fresh.poll(), int)  # the hub sees it gone


async def test_expired_session_without_site_policy_says_log_in_and_keeps_the_job(
    app, fcs_user, emulator, workroot
):
    """``stop_with_service_account = False``: the hub's own stop keeps the job in the state."""
    traits = spawner_traits(
        emulator, workroot, batch_script=SLEEPER, stop_with_service_account=False
    )

    class NoServiceAccountStop(SlurmSpawner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**traits, **kwargs})

    with mock.patch.dict(app.tornado_settings, {"spawner_class": NoServiceAccountStop}):
        fcs_user.spawners.pop("", None)
        spawner = fcs_user.spawner
        assert isinstance(spawner, NoServiceAccountStop)
        await started(spawner)
        job_id, job_name = spawner.job_id, spawner.record.job_name
        expire_session(emulator, fcs_user)
        emulator.admin.clear_requests()

        # JupyterHub's own stop path: poll (service account: running), stop, clear_state.
        with pytest.raises(errors.HTTPError) as info:
            await fcs_user.stop("")

    assert info.value.status_code == 403
    assert "log in again" in user_message(info.value)
    assert not deletes_of(emulator, job_id), "no cancel may be attempted"
    assert live(emulator, job_name), "the job keeps running"
    # The hub cleared the server, but the saved state still names the job.
    saved = fcs_user.orm_spawners[""].state
    assert [o["job_id"] for o in saved["orphans"]] == [job_id]
    assert saved["orphans"][0]["job_name"] == job_name

    # Once the user logs in again, the next start's clean-up cancels it.
    await log_in_again(emulator, fcs_user)
    later = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    later.load_state(saved)
    await later.jobs.cancel_orphans()
    assert not live(emulator, job_name)
    assert later.get_state().get("orphans") is None


async def test_service_account_not_operator_refused_clearly(fcs_user, emulator, workroot):
    """A site policy that allows it, a cluster that does not: clear error, job kept."""
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    state = spawner.get_state()
    expire_session(emulator, fcs_user)
    emulator.admin.set_system(emulator.system, operators=[])
    try:
        fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
        fresh.load_state(state)
        with pytest.raises(errors.HTTPError) as info:
            await fresh.stop()
    finally:
        emulator.admin.set_system(emulator.system, operators=[emulator.client_id])
    assert "could not be cancelled" in user_message(info.value)
    assert live(emulator, state["job_name"])
    assert fresh.get_state()["job_id"] == state["job_id"]
    await fresh.stop()  # the operator right is back
    assert not live(emulator, state["job_name"])


async def test_polling_several_users_is_one_request_per_interval(
    app, auth_state_enabled, emulator, workroot
):
    users = []
    for _ in range(3):
        user = add_user(app.db, app, name=new_username("sa"))
        (workroot / user.name).mkdir()
        await user.save_auth_state({"refresh_token": emulator.issue_refresh_token(user.name)})
        users.append(user)
    interval = 1.0
    spawners = [
        new_spawner(u, emulator, workroot, batch_script=SLEEPER, status_max_age=interval)
        for u in users
    ]
    try:
        for s in spawners:
            await started(s)
        await asyncio.sleep(interval)  # let the last start's list age out
        emulator.admin.reset_counters()

        # One interval: every spawner polls, twice.
        for _ in range(2):
            assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 3
        counters = emulator.admin.counters()
        assert counters["endpoints"].get(LIST_ROUTE) == 1
        assert counters["total"] == 1
        assert set(counters["users"]) == {emulator.client_id}
        for s, u in zip(spawners, users, strict=True):
            assert s.job_status.startswith("RUNNING"), u.name
            assert await s.state_gethost() == "127.0.0.1"
            assert jobs_named(emulator, s.record.job_name)[0]["user"] == u.name

        # The next interval: one more list for all of them.
        await asyncio.sleep(interval)
        assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 3
        counters = emulator.admin.counters()
        assert counters["endpoints"].get(LIST_ROUTE) == 2
        assert counters["total"] == 2
    finally:
        for s in spawners:
            if s.job_id:
                await s.stop(now=True)
        for u in users:
            auth.forget_user(u.name)
    assert not [s for s in spawners if live(emulator, s.record.job_name)]


@pytest.mark.parametrize("app_version", ["2.x.x", "2"])
async def test_development_build_version_keeps_service_account_polling(
    app, auth_state_enabled, workroot, fcs_user, app_version
):
    """FirecREST built from main answers ``F7T-AppVersion: 2.x.x`` (pyfirecrest: "2").

    A client pinned at API 2 refuses ``allusers``: every poll would read
    "unknown" and poll() would never see the job end.
    """
    config = default_test_config()
    config.app_version = app_version
    with running_emulator(config) as emu:
        await fcs_user.save_auth_state({"refresh_token": emu.issue_refresh_token(fcs_user.name)})
        auth.forget_user(fcs_user.name)
        try:
            spawner = new_spawner(fcs_user, emu, workroot, batch_script=SLEEPER)
            await started(spawner)
            sa = await spawner._service_client()
            # What a cancel by name or the reaper does with the service account.
            assert await sa.ensure_version() is None
            await asyncio.sleep(0.3)
            assert await spawner.poll() is None
            assert spawner.job_status.startswith("RUNNING")
            assert not spawner.record.last_error
            await spawner.stop()
            assert isinstance(await spawner.poll(), int), "poll() sees the job gone"
            assert not live(emu, spawner.record.job_name)
        finally:
            auth.forget_user(fcs_user.name)
