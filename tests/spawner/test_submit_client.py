"""One ``auth_state`` read per submit; clean-up reads it again (issue 17).

Each read of ``auth_state`` is a decryption in a thread. A submit holds the
user's client for its requests (account, directory, upload, chmod, submit);
clean-up of a failed start asks afresh, so that a session cleared during the
spawn sends the cancel through the service account instead of a credential
the hub should no longer use.

The emulator's service account is an operator of ``cluster`` (as in
``test_service_account.py``): it may cancel any user's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from unittest import mock

import pytest

from firecrestspawner import client as fc
from firecrestspawner.auth import SessionExpired
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator
from firecrestspawner.jobs import JobAccess, JobController, JobRecord, JobSettings
from tests.fixtures.emulator import default_test_config

from .conftest import new_spawner
from .test_lifecycle import SLEEPER, live, started

pytestmark = pytest.mark.timeout(120)


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
    emulator.admin.set_system(emulator.system, queue_delay=0)


@contextlib.contextmanager
def counted_reads(user) -> Iterator[list[int]]:
    """Count ``user.get_auth_state()`` calls (each one a decryption)."""
    original = user.get_auth_state
    reads: list[int] = []

    async def counting():
        reads.append(1)
        return await original()

    with mock.patch.object(user, "get_auth_state", counting):
        yield reads


def deletes_of(emulator, job_id):
    return [
        r
        for r in emulator.admin.requests()
        if r["method"] == "DELETE" and r["path"].endswith(f"/jobs/{job_id}")
    ]


async def test_a_returning_users_spawn_reads_auth_state_once(fcs_user, emulator, workroot):
    first = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    await started(first)
    await first.stop()
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    with counted_reads(fcs_user) as reads:
        await started(spawner)
    # Upload, chmod and submit as the user, one read for all of them (was
    # one per step: the account, the directory, the upload, the submit).
    assert len(reads) == 1
    await spawner.stop()
    assert not live(emulator, spawner.record.job_name)


async def test_a_first_spawn_reads_auth_state_once_for_its_requests(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    with counted_reads(fcs_user) as reads:
        await started(spawner)
    # The account lookup and the directory set-up run at the same time and
    # share the one read; a rotated refresh token is written back (a read).
    rotations = 1 if emulator.config.idp.rotate_refresh_tokens else 0
    assert len(reads) == 1 + rotations
    await spawner.stop()


async def test_clean_up_after_the_session_was_cleared_cancels_as_the_service_account(
    fcs_user, emulator, workroot
):
    """The session ends while the job queues; the hub gives up on the start.

    The user's credential object still holds a valid access token, but
    ``auth_state`` is gone: the clean-up's cancel goes out as the service
    account, not with the credential the submit used.
    """
    emulator.admin.set_system(emulator.system, queue_delay=3600)
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    task = asyncio.ensure_future(started(spawner))
    while not spawner.job_id:
        await asyncio.sleep(0.05)
    job_id, name = spawner.job_id, spawner.record.job_name
    assert live(emulator, name)
    await fcs_user.save_auth_state(None)  # logged out: no refresh token any more
    emulator.admin.revoke(username=fcs_user.name)
    emulator.admin.clear_requests()

    task.cancel()  # the hub's start_timeout
    with pytest.raises(asyncio.CancelledError):
        await task
    if spawner._cleanup is not None:
        await asyncio.wait_for(asyncio.shield(spawner._cleanup), 30)

    assert [r["user"] for r in deletes_of(emulator, job_id)] == [emulator.client_id]
    assert not live(emulator, name)
    assert not spawner.access_token_is_valid


async def test_a_new_login_during_the_submit_is_picked_up_after_a_401(fcs_user, emulator, workroot):
    """The held credential's token is refused and its refresh token revoked
    (the user logged in again meanwhile): it reads ``auth_state`` again by itself."""
    spawner = new_spawner(fcs_user, emulator, workroot, batch_script=SLEEPER)
    original = fc.FirecrestClient.submit_once

    async def log_in_again_first(self, *args, **kwargs):
        old = (await fcs_user.get_auth_state())["refresh_token"]
        emulator.admin.revoke(refresh_token=old)
        await fcs_user.save_auth_state(
            {"refresh_token": emulator.issue_refresh_token(fcs_user.name)}
        )
        # FirecREST no longer accepts the access token the credential holds.
        emulator.admin.add_fault(route="POST /compute/{system}/jobs", status=401, times=1)
        return await original(self, *args, **kwargs)

    with mock.patch.object(fc.FirecrestClient, "submit_once", log_in_again_first):
        await started(spawner)
    fired = emulator.admin.counters()["statuses"].get("POST /compute/{system}/jobs 401")
    assert fired, "the refusal happened"
    assert spawner.access_token_is_valid
    await spawner.stop()
    assert not live(emulator, spawner.record.job_name)


# -------------------------------------------------------------- the rule, on the controller


def _controller(emulator, session: dict, reads: list[str]) -> JobController:
    settings = fc.ClientSettings(read_attempts=2, read_deadline=10, request_timeout=10)
    user_token = emulator.admin.issue_access_token("held-user", lifetime=3600)
    sa_token = emulator.admin.issue_access_token("held-sa", lifetime=3600)

    class Static:
        def __init__(self, token: str) -> None:
            self.token = token

        async def auth_headers(self) -> dict[str, str]:
            return {"Authorization": f"Bearer {self.token}"}

    async def user(url: str) -> fc.FirecrestClient:
        reads.append(url)
        await asyncio.sleep(0.01)  # a decryption in a thread
        if not session["valid"]:
            raise SessionExpired("no refresh token in auth_state")
        return fc.get_client(url, "user:held-user", Static(user_token), settings)

    async def service(url: str) -> fc.FirecrestClient:
        return fc.get_client(url, "sa:held", Static(sa_token), settings)

    record = JobRecord(system=emulator.system, firecrest_url=emulator.url, job_name="held")
    return JobController(
        record,
        JobAccess(owner="held-user", user=user, service=service, stop_with_service=True),
        JobSettings(),
        logging.getLogger("test.held"),
    )


async def test_a_held_client_is_read_once_and_never_used_for_clean_up(emulator):
    session = {"valid": True}
    reads: list[str] = []
    jc = _controller(emulator, session, reads)
    with jc.holding_user_client():
        # Concurrent askers share the one read.
        a, b = await asyncio.gather(jc.user_client(), jc.user_client())
        assert a is b
        assert await jc.user_client() is a
        assert len(reads) == 1
        session["valid"] = False  # the session is cleared during the submit
        assert await jc.user_client() is a  # the submit's own requests go on
        # Clean-up reads auth_state again and acts as the service account.
        used = await jc.as_canceller(_client_used)
        assert used.identity == "sa:held"
        with pytest.raises(SessionExpired):
            await jc.user_client(fresh=True)
    # Outside a submit every call reads.
    before = len(reads)
    with pytest.raises(SessionExpired):
        await jc.user_client()
    assert len(reads) == before + 1


async def test_a_failed_read_is_not_held(emulator):
    session = {"valid": False}
    reads: list[str] = []
    jc = _controller(emulator, session, reads)
    with jc.holding_user_client():
        with pytest.raises(SessionExpired):
            await jc.user_client()
        session["valid"] = True
        client = await jc.user_client()
        assert client.identity == "user:held-user"
    assert len(reads) == 2


async def _client_used(client: fc.FirecrestClient) -> fc.FirecrestClient:
    return client
