"""File operations of :class:`~firecrestspawner.client.FirecrestClient`: token files.

Split from :mod:`firecrestspawner.client` (the class inherits them): the
private directory of token files, the token file written into it, removal
and existence. FirecREST 2.5.6's upload runs ``base64 -d > FILE`` over SSH,
so a new file gets the cluster's umask (usually 0644) and the upload cannot
set a mode: a file is private from its first byte only because its directory
is already 0700, and is made 0600 (what ``firecrestspawner-singleuser``
requires) right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from firecrest.FirecrestException import UnexpectedStatusException

from .firecrest_errors import (
    TRANSIENT_STATUSES,
    FileAccessFailed,
    http_status,
    is_auth_refused,
    is_file_missing,
    is_not_found,
)
from .remembered import Remembered

if TYPE_CHECKING:
    from .client import ClientSettings
    from .pyfirecrest_adapter import VersionSafeAsyncFirecrest

log = logging.getLogger("firecrestspawner.client")

T = TypeVar("T")


class FileOperations:
    """Token files through FirecREST (a base of ``FirecrestClient``)."""

    if TYPE_CHECKING:  # provided by FirecrestClient
        raw: VersionSafeAsyncFirecrest
        settings: ClientSettings
        identity: str
        #: What does not change per spawn (default account, private directories).
        remembered: Remembered

        async def read(self, what: str, fn: Callable[[], Awaitable[T]]) -> T: ...

        def _system_checked(self, system: str) -> contextlib.AbstractContextManager[None]: ...

    def private_dir_known(self, system: str, directory: str) -> bool:
        """Whether ``directory`` was made (or found) 0700 less than ``private_dir_ttl`` ago."""
        key = ("private-dir", system, directory)
        return bool(self.remembered.get(key, self.settings.private_dir_ttl))

    async def ensure_private_dir(self, system: str, directory: str) -> None:
        """Make ``directory`` exist with mode 0700, and remember it (``private_dir_ttl``).

        ``mkdir -p`` answers the directory's entry: an existing 0700 directory
        costs that one request, a new one (made with the cluster's umask) one
        ``chmod`` more. The directory is empty when it is made.
        """
        operation = "mkdir"
        try:
            with self._system_checked(system):
                entry = await self.read(
                    "mkdir", lambda: self.raw.mkdir(system, directory, create_parents=True)
                )
                if not _private_dir(entry):
                    operation = "chmod"
                    await self.read("chmod", lambda: self.raw.chmod(system, directory, "700"))
        except UnexpectedStatusException as e:
            if _refused_file_operation(e):
                raise FileAccessFailed(operation, directory, e) from e
            raise
        self.remembered.put(("private-dir", system, directory), True)

    async def write_private_file(self, system: str, directory: str, name: str, content: str) -> str:
        """A 0600 file ``name`` in the 0700 ``directory`` (made if needed); return its path.

        Two requests when the directory is known (upload, chmod): FirecREST's
        upload writes with the cluster's umask and cannot set a mode, so the
        file is private from the start only because its directory is 0700,
        which :meth:`ensure_private_dir` made sure of before the first upload
        into it. A directory that has gone since (the upload answers 404) is
        made again and the upload repeated once. The content goes in the
        upload's body from memory, never through a command line or a local
        file. If the file cannot be made 0600 after the upload, it is removed
        again.
        """
        key = ("private-dir", system, directory)
        known = self.private_dir_known(system, directory)
        if not known:
            await self.ensure_private_dir(system, directory)
        path = f"{directory.rstrip('/')}/{name}"
        data = content.encode()
        try:
            await self._upload(system, data, directory, name)
        except FileAccessFailed as e:
            if not (known and is_not_found(e.cause)):
                raise
            self.remembered.forget(key)
            log.info(
                "The private directory %s of %s is gone; making it again",
                directory,
                self.identity or "this client",
            )
            await self.ensure_private_dir(system, directory)
            await self._upload(system, data, directory, name)
        try:
            with self._system_checked(system):
                await self.read("chmod", lambda: self.raw.chmod(system, path, "600"))
        except BaseException as e:
            with contextlib.suppress(Exception):
                await self.remove_file(system, path)
            if isinstance(e, UnexpectedStatusException) and _refused_file_operation(e):
                raise FileAccessFailed("chmod", path, e) from e
            raise
        return path

    async def _upload(self, system: str, data: bytes, directory: str, name: str) -> None:
        try:
            with self._system_checked(system):
                await self.read(
                    "upload", lambda: self.raw.upload_small(system, directory, name, data)
                )
        except UnexpectedStatusException as e:
            if _refused_file_operation(e):
                raise FileAccessFailed("upload", directory, e) from e
            raise

    async def remove_file(self, system: str, path: str) -> bool:
        """Delete ``path``; False when it was not there (404 "No such file or directory").

        Bounded by ``read_deadline`` as a whole, including pyfirecrest's
        fallback to a transfer job after a 408.
        """
        deadline = self.settings.read_deadline
        try:
            with self._system_checked(system):
                await asyncio.wait_for(
                    self.read("rm", lambda: self.raw.rm(system, path, timeout=deadline)),
                    deadline,
                )
        except UnexpectedStatusException as e:
            if is_file_missing(e):
                return False
            raise
        return True

    async def file_exists(self, system: str, path: str) -> bool:
        """Whether ``path`` exists on ``system`` (a stat; 404 means no)."""
        try:
            with self._system_checked(system):
                await self.read("stat", lambda: self.raw.stat(system, path))
        except UnexpectedStatusException as e:
            if is_not_found(e):
                return False
            raise
        return True


def _refused_file_operation(exc: BaseException) -> bool:
    """A definite 4xx about the file (permission, path, size), not the token or a timeout."""
    status = http_status(exc)
    return (
        status is not None
        and 400 <= status < 500
        and status not in TRANSIENT_STATUSES
        and not is_auth_refused(exc)
    )


def _private_dir(entry: Any) -> bool:
    """Whether an ``ls -l`` entry is a directory of mode 0700 (no ACL: no ``+``)."""
    if not isinstance(entry, dict) or entry.get("type") != "d":
        return False
    permissions = str(entry.get("permissions") or "")
    # GNU ls adds "." for an SELinux context only; "+" (an ACL) is not private.
    return permissions in ("rwx------", "rwx------.")


__all__ = ["FileOperations"]
