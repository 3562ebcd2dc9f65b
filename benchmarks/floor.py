"""The floor of a spawn storm: JupyterHub's spawner machinery with no remote work.

:class:`FloorSpawner` is a plain ``jupyterhub.spawner.Spawner``, made the way
the hub makes spawners (``User._new_spawner``, as ours in :mod:`.hub`) and
started by the same harness (:func:`.storm.spawn_all`: ``start()`` with a
``progress()`` consumer, the port delivered by :class:`.storm.JobPart` once the
spawner waits for it; with ``report="job"`` in the same rounds as ours, after
the same read of the emulator's jobs, so that both pay the same delivery delay).
Its ``start()`` does what every spawner does for JupyterHub (``get_env()`` and
``get_args()``: the API token, OAuth scopes and URLs in the environment) and
returns as soon as the port is known: no FirecREST, no identity provider, no
batch script, no queue. Its time is what the harness, JupyterHub's per-spawn
work and the loaded machine cost by themselves; ours minus the floor is what
our spawner adds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyterhub.spawner import Spawner


class _PortWaiter:
    """The part of our ``PortWaiter`` the harness uses (``open``, ``report``)."""

    def __init__(self) -> None:
        self.port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @property
    def open(self) -> bool:
        return not self.port.done()

    def report(self, port: int) -> None:
        if not self.port.done():
            self.port.set_result(port)


class _Record:
    #: When the job would be submitted: here, once the environment is built.
    submitted_at: float = 0.0


class FloorSpawner(Spawner):
    """Builds the environment and arguments, waits for the port, returns it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = "idle"
        self.port_waiter: _PortWaiter | None = None
        self.record = _Record()

    async def start(self) -> tuple[str, int]:
        self.phase = "starting"
        self.get_env()
        self.get_args()
        self.record.submitted_at = time.time()
        self.port_waiter = _PortWaiter()
        self.phase = "waiting"
        port = await self.port_waiter.port
        self.phase = "ready"
        return ("127.0.0.1", port)

    async def poll(self) -> int | None:
        return None if self.phase == "ready" else 0

    async def stop(self, now: bool = False) -> None:
        self.phase = "stopped"
