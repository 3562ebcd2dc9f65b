"""The ``/filesystem/{system}/ops/*`` operations on the local file system.

Synchronous functions: the app runs them in a worker thread. Errors are
:class:`BackendError` with FirecREST's status codes (400 bad path, 403
permission, 404 missing, 413 too large).
"""

from __future__ import annotations

import datetime as dt
import errno
import grp
import os
import posixpath
import pwd
import shutil
import stat as statmod
from collections.abc import Sequence

from .backends.base import BackendError
from .config import FileSystemConfig


def check_path(path: str, system: str, file_systems: Sequence[FileSystemConfig]) -> str:
    """FirecREST's path rule: absolute and, normalised, under a configured file system."""
    if not path.startswith("/"):
        raise BackendError(400, f"The provided path ({path}) is not an absolute path.")
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    for fs in file_systems:
        root = posixpath.normpath(fs.path)
        if root == "/" or norm == root or norm.startswith(root + "/"):
            return norm
    raise BackendError(
        400,
        f"The provided path ({path}) does not match any of the defined filesystem paths "
        f"for the requested system ({system}).",
    )


#: How each coreutils command words a failure on a path (as FirecREST relays it).
_COMMAND_WORDING = {
    "stat": "cannot statx '{path}'",
    "tail": "cannot open '{path}' for reading",
    "head": "cannot open '{path}' for reading",
    "mkdir": "cannot create directory '{path}'",
    "ls": "cannot access '{path}'",
    "chmod": "cannot access '{path}'",
}


def _os_error(e: OSError, path: str, command: str) -> BackendError:
    """The real server's text: the remote command's stderr behind FirecREST's prefix."""
    wording = _COMMAND_WORDING.get(command, "cannot access '{path}'").format(path=path)
    text = (
        f"Remote process failed with exit status:1 and error message:"
        f"{command}: {wording}: {e.strerror}"
    )
    if e.errno == errno.ENOENT:
        return BackendError(404, text)
    if e.errno in (errno.EACCES, errno.EPERM):
        return BackendError(403, text)
    return BackendError(400, text)


def _read(path: str, command: str, max_size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(max_size + 1)
    except IsADirectoryError as e:
        raise BackendError(400, f"{command}: error reading '{path}': Is a directory") from e
    except OSError as e:
        raise _os_error(e, path, command) from e
    return data


def _content(data: bytes, start: int, end: int, unit: str) -> dict:
    return {
        "content": data.decode("utf-8", errors="replace"),
        "contentType": unit,
        "startPosition": start,
        "endPosition": end,
    }


def _lines_or_bytes(lines: int | None, nbytes: int | None) -> tuple[str, int]:
    if lines is not None and nbytes is not None:
        raise BackendError(
            400, "Only one of 'lines' or 'bytes' can be specified.", error_type="validation"
        )
    if nbytes is not None:
        if nbytes < 0:
            raise BackendError(400, "'bytes' must be a non-negative integer", "validation")
        return "bytes", nbytes
    n = 10 if lines is None else lines
    if n < 0:
        raise BackendError(400, "'lines' must be a non-negative integer", "validation")
    return "lines", n


def tail(
    path: str, lines: int | None, nbytes: int | None, skip_heading: bool, max_size: int
) -> dict:
    unit, n = _lines_or_bytes(lines, nbytes)
    data = _read_whole(path, "tail", max_size)
    if unit == "bytes":
        start = min(n, len(data)) if skip_heading else max(0, len(data) - n)
        return _content(data[start:], start, len(data), unit)
    all_lines = data.splitlines(keepends=True)
    total = len(all_lines)
    start = min(n, total) if skip_heading else max(0, total - n)
    return _content(b"".join(all_lines[start:]), start, total, unit)


def head(
    path: str, lines: int | None, nbytes: int | None, skip_trailing: bool, max_size: int
) -> dict:
    unit, n = _lines_or_bytes(lines, nbytes)
    data = _read_whole(path, "head", max_size)
    if unit == "bytes":
        end = max(0, len(data) - n) if skip_trailing else min(n, len(data))
        return _content(data[:end], 0, end, unit)
    all_lines = data.splitlines(keepends=True)
    end = max(0, len(all_lines) - n) if skip_trailing else min(n, len(all_lines))
    return _content(b"".join(all_lines[:end]), 0, end, unit)


def _read_whole(path: str, command: str, max_size: int) -> bytes:
    # Job logs are small; a file over the buffer is refused like the server does.
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise _os_error(e, path, command) from e
    if size > 64 * max_size:
        raise BackendError(413, f"{command}: output of '{path}' is too large")
    return _read(path, command, 64 * max_size)


def view(path: str, size: int | None, offset: int | None, max_size: int) -> str:
    size = max_size if size is None else size
    offset = offset or 0
    if size > max_size:
        raise BackendError(
            413, f"The requested size ({size}) exceeds the maximum allowed ({max_size})."
        )
    try:
        st = os.stat(path)
    except OSError as e:
        raise _os_error(e, path, "head") from e
    if statmod.S_ISDIR(st.st_mode):
        raise BackendError(400, f"head: error reading '{path}': Is a directory")
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    except OSError as e:
        raise _os_error(e, path, "head") from e
    return data.decode("utf-8", errors="replace")


def _perm_string(mode: int) -> str:
    return statmod.filemode(mode)[1:]


def _type_char(mode: int) -> str:
    if statmod.S_ISDIR(mode):
        return "d"
    if statmod.S_ISLNK(mode):
        return "l"
    return "-"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def file_entry(path: str, name: str | None = None) -> dict:
    """One ``File`` (as ``ls -l`` shows it)."""
    st = os.lstat(path)
    target = os.readlink(path) if statmod.S_ISLNK(st.st_mode) else None
    return {
        "name": name if name is not None else path,
        "type": _type_char(st.st_mode),
        "linkTarget": target,
        "user": _owner(st.st_uid),
        "group": _group(st.st_gid),
        "permissions": _perm_string(st.st_mode),
        "lastModified": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        "size": str(st.st_size),
    }


def ls(path: str, show_hidden: bool) -> list[dict]:
    try:
        if not os.path.isdir(path):
            return [file_entry(path, os.path.basename(path))]
        names = sorted(os.listdir(path))
    except OSError as e:
        raise _os_error(e, path, "ls") from e
    return [
        file_entry(os.path.join(path, n), n) for n in names if show_hidden or not n.startswith(".")
    ]


def stat(path: str, dereference: bool) -> dict:
    try:
        st = os.stat(path) if dereference else os.lstat(path)
    except OSError as e:
        raise _os_error(e, path, "stat") from e
    return {
        "mode": st.st_mode,
        "ino": st.st_ino,
        "dev": st.st_dev,
        "nlink": st.st_nlink,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "atime": int(st.st_atime),
        "ctime": int(st.st_ctime),
        "mtime": int(st.st_mtime),
    }


def _chown(path: str, owner: tuple[int, int] | None) -> None:
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)


def mkdir(path: str, parent: bool, owner: tuple[int, int] | None) -> dict:
    try:
        if parent:
            missing = []
            p = path
            while p and not os.path.exists(p):
                missing.append(p)
                p = os.path.dirname(p)
            os.makedirs(path, exist_ok=True)
            for m in missing:
                _chown(m, owner)
        else:
            os.mkdir(path)
            _chown(path, owner)
    except FileExistsError as e:
        raise BackendError(400, f"mkdir: cannot create directory '{path}': File exists") from e
    except OSError as e:
        raise _os_error(e, path, "mkdir") from e
    return file_entry(path)


def chmod(path: str, mode: str) -> dict:
    try:
        value = int(mode, 8)
    except ValueError as e:
        raise BackendError(400, f"chmod: invalid mode: '{mode}'", "validation") from e
    try:
        os.chmod(path, value)
    except OSError as e:
        raise _os_error(e, path, "chmod") from e
    return file_entry(path)


def upload(
    directory: str, filename: str, data: bytes, owner: tuple[int, int] | None, max_size: int
) -> None:
    """Write an uploaded file as FirecREST 2.5.6 does (``base64 -d > FILE`` over SSH).

    A new file gets mode 0644 (0666 less the usual umask 022: the upload
    cannot set a mode, so a client must make a secret private itself); an
    existing file is truncated and keeps its mode.
    """
    if len(data) > max_size:
        raise BackendError(
            413, f"File size exceeds the maximum allowed for direct upload ({max_size} bytes)."
        )
    if not filename or "/" in filename or filename in (".", ".."):
        raise BackendError(400, f"Invalid file name: {filename!r}", "validation")
    target = os.path.join(directory, filename)
    try:
        if not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", directory)
        existed = os.path.lexists(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            if not existed:
                os.fchmod(fd, 0o644)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as e:
        raise _os_error(e, target, "upload") from e


def _command_error(command_stderr: str) -> BackendError:
    """FirecREST's answer to a failed file command (its ``error_handling``)."""
    message = f"Remote process failed with exit status:1 and error message:{command_stderr}"
    if "No such file or directory" in command_stderr:
        return BackendError(404, message)
    if "Permission denied" in command_stderr or "Operation not permitted" in command_stderr:
        return BackendError(403, message)
    return BackendError(500, message)


def rm(path: str, roots: Sequence[str]) -> None:
    """``rm -r --interactive=never -- PATH``; a file-system root is never removed."""
    if path in {posixpath.normpath(r) for r in roots} or path == "/":
        raise _command_error(f"rm: cannot remove '{path}': Permission denied")
    try:
        st = os.lstat(path)
        if statmod.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError as e:
        raise _command_error(f"rm: cannot remove '{path}': {e.strerror}") from e
