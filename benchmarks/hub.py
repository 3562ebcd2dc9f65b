"""JupyterHub's own objects for benchmarks: an in-memory database, users, spawners.

Spawners are made the way the hub makes them (``User._new_spawner`` on an
``orm.Spawner``, with a ``Hub`` object), following the pattern of
JupyterHub's ``tests/test_spawner.py``; auth_state is encrypted with a
``JUPYTERHUB_CRYPT_KEY`` as in a hub with ``enable_auth_state``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper
from jupyterhub.objects import Hub
from jupyterhub.user import User

from firecrestspawner import auth, client, status
from firecrestspawner.spawner import SlurmSpawner

from .emulator import EmulatorHandle


class BenchHub:
    """Users and spawners of one simulated hub process."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator
        # auth_state is encrypted, as with enable_auth_state: a random key unless
        # JUPYTERHUB_CRYPT_KEY (or a test fixture) provided one.
        keeper = CryptKeeper.instance()
        if not keeper.keys:
            keeper.keys = [os.urandom(32)]
        self.db = orm.new_session_factory("sqlite:///:memory:")()
        # JupyterHub's alembic setup (logging.config.fileConfig) disables loggers
        # that exist already, ours included, and sets the root level to WARNING.
        bench_log = logging.getLogger("benchmarks")
        bench_log.disabled = False
        bench_log.setLevel(logging.INFO)
        self.hub = Hub()
        self.settings: dict[str, Any] = {"hub": self.hub, "config": None}
        self.workroot = Path(tempfile.mkdtemp(prefix="fcs-bench-", dir="/tmp"))
        self.workroot.chmod(0o755)
        self.users: list[User] = []

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self.workroot, ignore_errors=True)

    async def add_users(self, names: list[str], refresh_tokens: bool = True) -> list[User]:
        """Users with a refresh token of the emulator's IdP in their auth_state."""
        tokens = await issue_tokens(self.emulator, names, "refresh") if refresh_tokens else []
        orm_users = []
        for name in names:
            orm_user = orm.User(name=name)
            self.db.add(orm_user)
            self.db.add(orm.Spawner(name="", user=orm_user))
            orm_users.append(orm_user)
            (self.workroot / name).mkdir(exist_ok=True)
        self.db.commit()
        wrapped = [User(u, self.settings, db=self.db) for u in orm_users]
        for i, user in enumerate(wrapped):
            if tokens:
                user.orm_user.encrypted_auth_state = await _encrypt({"refresh_token": tokens[i]})
        self.db.commit()
        self.users.extend(wrapped)
        return wrapped

    def traits(self, service_account: bool = True, **overrides: Any) -> dict[str, Any]:
        emu = self.emulator
        t: dict[str, Any] = {
            "firecrest_url": emu.url,
            "req_host": emu.system,
            "token_url": emu.token_url,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "workdir": str(self.workroot / "{username}"),
            "req_srun": "",
            "api_token_delivery": "file",
        }
        if service_account:
            t.update(
                service_account_client_id=emu.client_id,
                service_account_client_secret=emu.client_secret,
                service_account_token_url=emu.token_url,
            )
        else:
            t.update(
                service_account_client_id="",
                service_account_client_secret="",
                service_account_token_url="",
            )
        t.update(overrides)
        return t

    def new_spawner(self, user: User, cls: type = SlurmSpawner, **traits: Any) -> Any:
        spawner = user._new_spawner("", spawner_class=cls, **traits)
        user.spawners[""] = spawner
        spawner.api_token = secrets.token_hex(16)
        return spawner


async def issue_tokens(
    emulator: EmulatorHandle,
    names: list[str],
    kind: str,
    lifetime: int | None = None,
    concurrency: int = 32,
) -> list[str]:
    """Tokens of the emulator's IdP for ``names`` (its admin API, concurrently)."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {emulator.config.admin_token}"}
    async with httpx.AsyncClient(base_url=emulator.url, timeout=60, headers=headers) as http:

        async def one(name: str) -> str:
            body = {"username": name, "type": kind, "lifetime": lifetime}
            async with sem:
                r = await http.post("/_emulator/tokens", json=body)
            r.raise_for_status()
            return str(r.json()["token"])

        return list(await asyncio.gather(*(one(n) for n in names)))


async def _encrypt(data: dict) -> bytes:
    from jupyterhub.crypto import encrypt

    return await encrypt(data)


async def reset_shared_state() -> None:
    """Forget pooled clients, status caches and credentials (between scenarios)."""
    await client.close_all()
    status.reset()
    auth.clear_caches()
