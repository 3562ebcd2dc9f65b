"""The doctor against the real FirecREST 2.5.6 in front of the test bed's Slurm.

A configuration like ``tests/real/test_hub.py``'s hub (profile mode, jobs as
the users' own Unix accounts from the world-readable job environment, the
service account ``fsp-sa`` a Slurm operator) passes every check including the
probe; a service account that is not an operator, and a wrong secret, fail
exactly their step. Run under the shared lock (see notes/HELPERS.md).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firecrestspawner.demo import free_port
from firecrestspawner.doctor import format_report
from firecrestspawner.emulator.config import EmulatorConfig, IdpClient, IdpConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator
from tests.fixtures.firecrest_server import JOB_ENV, SERVICE_ACCOUNT, RealFirecrest

from .conftest import doctor, statuses

pytestmark = [pytest.mark.real_firecrest, pytest.mark.slurm, pytest.mark.timeout(600)]

PROFILES = Path(__file__).resolve().parents[1] / "real" / "profiles"
USER = "fsp-alice"


def real_config(
    directory: Path, *, url: str, token_url: str, sa_id: str, sa_secret: str, hub_client: tuple
) -> Path:
    cmd = [str(JOB_ENV / "bin" / "firecrestspawner-singleuser"),
           str(JOB_ENV / "bin" / "jupyterhub-singleuser")]  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "jupyterhub_config.py"
    path.write_text(
        f"""c = get_config()  # noqa: F821
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.authenticator_class = "firecrestspawner.demo_auth.DemoAuthenticator"
c.DemoAuthenticator.token_url = {token_url!r}
c.DemoAuthenticator.client_id = {hub_client[0]!r}
c.DemoAuthenticator.client_secret = {hub_client[1]!r}
c.JupyterHub.spawner_class = "firecrest-slurm"
c.SlurmSpawner.firecrest_url = {url!r}
c.SlurmSpawner.service_account_client_id = {sa_id!r}
c.SlurmSpawner.service_account_client_secret = {sa_secret!r}
c.SlurmSpawner.service_account_token_url = {token_url!r}
c.SlurmSpawner.profiles_dir = {str(PROFILES)!r}
c.SlurmSpawner.workdir = "/home/{{username}}/jupyter"
c.SlurmSpawner.hub_id = "doctor"
c.Spawner.cmd = {cmd!r}
"""
    )
    return path


@pytest.fixture(scope="module")
def other_idp(real_firecrest: RealFirecrest) -> Iterator[RunningEmulator]:
    """A second identity provider with the key FirecREST trusts: its client maps to fsp-bob."""
    config = EmulatorConfig(
        systems=[SystemConfig(name="unused-emulated-system")],
        idp=IdpConfig(
            signing_key_file=str(real_firecrest.signing_key_file),
            clients={"doctor-bob": IdpClient(secret="bob-secret-value", username="fsp-bob")},
        ),
    )
    with running_emulator(config) as idp:
        yield idp


def good_config(real_firecrest: RealFirecrest, directory: Path) -> Path:
    return real_config(
        directory,
        url=real_firecrest.url,
        token_url=real_firecrest.token_url,
        sa_id=real_firecrest.sa_client_id,
        sa_secret=real_firecrest.sa_client_secret,
        hub_client=(real_firecrest.sa_client_id, real_firecrest.sa_client_secret),
    )


async def test_doctor_probe_passes_on_the_real_tier(real_firecrest: RealFirecrest, tmp_path):
    path = good_config(real_firecrest, tmp_path)
    token = real_firecrest.idp.issue_refresh_token(USER)
    report = await doctor(path, user=USER, user_token=token, probe=True, probe_timeout=240)
    print(format_report(report))
    assert report.ok, format_report(report)
    assert all(s == "pass" for s in statuses(report).values()), statuses(report)
    assert "version 2.5.6" in report.get("firecrest").detail
    assert f"as Unix user {SERVICE_ACCOUNT}" in report.get("sa-list").detail
    assert f"Unix user {USER}" in report.get("user-credential").detail
    probe = report.get("probe").detail
    assert "node -> hub API: the job reported port" in probe
    assert "proxy -> node: http://" in probe


async def test_a_service_account_without_operator_rights_fails_the_cancel(
    real_firecrest: RealFirecrest, other_idp: RunningEmulator, tmp_path
):
    token_url = f"{other_idp.url}/idp/token"
    path = real_config(
        tmp_path,
        url=real_firecrest.url,
        token_url=token_url,
        sa_id="doctor-bob",
        sa_secret="bob-secret-value",
        hub_client=("doctor-bob", "bob-secret-value"),
    )
    token = other_idp.issue_refresh_token(USER)
    report = await doctor(path, user=USER, user_token=token)
    print(format_report(report))
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert failed == ["sa-operator"], statuses(report)
    step = report.get("sa-operator")
    assert "could not cancel it" in step.detail
    assert "sacctmgr modify user fsp-bob set adminlevel=operator" in step.fix


async def test_a_wrong_service_account_secret_fails_the_grant(
    real_firecrest: RealFirecrest, tmp_path
):
    path = real_config(
        tmp_path,
        url=real_firecrest.url,
        token_url=real_firecrest.token_url,
        sa_id=real_firecrest.sa_client_id,
        sa_secret=secrets.token_urlsafe(16),
        hub_client=(real_firecrest.sa_client_id, real_firecrest.sa_client_secret),
    )
    report = await doctor(path)
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert failed == ["sa-token"], statuses(report)
    assert "service_account_client_secret" in report.get("sa-token").fix


async def test_a_bad_node_name_template_fails_node_names(real_firecrest: RealFirecrest, tmp_path):
    path = good_config(real_firecrest, tmp_path)
    path.write_text(path.read_text() + 'c.SlurmSpawner.node_name_template = "{}.ib.invalid"\n')
    report = await doctor(path)
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert failed == ["node-names"], statuses(report)
    step = report.get("node-names")
    assert ".ib.invalid: does not resolve" in step.detail
    assert "c.SlurmSpawner.node_name_template" in step.fix


async def test_hub_api_unreachable_from_the_job_fails_the_probe(
    real_firecrest: RealFirecrest, tmp_path, request: pytest.FixtureRequest
):
    holder = socket.socket()  # bound, never listening: connections are refused
    holder.bind(("127.0.0.1", 0))
    request.addfinalizer(holder.close)
    closed = holder.getsockname()[1]
    path = good_config(real_firecrest, tmp_path)
    path.write_text(
        path.read_text() + f'c.JupyterHub.hub_connect_url = "http://127.0.0.1:{closed}"\n'
    )
    token = real_firecrest.idp.issue_refresh_token(USER)
    report = await doctor(path, user=USER, user_token=token, probe=True, probe_timeout=240)
    print(format_report(report))
    failed = [s.id for s in report.steps if s.status == "fail"]
    assert failed == ["probe"], statuses(report)
    step = report.get("probe")
    assert "could not reach the hub" in step.detail
    assert "c.JupyterHub.hub_connect_url" in step.fix
