"""Fixtures for hub-level tests of profile mode: a FirecREST emulator, the
test profiles pointed at it, and a spawner class configured for both."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from jupyterhub import orm
from jupyterhub.tests.utils import add_user, api_request

from firecrestspawner import cluster
from firecrestspawner.emulator.config import (
    EmulatorConfig,
    PartitionConfig,
    ReservationConfig,
    SystemConfig,
)
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator
from firecrestspawner.spawner import SlurmSpawner

SITE_PROFILES = Path(__file__).resolve().parents[1] / "form" / "profiles" / "site.yaml"


@pytest.fixture(scope="module")
def hub_emulator() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name="cluster",
                node_name="127.0.0.1",
                slots=16,
                partitions=[
                    PartitionConfig(name="normal", default=True),
                    PartitionConfig(name="debug"),
                    PartitionConfig(name="gpu"),
                ],
                reservations=[
                    ReservationConfig(name="course"),
                    ReservationConfig(name="hackathon"),
                ],
                accounts={"*": ["proj-x", "proj-y"]},
            ),
            # The systems of profiles/multi-system.yaml (for the README screenshot).
            *(
                SystemConfig(
                    name=name,
                    node_name="127.0.0.1",
                    reservations=[ReservationConfig(name="jupyter-course-2026")],
                    accounts={"*": ["g152", "csstaff"]},
                )
                for name in ("daint", "eiger")
            ),
        ]
    )
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("workdir")
    path.chmod(0o777)
    return path


def write_profiles(directory: Path, emu: RunningEmulator, workdir: Path, text: str = "") -> Path:
    """The test profiles with the emulator's URL and a real working directory."""
    directory.mkdir(parents=True, exist_ok=True)
    text = text or SITE_PROFILES.read_text()
    text = re.sub(r"(?m)^(\s*firecrest_url:).*$", rf"\g<1> {emu.url}", text)
    text = text.replace("/tmp/fcs-test-workdir", str(workdir))
    target = directory / "site.yaml"
    target.write_text(text)
    return target


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory, hub_emulator, workdir) -> Path:
    directory = tmp_path_factory.mktemp("profiles")
    write_profiles(directory, hub_emulator, workdir)
    return directory


def spawner_class(emu: RunningEmulator, profiles_dir: Path, **settings: Any) -> type:
    """SlurmSpawner in profile mode against the emulator (plus ``settings``)."""
    values = {
        "profiles_dir": str(profiles_dir),
        "firecrest_url": emu.url,
        "token_url": emu.token_url,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "req_host": "cluster",
        "api_token_delivery": "env",
        # The job only has to exist: these tests check what was submitted.
        "cmd": ["sleep", "600"],
        "req_srun": "",
        "start_timeout": 60,
        "startup_poll_interval": 0.2,
        "profile_form_timeout": 0.5,
        "stop_timeout": 5,
    }
    values.update(settings)

    class ProfileTestSpawner(SlurmSpawner):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            for name, value in values.items():
                setattr(self, name, value)

    return ProfileTestSpawner


@pytest.fixture
async def use_spawner(app, hub_emulator, profiles_dir, auth_state_enabled):
    """Patch the hub to use the profile spawner; yields a function to re-patch with settings."""
    patches: list[Any] = []

    def use(directory: Path | None = None, **settings: Any) -> type:
        cls = spawner_class(hub_emulator, directory or profiles_dir, **settings)
        patch = mock.patch.dict(
            app.tornado_settings,
            {"spawner_class": cls, "slow_spawn_timeout": 3, "allow_named_servers": True},
        )
        patch.start()
        patches.append(patch)
        return cls

    use()
    cluster.CACHE.clear()
    yield use
    # Stop what a failed test left running while the users' tokens still exist.
    for user in list(app.users.values()):
        for server_name, spawner in list(user.spawners.items()):
            if spawner.active:
                path = ("servers", server_name) if server_name else ("server",)
                await api_request(app, "users", user.name, *path, method="delete")
                for _ in range(300):
                    if not spawner.active:
                        break
                    await asyncio.sleep(0.1)
    for patch in reversed(patches):
        patch.stop()
    cluster.CACHE.clear()
    hub_emulator.admin.reset_faults()


@pytest.fixture
def make_user(app, hub_emulator, workdir):
    """Create and log in a hub user (optionally in groups) with a FirecREST refresh token.

    Returns ``(user, cookies)``. The refresh token is saved after the login,
    which replaces ``auth_state``.
    """

    async def make(name: str, groups: tuple[str, ...] = ()) -> tuple[Any, Any]:
        orm_user = add_user(app.db, app, name=name)
        for group_name in groups:
            body = json.dumps({"users": [name]})
            if orm.Group.find(app.db, group_name) is None:
                r = await api_request(app, "groups", group_name, method="post", data=body)
            else:
                r = await api_request(app, "groups", group_name, "users", method="post", data=body)
            r.raise_for_status()
        app.db.expire_all()
        user = app.users[orm_user]
        cookies = await app.login_user(name)
        token = await asyncio.to_thread(hub_emulator.issue_refresh_token, name)
        await user.save_auth_state({"refresh_token": token})
        (workdir / name).mkdir(exist_ok=True)
        return user, cookies

    return make
