"""Run the emulator in a background thread, for tests and benchmarks.

The emulator gets its own thread and event loop, so tests whose code runs on
another loop (the hub's) talk to it over real HTTP like to a real FirecREST::

    with running_emulator() as emu:
        emu.url, emu.token_url, emu.jwks_url
        emu.issue_refresh_token("alice")
        emu.admin.set_faults(rules=[{"route": "POST /compute/*", "status": 503, "times": 1}])
        emu.admin.counters()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from .app import Emulator
from .config import EmulatorConfig


class AdminClient:
    """Synchronous client of ``/_emulator/`` (blocking: for test code, not hub code)."""

    def __init__(self, url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=f"{url}/_emulator",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._client.request(method, path, **kwargs)
        if resp.status_code >= 400:
            raise RuntimeError(f"admin {method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    # faults
    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change quirks and rules (``rules=[...]`` replaces all rules)."""
        return self._call("PUT", "/faults", json=changes)

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        return self._call("POST", "/faults", json=rule)

    def reset_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    # counters and request log
    def counters(self) -> dict[str, Any]:
        return self._call("GET", "/counters")

    def reset_counters(self) -> dict[str, Any]:
        return self._call("DELETE", "/counters")

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    # jobs
    def jobs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/jobs")

    def node_fail(self, system: str, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{system}/{job_id}/node_fail")

    # systems
    def system(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/systems/{name}")

    def set_system(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change ``healthy``, ``queue_delay``, ``slots``, ``node_name``, ``retention``..."""
        return self._call("PUT", f"/systems/{name}", json=changes)

    # tokens
    def issue_refresh_token(
        self, username: str, lifetime: int | None = None, client_id: str | None = None
    ) -> str:
        body = {
            "username": username,
            "type": "refresh",
            "lifetime": lifetime,
            "client_id": client_id,
        }
        return self._call("POST", "/tokens", json=body)["token"]

    def issue_access_token(
        self,
        username: str,
        lifetime: int | None = None,
        claims: dict[str, Any] | None = None,
        omit_username: bool = False,
    ) -> str:
        body = {
            "username": username,
            "type": "access",
            "lifetime": lifetime,
            "claims": claims,
            "omit_username": omit_username,
        }
        return self._call("POST", "/tokens", json=body)["token"]

    def revoke(self, username: str | None = None, refresh_token: str | None = None) -> int:
        body = {"username": username, "refresh_token": refresh_token}
        return self._call("POST", "/revoke", json=body)["revoked"]


class RunningEmulator:
    """Handle on an emulator running in a background thread."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.config = emulator.config
        self.url = emulator.url
        self.token_url = f"{self.url}/idp/token"
        self.jwks_url = f"{self.url}/idp/jwks"
        self.admin = AdminClient(self.url, self.config.admin_token)

    @property
    def system(self) -> str:
        """Name of the first configured system."""
        return self.config.systems[0].name

    @property
    def client_id(self) -> str:
        return next(iter(self.config.idp.clients))

    @property
    def client_secret(self) -> str:
        return self.config.idp.clients[self.client_id].secret

    def issue_refresh_token(self, username: str, lifetime: int | None = None) -> str:
        return self.admin.issue_refresh_token(username, lifetime=lifetime)

    def issue_access_token(self, username: str, lifetime: int | None = None, **kw: Any) -> str:
        return self.admin.issue_access_token(username, lifetime=lifetime, **kw)


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    """Start an emulator on 127.0.0.1 (random port unless configured) in its own thread."""
    config = config or EmulatorConfig()
    emulator = Emulator(config)
    ready = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(emulator.start())
        except BaseException as e:  # noqa: BLE001 - reported to the caller's thread
            failure.append(e)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(emulator.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=main, name="firecrest-emulator", daemon=True)
    thread.start()
    ready.wait(60)
    if failure:
        thread.join(5)
        raise RuntimeError(f"the FirecREST emulator failed to start: {failure[0]}") from failure[0]
    handle = RunningEmulator(emulator)
    try:
        yield handle
    finally:
        handle.admin.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
