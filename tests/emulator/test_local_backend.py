"""Details of the in-process scheduler (the ``local`` backend)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from firecrestspawner.emulator.config import EmulatorConfig, PartitionConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name="cluster",
                kill_wait=0.5,
                partitions=[
                    PartitionConfig(name="normal", default=True),
                    PartitionConfig(name="short", max_time=60),
                    PartitionConfig(name="secret", hidden=True),
                ],
            )
        ]
    )
    with running_emulator(config) as e:
        yield e


@pytest.fixture(scope="module")
def http(emu) -> Iterator[httpx.Client]:
    token = emu.issue_access_token("lou")
    with httpx.Client(
        base_url=f"{emu.url}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        yield c


def submit(http: httpx.Client, **job) -> str:
    r = http.post("/compute/cluster/jobs", json={"job": job})
    assert r.status_code == 201, r.text
    return r.json()["jobId"]


def wait(http: httpx.Client, job_id: str, prefix: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = http.get(f"/compute/cluster/jobs/{job_id}").json()["jobs"][0]
        if job["status"]["state"].startswith(prefix):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id}: {job.get('status')}")


def test_time_limit_escalates_to_sigkill(http, tmp_path):
    """A job that ignores SIGTERM is killed after kill_wait and ends TIMEOUT."""
    script = "#!/bin/bash\n#SBATCH --time=0:01\ntrap 'echo got TERM' TERM\nwhile true; do sleep 0.1; done\n"
    out = tmp_path / "t.out"
    job_id = submit(http, workingDirectory=str(tmp_path), script=script, standardOutput=str(out))
    job = wait(http, job_id, "TIMEOUT")
    assert job["status"]["stateReason"] == "TimeLimit"
    assert "got TERM" in out.read_text()


def test_partition_time_limit_keeps_job_pending(http, tmp_path):
    script = "#!/bin/bash\n#SBATCH --time=2:00:00\n#SBATCH --partition=short\ntrue\n"
    job_id = submit(http, workingDirectory=str(tmp_path), script=script)
    job = wait(http, job_id, "PENDING")
    assert job["status"]["stateReason"] == "PartitionTimeLimit"
    assert job["partition"] == "short"
    assert job["time"]["limit"] == 7200
    assert http.delete(f"/compute/cluster/jobs/{job_id}").status_code == 204


def test_request_fields_override_sbatch_lines(http, tmp_path):
    script = "#!/bin/bash\n#SBATCH --job-name=from-script\n#SBATCH --output=script.out\necho hi\n"
    job_id = submit(
        http,
        workingDirectory=str(tmp_path),
        script=script,
        name="from-request",
        standardOutput="request-%j.out",
        partition="short",
    )
    job = wait(http, job_id, "COMPLETED")
    assert job["name"] == "from-request"
    assert job["partition"] == "short"
    assert (tmp_path / f"request-{job_id}.out").read_text() == "hi\n"
    assert not (tmp_path / "script.out").exists()


def test_script_path_and_missing_working_directory(http, tmp_path):
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash\necho from-file\n")
    job_id = submit(http, workingDirectory=str(tmp_path), scriptPath=str(path))
    wait(http, job_id, "COMPLETED")
    assert (tmp_path / f"slurm-{job_id}.out").read_text() == "from-file\n"
    gone = submit(http, workingDirectory=str(tmp_path / "nope"), script="#!/bin/bash\ntrue\n")
    assert wait(http, gone, "FAILED")["status"]["exitCode"] == 1


def test_hidden_partitions(http):
    names = [p["name"] for p in http.get("/status/cluster/partitions").json()["partitions"]]
    assert names == ["normal", "short"]
    shown = http.get("/status/cluster/partitions", params={"show_hidden": "true"}).json()
    assert [p["name"] for p in shown["partitions"]] == ["normal", "short", "secret"]


def test_cancel_someone_elses_job_is_refused(emu, http, tmp_path):
    job_id = submit(http, workingDirectory=str(tmp_path), script="#!/bin/bash\nsleep 30\n")
    other = {"Authorization": f"Bearer {emu.issue_access_token('mallory')}"}
    r = http.delete(f"/compute/cluster/jobs/{job_id}", headers=other)
    assert r.status_code == 500
    assert "Access/permission denied" in r.json()["message"]
    # Everyone may read it (Slurm without PrivateData), only the owner lists it.
    assert http.get(f"/compute/cluster/jobs/{job_id}", headers=other).status_code == 200
    listed = http.get("/compute/cluster/jobs", headers=other).json()["jobs"]
    assert job_id not in [j["jobId"] for j in listed]
    assert http.delete(f"/compute/cluster/jobs/{job_id}").status_code == 204


def test_operator_cancels_someone_elses_job(emu, http, tmp_path):
    """A token user listed in ``operators`` may cancel any job (a Slurm operator)."""
    job_id = submit(http, workingDirectory=str(tmp_path), script="#!/bin/bash\nsleep 30\n")
    wait(http, job_id, "RUNNING")
    operator = {"Authorization": f"Bearer {emu.issue_access_token('site-sa')}"}
    before = http.delete(f"/compute/cluster/jobs/{job_id}", headers=operator)
    assert before.status_code == 500  # not an operator yet
    assert "Access/permission denied" in before.json()["message"]
    emu.admin.set_system("cluster", operators=["site-sa"])
    try:
        # Operators see every user's jobs with allusers=true, not their own list.
        listed = http.get(
            "/compute/cluster/jobs", headers=operator, params={"allusers": "true"}
        ).json()["jobs"]
        assert job_id in [j["jobId"] for j in listed]
        r = http.delete(f"/compute/cluster/jobs/{job_id}", headers=operator)
        assert r.status_code == 204, r.text
        job = wait(http, job_id, "CANCELLED")
        assert job["killRequestUser"] == "site-sa"
        assert job["user"] == "lou"
        # Being an operator on one name gives nothing to other users.
        other = submit(http, workingDirectory=str(tmp_path), script="#!/bin/bash\nsleep 30\n")
        mallory = {"Authorization": f"Bearer {emu.issue_access_token('mallory')}"}
        refused = http.delete(f"/compute/cluster/jobs/{other}", headers=mallory)
        assert refused.status_code == 500
        assert http.delete(f"/compute/cluster/jobs/{other}").status_code == 204
    finally:
        emu.admin.set_system("cluster", operators=[])


def test_operators_default_to_nobody():
    assert SystemConfig().operators == []
    loaded = EmulatorConfig.model_validate(
        {"systems": [{"name": "c", "operators": ["firecrestspawner"]}]}
    )
    assert loaded.systems[0].operators == ["firecrestspawner"]


def test_rest_mode_cancel_of_unknown_job_is_404():
    config = EmulatorConfig(systems=[SystemConfig(connection_mode="rest")])
    with running_emulator(config) as emu:
        h = {"Authorization": f"Bearer {emu.issue_access_token('x')}"}
        r = httpx.delete(f"{emu.url}/compute/cluster/jobs/12345", headers=h)
        assert (r.status_code, r.json()["message"]) == (404, "Job not found")


def test_system_changes_at_run_time(emu, http, tmp_path):
    """Health and capacity change through the admin API (e.g. to stall the queue)."""
    emu.admin.set_system("cluster", healthy=False, slots=0)
    try:
        health = http.get("/status/systems").json()["systems"][0]["servicesHealth"]
        assert health[0]["healthy"] is False
        job_id = submit(http, workingDirectory=str(tmp_path), script="#!/bin/bash\ntrue\n")
        deadline = time.monotonic() + 10
        while wait(http, job_id, "PENDING")["status"]["stateReason"] != "Resources":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        emu.admin.set_system("cluster", slots=4)
        wait(http, job_id, "COMPLETED")
    finally:
        emu.admin.set_system("cluster", healthy=True, slots=4)
    with pytest.raises(RuntimeError, match="cannot change"):
        emu.admin.set_system("cluster", backend="slurm")


def test_cancel_refusal_is_scancel_verbose_text(emu, http, tmp_path):
    """FirecREST runs ``scancel --verbose``: "Terminating job N" comes before the error."""
    job_id = submit(http, workingDirectory=str(tmp_path), script="#!/bin/bash\nsleep 30\n")
    other = {"Authorization": f"Bearer {emu.issue_access_token('mallory')}"}
    r = http.delete(f"/compute/cluster/jobs/{job_id}", headers=other)
    assert (r.status_code, r.json()["message"]) == (
        500,
        (
            "Unexpected Slurm command response. exit_status:1 std_err:"
            f"scancel: Terminating job {job_id}\n"
            f"scancel: error: Kill job error on job id {job_id}: Access/permission denied\n"
        ),
    )
    assert http.delete(f"/compute/cluster/jobs/{job_id}").status_code == 204


@pytest.mark.parametrize(
    ("directive", "accepted"),
    [
        pytest.param("#SBATCH --nosuch=1", False, id="unknown-long"),
        pytest.param("#SBATCH -Z", False, id="unknown-short"),
        pytest.param("#SBATCH --mem=1G --nosuch", False, id="unknown-after-known"),
        pytest.param("#SBATCH --mem=1G", True, id="known"),
        pytest.param("#SBATCH --part=normal", True, id="getopt-abbreviation"),
        pytest.param("#SBATCH --uenv=prgenv/24:v1", True, id="plugin-option"),
        pytest.param("# SBATCH --nosuch", True, id="not-a-directive"),
    ],
)
def test_unknown_sbatch_option_is_refused_like_sbatch(http, tmp_path, directive, accepted):
    script = f"#!/bin/bash\n{directive}\ntrue\n"
    r = http.post(
        "/compute/cluster/jobs", json={"job": {"workingDirectory": str(tmp_path), "script": script}}
    )
    if accepted:
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 500
    message = r.json()["message"]
    assert message.startswith(
        "Unexpected Slurm command response. exit_status:255 std_err:sbatch: unrecognized option"
    )
    assert 'Try "sbatch --help" for more information' in message


def test_userinfo_accounts_and_the_account_jobs_are_charged_to(tmp_path):
    """``accounts`` and ``default_account`` per user, as sacctmgr reports them."""
    config = EmulatorConfig(
        systems=[
            SystemConfig(
                accounts={"*": ["proj1", "proj2"], "nodefault": ["a1"], "none": []},
                default_account={"*": "proj2", "nodefault": None},
            )
        ]
    )
    with running_emulator(config) as emu:

        def client(user):
            token = emu.issue_access_token(user)
            return httpx.Client(
                base_url=emu.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )

        with client("lou") as lou, client("nodefault") as nd, client("none") as none:
            assert lou.get("/status/cluster/userinfo").json()["accounts"] == [
                {"name": "proj1", "default": False},
                {"name": "proj2", "default": True},
            ]
            assert nd.get("/status/cluster/userinfo").json()["accounts"] == [
                {"name": "a1", "default": False}
            ]
            assert none.get("/status/cluster/userinfo").json()["accounts"] is None

            script = "#!/bin/bash\ntrue\n"
            wd = str(tmp_path)
            # No --account: Slurm charges the default account.
            job_id = submit(lou, workingDirectory=wd, script=script)
            assert lou.get(f"/compute/cluster/jobs/{job_id}").json()["jobs"][0]["account"] == (
                "proj2"
            )
            job_id = submit(lou, workingDirectory=wd, script="#!/bin/bash\n#SBATCH -A proj1\n")
            assert lou.get(f"/compute/cluster/jobs/{job_id}").json()["jobs"][0]["account"] == (
                "proj1"
            )
            for http, job in (
                (lou, {"script": script, "account": "other"}),
                (nd, {"script": script}),  # no default account and none given
            ):
                r = http.post(
                    "/compute/cluster/jobs", json={"job": {"workingDirectory": wd, **job}}
                )
                assert r.status_code == 500
                assert (
                    "sbatch: error: Batch job submission failed: Invalid account or "
                    "account/partition combination specified" in r.json()["message"]
                )
            # Without accounting any account (or none) is accepted.
            job_id = submit(none, workingDirectory=wd, script=script)
            assert none.get(f"/compute/cluster/jobs/{job_id}").json()["jobs"][0]["account"] == (
                "(null)"
            )


def test_users_without_ssh_credentials_get_500():
    """``ssh_users``: the server has keys for these users only (default: everyone)."""
    assert SystemConfig().ssh_users is None
    config = EmulatorConfig(systems=[SystemConfig(ssh_users=["alice"])])
    # The message differs per endpoint as on FirecREST 2.5.6 (measured by
    # tests/real/test_differential.py): wrapped, the exception's text, its args.
    messages = {
        "/status/cluster/userinfo": "Error executing Slurm command.",
        "/compute/cluster/jobs": "Error executing Slurm command.",
        "/status/cluster/partitions": "No SSH credentials found for user:bob",
        "/filesystem/cluster/ops/stat?path=/tmp": "('No SSH credentials found for user:bob',)",
    }
    with running_emulator(config) as emu:
        for user, status in (("alice", 200), ("bob", 500)):
            h = {"Authorization": f"Bearer {emu.issue_access_token(user)}"}
            for path, message in messages.items():
                r = httpx.get(f"{emu.url}{path}", headers=h)
                assert (user, path, r.status_code) == (user, path, status)
                if status == 500:
                    assert r.json()["message"] == message
            # Listing systems needs no SSH session.
            assert httpx.get(f"{emu.url}/status/systems", headers=h).status_code == 200


def test_missing_script_waits_for_stdin_then_408(tmp_path):
    """``stdin_wait``: the real server answers after its SSH command timeout."""
    config = EmulatorConfig(systems=[SystemConfig(stdin_wait=0.5)])
    with running_emulator(config) as emu:
        h = {"Authorization": f"Bearer {emu.issue_access_token('lou')}"}
        started = time.monotonic()
        r = httpx.post(
            f"{emu.url}/compute/cluster/jobs",
            headers=h,
            json={"job": {"workingDirectory": str(tmp_path)}},
        )
        assert (r.status_code, r.json()["message"]) == (
            408,
            "Command execution timeout limit exceeded.",
        )
        assert time.monotonic() - started >= 0.5
