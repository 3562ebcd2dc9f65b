"""The requests before a submit, against the real FirecREST 2.5.6 (issue 17).

The spawner's preparation (:meth:`JobController.preparer`, what
``submit_batch_script`` runs) as the user ``fsp-alice`` through her pooled
client: the first spawn learns the default account and makes the token
directory; a later spawn sends three requests (upload, chmod, submit). What
the cache believed and is no longer true is repaired. The token file is
never readable by another user: FirecREST's upload writes with the umask of
the SSH session (shown below), so the directory is made 0700 before the
first upload into it, and the file 0600 right after.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import stat
import uuid
from collections.abc import Iterator

import httpx
import pytest

from firecrestspawner import client as fc
from firecrestspawner import metrics, naming
from firecrestspawner.jobs import JobAccess, JobController, JobRecord, JobSettings
from firecrestspawner.request import SpawnRequest
from tests.real.conftest import scancel_quietly

pytestmark = pytest.mark.real_firecrest

ALICE = "fsp-alice"
TOKEN = "not-a-real-token"
SUBMIT = "POST /compute/{system}/jobs"
UPLOAD = "POST /filesystem/{system}/ops/upload"
CHMOD = "PUT /filesystem/{system}/ops/chmod"
MKDIR = "POST /filesystem/{system}/ops/mkdir"
USERINFO = "GET /status/{system}/userinfo"
VERSION = "GET /status/systems"


def script(name: str, account: str) -> str:
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n"
        "#SBATCH --output=/dev/null\n"
        "#SBATCH --time=00:01:00\n"
        "#SBATCH --partition=debug\n"
        f"#SBATCH --account={account}\n"
        "true\n"
    )


class Recorder:
    """The route of every request one client sends, in order."""

    def __init__(self, client: fc.FirecrestClient) -> None:
        self.routes: list[str] = []
        self.base = httpx.URL(client.url).path
        client.raw._session.event_hooks["request"].append(self._hook)

    async def _hook(self, request: httpx.Request) -> None:
        route = metrics.endpoint_template(self.base, request.url.path)
        self.routes.append(f"{request.method} {route}")

    def take(self) -> list[str]:
        """The routes since the last call, without the once-per-URL version request."""
        routes, self.routes = self.routes, []
        return [r for r in routes if r != VERSION]


@pytest.fixture
async def alice(client_for) -> tuple[fc.FirecrestClient, Recorder]:
    client = client_for(ALICE)
    return client, Recorder(client)


@pytest.fixture
def workdir() -> Iterator[str]:
    path = f"/home/{ALICE}/.fsp-real-spawn-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def spawn(client: fc.FirecrestClient, system: str, workdir: str) -> JobController:
    """One spawn's preparation and submit as ``fsp-alice`` (her pooled client)."""

    async def user(url: str) -> fc.FirecrestClient:
        return client

    record = JobRecord(
        system=system,
        firecrest_url=client.url,
        job_name=naming.job_name("real", ALICE, "", naming.new_spawn_id()),
    )
    jc = JobController(
        record,
        JobAccess(owner=ALICE, user=user, poll_with_service=False),
        JobSettings(stop_timeout=30),
        logging.getLogger("test.real.requests"),
    )
    request = SpawnRequest(system=system, firecrest_url=client.url, template="-", workdir=workdir)
    prepare = jc.preparer(
        request,
        token=TOKEN,
        render=script,
        env=lambda path: {"FIRECRESTSPAWNER_TOKEN_FILE": path or ""},
    )
    try:
        await jc.submit(request, prepare, lambda: "unused")
    finally:
        if record.job_id:
            await asyncio.to_thread(scancel_quietly, record.job_id)
    return jc


def owner_and_mode(path: str) -> tuple[str, int]:
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


async def test_the_upload_itself_cannot_make_a_file_private(alice, workdir, real_firecrest):
    """The premise: FirecREST's upload writes ``base64 -d > FILE`` with the session's umask."""
    client, _ = alice
    system = real_firecrest.system
    await client.ensure_private_dir(system, workdir)
    local = f"/tmp/fsp-upload-{uuid.uuid4().hex[:6]}"
    with open(local, "w") as f:
        f.write("x")
    try:
        await client.raw.upload(system, local, workdir, "plain", blocking=True)
    finally:
        os.remove(local)
    user, mode = owner_and_mode(f"{workdir}/plain")
    assert user == ALICE
    assert mode & 0o077, f"the upload made mode {mode:o}: a chmod would not be needed"


async def test_a_users_second_spawn_makes_three_requests(alice, workdir, real_firecrest):
    client, seen = alice
    system = real_firecrest.system
    first = await spawn(client, system, workdir)
    routes = seen.take()
    # The account and the directory at the same time; the directory is new
    # (made with the umask), so it is made 0700 before anything is written in it.
    assert sorted(routes[:3]) == sorted([USERINFO, MKDIR, CHMOD])
    assert routes.index(MKDIR) < routes.index(CHMOD)
    assert routes[3:] == [UPLOAD, CHMOD, SUBMIT]
    second = await spawn(client, system, workdir)
    assert seen.take() == [UPLOAD, CHMOD, SUBMIT]
    assert owner_and_mode(f"{workdir}/.firecrestspawner") == (ALICE, 0o700)
    for jc in (first, second):
        assert jc.record.job_id.isdigit()
        assert owner_and_mode(jc.record.token_file) == (ALICE, 0o600)
        with open(jc.record.token_file) as f:
            assert f.read() == TOKEN


async def test_a_deleted_directory_is_made_again_and_the_spawn_goes_on(
    alice, workdir, real_firecrest
):
    client, seen = alice
    system = real_firecrest.system
    await spawn(client, system, workdir)
    seen.take()
    shutil.rmtree(f"{workdir}/.firecrestspawner")
    jc = await spawn(client, system, workdir)
    # The upload answers 404 (the real server's "No such file or directory").
    assert seen.take() == [UPLOAD, MKDIR, CHMOD, UPLOAD, CHMOD, SUBMIT]
    assert jc.record.job_id.isdigit()
    assert owner_and_mode(f"{workdir}/.firecrestspawner") == (ALICE, 0o700)
    assert owner_and_mode(jc.record.token_file) == (ALICE, 0o600)


async def test_an_existing_private_directory_costs_one_request(alice, workdir, real_firecrest):
    client, seen = alice
    system = real_firecrest.system
    directory = f"{workdir}/.firecrestspawner"
    await client.ensure_private_dir(system, directory)
    client.remembered.clear()  # a hub restart: nothing is known
    seen.take()
    jc = await spawn(client, system, workdir)
    routes = seen.take()
    # mkdir -p answers the directory's mode (ls -ld): 0700 already, no chmod of it.
    assert sorted(routes[:2]) == sorted([USERINFO, MKDIR])
    assert routes[2:] == [UPLOAD, CHMOD, SUBMIT]
    assert owner_and_mode(directory) == (ALICE, 0o700)
    assert jc.record.job_id.isdigit()


async def test_a_directory_open_to_others_is_closed_before_the_upload(
    alice, workdir, real_firecrest
):
    client, seen = alice
    system = real_firecrest.system
    directory = f"{workdir}/.firecrestspawner"
    await client.raw.mkdir(system, directory, create_parents=True)
    await client.raw.chmod(system, directory, "755")
    seen.take()
    jc = await spawn(client, system, workdir)
    routes = seen.take()
    assert routes.index(MKDIR) < routes.index(CHMOD) < routes.index(UPLOAD)
    assert owner_and_mode(directory) == (ALICE, 0o700)
    assert owner_and_mode(jc.record.token_file) == (ALICE, 0o600)


async def test_a_remembered_account_refused_by_sbatch_is_asked_again(
    alice, workdir, real_firecrest
):
    """A stale remembered default account: Slurm refuses it, FirecREST is asked again."""
    client, seen = alice
    system = real_firecrest.system
    await spawn(client, system, workdir)
    seen.take()
    client.remembered.put(("default-account", system), "proj-gone")
    jc = await spawn(client, system, workdir)
    assert seen.take() == [UPLOAD, CHMOD, SUBMIT, USERINFO, UPLOAD, CHMOD, SUBMIT]
    assert jc.record.job_id.isdigit()
    job = await client.job(system, jc.record.job_id)
    assert job is not None
    assert job["account"] == "proj-a", "alice's Slurm default account"
