"""Expired sessions, late visibility, unknown states and lost submits (emulator)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib.metadata import entry_points

import pytest

from firecrestspawner import auth, errors
from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import running_emulator
from firecrestspawner.spawner import SlurmSpawner

from .conftest import new_spawner
from .test_lifecycle import SLEEPER, jobs_named, live, started, user_message

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_faults(emulator):
    emulator.admin.reset_faults()
    yield
    emulator.admin.reset_faults()


def expire_session(emulator, user):
    """The IdP forgets the user's refresh token; the hub forgets cached tokens."""
    emulator.admin.revoke(username=user.name)
    auth.forget_user(user.name)


def test_entry_points_name_the_documented_classes():
    eps = {ep.name: ep for ep in entry_points(group="jupyterhub.spawners")}
    assert eps["firecrest-slurm"].load() is SlurmSpawner


async def test_expired_session_gives_log_in_again(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    expire_session(emulator, fcs_user)
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert "log in again" in user_message(info.value)
    assert info.value.status_code == 403
    assert not spawner.job_id
    assert not spawner.access_token_is_valid


async def test_stop_after_session_expired_cancels_as_service_account(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    state = spawner.get_state()
    expire_session(emulator, fcs_user)
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(state)
    assert await fresh.poll() is None  # polling uses the service account
    emulator.admin.clear_requests()
    # The emulator, like Slurm without operator rights, refuses to let the
    # service account cancel another user's job: the spawner must have tried,
    # then say so clearly and keep the job in its state.
    with pytest.raises(errors.HTTPError) as info:
        await fresh.stop()
    deletes = [
        r
        for r in emulator.admin.requests()
        if r["method"] == "DELETE" and r["path"].endswith(f"/jobs/{state['job_id']}")
    ]
    assert [r["user"] for r in deletes] == [emulator.client_id]
    # scancel --verbose says "Terminating job N" first; the user reads the error first.
    message = user_message(info.value)
    assert message.startswith(
        f"Job {state['job_id']} could not be cancelled: scancel: error: Kill job error on "
        f"job id {state['job_id']}: Access/permission denied\n"
    )
    assert f"scancel: Terminating job {state['job_id']}" in message
    assert fresh.get_state()["job_id"] == state["job_id"]
    # With a valid login again, stop works.
    await fcs_user.save_auth_state({"refresh_token": emulator.issue_refresh_token(fcs_user.name)})
    auth.forget_user(fcs_user.name)
    await fresh.stop()
    assert not live(emulator, state["job_name"])


async def test_stop_after_session_expired_without_service_account_policy(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    state = spawner.get_state()
    expire_session(emulator, fcs_user)
    fresh = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, stop_with_service_account=False
    )
    fresh.load_state(state)
    emulator.admin.clear_requests()
    with pytest.raises(errors.HTTPError) as info:
        await fresh.stop()
    assert "log in again" in user_message(info.value)
    assert not [r for r in emulator.admin.requests() if r["method"] == "DELETE"]
    assert fresh.get_state()["job_id"] == state["job_id"]
    assert live(emulator, state["job_name"])
    await fcs_user.save_auth_state({"refresh_token": emulator.issue_refresh_token(fcs_user.name)})
    auth.forget_user(fcs_user.name)
    await fresh.stop()
    assert not live(emulator, state["job_name"])


async def test_job_invisible_right_after_submit_counts_as_pending(fcs_user, emulator, workroot):
    emulator.admin.set_faults(visibility_delay=2)
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    emulator.admin.set_faults(visibility_delay=0)
    assert len(jobs_named(emulator, spawner.record.job_name)) == 1
    await spawner.stop()


async def test_job_never_seen_after_grace_is_gone(fcs_user, emulator, workroot):
    emulator.admin.set_faults(visibility_delay=30)
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, not_found_grace_period=1
    )
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    emulator.admin.set_faults(visibility_delay=0)
    assert "ended before the server started" in user_message(info.value)
    # the failed start cancelled the (invisible) job: nothing left running
    await asyncio.sleep(0.5)
    assert not live(emulator, spawner.record.job_name)


async def test_unknown_for_too_long_logs_a_warning_and_keeps_state(
    fcs_user, emulator, workroot, caplog
):
    spawner = new_spawner(
        fcs_user,
        emulator,
        workroot,
        batch_script=SLEEPER,
        unknown_grace_period=0.5,
        firecrest_read_attempts=1,
    )
    await started(spawner)
    emulator.admin.set_faults(rules=[{"route": "GET /compute/*", "status": 500}])
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        await asyncio.sleep(0.4)
        assert await spawner.poll() is None
    emulator.admin.reset_faults()
    assert any("unknown for" in r.getMessage() for r in caplog.records)
    assert spawner.get_state()["job_id"]
    await spawner.stop()


async def test_submit_outcome_unknown_is_cleaned_up_by_name(fcs_user, emulator, workroot):
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, firecrest_read_attempts=1
    )
    emulator.admin.set_faults(
        rules=[
            {"route": "POST /compute/*/jobs", "effect": "error_after", "status": 504, "times": 1},
            {"route": "GET /compute/{system}/jobs", "status": 503},
        ]
    )
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert "could not be asked" in user_message(info.value)
    assert not spawner.job_id
    assert live(emulator, spawner.record.job_name), "the job exists although the answer was lost"
    # The hub polls (None: maybe a job) and stops; by then FirecREST answers again.
    assert await spawner.poll() is None
    emulator.admin.reset_faults()
    await spawner.stop()
    await asyncio.sleep(0.5)
    assert not live(emulator, spawner.record.job_name)
    assert await spawner.poll() == 0


async def test_polling_with_the_users_credential(fcs_user, emulator, workroot):
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, polling_with_service_account=False
    )
    await started(spawner)
    emulator.admin.reset_counters()
    await asyncio.sleep(0.3)
    assert await spawner.poll() is None
    users = emulator.admin.counters()["user_endpoints"]
    assert fcs_user.name in users
    await spawner.stop()
    assert isinstance(await spawner.poll(), int)


async def test_progress_shows_queue_reason(app, auth_state_enabled, workroot, fcs_user):
    config = EmulatorConfig(
        systems=[SystemConfig(name="cluster", node_name="127.0.0.1", queue_delay=1.5)]
    )
    with running_emulator(config) as emu:
        await fcs_user.save_auth_state({"refresh_token": emu.issue_refresh_token(fcs_user.name)})
        auth.forget_user(fcs_user.name)
        spawner = new_spawner(fcs_user, emu, workroot, batch_script=SLEEPER)
        events = []

        async def collect():
            async for event in spawner.progress():
                events.append(event)

        collector = asyncio.ensure_future(collect())
        await started(spawner)
        await asyncio.wait_for(collector, 5)
        messages = [e["message"] for e in events]
        assert any("pending in the queue (reason: Priority)" in m for m in messages), messages
        assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
        await spawner.stop()
        auth.forget_user(fcs_user.name)


async def test_failed_stop_leaves_no_orphan_after_the_hub_clears_state(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, firecrest_read_attempts=1
    )
    await started(spawner)
    old_name = spawner.record.job_name
    emulator.admin.set_faults(rules=[{"route": "DELETE /compute/*", "status": 503}])
    with pytest.raises(errors.HTTPError):
        await spawner.stop()
    emulator.admin.reset_faults()
    # What JupyterHub does after stop(), even a failed one: clear and persist.
    spawner.clear_state()
    state = spawner.get_state()
    assert "job_id" not in state
    assert [o["job_name"] for o in state["orphans"]] == [old_name]
    assert live(emulator, old_name)
    # Hub restart, then the user starts again: the left-over job goes first.
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(state)
    fresh.clear_state()
    await started(fresh)
    assert not live(emulator, old_name)
    assert "orphans" not in fresh.get_state()
    await fresh.stop()


async def test_start_cancelled_during_submit_leaves_no_job(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    # FirecREST is slow to answer the submit; the hub gives up meanwhile.
    emulator.admin.set_faults(
        rules=[{"route": "POST /compute/*/jobs", "effect": "latency", "delay": 1.5, "times": 1}]
    )
    task = asyncio.ensure_future(spawner.start())
    while not spawner.record.submit_unknown:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    name = spawner.record.job_name
    assert not spawner.job_id
    # Whatever the emulator created after the lost request is cancelled, by
    # start()'s cleanup or by the hub's poll()+stop() that follows.
    if await spawner.poll() is None:
        await spawner.stop()
    await asyncio.sleep(2)
    assert jobs_named(emulator, name), "the slow submit did create the job"
    assert not live(emulator, name)


async def test_state_is_saved_right_after_submit(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    task = asyncio.ensure_future(spawner.start())
    try:
        while not spawner.job_id:
            await asyncio.sleep(0.02)
        # Before start() returns (JupyterHub saves the state only then), the
        # database already knows the job.
        saved = spawner.orm_spawner.state
        assert saved["job_id"] == spawner.job_id
        assert saved["system"] == emulator.system
        assert saved["job_name"] == spawner.record.job_name
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_job_of_an_interrupted_spawn_is_cancelled_at_the_next_start(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    old_name = spawner.record.job_name
    # The hub went down before it saw the server come up; after the restart
    # it loads the saved state and, at the next spawn, calls clear_state().
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(spawner.orm_spawner.state)
    fresh.clear_state()
    assert [o["job_name"] for o in fresh.get_state()["orphans"]] == [old_name]
    await started(fresh)
    assert not live(emulator, old_name)
    await fresh.stop()
    fresh.clear_state()
    assert "orphans" not in fresh.get_state()


async def test_system_not_found_is_never_a_gone_job(fcs_user, emulator, workroot, caplog):
    """A 404 "System not found" keeps the job (poll None) and tells the operator."""
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    # The job drops out of the list (firecrest-v2 #177), so the spawner asks for it
    # by id, and FirecREST answers that it has no such system.
    emulator.admin.set_faults(
        visibility_delay=3600,
        rules=[
            {
                "route": "GET /compute/{system}/jobs/{job_id}",
                "status": 404,
                "message": "System not found",
            }
        ],
    )
    caplog.set_level(logging.ERROR)
    try:
        for _ in range(2):
            await asyncio.sleep(0.3)
            assert await spawner.poll() is None
        fired = emulator.admin.counters()["statuses"].get("GET /compute/{system}/jobs/{job_id} 404")
        assert fired, "the fault fired"
    finally:
        emulator.admin.reset_faults()
    assert spawner.get_state()["job_id"]
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"no system named '{emulator.system}'" in m for m in errors_logged)
    assert await spawner.poll() is None
    await spawner.stop()
    assert not live(emulator, spawner.record.job_name)


async def test_unknown_system_fails_the_spawn_as_a_configuration_error(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER, req_host="nosuch")
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert info.value.status_code == 500
    assert "the cluster 'nosuch' is not known to FirecREST" in user_message(info.value)
    assert not spawner.job_id


#: The keys firecrestspawner fc6b957 (before the job record) saved for a running server.
PREVIOUS_VERSION_KEYS = {
    "job_id",
    "job_status",
    "system",
    "firecrest_url",
    "job_name",
    "host",
    "port",
    "profile",
    "submitted_at",
    "log_path",
    "token_file",
    "seen",
    "orphans",
}


async def test_a_hub_on_this_version_stops_a_server_the_previous_version_saved(
    fcs_user, emulator, workroot
):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(spawner)
    saved = spawner.get_state()  # what JupyterHub saves once start() returned
    previous = {k: v for k, v in saved.items() if k in PREVIOUS_VERSION_KEYS}
    # An orphan as the previous version wrote it (no recorded_at): a job long gone.
    previous["orphans"] = [
        {
            "job_id": "999999",
            "system": emulator.system,
            "firecrest_url": emulator.url,
            "job_name": "fcs.jupyterhub.old._.000000000000",
        }
    ]
    assert previous["port"]
    fresh = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    fresh.load_state(previous)
    assert fresh.get_state() == previous  # read back as written
    assert await fresh.poll() is None  # the server runs: nothing is cancelled
    await fresh.stop()
    assert not live(emulator, previous["job_name"])
    fresh.clear_state()
    assert fresh.get_state() == {}  # the gone orphan was confirmed and dropped


async def test_a_spawn_queued_at_hub_restart_is_cancelled_and_the_user_told(
    fcs_user, emulator, workroot
):
    """Issue #13 finding 7: the restarted hub ends the queued spawn at once."""
    emulator.admin.set_system(emulator.system, queue_delay=3600)
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    task = asyncio.ensure_future(spawner.start())
    try:
        while not spawner.job_id:
            await asyncio.sleep(0.05)
        saved = dict(spawner.orm_spawner.state)  # what the hub has when it dies
        name = saved["job_name"]
        assert live(emulator, name)
        # The restarted hub builds the spawner from its database and polls it.
        restarted = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
        restarted.load_state(saved)
        status = await restarted.poll()
        assert status is not None  # not running: the hub ends the server
        assert not live(emulator, name), "the queued job was cancelled at once"
        # JupyterHub then stops the server and clears the state.
        await restarted.stop()
        restarted.clear_state()
        notice = restarted.get_state()["notice"]
        assert f"job {saved['job_id']}" in notice
        assert "hub restart" in notice
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        emulator.admin.set_system(emulator.system, queue_delay=0)
    # The user's next start shows the notice first, then starts normally.
    events = []

    async def collect():
        async for event in restarted.progress():
            events.append(event)

    collector = asyncio.ensure_future(collect())
    await started(restarted)
    await asyncio.wait_for(collector, 10)
    assert events[0]["message"] == notice
    assert "notice" not in restarted.get_state()
    await restarted.stop()


async def test_a_hub_killed_during_the_submit_request_leaves_no_untracked_job(
    fcs_user, emulator, workroot
):
    """Issue #13: the name is saved before the submit request is sent, so a hub
    killed while the request is in flight cancels the job at restart."""
    emulator.admin.add_fault(route="POST /compute/{system}/jobs", effect="latency", delay=3)
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    task = asyncio.ensure_future(spawner.start())
    try:
        # What the hub has in its database while the request is in flight.
        for _ in range(100):
            saved = dict(spawner.orm_spawner.state or {})
            if saved.get("submit_unknown"):
                break
            await asyncio.sleep(0.05)
        assert saved.get("submit_unknown")
        assert saved.get("job_name")
        assert "job_id" not in saved
        name = saved["job_name"]
        # The request reaches the scheduler after the hub has died.
        for _ in range(100):
            if live(emulator, name):
                break
            await asyncio.sleep(0.05)
        assert live(emulator, name)
        restarted = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
        restarted.load_state(saved)
        assert await restarted.poll() is not None  # not running: the hub stops it
        await restarted.stop()  # what JupyterHub does next: cancels by name
        assert not live(emulator, name)
        restarted.clear_state()
        assert "hub restart" in restarted.get_state()["notice"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        emulator.admin.reset_faults()
