"""The emulator's state file: what a restarted emulator needs to carry on.

Jobs (and the next local job id), the identity provider's signing key and its
refresh tokens (as SHA-256 digests, never the tokens themselves). Without it a
restarted emulator turns running servers into "gone" and logs users out.

The file is one JSON document, written whole under a temporary name and
renamed into place (a reader or a crash never sees half of it), mode 0600 as
it holds a private key. A lock file next to it keeps a second emulator from
writing the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Format version; a file of another version is refused, not guessed at.
VERSION = 1


class StateFileError(Exception):
    """The state file cannot be used; the message names it and says what to do."""


class StateFile:
    """Load, lock and atomically replace one state file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None

    def acquire(self) -> None:
        """Lock the state for this process; raises StateFileError if another holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StateFileError(f"state file {self.path}: cannot create its lock: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise StateFileError(
                f"state file {self.path} is in use by another emulator (lock {self.lock_path})"
            ) from e
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no file yet; raises StateFileError."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise StateFileError(f"state file {self.path} cannot be read: {e}") from e
        try:
            data = json.loads(text)
        except ValueError as e:
            raise self._corrupt(f"not JSON: {e}") from e
        if not isinstance(data, dict):
            raise self._corrupt("not a JSON object")
        if data.get("version") != VERSION:
            raise self._corrupt(f"version {data.get('version')!r}, expected {VERSION}")
        for key in ("idp", "systems"):
            if not isinstance(data.get(key, {}), dict):
                raise self._corrupt(f"{key!r} is not an object")
        return data

    def _corrupt(self, why: str) -> StateFileError:
        return StateFileError(
            f"state file {self.path} is not a valid emulator state ({why}); "
            "move it away to start with a fresh state"
        )

    def write(self, data: dict[str, Any]) -> None:
        """Replace the file with ``data`` atomically (temporary file, fsync, rename), 0600."""
        data = {"version": VERSION, **data}
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class Saver:
    """Writes the state file when the state changed.

    A handler whose answer must survive a crash (a job id, a refresh token)
    awaits :meth:`save` before answering; background changes (a job started
    or ended) call :meth:`changed`, which saves soon. Saves run one at a time
    in a thread; changes made during a save are written by the next one.
    """

    def __init__(self, file: StateFile, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.file = file
        self.snapshot = snapshot
        self._dirty = False
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task | None = None

    def changed(self) -> None:
        self._dirty = True
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self.save())

    async def close(self) -> None:
        """Write the final state and give the file up (the emulator stops)."""
        if self._pending is not None:
            await self._pending
        await self.save(force=True)
        self.file.release()

    async def save(self, force: bool = False) -> None:
        async with self._lock:
            if not (self._dirty or force):
                return
            self._dirty = False
            data = self.snapshot()  # on the loop: a consistent picture
            try:
                await asyncio.to_thread(self.file.write, data)
            except OSError as e:
                self._dirty = True
                log.error("could not write the state file %s: %s", self.file.path, e)
