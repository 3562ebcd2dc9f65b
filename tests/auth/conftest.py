"""Fixtures for the credential and port-handler tests.

``idp`` runs oauth2-mock-server (npm, installed by ``npm ci`` at the repo root)
through ``oauth2_server.mjs`` and scripts it through its control API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from firecrestspawner import auth
from tests.fixtures.chp import INSTALL_HINT, skip_or_fail

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLIENT_ID = "hub-client"
CLIENT_SECRET = "hub-secret"  # registered by oauth2_server.mjs


class MockIdP:
    """Control handle of a running oauth2-mock-server."""

    def __init__(self, info: dict[str, str]) -> None:
        self.token_url = info["token_url"].replace("localhost", "127.0.0.1")
        self.control = info["control"]
        self._http = httpx.Client(base_url=self.control, timeout=5)

    def configure(self, **config) -> None:
        self._http.post("/config", json=config).raise_for_status()

    def add_refresh_token(self, token: str) -> str:
        self._http.post("/refresh-tokens", json={"token": token}).raise_for_status()
        return token

    def revoke(self, token: str) -> None:
        self._http.post("/revoke", json={"token": token}).raise_for_status()

    def requests(self) -> list[dict]:
        return self._http.get("/requests").json()

    def reset(self) -> None:
        self._http.post("/reset").raise_for_status()

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def _idp_process():
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oauth2-mock-server").is_dir():
        skip_or_fail(f"oauth2-mock-server (and node) not found: {INSTALL_HINT}")
    proc = subprocess.Popen(
        [node, str(HERE / "oauth2_server.mjs")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("oauth2_server.mjs exited before printing its address")
        idp = MockIdP(json.loads(line))
        yield idp
        idp.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def idp(_idp_process):
    """A freshly reset identity provider; credential caches cleared too."""
    _idp_process.reset()
    auth.clear_caches()
    yield _idp_process
    auth.clear_caches()
