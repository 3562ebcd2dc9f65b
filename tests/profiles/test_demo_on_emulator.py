"""The demo profile's script, rendered by the built-in template, runs on the emulator's local scheduler."""

from __future__ import annotations

import base64
import getpass
import time
from pathlib import Path

import httpx

from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig
from firecrestspawner.emulator.testing import running_emulator
from firecrestspawner.profiles import load_profile_file
from firecrestspawner.profiles.options import UserInfo, validate_options
from firecrestspawner.profiles.script import log_path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_demo_script_runs_on_local_backend(tmp_path: Path) -> None:
    ps = load_profile_file(ROOT / "profiles" / "demo.yaml")
    user = getpass.getuser()
    vo = validate_options(ps, {"profile": "notebook", "partition": "debug"}, user=UserInfo(user))
    job_name = f"fcs.test.{user}._.abc123"
    workdir = str(tmp_path)
    script = vo.render_script(
        cmd='echo "scopes=$JUPYTERHUB_OAUTH_SCOPES access=$JUPYTERHUB_OAUTH_ACCESS_SCOPES"',
        job_name=job_name,
        workdir=workdir,
    )
    config = EmulatorConfig(systems=[SystemConfig(name="local", node_name="127.0.0.1")])
    with running_emulator(config) as emu:
        token = emu.issue_access_token(user)
        headers = {"Authorization": f"Bearer {token}"}
        env = {
            "JUPYTERHUB_OAUTH_SCOPES": base64.b64encode(b'["a","b"]').decode(),
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": base64.b64encode(b'["c"]').decode(),
        }
        with httpx.Client(base_url=emu.url, headers=headers, timeout=30) as client:
            resp = client.post(
                "/compute/local/jobs",
                json={"job": {"script": script, "workingDirectory": workdir, "env": env}},
            )
            assert resp.status_code == 201, resp.text
            job_id = resp.json()["jobId"]
            deadline = time.monotonic() + 60
            state = ""
            while time.monotonic() < deadline:
                resp = client.get(f"/compute/local/jobs/{job_id}")
                if resp.status_code == 200:
                    job = resp.json()["jobs"][0]
                    state = job["status"]["state"]
                    if state.startswith(("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")):
                        break
                time.sleep(0.2)
    assert state == "COMPLETED", state
    assert job["name"] == job_name
    assert job["partition"] == "debug"
    log = Path(log_path(workdir, job_name)).read_text()
    assert 'scopes=["a","b"] access=["c"]' in log
