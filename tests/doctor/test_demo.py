"""``firecrestspawner doctor --probe`` on the demo's own configuration, as a site runs it.

The command runs as a separate process, pointed at the ``jupyterhub_config.py``
the demo writes, with the secret the file reads from the environment given by
``--env-file`` and the user's token in ``$FIRECRESTSPAWNER_DOCTOR_TOKEN``:
first with the hub stopped (the doctor stands in for the hub's API), then with
the hub running (the probe GETs the real hub API from the job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from firecrestspawner.demo import CLIENT_ID, DemoOptions, DemoStack, free_port

pytestmark = [pytest.mark.chp, pytest.mark.timeout(600)]


@pytest.fixture
def stack(tmp_path: Path, chp: str) -> Iterator[DemoStack]:
    demo = DemoStack(DemoOptions(port=free_port(), backend="local", base_dir=tmp_path / "demo"))
    demo.write_config()
    try:
        yield demo
    finally:
        demo.stop()


def run_doctor(stack: DemoStack, *args: str) -> tuple[int, dict, str]:
    token = stack.admin(
        "POST", "tokens", json={"username": "alice", "type": "refresh", "client_id": CLIENT_ID}
    )["token"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRECRESTSPAWNER_DEMO")}
    env["FIRECRESTSPAWNER_DOCTOR_TOKEN"] = token
    argv = [sys.executable, "-m", "firecrestspawner", "doctor", "-f", str(stack.hub_config),
            "--env-file", str(stack.hub_env_file), "--user", "alice", *args]  # fmt: skip
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
    assert token not in result.stdout + result.stderr
    assert stack.client_secret not in result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def test_doctor_probe_passes_on_the_demo_with_the_hub_stopped_and_running(stack: DemoStack):
    stack.start_emulator()
    code, report, err = run_doctor(stack, "--probe", "--json")
    assert code == 0, (report, err)
    probe = next(s for s in report["steps"] if s["id"] == "probe")
    assert probe["status"] == "pass"
    assert "the doctor listens in its place" in probe["detail"]
    assert {s["id"] for s in report["steps"] if s["status"] == "pass"} >= {
        "firecrest", "sa-token", "systems", "sa-list", "user-credential", "workdir",
        "sa-operator", "node-names", "probe",
    }  # fmt: skip

    stack.start_hub()
    code, report, err = run_doctor(stack, "--probe", "--json")
    assert code == 0, (report, err)
    probe = next(s for s in report["steps"] if s["id"] == "probe")
    assert probe["status"] == "pass"
    assert "the hub is running (JupyterHub" in probe["detail"]
    assert (
        f"node -> hub API: GET http://127.0.0.1:{stack.hub_port}/hub/api answered 200"
        in (probe["detail"])
    )
