"""Server behaviour around the endpoints: headers, paths, bodies, counters, versions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firecrestspawner.emulator.config import EmulatorConfig, SystemConfig, load_config
from firecrestspawner.emulator.testing import running_emulator


def auth(emu, user="alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.issue_access_token(user)}"}


def wait_state(emu, job_id, headers, prefix, timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{emu.url}/compute/cluster/jobs/{job_id}", headers=headers)
        if r.status_code == 200 and r.json()["jobs"][0]["status"]["state"].startswith(prefix):
            return r.json()["jobs"][0]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {prefix}")


REQUEST_ID = "0b6a3e8c-3f7c-4a59-9d43-6f1a2f5c9e10"
CORRELATION_ID = "8e355920-ceb4-5d51-9cf2-9563ca979ab1"


def test_headers(emulator):
    h = auth(emulator) | {"X-Request-ID": REQUEST_ID, "X-Correlation-ID": CORRELATION_ID}
    r = httpx.get(f"{emulator.url}/status/systems", headers=h)
    assert r.headers["F7T-AppVersion"] == "2.5.6"
    assert r.headers["F7T-AuthUsername"] == "alice"
    assert r.headers["F7T-Timestamp"]
    assert r.headers["X-Request-ID"] == REQUEST_ID
    assert r.headers["X-Correlation-ID"] == CORRELATION_ID
    r = httpx.get(f"{emulator.url}/status/systems")
    assert r.status_code == 401
    assert "F7T-AuthUsername" not in r.headers
    assert r.headers["F7T-AppVersion"] == "2.5.6"


@pytest.mark.parametrize("header", ["X-Correlation-ID", "X-Request-ID"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("fcs.jupyterhub.alice..abc123", id="job-name"),
        pytest.param("corr-1", id="word"),
        pytest.param("", id="empty"),
    ],
)
def test_non_uuid_tracing_header_is_400_with_empty_body(emulator, header, value):
    """FirecREST's tracing middleware accepts only UUIDs, before anything else."""
    for path in ("/status/systems", "/compute/cluster/jobs", "/status/liveness/", "/nope"):
        r = httpx.get(f"{emulator.url}{path}", headers=auth(emulator) | {header: value})
        assert (path, r.status_code, r.content) == (path, 400, b"")
        assert "F7T-AppVersion" not in r.headers
    # Without authentication too: the middleware runs first.
    r = httpx.get(f"{emulator.url}/status/systems", headers={header: value})
    assert (r.status_code, r.content) == (400, b"")
    # A UUID of any version passes (pyfirecrest sends uuid4, the spawner uuid5).
    r = httpx.get(
        f"{emulator.url}/status/systems", headers=auth(emulator) | {header: CORRELATION_ID}
    )
    assert r.status_code == 200


def test_path_is_lower_cased(emulator):
    r = httpx.get(f"{emulator.url}/STATUS/Cluster/UserInfo", headers=auth(emulator))
    assert r.status_code == 200
    assert r.json()["user"]["name"] == "alice"


def test_camel_and_snake_case_bodies(emulator, tmp_path):
    h = auth(emulator, "casey")
    script = "#!/bin/bash\nsleep 0\n"
    camel = {"job": {"workingDirectory": str(tmp_path), "script": script, "name": "camel"}}
    snake = {"job": {"working_directory": str(tmp_path), "script": script, "name": "snake"}}
    ids = []
    for body in (camel, snake):
        r = httpx.post(f"{emulator.url}/compute/cluster/jobs", headers=h, json=body)
        assert r.status_code == 201
        ids.append(r.json()["jobId"])
    names = {
        j["jobId"]: j["name"]
        for j in httpx.get(f"{emulator.url}/compute/cluster/jobs", headers=h).json()["jobs"]
    }
    assert [names[i] for i in ids] == ["camel", "snake"]
    # Responses are camelCase.
    job = httpx.get(f"{emulator.url}/compute/cluster/jobs/{ids[0]}", headers=h).json()["jobs"][0]
    assert "workingDirectory" in job
    assert "working_directory" not in job
    # mkdir accepts sourcePath, source_path and path.
    for i, key in enumerate(("sourcePath", "source_path", "path")):
        r = httpx.post(
            f"{emulator.url}/filesystem/cluster/ops/mkdir",
            headers=h,
            json={key: str(tmp_path / f"d{i}")},
        )
        assert r.status_code == 201, r.text


def test_env_list_is_a_server_error(emulator, tmp_path):
    body = {"job": {"workingDirectory": str(tmp_path), "script": "#!/bin/bash\n", "env": ["A=1"]}}
    r = httpx.post(f"{emulator.url}/compute/cluster/jobs", headers=auth(emulator), json=body)
    assert r.status_code == 500


def test_counters_per_endpoint_and_user(emulator):
    emulator.admin.reset_counters()
    for user in ("u1", "u1", "u2"):
        httpx.get(f"{emulator.url}/status/cluster/nodes", headers=auth(emulator, user))
    httpx.get(f"{emulator.url}/compute/cluster/jobs/77", headers=auth(emulator, "u2"))
    c = emulator.admin.counters()
    assert c["endpoints"] == {
        "GET /status/{system}/nodes": 3,
        "GET /compute/{system}/jobs/{job_id}": 1,
    }
    assert c["users"] == {"u1": 2, "u2": 2}
    assert c["user_endpoints"]["u2"] == {
        "GET /status/{system}/nodes": 1,
        "GET /compute/{system}/jobs/{job_id}": 1,
    }
    assert c["statuses"]["GET /compute/{system}/jobs/{job_id} 404"] == 1
    log = emulator.admin.requests()
    assert log[-1]["route"] == "/compute/{system}/jobs/{job_id}"
    assert log[-1]["user"] == "u2"
    assert emulator.admin.reset_counters()["total"] == 0


def test_admin_needs_token(emulator):
    r = httpx.get(f"{emulator.url}/_emulator/counters")
    assert r.status_code == 401
    r = httpx.get(f"{emulator.url}/_emulator/counters", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_allusers_and_name_filter_gating(tmp_path):
    """2.5.6 ignores ``name`` (pyfirecrest gates it at 2.6.0); 2.6.0 filters by it."""
    for version, filtered in (("2.5.6", False), ("2.6.0", True)):
        with running_emulator(EmulatorConfig(app_version=version)) as emu:
            for user, name in (("ann", "a1"), ("ann", "a2"), ("ben", "b1")):
                r = httpx.post(
                    f"{emu.url}/compute/cluster/jobs",
                    headers=auth(emu, user),
                    json={
                        "job": {
                            "workingDirectory": str(tmp_path),
                            "script": "#!/bin/bash\n",
                            "name": name,
                        }
                    },
                )
                assert r.status_code == 201
            url = f"{emu.url}/compute/cluster/jobs"
            h = auth(emu, "ann")
            mine = httpx.get(url, headers=h).json()["jobs"]
            assert sorted(j["name"] for j in mine) == ["a1", "a2"]
            everyone = httpx.get(url, headers=h, params={"allusers": "true"}).json()["jobs"]
            assert sorted(j["name"] for j in everyone) == ["a1", "a2", "b1"]
            named = httpx.get(url, headers=h, params={"name": "a1"}).json()["jobs"]
            assert sorted(j["name"] for j in named) == (["a1"] if filtered else ["a1", "a2"])


def test_config_from_yaml(tmp_path):
    path = tmp_path / "emu.yaml"
    path.write_text(
        "app_version: 2.6.0\n"
        "systems:\n"
        "  - name: daint\n"
        "    node_name: 127.0.0.1\n"
        "    partitions: [{name: normal, default: true, max_time: 3600}]\n"
        "faults:\n"
        "  visibility_delay: 2\n"
        "  rules: [{route: 'POST /compute/*', status: 503, times: 1}]\n"
    )
    config = load_config(path)
    assert config.systems[0].name == "daint"
    assert config.systems[0].partitions[0].max_time == 3600
    assert config.faults.rules[0].status == 503
    bad = tmp_path / "bad.yaml"
    bad.write_text("systems: [{name: x, bogus: 1}]\n")
    with pytest.raises(ValueError, match="bogus"):
        load_config(bad)


def test_cli_serves_until_terminated(tmp_path):
    config = tmp_path / "emu.yaml"
    config.write_text("admin_token: cli-admin\nsystems: [{name: clisys}]\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firecrestspawner",
            "emulator",
            "--port",
            "0",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("FirecREST emulator: http://127.0.0.1:"), line
        url = line.split()[2]
        assert "clisys (local)" in line
        assert httpx.get(f"{url}/status/liveness/").status_code == 200
        r = httpx.get(f"{url}/_emulator/counters", headers={"Authorization": "Bearer cli-admin"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_simulated_jobs_carry_thousands():
    """Simulated jobs hold no process; 3000 of them are listed in one answer."""
    config = EmulatorConfig(systems=[SystemConfig(name="cluster", simulate=True, slots=None)])
    with running_emulator(config) as emu:
        h = auth(emu, "bench")
        body = {"job": {"workingDirectory": "/nonexistent", "script": "#!/bin/bash\nexit 1\n"}}
        with httpx.Client(base_url=emu.url, headers=h) as http:
            ids = [
                http.post("/compute/cluster/jobs", json=body).json()["jobId"] for _ in range(3000)
            ]
            job = wait_state(emu, ids[-1], h, "RUNNING")
            assert job["nodes"] == "localhost"
            jobs = http.get("/compute/cluster/jobs").json()["jobs"]
            assert len(jobs) == 3000
            assert {j["status"]["state"] for j in jobs} == {"RUNNING"}
            assert http.delete(f"/compute/cluster/jobs/{ids[0]}").status_code == 204
            assert wait_state(emu, ids[0], h, "CANCELLED")["status"]["state"].startswith(
                "CANCELLED by "
            )


def test_shipped_example_config_loads():
    example = Path(__file__).resolve().parents[2] / "firecrestspawner/emulator/example.yaml"
    config = load_config(example)
    assert [s.backend for s in config.systems] == ["slurm", "local"]
    assert config.faults.rules[0].effect == "error_after"


def test_request_log_keeps_bodies_without_env_values(emulator, tmp_path):
    emulator.admin.clear_requests()
    body = {
        "job": {
            "workingDirectory": str(tmp_path),
            "script": "#!/bin/bash\ntrue\n",
            "env": {"JUPYTERHUB_API_TOKEN": "canary-123"},
        }
    }
    r = httpx.post(f"{emulator.url}/compute/cluster/jobs", headers=auth(emulator), json=body)
    assert r.status_code == 201
    entry = emulator.admin.requests()[-1]
    assert entry["route"] == "/compute/{system}/jobs"
    assert entry["body"]["job"]["script"] == "#!/bin/bash\ntrue\n"
    assert entry["body"]["job"]["env"] == {"JUPYTERHUB_API_TOKEN": "<redacted>"}
    assert "canary-123" not in str(emulator.admin.requests())
