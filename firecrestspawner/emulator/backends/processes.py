"""The job processes of the ``local`` backend: how they run, are found again and end.

A job runs under :mod:`.jobwrap` (:data:`JOBWRAP`) as the leader of its own
process group. A restarted emulator finds it again by pid and start time and
waits for it with a pidfd, as it is no longer its child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

JOBWRAP = str(Path(__file__).with_name("jobwrap.py"))


def process_start(pid: int) -> str | None:
    """The start time of a live process (/proc), None if it is gone or a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


async def wait_for_exit(pid: int) -> None:
    """Wait for a process that is not our child to end (pidfd; polling without one)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while process_start(pid) is not None:  # noqa: ASYNC110 - no event for another's process
            await asyncio.sleep(0.5)
        return
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
