"""Fixtures for spawner tests: a hub user with a refresh token from the emulator's IdP."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from jupyterhub.tests.conftest import new_username
from jupyterhub.tests.utils import add_user

from firecrestspawner import auth, status
from firecrestspawner.spawner import SlurmSpawner

BIN = Path(sys.prefix) / "bin"
WRAPPER = str(BIN / "firecrestspawner-singleuser")
SINGLEUSER = str(BIN / "jupyterhub-singleuser")


def spawner_traits(emulator, workdir: Path, **overrides) -> dict:
    """Traits of a SlurmSpawner pointed at the emulator's local backend."""
    traits = {
        "firecrest_url": emulator.url,
        "req_host": emulator.system,
        "token_url": emulator.token_url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "service_account_client_id": emulator.client_id,
        "service_account_client_secret": emulator.client_secret,
        "service_account_token_url": emulator.token_url,
        "workdir": str(workdir / "{username}"),
        "req_srun": "",
        "cmd": [WRAPPER, SINGLEUSER],
        "args": ["--ServerApp.allow_root=True"] if os.getuid() == 0 else [],
        "start_timeout": 60,
        "startup_poll_interval": 0.1,
        "startup_poll_max_interval": 0.5,
        "status_max_age": 0.2,
        "not_found_grace_period": 5,
        "stop_timeout": 20,
        "firecrest_read_attempts": 3,
        "firecrest_read_deadline": 10,
    }
    traits.update(overrides)
    return traits


@pytest.fixture
def workroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("work")
    root.chmod(0o755)
    return root


@pytest.fixture
async def fcs_user(app, auth_state_enabled, emulator, workroot):
    """A hub user whose auth_state holds a refresh token of the emulator's IdP."""
    user = add_user(app.db, app, name=new_username("fcs"))
    (workroot / user.name).mkdir()
    await user.save_auth_state({"refresh_token": emulator.issue_refresh_token(user.name)})
    yield user
    auth.forget_user(user.name)


@pytest.fixture(autouse=True)
def _fresh_caches():
    yield
    status.reset()


def new_spawner(user, emulator, workroot, cls=SlurmSpawner, **overrides):
    """A spawner for ``user``'s default server, as the hub builds it."""
    _ = user.spawner  # make sure the default server's orm row exists
    return user._new_spawner(
        "", spawner_class=cls, **spawner_traits(emulator, workroot, **overrides)
    )
