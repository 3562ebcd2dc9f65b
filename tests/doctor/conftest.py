"""Helpers of the doctor's tests: an emulator with a service account, and hub configurations.

The configuration files are written the way a site writes them (``c.<Class>.<trait>``)
and read by the doctor with traitlets, as ``jupyterhub -f`` would.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.demo import free_port
from firecrestspawner.doctor import Doctor, DoctorOptions, Report, hub_settings
from firecrestspawner.emulator.config import EmulatorConfig, IdpClient, IdpConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "local"  # the system of profiles/demo.yaml
SA_ID = "doctor-sa"
SA_SECRET = "doctor-sa-secret-value"
HUB_ID = "doctor-hub"
HUB_SECRET = "doctor-hub-secret-value"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    """The emulator, its IdP knowing the hub's client and the service account (an operator)."""
    config = EmulatorConfig(
        systems=[SystemConfig(name=SYSTEM, node_name="127.0.0.1", operators=[SA_ID])],
        idp=IdpConfig(
            clients={SA_ID: IdpClient(secret=SA_SECRET), HUB_ID: IdpClient(secret=HUB_SECRET)}
        ),
    )
    with running_emulator(config) as running:
        yield running


def write_config(
    directory: Path,
    emu: RunningEmulator | None = None,
    *,
    firecrest_url: str | None = None,
    sa_secret: str = SA_SECRET,
    extra: str = "",
    hub_port: int | None = None,
    profiles: Path | None = None,
) -> Path:
    """A profile-mode ``jupyterhub_config.py`` like the demo's, for the emulator."""
    users = directory / "users"
    users.mkdir(parents=True, exist_ok=True)
    profiles_dir = directory / "profiles"
    if not profiles_dir.exists():
        profiles_dir.mkdir()
        shutil.copy2(profiles or REPO / "profiles" / "demo.yaml", profiles_dir)
    url = firecrest_url if firecrest_url is not None else emu.url if emu else ""
    token_url = f"{emu.url}/idp/token" if emu else "http://127.0.0.1:9/idp/token"
    cmd = [str(BIN / "firecrestspawner-singleuser"), str(BIN / "jupyterhub-singleuser")]
    text = f"""\
    c = get_config()  # noqa: F821
    c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port or free_port()}"
    c.JupyterHub.authenticator_class = "firecrestspawner.demo_auth.DemoAuthenticator"
    c.DemoAuthenticator.token_url = {token_url!r}
    c.DemoAuthenticator.client_id = {HUB_ID!r}
    c.DemoAuthenticator.client_secret = {HUB_SECRET!r}
    c.JupyterHub.spawner_class = "firecrest-slurm"
    c.FirecRESTSpawnerBase.firecrest_url = {url!r}
    c.FirecRESTSpawnerBase.service_account_client_id = {SA_ID!r}
    c.FirecRESTSpawnerBase.service_account_client_secret = {sa_secret!r}
    c.FirecRESTSpawnerBase.service_account_token_url = {token_url!r}
    c.FirecRESTSpawnerBase.profiles_dir = {str(profiles_dir)!r}
    c.FirecRESTSpawnerBase.workdir = {str(users)!r}
    c.Spawner.cmd = {cmd!r}
    """
    path = directory / "jupyterhub_config.py"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(extra))
    return path


async def doctor(path: Path, **options: Any) -> Report:
    """Run the doctor in this event loop (as the command does in its own)."""
    return await Doctor(hub_settings(path), DoctorOptions(**options)).run()


def statuses(report: Report) -> dict[str, str]:
    return {s.id: s.status for s in report.steps}
