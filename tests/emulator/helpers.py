"""Helpers shared by the emulator tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


class EmulatorAuth:
    """Async auth object for pyfirecrest: client-credentials or a fixed user token."""

    def __init__(self, emu: Any, username: str | None = None) -> None:
        self.emu = emu
        self.username = username
        self._token: str | None = None
        self._expires = 0.0

    async def auth_headers(self) -> dict[str, str]:
        if self._token is None or time.time() > self._expires - 60:
            if self.username is None:
                async with httpx.AsyncClient(timeout=10) as client:
                    resp = await client.post(
                        self.emu.token_url,
                        data={
                            "grant_type": "client_credentials",
                            "client_id": self.emu.client_id,
                            "client_secret": self.emu.client_secret,
                        },
                    )
                resp.raise_for_status()
                body = resp.json()
                self._token, self._expires = body["access_token"], time.time() + body["expires_in"]
            else:
                self._token = await asyncio.to_thread(self.emu.issue_access_token, self.username)
                self._expires = time.time() + self.emu.config.idp.access_token_lifetime
        return {"Authorization": f"Bearer {self._token}"}


async def wait_for_state(
    client: Any, system: str, job_id: str, states: tuple[str, ...], timeout: float = 30
) -> dict:
    """Poll a job until its state starts with one of ``states``; returns the job."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        jobs = await client.job_info(system, job_id)
        job = jobs[0]
        if job["status"]["state"].startswith(states):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {job.get('status')}")
