"""End to end: the job-side script reports its port to the real hub handler.

A spawner runs ``firecrestspawner-singleuser`` as a local process with the
environment the real spawner would send through FirecREST (``get_env()``
encoded by ``jobenv``); the hub learns the port only from the report.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from unittest import mock

import pytest
from jupyterhub.spawner import Spawner
from jupyterhub.tests.utils import api_request

from firecrestspawner.handlers import PortReporting, PortWaiter, register_api_handler
from firecrestspawner.jobenv import job_environment

register_api_handler()

SCRIPT = Path(sys.executable).parent / "firecrestspawner-singleuser"

# The "notebook server": answers 200 on the port from JUPYTERHUB_SERVICE_URL.
SERVER = [
    sys.executable,
    "-c",
    (
        "import os, http.server\n"
        "from urllib.parse import urlsplit\n"
        "u = urlsplit(os.environ['JUPYTERHUB_SERVICE_URL'])\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer((u.hostname, u.port), H).serve_forever()\n"
    ),
]


class LocalJobSpawner(PortReporting, Spawner):
    """Runs the job-side script locally, as a batch job would on a node."""

    proc = None
    seen_argv: list[str] = []

    async def start(self):
        self.port_waiter = PortWaiter()
        env = job_environment(self.get_env())
        env["PATH"] = os.environ["PATH"]
        env["FIRECRESTSPAWNER_BIND_HOST"] = "127.0.0.1"
        argv = [str(SCRIPT), *SERVER]
        LocalJobSpawner.seen_argv = argv
        self.proc = await asyncio.create_subprocess_exec(*argv, env=env)
        try:
            port = await self.port_waiter.wait(30)
        finally:
            self.port_waiter.close()
        return ("127.0.0.1", port)

    async def poll(self):
        if self.proc is None:
            return 0
        return self.proc.returncode

    async def stop(self, now=False):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


@pytest.mark.timeout(90)
async def test_job_reports_port_and_hub_uses_it(app, user):
    with mock.patch.dict(app.tornado_settings, {"spawner_class": LocalJobSpawner}):
        r = await api_request(app, "users", user.name, "server", method="post")
        assert r.status_code in (201, 202)
        spawner = user.spawners[""]
        for _ in range(600):
            if spawner.ready:
                break
            await asyncio.sleep(0.05)
        assert spawner.ready
        port = spawner.port_waiter.port
        assert port is not None
        assert spawner.server.port == port
        assert spawner.server.ip == "127.0.0.1"
        # the token reached the job through the environment, not the command line
        assert all(spawner.api_token not in arg for arg in LocalJobSpawner.seen_argv)
        # the proxy routes the user's URL to the reported port
        routes = await app.proxy.get_all_routes()
        targets = [r["target"] for r in routes.values() if r["data"].get("user") == user.name]
        assert targets == [f"http://127.0.0.1:{port}"]
        await user.stop("")
