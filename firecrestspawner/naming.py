"""Deterministic, collision-free batch job names (pure).

A job name identifies one spawn: ``fcs.<hub>.<user>.<server>.<spawn>``. After
an ambiguous submit failure the spawner finds its job by this name, and a
reaper can recognise jobs that belong to a hub. Each part is a slug of
``[a-z0-9-]``; a value that is not already such a slug (or is too long) gets a
hash of the original appended, so two different inputs never share a name.
``.`` separates the parts and cannot occur inside one. The result is safe on
an ``#SBATCH --job-name=`` line and at most 235 characters long (the limit of
FirecREST's ``name`` filter).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

PREFIX = "fcs"
MAX_LENGTH = 235
_PART_MAX = 48
_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_UNSAFE_RE = re.compile(r"[^a-z0-9]+")
_NAME_RE = re.compile(
    r"fcs\.(?P<hub>[a-z0-9-]+)\.(?P<user>[a-z0-9-]+)\.(?P<server>[a-z0-9-]+|_)\.(?P<spawn>[a-z0-9]+)"
)


def _hash(value: str, length: int = 8) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def slug(value: str, max_length: int = _PART_MAX) -> str:
    """A ``[a-z0-9-]`` slug of ``value``, unique per input.

    Values that already are short slugs are kept as they are; anything else is
    sanitised, truncated and suffixed with ``x`` plus a hash of the original.
    Empty input gives ``"_"`` (not a slug, so it collides with no value).
    """
    if value == "":
        return "_"
    if len(value) <= max_length and _SLUG_RE.fullmatch(value) and not value.startswith("x-"):
        return value
    digest = _hash(value)
    base = _UNSAFE_RE.sub("-", value.lower()).strip("-")
    base = base[: max_length - len(digest) - 3].strip("-")
    return f"x-{base}-{digest}" if base else f"x-{digest}"


def new_spawn_id() -> str:
    """A random id for one spawn (12 hex digits)."""
    return secrets.token_hex(6)


def job_name(hub_id: str, user: str, server_name: str, spawn_id: str) -> str:
    """The job name of one spawn; deterministic in its four inputs."""
    if not re.fullmatch(r"[a-z0-9]{1,32}", spawn_id or ""):
        raise ValueError("spawn_id must be 1-32 characters of [a-z0-9]")
    name = ".".join((PREFIX, slug(hub_id or "hub", 24), slug(user), slug(server_name), spawn_id))
    if len(name) > MAX_LENGTH:  # pragma: no cover - bounded by the part limits
        raise ValueError("job name too long")
    return name


@dataclass(frozen=True)
class JobName:
    hub: str
    user: str
    server: str
    spawn: str


def parse_job_name(name: str) -> JobName | None:
    """The slugged parts of a name made by :func:`job_name`, or None."""
    match = _NAME_RE.fullmatch(name or "")
    if match is None:
        return None
    return JobName(**match.groupdict())


__all__ = ["MAX_LENGTH", "PREFIX", "JobName", "job_name", "new_spawn_id", "parse_job_name", "slug"]
