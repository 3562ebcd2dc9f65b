"""Helpers of the real-server tier: clients of this project for the test users.

Every test here talks to the unmodified FirecREST 2.5.6 (``real_firecrest``
fixture), which reaches the real Slurm (with accounting) over SSH as each
user's own Unix account.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from firecrestspawner import client as fc
from tests.fixtures.firecrest_server import RealFirecrest


class TokenAuth:
    """A user's (or the service account's) access token from the test IdP, cached."""

    def __init__(self, server: RealFirecrest, username: str) -> None:
        self.server = server
        self.username = username
        self._token = ""
        self._expires = 0.0
        self.grants = 0

    async def auth_headers(self) -> dict[str, str]:
        if time.monotonic() > self._expires:
            self._token = await asyncio.to_thread(self.server.access_token, self.username)
            self._expires = time.monotonic() + 200
            self.grants += 1
        return {"Authorization": f"Bearer {self._token}"}


#: Settings for the tests: short deadlines, few attempts (the server is local).
SETTINGS = fc.ClientSettings(request_timeout=30, read_attempts=3, read_deadline=60)


@pytest.fixture
async def client_for(
    real_firecrest: RealFirecrest,
) -> AsyncIterator[Callable[[str], fc.FirecrestClient]]:
    """``client_for(user)``: this project's FirecREST client as ``user``."""
    made: list[fc.FirecrestClient] = []

    def make(username: str) -> fc.FirecrestClient:
        c = fc.FirecrestClient(real_firecrest.url, TokenAuth(real_firecrest, username), SETTINGS)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def squeue_ids(*args: str) -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i", *args], capture_output=True, text=True, timeout=30, check=True
    )
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def scancel_quietly(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=30, check=False)


async def wait_job(
    client: fc.FirecrestClient,
    system: str,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 90,
) -> dict[str, Any]:
    """Poll one job by id until ``done(job)``; fails with the last job seen."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] | None = None
    delay = 0.5
    while time.monotonic() < deadline:
        job = await client.job(system, job_id)
        if job is not None and done(job):
            return job
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 3)
    raise AssertionError(f"job {job_id} never reached the expected state; last seen: {job}")


def state(job: dict[str, Any]) -> str:
    return str(job["status"]["state"])
