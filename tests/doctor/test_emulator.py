"""The doctor against the FirecREST emulator: a good set-up passes, each broken step fails alone.

Each failure test breaks exactly one thing in a configuration that otherwise
passes, and checks that the doctor fails that step (and no other), with a
message that names what to fix. The probe runs a real job through the
emulator's in-process scheduler, with the site's own wrapper.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firecrestspawner import states
from firecrestspawner.demo import free_port
from firecrestspawner.emulator.testing import RunningEmulator

from .conftest import SA_ID, SYSTEM, doctor, statuses, write_config

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def healthy(emu: RunningEmulator) -> Iterator[RunningEmulator]:
    """The emulator as the good set-up needs it, restored after a test changed it."""
    emu.admin.set_system(SYSTEM, healthy=True, operators=[SA_ID])
    yield emu
    emu.admin.set_system(SYSTEM, healthy=True, operators=[SA_ID])


def only_failure(report, step_id: str):
    """The one failed step; fails the test if any other step failed."""
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert failed == [step_id], statuses(report)
    assert not report.ok
    return report.get(step_id)


async def test_a_good_setup_passes_every_check(healthy: RunningEmulator, tmp_path: Path):
    path = write_config(tmp_path, healthy)
    token = healthy.issue_refresh_token("alice")
    report = await doctor(path, user="alice", user_token=token)
    assert report.ok, statuses(report)
    assert statuses(report) == {
        "config": "pass",
        "profiles": "pass",
        "firecrest": "pass",
        "sa-token": "pass",
        "systems": "pass",
        "sa-list": "pass",
        "user-credential": "pass",
        "workdir": "pass",
        "sa-operator": "pass",
        "node-names": "pass",
    }
    assert "version 2.5.6" in report.get("firecrest").detail
    assert "Unix user alice" in report.get("user-credential").detail
    # The operator check submitted a job of alice and the service account cancelled it.
    jobs = [j for j in healthy.admin.jobs() if j["name"].endswith(".rights")]
    assert jobs
    assert jobs[-1]["user"] == "alice"
    assert states.is_gone(jobs[-1]["status"]["state"]), jobs[-1]["status"]
    # The working directory check left nothing behind.
    assert not list((tmp_path / "users" / "alice" / ".firecrestspawner").iterdir())


async def test_without_a_user_the_user_checks_are_skipped_not_failed(
    healthy: RunningEmulator, tmp_path: Path
):
    report = await doctor(write_config(tmp_path, healthy))
    assert report.ok
    s = statuses(report)
    assert s["user-credential"] == s["workdir"] == s["sa-operator"] == "skip"
    assert "--user" in report.get("user-credential").detail
    # A probe asked for cannot pass without a user: it fails, naming the fix.
    report = await doctor(write_config(tmp_path / "probe", healthy), probe=True)
    assert [s.id for s in report.steps if s.status == "fail"] == ["probe"]
    assert "--user NAME" in report.get("probe").fix


async def test_probe_proves_both_directions_with_the_doctor_in_the_hubs_place(
    healthy: RunningEmulator, tmp_path: Path
):
    path = write_config(tmp_path, healthy)
    token = healthy.issue_refresh_token("alice")
    report = await doctor(path, user="alice", user_token=token, probe=True, probe_timeout=120)
    step = report.get("probe")
    assert step.status == "pass", step.detail
    assert "the hub is not running: the doctor listens in its place" in step.detail
    assert "node -> hub API: the job reported port" in step.detail
    assert "proxy -> node: http://127.0.0.1:" in step.detail
    assert "answered 200" in step.detail
    probe_jobs = [j for j in healthy.admin.jobs() if j["name"].endswith(".probe")]
    assert probe_jobs[-1]["user"] == "alice"
    assert states.is_gone(probe_jobs[-1]["status"]["state"]), probe_jobs[-1]["status"]


async def test_wrong_service_account_secret_fails_the_grant_and_names_the_secret(
    healthy: RunningEmulator, tmp_path: Path
):
    path = write_config(tmp_path, healthy, sa_secret="not-the-secret")
    report = await doctor(path, user="alice", user_token=healthy.issue_refresh_token("alice"))
    step = only_failure(report, "sa-token")
    assert "refused the client_credentials grant" in step.detail
    assert "invalid_client" in step.detail
    assert "c.SlurmSpawner.service_account_client_secret" in step.fix
    assert "$SA_CLIENT_SECRET" in step.fix
    # What needs the service account is skipped, not failed a second time.
    assert statuses(report)["sa-list"] == statuses(report)["sa-operator"] == "skip"
    assert "not-the-secret" not in step.detail + step.fix


async def test_missing_operator_rights_fail_the_cancel_and_name_the_fix(
    healthy: RunningEmulator, tmp_path: Path
):
    healthy.admin.set_system(SYSTEM, operators=[])
    path = write_config(tmp_path, healthy)
    report = await doctor(path, user="alice", user_token=healthy.issue_refresh_token("alice"))
    step = only_failure(report, "sa-operator")
    assert "could not cancel it" in step.detail
    assert "Access/permission denied" in step.detail
    assert "adminlevel=operator" in step.fix
    assert "sacctmgr modify user doctor-sa" in step.fix
    assert "c.SlurmSpawner.stop_with_service_account" in step.fix
    # The test job did not outlive the check: its owner cancelled it.
    job = [j for j in healthy.admin.jobs() if j["name"].endswith(".rights")][-1]
    assert states.is_gone(job["status"]["state"]), job["status"]


async def test_operator_rights_missing_only_warn_when_the_site_does_not_rely_on_them(
    healthy: RunningEmulator, tmp_path: Path
):
    healthy.admin.set_system(SYSTEM, operators=[])
    path = write_config(
        tmp_path, healthy, extra="c.SlurmSpawner.stop_with_service_account = False\n"
    )
    report = await doctor(path, user="alice", user_token=healthy.issue_refresh_token("alice"))
    assert report.ok, statuses(report)
    assert statuses(report)["sa-operator"] == "warn"


async def test_bad_node_name_template_fails_node_names_and_names_the_trait(
    healthy: RunningEmulator, tmp_path: Path
):
    path = write_config(
        tmp_path, healthy, extra='c.SlurmSpawner.node_name_template = "{}.nodes.invalid"\n'
    )
    report = await doctor(path)
    step = only_failure(report, "node-names")
    assert "127.0.0.1 -> 127.0.0.1.nodes.invalid: does not resolve" in step.detail
    assert "c.SlurmSpawner.node_name_template" in step.fix
    assert "'{}.nodes.invalid'.format(node)" in step.fix


async def test_a_gethost_hook_is_called_for_the_listed_nodes(
    healthy: RunningEmulator, tmp_path: Path
):
    extra = """
    def gethost(spawner):
        node = spawner.job_status.split()[1]
        return "nowhere.invalid" if node == "127.0.0.1" else node
    c.SlurmSpawner.custom_state_gethost = gethost
    """
    report = await doctor(write_config(tmp_path, healthy, extra=extra))
    step = only_failure(report, "node-names")
    assert "127.0.0.1 -> nowhere.invalid" in step.detail
    assert "c.SlurmSpawner.custom_state_gethost" in step.fix


async def test_unreachable_firecrest_fails_reachability_and_names_the_url(
    healthy: RunningEmulator, tmp_path: Path
):
    url = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, healthy, firecrest_url=url)
    report = await doctor(path, user="alice", user_token=healthy.issue_refresh_token("alice"))
    step = only_failure(report, "firecrest")
    assert f"{url}/status/liveness/: ConnectError" in step.detail
    assert "c.SlurmSpawner.firecrest_url" in step.fix
    assert "$FIRECREST_URL" in step.fix
    assert statuses(report)["systems"] == "skip"


async def test_unhealthy_system_fails_the_health_check_and_says_so(
    healthy: RunningEmulator, tmp_path: Path
):
    healthy.admin.set_system(SYSTEM, healthy=False)
    report = await doctor(write_config(tmp_path, healthy))
    step = only_failure(report, "systems")
    assert "local: unhealthy: scheduler: scheduler unavailable" in step.detail
    assert "FirecREST reports local unhealthy" in step.fix
    assert statuses(report)["node-names"] == "skip"


async def test_refused_user_token_fails_the_user_credential(
    healthy: RunningEmulator, tmp_path: Path
):
    report = await doctor(
        write_config(tmp_path, healthy), user="alice", user_token="not-a-refresh-token"
    )
    step = only_failure(report, "user-credential")
    assert "refused the refresh token of alice" in step.detail
    assert "current refresh token" in step.fix
    assert statuses(report)["workdir"] == "skip"


async def test_unknown_system_fails_and_lists_the_systems_firecrest_has(
    healthy: RunningEmulator, tmp_path: Path
):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (Path(__file__).parents[2] / "profiles" / "demo.yaml").read_text()
    (profiles / "demo.yaml").write_text(text.replace("system: local", "system: locale").replace(
        "- name: local", "- name: locale"))  # fmt: skip
    report = await doctor(write_config(tmp_path, healthy))
    step = only_failure(report, "systems")
    assert "has no system 'locale' (it has: local)" in step.detail


async def test_hub_api_unreachable_from_the_job_fails_the_probe_and_names_hub_connect_url(
    healthy: RunningEmulator, tmp_path: Path, request: pytest.FixtureRequest
):
    # A port bound but not listening: connections to it are refused for the whole test.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    closed = holder.getsockname()[1]
    request.addfinalizer(holder.close)
    path = write_config(
        tmp_path, healthy, extra=f'c.JupyterHub.hub_connect_url = "http://127.0.0.1:{closed}"\n'
    )
    token = healthy.issue_refresh_token("alice")
    report = await doctor(path, user="alice", user_token=token, probe=True, probe_timeout=120)
    step = only_failure(report, "probe")
    assert f"http://127.0.0.1:{closed}/hub/api" in step.detail
    assert "could not reach the hub" in step.detail  # the wrapper's own words, from the job log
    assert "c.JupyterHub.hub_connect_url" in step.fix
    assert f"http://127.0.0.1:{closed}/hub/api" in step.fix


async def test_classic_mode_without_profiles_passes_with_the_probe(
    healthy: RunningEmulator, tmp_path: Path
):
    """No profiles_dir: the system is req_host, the script the built-in batch_script."""
    # No srun on the emulator's in-process scheduler (the demo profile says so too).
    extra = f'c.SlurmSpawner.req_host = "{SYSTEM}"\nc.SlurmSpawner.req_srun = ""\n'
    path = write_config(tmp_path, healthy, extra=extra)
    text = path.read_text().replace("c.FirecRESTSpawnerBase.profiles_dir", "# profiles_dir")
    path.write_text(text)
    token = healthy.issue_refresh_token("bob")
    report = await doctor(path, user="bob", user_token=token, probe=True, probe_timeout=120)
    assert report.ok, {s.id: (s.status, s.detail) for s in report.steps if s.status != "pass"}
    assert "classic mode" in report.get("config").detail
    assert "profiles" not in statuses(report)
    assert f"{SYSTEM}:{tmp_path / 'users' / 'bob'}:" in report.get("workdir").detail
    assert "job " in report.get("probe").detail
