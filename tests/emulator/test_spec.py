"""Every response the emulator sends validates against the official FirecREST spec.

One emulator, a whole job life cycle (PENDING, RUNNING, COMPLETED, FAILED,
CANCELLED, TIMEOUT, NODE_FAIL, then gone) and every error path; each response
is checked by openapi-core against ``openapi-firecrest-v2-2.5.6.yaml`` as it
arrives (an httpx response hook), and the test ends by asserting which
(endpoint, status) pairs were exercised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from firecrest.v2 import AsyncFirecrest
from openapi_core.testing import MockRequest, MockResponse

from firecrestspawner.emulator.config import (
    EmulatorConfig,
    ReservationConfig,
    SystemConfig,
)
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

from .helpers import EmulatorAuth, SpecChecker, wait_for_state

pytestmark = pytest.mark.timeout(120)

SYS = "cluster"


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name=SYS,
                node_name="127.0.0.1",
                slots=1,
                queue_delay=0.3,
                retention=2,
                kill_wait=1,
                reservations=[ReservationConfig(name="maint", features="gpu")],
                accounts={"*": ["proj1", "proj2"]},
            )
        ]
    )
    with running_emulator(config) as e:
        yield e


@pytest.fixture(scope="module")
def checker() -> SpecChecker:
    return SpecChecker()


@pytest.fixture
async def http(emu, checker) -> AsyncIterator[httpx.AsyncClient]:
    token = await asyncio.to_thread(emu.issue_access_token, "alice")
    async with httpx.AsyncClient(
        base_url=emu.url,
        headers={"Authorization": f"Bearer {token}"},
        event_hooks={"response": [checker.hook]},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
async def pyf(emu, checker) -> AsyncIterator[AsyncFirecrest]:
    client = AsyncFirecrest(emu.url, authorization=EmulatorAuth(emu, "alice"))
    client.timeout = 30
    client._session.event_hooks["response"].append(checker.hook)
    yield client
    await client.close_session()


def test_validator_rejects_a_wrong_body(checker, emu):
    """The check is real: a JobModel without required fields fails."""
    from openapi_core.validation.response.exceptions import InvalidData

    req = MockRequest(emu.url, "get", f"/compute/{SYS}/jobs/1")
    resp = MockResponse(b'{"jobs": [{"jobId": 1, "name": "x"}]}', 200)
    with pytest.raises(InvalidData):
        checker.spec.validate_response(req, resp)


async def test_status_and_files(http, pyf, tmp_path):
    async with httpx.AsyncClient(base_url=http.base_url, event_hooks=http.event_hooks) as anon:
        assert (await anon.get("/status/liveness/")).status_code == 200
    assert [s["name"] for s in await pyf.systems()] == [SYS]
    info = await pyf.userinfo(SYS)
    assert info["accounts"] == [
        {"name": "proj1", "default": True},
        {"name": "proj2", "default": False},
    ]
    assert len(await pyf.partitions(SYS)) == 2
    assert (await pyf.reservations(SYS))[0]["state"] == "active"
    assert (await pyf.nodes(SYS))[0]["state"] == ["IDLE"]
    d = tmp_path / "a" / "b"
    made = await pyf.mkdir(SYS, str(d), create_parents=True)
    assert made["type"] == "d"
    local = tmp_path / "token.txt"
    local.write_text("secret-ish\n")
    await pyf.upload(SYS, str(local), str(d), "token")
    # As FirecREST 2.5.6 with the usual umask: the upload cannot set a mode.
    assert oct((d / "token").stat().st_mode & 0o777) == "0o644"
    changed = await pyf.chmod(SYS, str(d / "token"), "640")
    assert changed["permissions"] == "rw-r-----"
    names = [f["name"] for f in await pyf.list_files(SYS, str(d))]
    assert names == ["token"]
    st = await pyf.stat(SYS, str(d / "token"))
    assert st["size"] == len("secret-ish\n")


def script(body: str, extra: str = "") -> str:
    return f"#!/bin/bash\n#SBATCH --job-name=spec\n{extra}{body}\n"


async def test_job_life_cycle(http, pyf, emu, tmp_path):
    wd = str(tmp_path)
    out = tmp_path / "a.out"
    first = await pyf.submit(
        SYS, wd, script_str=script("echo one; sleep 1.5; echo two", f"#SBATCH --output={out}\n")
    )
    second = await pyf.submit(SYS, wd, script_str=script("sleep 30"))
    a, b = first["jobId"], second["jobId"]
    pending = (await pyf.job_info(SYS, a))[0]
    assert pending["status"]["state"] == "PENDING"
    assert pending["status"]["stateReason"] == "Priority"
    assert pending["nodes"] == ""
    await wait_for_state(pyf, SYS, a, ("RUNNING",))
    # b waits first for its queue delay (Priority), then for the busy slot (Resources).
    for _ in range(100):
        b_job = (await pyf.job_info(SYS, b))[0]
        assert b_job["status"]["state"] == "PENDING"
        if b_job["status"]["stateReason"] == "Resources":
            break
        await asyncio.sleep(0.02)
    assert b_job["status"]["stateReason"] == "Resources"
    assert len(await pyf.job_info(SYS)) == 2
    assert (await pyf.job_metadata(SYS, a))[0]["script"].startswith("#!/bin/bash")
    # Cancel the pending one.
    assert (await http.delete(f"/compute/{SYS}/jobs/{b}")).status_code == 204
    cancelled = (await pyf.job_info(SYS, b))[0]
    assert cancelled["status"]["state"].startswith("CANCELLED by ")
    done = await wait_for_state(pyf, SYS, a, ("COMPLETED",))
    assert done["status"]["exitCode"] == 0
    assert done["time"]["end"] >= done["time"]["start"]
    assert (await pyf.tail(SYS, str(out), num_lines=1))["content"] == "two\n"
    assert (await pyf.head(SYS, str(out), num_bytes=3))["content"] == "one"
    assert await pyf.view(SYS, str(out)) == "one\ntwo\n"
    r = await http.get(
        f"/filesystem/{SYS}/ops/tail", params={"path": str(out), "lines": 1, "skipHeading": True}
    )
    assert r.json()["output"]["content"] == "two\n"
    # FAILED with the exit code.
    c = (await pyf.submit(SYS, wd, script_str=script("exit 3")))["jobId"]
    failed = await wait_for_state(pyf, SYS, c, ("FAILED",))
    assert failed["status"]["exitCode"] == 3
    # TIMEOUT from --time.
    d = (await pyf.submit(SYS, wd, script_str=script("sleep 30", "#SBATCH --time=0:01\n")))["jobId"]
    timed_out = await wait_for_state(pyf, SYS, d, ("TIMEOUT",))
    assert timed_out["time"]["limit"] == 1
    # NODE_FAIL through the admin endpoint.
    e = (await pyf.submit(SYS, wd, script_str=script("sleep 30")))["jobId"]
    await wait_for_state(pyf, SYS, e, ("RUNNING",))
    await asyncio.to_thread(emu.admin.node_fail, SYS, e)
    await wait_for_state(pyf, SYS, e, ("NODE_FAIL",))
    # Running job cancelled by its owner.
    f = (await pyf.submit(SYS, wd, script_str=script("sleep 30")))["jobId"]
    await wait_for_state(pyf, SYS, f, ("RUNNING",))
    await pyf.cancel_job(SYS, f)
    await wait_for_state(pyf, SYS, f, ("CANCELLED",))
    # Cancelling a finished job is scancel's error: 500 in SSH mode, with
    # `scancel --verbose`'s two lines although scancel exits 0.
    r = await http.delete(f"/compute/{SYS}/jobs/{f}")
    assert (r.status_code, r.json()["message"]) == (
        500,
        (
            "Unexpected Slurm command response. exit_status:0 std_err:"
            f"scancel: Terminating job {f}\n"
            f"scancel: error: Kill job error on job id {f}: Job/step already completing or completed\n"
        ),
    )
    # After the retention time the job is gone.
    for _ in range(50):
        r = await http.get(f"/compute/{SYS}/jobs/{a}")
        if r.status_code == 404:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 404
    assert r.json()["message"] == "Job not found."
    assert (await http.get(f"/compute/{SYS}/jobs/{a}/metadata")).status_code == 404


async def test_error_paths(http, emu, tmp_path):
    async def token(**kw) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {await asyncio.to_thread(emu.issue_access_token, 'alice', **kw)}"
        }

    expected = {
        ("no header", 401, "Not authenticated"): {"Authorization": ""},
        ("garbage", 401, "Access token is invalid."): {"Authorization": "Bearer abc.def.ghi"},
        ("expired", 401, "Access token expired"): await token(lifetime=-5),
        (
            "too soon",
            401,
            "Access token expires too soon (less than 30s remaining).",
        ): await token(lifetime=20),
        (
            "no claim",
            400,
            "Authentication token 'preferred_username' claim is missing",
        ): await token(omit_username=True),
    }
    for (what, status, message), headers in expected.items():
        r = await http.get("/status/systems", headers=headers)
        assert (what, r.status_code, r.json()["message"]) == (what, status, message)

    r = await http.get("/status/NOPE/nodes")
    assert (r.status_code, r.json()["message"]) == (404, "System not found")
    r = await http.get(f"/compute/{SYS}/jobs/424242")
    assert (r.status_code, r.json()["message"]) == (404, "Job not found.")
    r = await http.get(f"/compute/{SYS}/jobs/2.batch")
    assert r.status_code == 400
    assert r.json()["errorType"] == "validation"
    assert r.json()["data"]["fields"][0]["name"] == "job_id"
    r = await http.get(f"/compute/{SYS}/jobs/2.batch/metadata")
    assert r.status_code == 400
    r = await http.delete(f"/compute/{SYS}/jobs/a-b")
    assert r.status_code == 400
    r = await http.delete(f"/compute/{SYS}/jobs/424242")
    assert r.status_code == 500
    assert "Invalid job id specified" in r.json()["message"]
    r = await http.post(f"/compute/{SYS}/jobs", json={"job": {"script": "#!/bin/bash\n"}})
    assert (r.status_code, r.json()["errorType"]) == (400, "validation")
    # FirecREST names the top-level body field only (measured against 2.5.6).
    assert r.json()["data"]["fields"][0]["name"] == "job"
    assert "workingDirectory" in r.json()["message"]
    # A job id that passes the path pattern but is not a number: sacct's error.
    r = await http.get(f"/compute/{SYS}/jobs/abc")
    assert (r.status_code, r.json()["message"]) == (500, "Error executing Slurm command.")
    r = await http.delete(f"/compute/{SYS}/jobs/abc")
    assert r.status_code == 500
    assert "Invalid job id abc" in r.json()["message"]
    # No script: sbatch waits for one on stdin until the command timeout.
    r = await http.post(f"/compute/{SYS}/jobs", json={"job": {"workingDirectory": "/tmp"}})
    assert (r.status_code, r.json()["message"]) == (
        408,
        "Command execution timeout limit exceeded.",
    )
    r = await http.post(
        f"/compute/{SYS}/jobs",
        json={"job": {"workingDirectory": "/tmp", "script": "#!/bin/bash\n", "partition": "x"}},
    )
    assert (r.status_code, r.json()["message"]) == (
        500,
        (
            "Unexpected Slurm command response. exit_status:1 std_err:"
            "sbatch: error: invalid partition specified: x\n"
            "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
        ),
    )
    r = await http.post(
        f"/compute/{SYS}/jobs", json={"job": {"workingDirectory": "/tmp", "script": "echo no"}}
    )
    assert r.status_code == 500
    assert r.json()["message"].startswith(
        "Unexpected Slurm command response. exit_status:1 std_err:"
        "sbatch: error: This does not look like a batch script."
    )
    r = await http.post(
        f"/compute/{SYS}/jobs",
        json={"job": {"workingDirectory": "/tmp", "script": "#!/bin/bash\n#SBATCH --nosuch=1\n"}},
    )
    assert (r.status_code, r.json()["message"]) == (
        500,
        (
            "Unexpected Slurm command response. exit_status:255 std_err:"
            "sbatch: unrecognized option '--nosuch=1'\n"
            'Try "sbatch --help" for more information\n'
        ),
    )
    r = await http.post(
        f"/compute/{SYS}/jobs",
        json={"job": {"workingDirectory": "/tmp", "script": "#!/bin/bash\n", "account": "x"}},
    )
    assert r.status_code == 500
    assert "Invalid account or account/partition combination specified" in r.json()["message"]
    r = await http.get(f"/compute/{SYS}/jobs", params={"allusers": "maybe"})
    assert (r.status_code, r.json()["errorType"]) == (400, "validation")

    ops = f"/filesystem/{SYS}/ops"
    r = await http.get(f"{ops}/tail", params={"path": "relative/x"})
    assert (r.status_code, r.json()["message"]) == (
        400,
        "The provided path (relative/x) is not an absolute path.",
    )
    r = await http.get(f"{ops}/tail", params={"path": "/etc/passwd"})
    assert r.status_code == 400
    assert "does not match any of the defined filesystem paths" in r.json()["message"]
    r = await http.get(f"{ops}/tail", params={"path": "/tmp/../etc/passwd"})
    assert r.status_code == 400
    r = await http.get(f"{ops}/head", params={"path": str(tmp_path / "missing")})
    assert r.status_code == 404
    r = await http.get(f"{ops}/tail", params={"path": str(tmp_path), "lines": 1, "bytes": 1})
    assert r.status_code == 400
    r = await http.get(f"{ops}/view", params={"path": str(tmp_path / "x"), "size": 10**9})
    assert r.status_code == 413
    r = await http.get(f"{ops}/view")
    assert (r.status_code, r.json()["errorType"]) == (400, "validation")
    r = await http.post(f"{ops}/mkdir", json={"sourcePath": str(tmp_path)})
    assert r.status_code == 400
    r = await http.post(f"{ops}/mkdir", json={"path": str(tmp_path / "no" / "parent")})
    assert r.status_code == 404
    r = await http.put(f"{ops}/chmod", json={"path": str(tmp_path), "mode": "9z"})
    assert r.status_code == 400
    r = await http.post(
        f"{ops}/upload", params={"path": str(tmp_path / "nodir")}, files={"file": ("x", b"1")}
    )
    assert r.status_code == 404
    r = await http.post(f"{ops}/upload", params={"path": str(tmp_path)}, files={"file": ("x", b"")})
    assert (r.status_code, r.json()["message"]) == (
        408,
        "Command execution timeout limit exceeded.",
    )
    assert not (tmp_path / "x").exists()
    gone = tmp_path / "gone"
    gone.write_text("x")
    assert (await http.delete(f"{ops}/rm", params={"path": str(gone)})).status_code == 204
    assert not gone.exists()
    r = await http.delete(f"{ops}/rm", params={"path": str(gone)})
    assert r.status_code == 404
    assert "No such file or directory" in r.json()["message"]
    tree = tmp_path / "tree" / "sub"
    tree.mkdir(parents=True)
    (tree / "f").write_text("x")
    assert (
        await http.delete(f"{ops}/rm", params={"path": str(tmp_path / "tree")})
    ).status_code == 204
    assert not (tmp_path / "tree").exists()
    r = await http.delete(f"{ops}/rm", params={"path": "/tmp"})
    assert r.status_code == 403
    r = await http.delete(f"{ops}/rm", params={"path": "relative"})
    assert r.status_code == 400

    # Injected faults also answer ApiResponseError bodies.
    await asyncio.to_thread(
        emu.admin.set_faults,
        rules=[
            {"route": "GET /status/systems", "sequence": [429, 503, 408, 500, "after:500"]},
        ],
    )
    try:
        statuses = [(await http.get("/status/systems")).status_code for _ in range(6)]
    finally:
        await asyncio.to_thread(emu.admin.reset_faults)
    assert statuses == [429, 503, 408, 500, 500, 200]


def test_coverage(checker):
    """The tests above went through every endpoint and status this emulator serves."""
    seen = {(m, p, s) for m, p, s in checker.seen}
    want = {
        ("GET", "/status/liveness", 200),
        ("GET", "/status/systems", 200),
        ("GET", "/status/systems", 401),
        ("GET", "/status/systems", 400),
        ("GET", "/status/systems", 429),
        ("GET", "/status/systems", 503),
        ("GET", "/status/systems", 408),
        ("GET", "/status/systems", 500),
        ("GET", "/status/{system}/userinfo", 200),
        ("GET", "/status/{system}/partitions", 200),
        ("GET", "/status/{system}/reservations", 200),
        ("GET", "/status/{system}/nodes", 200),
        ("GET", "/status/{system}/nodes", 404),
        ("POST", "/compute/{system}/jobs", 201),
        ("POST", "/compute/{system}/jobs", 400),
        ("POST", "/compute/{system}/jobs", 500),
        ("GET", "/compute/{system}/jobs", 200),
        ("GET", "/compute/{system}/jobs", 400),
        ("GET", "/compute/{system}/jobs/{job_id}", 200),
        ("GET", "/compute/{system}/jobs/{job_id}", 400),
        ("GET", "/compute/{system}/jobs/{job_id}", 404),
        ("GET", "/compute/{system}/jobs/{job_id}/metadata", 200),
        ("GET", "/compute/{system}/jobs/{job_id}/metadata", 400),
        ("GET", "/compute/{system}/jobs/{job_id}/metadata", 404),
        ("DELETE", "/compute/{system}/jobs/{job_id}", 204),
        ("DELETE", "/compute/{system}/jobs/{job_id}", 400),
        ("DELETE", "/compute/{system}/jobs/{job_id}", 500),
        ("GET", "/filesystem/{system}/ops/tail", 200),
        ("GET", "/filesystem/{system}/ops/tail", 400),
        ("GET", "/filesystem/{system}/ops/head", 200),
        ("GET", "/filesystem/{system}/ops/head", 404),
        ("GET", "/filesystem/{system}/ops/view", 200),
        ("GET", "/filesystem/{system}/ops/view", 400),
        ("GET", "/filesystem/{system}/ops/view", 413),
        ("GET", "/filesystem/{system}/ops/ls", 200),
        ("GET", "/filesystem/{system}/ops/stat", 200),
        ("POST", "/filesystem/{system}/ops/mkdir", 201),
        ("POST", "/filesystem/{system}/ops/mkdir", 400),
        ("POST", "/filesystem/{system}/ops/mkdir", 404),
        ("PUT", "/filesystem/{system}/ops/chmod", 200),
        ("PUT", "/filesystem/{system}/ops/chmod", 400),
        ("POST", "/filesystem/{system}/ops/upload", 204),
        ("POST", "/filesystem/{system}/ops/upload", 404),
        ("POST", "/filesystem/{system}/ops/upload", 408),
        ("DELETE", "/filesystem/{system}/ops/rm", 204),
        ("DELETE", "/filesystem/{system}/ops/rm", 400),
        ("DELETE", "/filesystem/{system}/ops/rm", 403),
        ("DELETE", "/filesystem/{system}/ops/rm", 404),
        ("POST", "/compute/{system}/jobs", 408),
        ("GET", "/compute/{system}/jobs/{job_id}", 500),
    }
    assert want - seen == set()
