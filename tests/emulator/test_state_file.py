"""With a state file, a restarted emulator carries on: jobs, ids, keys, refresh tokens."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from firecrestspawner.emulator.backends.base import identity
from firecrestspawner.emulator.backends.processes import killpg, process_start
from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

pytestmark = pytest.mark.timeout(180)

SYS = "cluster"
EMULATOR = [sys.executable, "-m", "firecrestspawner", "emulator"]


@pytest.fixture(autouse=True)
def no_job_outlives_the_test(tmp_path) -> Iterator[None]:
    """Jobs outlive an emulator with a state file: kill those a failed test left."""
    yield
    for state_file in tmp_path.rglob("*.json"):
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            for saved in json.loads(state_file.read_text())["systems"][SYS]["jobs"]:
                pid = saved["pid"]
                if pid is not None and process_start(pid) == saved["pid_start"]:
                    killpg(pid, signal.SIGKILL)


def config(state_file: Path, **system) -> EmulatorConfig:
    system.setdefault("kill_wait", 1.0)
    return EmulatorConfig(state_file=str(state_file), systems=[SystemConfig(name=SYS, **system)])


def client(emu: RunningEmulator, user: str, token: str | None = None) -> httpx.Client:
    token = token or emu.issue_access_token(user)
    return httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def submit(http: httpx.Client, workdir: Path, body: str) -> str:
    script = f"#!/bin/bash\n#SBATCH --job-name=restart\n{body}\n"
    r = http.post(
        f"/compute/{SYS}/jobs", json={"job": {"workingDirectory": str(workdir), "script": script}}
    )
    assert r.status_code == 201, r.text
    return r.json()["jobId"]


def job(http: httpx.Client, job_id: str) -> dict:
    r = http.get(f"/compute/{SYS}/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()["jobs"][0]


def wait_state(http: httpx.Client, job_id: str, prefix: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        current = job(http, job_id)
        if current["status"]["state"].startswith(prefix):
            return current
        assert time.monotonic() < deadline, f"job {job_id} never {prefix}: {current['status']}"
        time.sleep(0.1)


def password_grant(emu: RunningEmulator, user: str) -> dict:
    r = httpx.post(
        emu.token_url,
        data={"grant_type": "password", "username": user, "password": "any"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def refresh_grant(emu: RunningEmulator, refresh_token: str) -> httpx.Response:
    return httpx.post(
        emu.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=30,
    )


def test_restart_mid_job_keeps_jobs_ids_and_logins(tmp_path):
    state_file = tmp_path / "state" / "emulator.json"
    flag = tmp_path / "finish"
    cfg = config(state_file)
    with running_emulator(cfg) as emu:
        tokens = password_grant(emu, "lou")
        with client(emu, "lou", tokens["access_token"]) as http:
            waiting = submit(
                http, tmp_path, f"while [ ! -e {flag} ]; do sleep 0.1; done; echo done; exit 3"
            )
            sleeping = submit(http, tmp_path, "sleep 300")
            wait_state(http, waiting, "RUNNING")
            before = wait_state(http, sleeping, "RUNNING")
    # The jobs outlived the emulator, as Slurm jobs outlive a FirecREST restart.
    with running_emulator(cfg) as emu:
        # The access token from before the restart is still signed by a known key.
        with client(emu, "lou", tokens["access_token"]) as http:
            after = job(http, sleeping)
            assert after["status"]["state"] == "RUNNING"
            assert {k: after[k] for k in ("jobId", "user", "name")} == {
                k: before[k] for k in ("jobId", "user", "name")
            }
            assert after["time"]["start"] == before["time"]["start"]
            assert {j["jobId"] for j in http.get(f"/compute/{SYS}/jobs").json()["jobs"]} >= {
                waiting,
                sleeping,
            }
            # Ids carry on: never 1 again.
            newer = submit(http, tmp_path, "true")
            assert int(newer) > int(sleeping) > int(waiting)
            # An adopted job's end is seen, with its exit code.
            flag.touch()
            ended = wait_state(http, waiting, "FAILED")
            assert ended["status"]["exitCode"] == 3
            assert (tmp_path / f"slurm-{waiting}.out").read_text() == "done\n"
            # And an adopted job can be cancelled.
            assert http.delete(f"/compute/{SYS}/jobs/{sleeping}").status_code == 204
            cancelled = wait_state(http, sleeping, "CANCELLED")
            assert cancelled["status"]["state"] == f"CANCELLED by {identity('lou').uid}"
            wait_state(http, newer, "COMPLETED")
        # The refresh token issued before the restart still works (and rotates).
        r = refresh_grant(emu, tokens["refresh_token"])
        assert r.status_code == 200, r.text
        assert r.json()["refresh_token"] != tokens["refresh_token"]
    text = state_file.read_text()
    assert tokens["refresh_token"] not in text  # kept as a digest only
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    # Written whole and renamed: no temporary file is left behind.
    assert sorted(p.name for p in state_file.parent.iterdir()) == [
        "emulator.json",
        "emulator.json.lock",
        "emulator.json.spool",
    ]


def test_jobs_that_end_while_the_emulator_is_down_are_finished_on_restart(tmp_path):
    state_file = tmp_path / "state.json"
    flag = tmp_path / "go"
    cfg = config(state_file)
    with running_emulator(cfg) as emu, client(emu, "lou") as http:
        ok = submit(http, tmp_path, f"while [ ! -e {flag} ]; do sleep 0.1; done")
        bad = submit(http, tmp_path, f"while [ ! -e {flag} ]; do sleep 0.1; done; exit 7")
        wait_state(http, ok, "RUNNING")
        wait_state(http, bad, "RUNNING")
        pids = {j["job_id"]: j["pid"] for j in _saved_jobs(state_file)}
    flag.touch()
    for pid in pids.values():
        _wait_gone(pid)
    with running_emulator(cfg) as emu, client(emu, "lou") as http:
        assert job(http, ok)["status"]["state"] == "COMPLETED"
        failed = job(http, bad)
        assert failed["status"]["state"] == "FAILED"
        assert failed["status"]["exitCode"] == 7


def test_refresh_tokens_rotated_or_revoked_before_a_restart_stay_invalid(tmp_path):
    cfg = config(tmp_path / "state.json")
    with running_emulator(cfg) as emu:
        first = password_grant(emu, "lou")["refresh_token"]
        second = refresh_grant(emu, first).json()["refresh_token"]
        revoked = emu.issue_refresh_token("max")
        assert emu.admin.revoke(refresh_token=revoked) == 1
    with running_emulator(cfg) as emu:
        assert refresh_grant(emu, first).status_code == 400
        assert refresh_grant(emu, revoked).status_code == 400
        assert refresh_grant(emu, second).status_code == 200


def test_a_second_emulator_may_not_share_the_state_file(tmp_path):
    cfg = config(tmp_path / "state.json")
    in_use = r"state\.json is in use by another emulator"
    with running_emulator(cfg), pytest.raises(RuntimeError, match=in_use), running_emulator(cfg):
        pass


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 99}', "version 99"),
        ('{"version": 1, "idp": {"key": {"kty": "nonsense"}}}', "idp"),
        ('{"version": 1, "systems": {"cluster": {"backend": "local", "jobs": [{}]}}}', "cluster"),
    ],
)
def test_a_corrupt_state_file_is_a_clear_error_naming_it(tmp_path, content, why):
    state_file = tmp_path / "state.json"
    state_file.write_text(content)
    with pytest.raises(RuntimeError) as e, running_emulator(config(state_file)):
        pass
    message = str(e.value)
    assert str(state_file) in message
    assert why in message
    assert "move it away" in message
    # The file is left as it was, for the admin to look at.
    assert state_file.read_text() == content


def test_cli_refuses_a_corrupt_state_file_with_exit_status_2(tmp_path):
    state_file = tmp_path / "state.json"
    state_file.write_text("{not json")
    result = subprocess.run(
        [*EMULATOR, "--port", "0", "--state-file", str(state_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"state file {state_file} is not a valid emulator state" in result.stderr
    assert "Traceback" not in result.stderr


def _saved_jobs(state_file: Path) -> list[dict]:
    jobs = json.loads(state_file.read_text())["systems"][SYS]["jobs"]
    return [{"job_id": j["record"]["job_id"], "pid": j["pid"]} for j in jobs]


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else ""
        if "State:\tZ" in status:
            return
        assert time.monotonic() < deadline, f"process {pid} never ended"
        time.sleep(0.1)


@pytest.mark.slurm
def test_slurm_backend_restart_while_a_slurm_job_runs(slurm, tmp_path):
    """Slurm keeps the job; the state keeps whose it is (also a token user without an account)."""
    alice = "fsp-alice"
    home = Path(pwd.getpwnam(alice).pw_dir) / "emulator-tests"
    home.mkdir(exist_ok=True)
    os.chown(home, pwd.getpwnam(alice).pw_uid, pwd.getpwnam(alice).pw_gid)
    tmp_path.chmod(0o755)
    cfg = config(tmp_path / "state.json", backend="slurm", cluster_name="fsp")
    with running_emulator(cfg) as emu:
        with client(emu, alice) as http:
            theirs = submit(http, home, "sleep 300")
            wait_state(http, theirs, "RUNNING")
        with client(emu, "no-such-account") as http:
            accountless = submit(http, tmp_path, "sleep 300")
            before = wait_state(http, accountless, "RUNNING")
    try:
        with running_emulator(cfg) as emu:
            with client(emu, "no-such-account") as http:
                after = job(http, accountless)
                assert after["status"]["state"] == "RUNNING"
                assert after["user"] == "no-such-account"  # not the account it runs as
                assert after["time"]["start"] == before["time"]["start"]
                listed = [j["jobId"] for j in http.get(f"/compute/{SYS}/jobs").json()["jobs"]]
                assert listed == [accountless]
                newer = submit(http, tmp_path, "true")
                assert int(newer) > int(accountless)
                assert http.delete(f"/compute/{SYS}/jobs/{accountless}").status_code == 204
                wait_state(http, accountless, "CANCELLED")
            with client(emu, alice) as http:
                assert job(http, theirs)["status"]["state"] == "RUNNING"
                assert http.delete(f"/compute/{SYS}/jobs/{theirs}").status_code == 204
                cancelled = wait_state(http, theirs, "CANCELLED")
                assert cancelled["status"]["state"] == f"CANCELLED by {pwd.getpwnam(alice).pw_uid}"
    finally:
        for job_id in (theirs, accountless):
            subprocess.run(["scancel", job_id], capture_output=True, check=False, timeout=30)
