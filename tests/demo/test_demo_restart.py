"""The demo's emulator keeps its state file: restarted, it still knows the jobs and logins.

Separate processes, as the demo runs them: the restarted emulator is not the
parent of the job it adopts.
"""

from __future__ import annotations

import time

import httpx
import pytest

from firecrestspawner.demo import CLIENT_ID, DemoOptions, DemoStack

pytestmark = pytest.mark.timeout(180)


def wait_state(http: httpx.Client, path: str, prefix: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = http.get(path).json()["jobs"][0]
        if job["status"]["state"].startswith(prefix):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_restarted_demo_emulator_keeps_jobs_ids_and_refresh_tokens(tmp_path):
    stack = DemoStack(DemoOptions(backend="local", base_dir=tmp_path / "demo"))
    stack.write_config()
    assert stack.emulator_settings()["state_file"] == str(stack.hub_dir / "emulator-state.json")
    flag = tmp_path / "finish"
    workdir = tmp_path / "work"
    workdir.mkdir()
    script = f"#!/bin/bash\nwhile [ ! -e {flag} ]; do sleep 0.1; done\n"
    system = stack.system_names()[0]
    jobs = f"/compute/{system}/jobs"
    try:
        stack.start_emulator()
        grant = httpx.post(
            stack.token_url,
            data={
                "grant_type": "password",
                "username": "lou",
                "password": "x",
                "client_id": CLIENT_ID,
                "client_secret": stack.client_secret,
            },
            timeout=30,
        ).json()
        auth = {"Authorization": f"Bearer {grant['access_token']}"}
        with httpx.Client(base_url=stack.emulator_url, headers=auth, timeout=60) as http:
            body = {"job": {"workingDirectory": str(workdir), "script": script}}
            first = http.post(jobs, json=body).json()["jobId"]
            wait_state(http, f"{jobs}/{first}", "RUNNING")
        stack.stop_emulator()
        stack.start_emulator()
        with httpx.Client(base_url=stack.emulator_url, headers=auth, timeout=60) as http:
            assert http.get(f"{jobs}/{first}").json()["jobs"][0]["status"]["state"] == "RUNNING"
            body = {"job": {"workingDirectory": str(workdir), "script": "#!/bin/bash\ntrue\n"}}
            second = http.post(jobs, json=body).json()["jobId"]
            assert int(second) > int(first)
            flag.touch()
            wait_state(http, f"{jobs}/{first}", "COMPLETED")
        refreshed = httpx.post(
            stack.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": grant["refresh_token"],
                "client_id": CLIENT_ID,
                "client_secret": stack.client_secret,
            },
            timeout=30,
        )
        assert refreshed.status_code == 200, refreshed.text
    finally:
        flag.touch()
        stack.stop()
