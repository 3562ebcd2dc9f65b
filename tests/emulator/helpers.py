"""Helpers shared by the emulator tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
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


SPEC_NAME = "openapi-firecrest-v2-2.5.6.yaml"


def spec_path() -> Path:
    """The official spec: the copy in this repository, else ``../shared/firecrest/``."""
    here = Path(__file__).resolve()
    local = here.parent / "spec" / SPEC_NAME
    if local.exists():
        return local
    return here.parents[2].parent / "shared" / "firecrest" / SPEC_NAME


class SpecChecker:
    """Validates every response against the official FirecREST spec (strictly).

    Requests are validated leniently: the path and method must exist in the
    spec, but bodies are not checked (pyfirecrest itself sends snake_case keys
    the spec does not list).
    """

    def __init__(self) -> None:
        from openapi_core import OpenAPI

        self.spec = OpenAPI.from_file_path(str(spec_path()))
        self.seen: list[tuple[str, str, int]] = []

    def check(self, response: httpx.Response) -> None:
        from openapi_core.testing import MockRequest, MockResponse

        request = response.request
        url = request.url
        host = f"{url.scheme}://{url.netloc.decode()}"
        req = MockRequest(
            host,
            request.method.lower(),
            url.path,
            args=dict(url.params),
            headers=dict(request.headers),
        )
        content_type = response.headers.get("content-type", "application/json").split(";")[0]
        resp = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type,
        )
        self.spec.validate_response(req, resp)
        if response.status_code != 204:
            # Error bodies are ApiResponseError; the spec's 4XX/5XX say so too,
            # but check the two fields clients read explicitly.
            body = response.json()
            if response.status_code >= 400:
                assert isinstance(body["message"], str)
                assert body["errorType"] in ("error", "validation")
        self.seen.append((request.method, _template(url.path), response.status_code))

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)


def _template(path: str) -> str:
    parts = path.strip("/").split("/")
    if parts[0] == "compute" and len(parts) >= 4:
        parts[3] = "{job_id}"
    if parts[0] in ("compute", "filesystem") or (parts[0] == "status" and len(parts) == 3):
        parts[1] = "{system}"
    return "/" + "/".join(parts)
