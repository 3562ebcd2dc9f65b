"""The requests before a submit, against the emulator (issue 17), without a hub.

A spawn's preparation (:meth:`JobController.preparer`) asks for the user's
default account and makes the token directory once; a later spawn of the
same user (same pooled client) writes the token file and submits: upload,
chmod, submit. What the cache believed and is no longer true (the directory
was deleted, or opened to others before it was known) is repaired, never a
failed spawn or a readable file. The same behaviour against the real
FirecREST 2.5.6: ``tests/real/test_spawn_requests.py``.
"""

from __future__ import annotations

import logging
import shutil
import stat
from pathlib import Path

import pytest

from firecrestspawner import client as fc
from firecrestspawner import naming, status
from firecrestspawner.jobs import JobAccess, JobController, JobRecord, JobSettings
from firecrestspawner.remembered import Remembered
from firecrestspawner.request import SpawnRequest

pytestmark = pytest.mark.timeout(120)

USER = "req-user"
TOKEN = "not-a-real-token"
SCRIPT = "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --account={account}\nsleep 600\n"
SUBMIT = "POST /compute/{system}/jobs"
UPLOAD = "POST /filesystem/{system}/ops/upload"
CHMOD = "PUT /filesystem/{system}/ops/chmod"
MKDIR = "POST /filesystem/{system}/ops/mkdir"
USERINFO = "GET /status/{system}/userinfo"
VERSION = "GET /status/systems"


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def fresh(emulator):
    """A clean request log and no pooled clients (so nothing is remembered)."""
    emulator.admin.reset_faults()
    emulator.admin.clear_requests()
    await fc.close_all()
    yield
    emulator.admin.reset_faults()
    await fc.close_all()
    status.reset()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def controller(emulator, owner: str = USER, **settings) -> JobController:
    token = StaticToken(emulator.admin.issue_access_token(owner, lifetime=3600))
    client_settings = fc.ClientSettings(read_attempts=2, read_deadline=10, request_timeout=10)

    async def user(url: str) -> fc.FirecrestClient:
        return fc.get_client(url, f"user:{owner}", token, client_settings)

    record = JobRecord(
        system=emulator.system,
        firecrest_url=emulator.url,
        job_name=naming.job_name("req", owner, "", naming.new_spawn_id()),
    )
    return JobController(
        record,
        JobAccess(owner=owner, user=user, poll_with_service=False),
        JobSettings(stop_timeout=10, **settings),
        logging.getLogger("test.requests"),
    )


async def spawn(emulator, workdir: Path, token: str = TOKEN, owner: str = USER, **settings):
    """One spawn's preparation and submit; the controller and the routes it requested."""
    emulator.admin.clear_requests()
    jc = controller(emulator, owner, **settings)
    request = SpawnRequest(
        system=emulator.system, firecrest_url=emulator.url, template="-", workdir=str(workdir)
    )
    prepare = jc.preparer(
        request,
        token=token,
        render=lambda name, account: SCRIPT.format(name=name, account=account),
        env=lambda path: {"FIRECRESTSPAWNER_TOKEN_FILE": path or ""},
    )
    await jc.submit(request, prepare, lambda: "unused")
    routes = [f"{r['method']} {r['route']}" for r in emulator.admin.requests()]
    # The hub's first request to a URL asks its API version: once per URL.
    return jc, [r for r in routes if r != VERSION]


def versions_asked(emulator) -> int:
    return sum(r["route"] == "/status/systems" for r in emulator.admin.requests())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_users_second_spawn_makes_three_requests(emulator, fresh, workdir):
    first, routes = await spawn(emulator, workdir)
    assert versions_asked(emulator) == 1
    # First spawn: account and directory (made, then 0700), file, chmod, submit.
    assert sorted(routes[:3]) == sorted([USERINFO, MKDIR, CHMOD])
    assert routes[3:] == [UPLOAD, CHMOD, SUBMIT]
    second, routes = await spawn(emulator, workdir)
    assert versions_asked(emulator) == 0
    assert routes == [UPLOAD, CHMOD, SUBMIT]
    token_dir = workdir / ".firecrestspawner"
    assert mode(token_dir) == 0o700
    for jc in (first, second):
        assert mode(Path(jc.record.token_file)) == 0o600
        assert Path(jc.record.token_file).read_text() == TOKEN
        await jc.stop(now=True)


async def test_another_users_first_spawn_does_not_ask_the_version_again(
    emulator, fresh, workdir, tmp_path_factory
):
    first, _ = await spawn(emulator, workdir)
    assert versions_asked(emulator) == 1
    other = tmp_path_factory.mktemp("other")
    other.chmod(0o755)
    second, routes = await spawn(emulator, other, owner="req-other")
    assert versions_asked(emulator) == 0
    assert SUBMIT in routes
    for jc in (first, second):
        await jc.stop(now=True)


async def test_a_deleted_directory_is_made_again_and_the_spawn_goes_on(emulator, fresh, workdir):
    first, _ = await spawn(emulator, workdir)
    await first.stop(now=True)
    shutil.rmtree(workdir / ".firecrestspawner")
    second, routes = await spawn(emulator, workdir)
    # The cached belief was wrong: the upload says so (404), the directory is made again.
    assert routes == [UPLOAD, MKDIR, CHMOD, UPLOAD, CHMOD, SUBMIT]
    statuses = [r["status"] for r in emulator.admin.requests()]
    assert statuses[0] == 404
    assert mode(workdir / ".firecrestspawner") == 0o700
    assert mode(Path(second.record.token_file)) == 0o600
    assert second.record.job_id
    await second.stop(now=True)


async def test_an_existing_private_directory_costs_one_request(emulator, fresh, workdir):
    (workdir / ".firecrestspawner").mkdir(mode=0o700)
    jc, routes = await spawn(emulator, workdir)
    # mkdir -p answers the directory's mode: 0700 already, no chmod of it.
    assert sorted(routes[:2]) == sorted([USERINFO, MKDIR])
    assert routes[2:] == [UPLOAD, CHMOD, SUBMIT]
    await jc.stop(now=True)


async def test_a_directory_open_to_others_is_closed_before_the_upload(emulator, fresh, workdir):
    (workdir / ".firecrestspawner").mkdir()
    (workdir / ".firecrestspawner").chmod(0o755)
    jc, routes = await spawn(emulator, workdir)
    upload = routes.index(UPLOAD)
    assert routes.index(MKDIR) < routes.index(CHMOD) < upload
    assert mode(workdir / ".firecrestspawner") == 0o700
    await jc.stop(now=True)


async def test_the_default_account_is_remembered_for_its_ttl(emulator, fresh, workdir):
    one, routes = await spawn(emulator, workdir)
    assert routes.count(USERINFO) == 1
    two, routes = await spawn(emulator, workdir)
    assert USERINFO not in routes
    three, routes = await spawn(emulator, workdir, default_account_ttl=0)
    assert routes.count(USERINFO) == 1
    for jc in (one, two, three):
        await jc.stop(now=True)


async def test_a_failed_account_lookup_is_not_remembered(emulator, fresh, workdir):
    emulator.admin.set_faults(
        rules=[{"route": "GET /status/*/userinfo", "status": 400, "times": 1}]
    )
    one, routes = await spawn(emulator, workdir)
    assert routes.count(USERINFO) == 1  # failed: no account, the spawn goes on
    two, routes = await spawn(emulator, workdir)
    assert routes.count(USERINFO) == 1  # asked again
    for jc in (one, two):
        await jc.stop(now=True)


async def test_a_refused_directory_fails_the_spawn_naming_the_directory(emulator, fresh, workdir):
    denied = "mkdir: cannot create directory: Permission denied"
    emulator.admin.set_faults(
        rules=[{"route": "POST */ops/mkdir", "status": 403, "message": denied}]
    )
    with pytest.raises(Exception) as info:  # noqa: PT011 - the spawn error below
        await spawn(emulator, workdir)
    assert getattr(info.value, "reason", "") == "token-file"
    assert ".firecrestspawner" in str(info.value)
    assert not any(r["route"] == "/compute/{system}/jobs" for r in emulator.admin.requests())


def test_remembered_ages_evicts_and_forgets():
    now = [0.0]
    r = Remembered(max_entries=2, clock=lambda: now[0])
    r.put("a", "x")
    r.put("b", "y")
    assert (r.get("a", 10), r.get("b", 10)) == ("x", "y")
    r.put("c", "z")  # the oldest goes
    assert (r.get("a", 10), r.get("c", 10), len(r)) == (None, "z", 2)
    now[0] = 5.0
    assert r.get("b", 10) == "y"
    assert r.get("b", 5) is None  # too old for this reader: forgotten
    assert r.get("b", 10) is None
    r.put("d", None)  # None is not kept
    assert r.get("d", 10) is None
    r.put("e", "v")
    r.forget("e")
    assert r.get("e", 10) is None


@pytest.fixture(scope="module")
def accounting():
    """An emulator whose sbatch enforces accounts (default p1)."""
    from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
    from firecrestspawner.emulator.testing import running_emulator

    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name="cluster",
                node_name="127.0.0.1",
                accounts={"*": ["p1", "p2"]},
                default_account={"*": "p1"},
            )
        ]
    )
    with running_emulator(config) as emu:
        yield emu


async def test_a_remembered_account_refused_by_sbatch_is_asked_again(accounting, fresh, workdir):
    emu = accounting
    await fc.close_all()
    jc, _ = await spawn(emu, workdir)
    assert emu.emulator.backends[emu.system]._jobs[jc.record.job_id].record.account == "p1"
    await jc.stop(now=True)
    # The remembered account is no longer the user's (here: a stale belief planted).
    client = await jc.user_client()
    client.remembered.put(("default-account", emu.system), "gone")
    jc, routes = await spawn(emu, workdir)
    # Refused (no job), asked again, submitted again under the same name.
    assert routes == [UPLOAD, CHMOD, SUBMIT, USERINFO, UPLOAD, CHMOD, SUBMIT]
    submits = [r for r in emu.admin.requests() if r["route"] == "/compute/{system}/jobs"]
    assert [r["status"] >= 400 for r in submits] == [True, False]
    assert emu.emulator.backends[emu.system]._jobs[jc.record.job_id].record.account == "p1"
    assert [j["name"] for j in emu.admin.jobs()].count(jc.record.job_name) == 1
    await jc.stop(now=True)
    # The fresh answer is remembered for the next spawn.
    jc, routes = await spawn(emu, workdir)
    assert routes == [UPLOAD, CHMOD, SUBMIT]
    await jc.stop(now=True)


async def test_a_refusal_with_the_current_account_fails_once(accounting, fresh, workdir):
    emu = accounting
    await fc.close_all()
    emu.admin.set_faults(
        rules=[
            {
                "route": "POST /compute/*/jobs",
                "status": 500,
                "message": "Unexpected Slurm command response. exit_status:1 std_err:"
                "sbatch: error: Batch job submission failed: "
                "Invalid account or account/partition combination specified",
            }
        ]
    )
    with pytest.raises(Exception) as info:  # noqa: PT011 - the spawn error below
        await spawn(emu, workdir)
    assert getattr(info.value, "reason", "") == "submit-refused"
    routes = [f"{r['method']} {r['route']}" for r in emu.admin.requests()]
    # Asked again once (the same account): no second submit.
    assert routes.count(SUBMIT) == 1
    assert routes.count(USERINFO) == 2
