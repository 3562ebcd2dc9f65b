"""Jobs start with a login's environment plus the submit's, never the emulator's secrets.

The emulator runs as a separate process (as the demo runs it) whose
environment holds the hub's secrets; a job dumps its whole environment and
none of those values, nor the emulator's own secrets (admin token, client
secret), may appear in it, nor any variable a login would not have.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from firecrestspawner.demo import free_port
from firecrestspawner.emulator.backends.environment import PASSED_THROUGH
from firecrestspawner.emulator.config import EmulatorConfig, IdpClient, IdpConfig, SystemConfig

pytestmark = pytest.mark.timeout(180)

#: What the demo hub's environment holds (and a site's may), each a fresh random value.
HUB_SECRETS = (
    "JUPYTERHUB_CRYPT_KEY",
    "FIRECRESTSPAWNER_DEMO_CLIENT_SECRET",
    "FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN",
    "SA_CLIENT_SECRET",
    "JUPYTERHUB_API_TOKEN",
)
LOGIN = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG"}
#: What the spawner sends in the submit's ``env``.
SUBMITTED = {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "FSP_PROBE": "from-submit"}


class EmulatorProcess:
    """``firecrestspawner emulator --config`` in its own process, with a given environment."""

    def __init__(self, tmp: Path, backend: str, environ: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_secret = secrets.token_urlsafe(24)
        self.config = EmulatorConfig(
            port=self.port,
            systems=[SystemConfig(name="cluster", backend=backend)],  # type: ignore[arg-type]
            idp=IdpConfig(clients={"hub": IdpClient(secret=self.client_secret)}),
        )
        config_file = tmp / "emulator.json"
        config_file.write_text(self.config.model_dump_json())
        self.environ = environ
        self.log = tmp / "emulator.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "firecrestspawner",
                    "emulator",
                    "--config",
                    str(config_file),
                ],
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/idp/jwks", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the emulator never answered: {self.log}"
            time.sleep(0.2)

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.config.admin_token}"}
        return httpx.request(
            method, f"{self.url}/_emulator/{path}", headers=headers, timeout=30, **kwargs
        )

    def client(self, user: str) -> httpx.Client:
        token = self.admin("POST", "tokens", json={"username": user, "type": "access"})
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token.json()['token']}"},
            timeout=60,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def hub_secrets() -> dict[str, str]:
    return {name: f"secret-{name.lower()}-{secrets.token_hex(16)}" for name in HUB_SECRETS}


@contextlib.contextmanager
def emulator_with_secrets(
    tmp: Path, backend: str, hub_secrets: dict[str, str]
) -> Iterator[EmulatorProcess]:
    environ = {
        **{k: os.environ[k] for k in ("PATH", "HOME", "PYTHONPATH") if k in os.environ},
        **hub_secrets,
        "TZ": "UTC",
        "EMULATOR_ONLY_SETTING": "must-not-reach-jobs",
    }
    emu = EmulatorProcess(tmp, backend, environ)
    try:
        yield emu
    finally:
        emu.stop()


def dump_job_environment(emu: EmulatorProcess, user: str, workdir: Path) -> bytes:
    """Submit a job that writes ``env -0`` to a file; return the file once the job ended."""
    out = workdir / f"env-{secrets.token_hex(4)}.txt"
    script = f"#!/bin/bash\n#SBATCH --job-name=envdump\nenv -0 > {out}\n"
    with emu.client(user) as http:
        r = http.post(
            "/compute/cluster/jobs",
            json={"job": {"workingDirectory": str(workdir), "script": script, "env": SUBMITTED}},
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["jobId"]
        deadline = time.monotonic() + 90
        while True:
            job = http.get(f"/compute/cluster/jobs/{job_id}").json()["jobs"][0]
            if job["status"]["state"] == "COMPLETED":
                break
            assert not job["status"]["state"].startswith(("FAILED", "CANCELLED")), job
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
    return out.read_bytes()


def check_no_secret_reaches_the_job(
    dump: bytes, emu: EmulatorProcess, hub_secrets: dict[str, str], account: str
) -> None:
    for value in [*hub_secrets.values(), emu.client_secret, emu.config.admin_token]:
        assert value.encode() not in dump
    env = dict(entry.split("=", 1) for entry in dump.decode().split("\0") if entry)
    # No variable of the emulator's reaches the job but what a login has too
    # (the account's own shell start-up files may add theirs).
    leaked = set(env) & set(emu.environ) - LOGIN - set(SUBMITTED) - set(PASSED_THROUGH)
    assert leaked == set()
    entry = pwd.getpwnam(account)
    assert env["HOME"] == entry.pw_dir
    assert env["USER"] == env["LOGNAME"] == account
    assert env["SHELL"] == entry.pw_shell
    assert env["TZ"] == "UTC"  # passed through, as a login on the cluster has it
    assert {k: env[k] for k in SUBMITTED} == SUBMITTED
    assert "PYTHONPATH" not in env  # the emulator's, not the submit's


def test_local_job_gets_a_login_environment_and_no_hub_secret(tmp_path, hub_secrets):
    workdir = tmp_path / "work"
    workdir.mkdir()
    with emulator_with_secrets(tmp_path, "local", hub_secrets) as emu:
        dump = dump_job_environment(emu, "lou", workdir)
    own_account = pwd.getpwuid(os.geteuid()).pw_name
    check_no_secret_reaches_the_job(dump, emu, hub_secrets, own_account)


@pytest.mark.slurm
def test_slurm_job_gets_a_login_environment_and_no_hub_secret(slurm, tmp_path, hub_secrets):
    """sbatch ``--export=ALL`` hands sbatch's environment on: it must be a login's.

    Both ways the backend submits: as the token's Unix user (runuser), and as
    the emulator's own account for a token user without one (the e2e hub's users).
    """
    alice = "fsp-alice"
    home = Path(pwd.getpwnam(alice).pw_dir) / "emulator-tests"
    home.mkdir(exist_ok=True)
    os.chown(home, pwd.getpwnam(alice).pw_uid, pwd.getpwnam(alice).pw_gid)
    tmp_path.chmod(0o755)
    with emulator_with_secrets(tmp_path, "slurm", hub_secrets) as emu:
        as_alice = dump_job_environment(emu, alice, home)
        as_emulator = dump_job_environment(emu, "no-such-account", tmp_path)
    check_no_secret_reaches_the_job(as_alice, emu, hub_secrets, alice)
    check_no_secret_reaches_the_job(
        as_emulator, emu, hub_secrets, pwd.getpwuid(os.geteuid()).pw_name
    )
