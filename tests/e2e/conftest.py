"""End-to-end fixtures: the demo's stack (JupyterHub process, configurable-http-proxy,
FirecREST emulator, real Slurm, real jupyterhub-singleuser) and helpers to drive it.

The hub is configured by :class:`firecrestspawner.demo.DemoStack`, the same
code as ``firecrestspawner demo``, with ``cleanup_servers = False`` (as HPC
hubs run) and an admin service token for the REST API. Hub users are names
without a Unix account, so the emulator submits their jobs as its own user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firecrestspawner.demo import DemoOptions, DemoStack, free_port

HERE = Path(__file__).resolve().parent
PROFILES = HERE / "profiles"
REPO = HERE.parents[1]
#: ``hub_id`` of the e2e hub: its jobs are named ``fcs.e2e.<user>.<server>.<spawn>``.
HUB_ID = "e2e"
#: Where screenshots go: ``$FIRECRESTSPAWNER_SCREENSHOTS`` (e.g. docs/img) or the test's tmp dir.
SCREENSHOTS_VAR = "FIRECRESTSPAWNER_SCREENSHOTS"


def squeue(*args: str) -> list[str]:
    """Lines of ``squeue -h`` with extra arguments (raises if Slurm does not answer)."""
    out = subprocess.run(
        ["squeue", "-h", *args], capture_output=True, text=True, timeout=30, check=True
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


def job_line(job_id: str) -> str | None:
    """``"<state> <reason> <partition>"`` of a job still in squeue, else None."""
    for line in squeue("-o", "%i %T %r %P"):
        jid, rest = line.split(" ", 1)
        if jid == job_id:
            return rest
    return None


async def wait_for(
    predicate: Any, timeout: float, what: str, interval: float = 0.5, negate: bool = False
) -> Any:
    """Poll ``predicate()`` (sync or async) until it returns something truthy (falsy: negate)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if negate and not value:
            return True
        if value and not negate:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class E2EHub:
    """Drives the stack like users and an admin would: HTTP and the REST API."""

    def __init__(self, stack: DemoStack, service_token: str) -> None:
        self.stack = stack
        self.url = stack.hub_url  # ends with /
        self.service_token = service_token

    def api_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.url}hub/api/",
            headers={"Authorization": f"token {self.service_token}"},
            timeout=60,
        )

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with self.api_client() as client:
            return await client.request(method, path, **kwargs)

    async def login(self, name: str) -> httpx.AsyncClient:
        """A cookie session for ``name`` through the login form (xsrf-correct)."""
        client = httpx.AsyncClient(base_url=self.url, timeout=60)
        await client.get("hub/login")
        xsrf = client.cookies.get("_xsrf")
        r = await client.post(
            "hub/login", data={"username": name, "password": "any", "_xsrf": xsrf}
        )
        assert r.status_code == 302, f"login of {name} failed: {r.status_code} {r.text[:500]}"
        return client

    async def server(self, name: str) -> dict[str, Any] | None:
        r = await self.api("GET", f"users/{name}")
        r.raise_for_status()
        return r.json()["servers"].get("")

    async def spawn(self, name: str, user_options: dict[str, Any]) -> httpx.Response:
        # The body itself is user_options: JupyterHub 5.4 reads it so, 6.x too.
        return await self.api("POST", f"users/{name}/server", json=user_options)

    async def progress(
        self, name: str, timeout: float = 240, until: Any = None
    ) -> list[dict[str, Any]]:
        """The spawn's progress events (SSE) until ready/failed, ``until(event)`` or timeout."""
        events: list[dict[str, Any]] = []

        async def collect() -> None:
            async with (
                self.api_client() as client,
                client.stream("GET", f"users/{name}/server/progress", timeout=None) as resp,
            ):
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    events.append(event)
                    if event.get("ready") or event.get("failed"):
                        return
                    if until is not None and until(event):
                        return

        await asyncio.wait_for(collect(), timeout)
        return events

    async def wait_ready(self, name: str, timeout: float = 240) -> dict[str, Any]:
        async def ready() -> dict[str, Any] | None:
            server = await self.server(name)
            return server if server and server["ready"] else None

        return await wait_for(ready, timeout, f"{name}'s server to be ready", 1.0)

    async def job_id(self, name: str) -> str:
        server = await self.server(name)
        assert server is not None, f"{name} has no server"
        job_id = str(server["state"].get("job_id") or "")
        assert job_id, f"no job id in {name}'s server state: {server['state']}"
        return job_id

    async def stop(self, name: str, job_id: str, timeout: float = 120) -> None:
        """Stop the server through the API and wait until its job left squeue."""
        r = await self.api("DELETE", f"users/{name}/server")
        assert r.status_code in (202, 204), r.text

        async def gone() -> bool:
            return await self.server(name) is None and job_line(job_id) is None

        await wait_for(gone, timeout, f"job {job_id} of {name} to leave squeue")

    @contextlib.asynccontextmanager
    async def stopped_after(self, name: str) -> AsyncIterator[None]:
        """Stop ``name``'s server on the way out even when the test failed."""
        try:
            yield
        finally:
            server = await self.server(name)
            if server is not None:
                await self.api("DELETE", f"users/{name}/server")
                await wait_for(
                    lambda: self.server(name), 60, f"{name}'s server to stop", negate=True
                )

    async def proxied_api(self, name: str) -> httpx.Response:
        """``GET /user/<name>/api`` through the proxy (jupyter_server's version endpoint)."""
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.get(f"{self.url}user/{name}/api")


def screenshot_path(tmp_path: Path, name: str) -> Path:
    target = os.environ.get(SCREENSHOTS_VAR)
    directory = (
        (REPO / target) if target and not os.path.isabs(target) else Path(target or tmp_path)
    )
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


@pytest.fixture(scope="module")
def e2e_hub(slurm: Any, chp: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EHub]:
    token = secrets.token_hex(24)
    options = DemoOptions(
        port=free_port(),
        backend="slurm",
        profiles_dir=PROFILES,
        base_dir=tmp_path_factory.mktemp("e2e-hub"),
        cleanup_servers=False,
        service_token=token,
        extra_config=f"""
        c.FirecRESTSpawnerBase.hub_id = {HUB_ID!r}
        c.JupyterHub.log_level = "DEBUG"
        # The spawn API answers 202 at once, so tests read every progress event.
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
        """,
    )
    stack = DemoStack(options)
    stack.start()
    try:
        yield E2EHub(stack, token)
    finally:
        stack.stop()


#: Records what the spawn-pending page shows (``#progress-message`` and the
#: progress log) into localStorage, so a test can read it after the page has
#: moved on to JupyterLab.
RECORD_PROGRESS_JS = """
(() => {
  const KEY = "fcs-e2e-progress";
  const record = () => {
    const nodes = Array.from(document.querySelectorAll("#progress-log .progress-log-event"));
    const message = document.getElementById("progress-message");
    if (message) nodes.push(message);
    const seen = JSON.parse(localStorage.getItem(KEY) || "[]");
    for (const node of nodes) {
      const text = node.textContent.trim();
      if (text && !seen.includes(text)) seen.push(text);
    }
    localStorage.setItem(KEY, JSON.stringify(seen));
  };
  document.addEventListener("DOMContentLoaded", () => {
    if (!document.getElementById("progress-log")) return;
    record();
    new MutationObserver(record).observe(document.body,
      {subtree: true, childList: true, characterData: true});
  });
})();
"""


async def recorded_progress(page: Any) -> list[str]:
    return json.loads(await page.evaluate('localStorage.getItem("fcs-e2e-progress") || "[]"'))


async def browser_login(page: Any, hub_url: str, name: str) -> None:
    """Log ``name`` in through the login page of the hub at ``hub_url`` (ends with /)."""
    await page.goto(f"{hub_url}hub/login")
    await page.fill("#username_input", name)
    await page.fill("#password_input", "any")
    await page.click("#login_submit")
    await page.wait_for_url(re.compile(r".*/hub/(spawn|home).*"))
