"""The FirecREST emulator for benchmarks: in its own process (or thread, for CI).

In a separate process the emulator's CPU does not share the hub process's
GIL, so the hub's event-loop lag and CPU time are the hub's own. The handle
offers what :class:`firecrestspawner.emulator.testing.RunningEmulator` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from firecrestspawner.emulator.config import EmulatorConfig, IdpConfig, SystemConfig
from firecrestspawner.emulator.testing import AdminClient, running_emulator

_URL_LINE = re.compile(r"FirecREST emulator: (http://\S+)")


def bench_config(
    systems: int = 1, queue_delay: float = 0.0, token_lifetime: int = 300
) -> EmulatorConfig:
    """Simulated jobs (no processes), unlimited slots, no refresh-token rotation.

    Rotation is off so the baseline (a token request per call, concurrent)
    can share one refresh token like the existing firecrestspawner does.
    """
    return EmulatorConfig(
        admin_token=secrets.token_urlsafe(24),
        request_log_size=10,
        systems=[
            SystemConfig(
                name=f"cluster{i}" if systems > 1 else "cluster",
                simulate=True,
                slots=None,
                queue_delay=queue_delay,
                completing_time=0.0,
                retention=3600.0,
                file_systems=[
                    {"path": "/tmp", "data_type": "users", "default_work_dir": True}  # noqa: S108 - an emulated mount
                ],
            )
            for i in range(systems)
        ],
        idp=IdpConfig(rotate_refresh_tokens=False, access_token_lifetime=token_lifetime),
    )


class EmulatorHandle:
    """URL, IdP and admin client of a running emulator."""

    def __init__(self, url: str, config: EmulatorConfig, pid: int | None = None) -> None:
        self.url = url
        self.config = config
        #: The emulator's process (None when it runs in a thread of this one).
        self.pid = pid
        self.token_url = f"{url}/idp/token"
        self.admin = AdminClient(url, config.admin_token)

    @property
    def system(self) -> str:
        return self.config.systems[0].name

    @property
    def systems(self) -> list[str]:
        return [s.name for s in self.config.systems]

    @property
    def client_id(self) -> str:
        return next(iter(self.config.idp.clients))

    @property
    def client_secret(self) -> str:
        return self.config.idp.clients[self.client_id].secret

    def issue_refresh_token(self, username: str) -> str:
        return self.admin.issue_refresh_token(username)

    def issue_access_token(self, username: str, lifetime: int | None = None) -> str:
        return self.admin.issue_access_token(username, lifetime=lifetime)

    def counts(self) -> dict[str, int]:
        """FirecREST and identity-provider requests so far (admin calls excluded)."""
        c = self.admin.counters()
        idp = sum(v for k, v in c["idp_grants"].items())
        firecrest = sum(
            v for k, v in c["endpoints"].items() if "/idp/" not in k and "_emulator" not in k
        )
        return {"firecrest": firecrest, "idp": idp, "endpoints": c["endpoints"]}


def _die_with_parent() -> None:
    """Linux: SIGTERM the emulator when the harness dies (no orphan servers)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def emulator_process(config: EmulatorConfig) -> Iterator[EmulatorHandle]:
    """Run ``firecrestspawner emulator`` in a child process on a free port."""
    tmp = Path(tempfile.mkdtemp(prefix="fcs-bench-emu-"))
    cfg = tmp / "emulator.yaml"
    data: dict[str, Any] = config.model_dump(mode="json")
    data["port"] = 0
    cfg.write_text(json.dumps(data))  # JSON is YAML 1.2
    cfg.chmod(0o600)
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "firecrestspawner", "emulator"),
            *("--config", str(cfg), "--log-level", "WARNING"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_die_with_parent,
    )
    url = ""
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while not url and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            m = _URL_LINE.search(line)
            if m:
                url = m.group(1)
    if not url:
        proc.kill()
        raise RuntimeError("the emulator process did not start")
    handle = EmulatorHandle(url, config, pid=proc.pid)
    try:
        yield handle
    finally:
        handle.admin.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        with contextlib.suppress(OSError):
            cfg.unlink()
            tmp.rmdir()


@contextlib.contextmanager
def emulator_thread(config: EmulatorConfig) -> Iterator[EmulatorHandle]:
    """The emulator in a thread of this process (CI: counts only, no timings)."""
    with running_emulator(config) as emu:
        handle = EmulatorHandle(emu.url, config)
        try:
            yield handle
        finally:
            handle.admin.close()
