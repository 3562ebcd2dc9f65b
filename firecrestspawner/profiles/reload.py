"""Hot reload: the profile files of a directory, re-read when they change.

:class:`ProfileDirectory` is what the spawner holds in profile mode: each
:meth:`~ProfileDirectory.current` call stats the files and re-reads only those
that changed, so a site edits profiles without restarting the hub, and a
broken file is logged and skipped while the others keep working. It is shared
by all spawners of a hub (called from worker threads), so it holds a lock.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProfileError
from .loader import (
    LoadedFile,
    merge_profiles,
    profile_files,
    read_claimed_ids,
    read_profile_file,
)
from .models import ProfileSet

log = logging.getLogger(__name__)


def _stat(path: Path) -> tuple[int, ...] | None:
    """What says a file changed: modification and change times, size, inode (atomic renames)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


@dataclass
class _Entry:
    stamp: tuple[Any, ...]
    loaded: LoadedFile | None
    error: ProfileError | None
    #: Ids the file defined when it last loaded and, while broken, ids it may define.
    claimed: frozenset[str] = frozenset()


class ProfileDirectory:
    """The profile files of a directory, re-read when they change.

    :meth:`current` stats the files on every call (cheap) and re-reads only
    files whose modification time or size changed (including their
    ``template_file``); a file that fails is logged once per change with its
    error and skipped, the others keep working. No hub restart is needed.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, logger: logging.Logger | None = None
    ) -> None:
        self.path = Path(path)
        self.log = logger or log
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()
        self._current = ProfileSet()
        self._stamp: tuple[Any, ...] | None = None
        #: Held (never waited for) while a :meth:`refresh_soon` thread runs.
        self._refreshing = threading.Lock()

    def _file_stamp(self, path: Path, entry: _Entry | None) -> tuple[Any, ...]:
        deps = entry.loaded.dependencies if entry and entry.loaded else ()
        return (_stat(path), *(_stat(d) for d in deps))

    def current(self) -> ProfileSet:
        """The profiles now, re-reading changed files."""
        with self._lock:
            try:
                files = profile_files(self.path) if self.path.exists() else []
            except OSError as e:
                self.log.error("Cannot list profile directory %s: %s", self.path, e)
                files = []
            changed = set(self._entries) - set(files)
            for gone in changed:
                self.log.info("Profile file %s removed", gone)
                del self._entries[gone]
            for f in files:
                entry = self._entries.get(f)
                stamp = self._file_stamp(f, entry)
                if entry is not None and entry.stamp == stamp:
                    continue
                changed.add(f)
                try:
                    loaded = read_profile_file(f)
                except ProfileError as e:
                    self.log.error("Profile file %s is invalid and skipped:\n%s", f, e)
                    before = entry.claimed if entry is not None else frozenset()
                    self._entries[f] = _Entry(stamp, None, e, before | read_claimed_ids(f))
                else:
                    self.log.info("Loaded %d profile(s) from %s", len(loaded.profiles), f)
                    for warning in loaded.warnings:
                        self.log.warning("Profile file %s: %s", f, warning)
                    entry = _Entry((), loaded, None, frozenset(p.id for p in loaded.profiles))
                    entry.stamp = self._file_stamp(f, entry)
                    self._entries[f] = entry
            if changed or self._stamp is None:
                loaded_files = [e.loaded for _, e in sorted(self._entries.items()) if e.loaded]
                broken = {str(f): e.claimed for f, e in self._entries.items() if e.loaded is None}
                profiles, dup_errors = merge_profiles(loaded_files, broken)
                for err in dup_errors:
                    self.log.error("%s", err)
                file_errors = [e.error for _, e in sorted(self._entries.items()) if e.error]
                # Replaced whole, before the stamp says "read": :meth:`last` reads both
                # without the lock.
                self._current = ProfileSet(tuple(profiles), tuple(file_errors + dup_errors))
                self._stamp = ()
            return self._current

    def last(self) -> ProfileSet | None:
        """The profiles as :meth:`current` last read them: no file access, no lock.

        For synchronous callers on the hub's event loop (``load_state``), which must
        not stat files or wait for a loader thread's lock. None: never read yet.
        """
        return None if self._stamp is None else self._current

    def refresh_soon(self) -> threading.Thread | None:
        """Re-read changed files in a background thread; None when one is already running.

        Returns at once (the lock is tried, never waited for); the thread runs
        :meth:`current`, so the next :meth:`last` sees what changed.
        """
        if not self._refreshing.acquire(blocking=False):
            return None

        def refresh() -> None:
            try:
                self.current()
            except Exception:  # pragma: no cover - current() logs file problems itself
                self.log.exception("Re-reading profile directory %s failed", self.path)
            finally:
                self._refreshing.release()

        thread = threading.Thread(target=refresh, name="profile-refresh", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # pragma: no cover - no thread can be started (shutdown)
            self._refreshing.release()
            return None
        return thread

    @property
    def errors(self) -> list[ProfileError]:
        """The errors of the files as last read (call :meth:`current` to refresh)."""
        return list(self._current.errors)


__all__ = ["ProfileDirectory"]
