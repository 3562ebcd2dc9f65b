"""Slurm time limits: reading, writing and saying them (pure)."""

from __future__ import annotations

import re

from .fields import DURATION_PATTERN

# -- durations -------------------------------------------------------------------
_DURATION_RE = re.compile(DURATION_PATTERN)


def duration_seconds(text: str) -> int:
    """Seconds of a Slurm time limit (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``).

    Raises ``ValueError`` for anything else.
    """
    if not isinstance(text, str) or not _DURATION_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a Slurm time limit")
    days = 0
    if "-" in text:
        d, rest = text.split("-", 1)
        days = int(d)
        parts = [int(x) for x in rest.split(":")]
        h, mi, s = ([*parts, 0, 0])[:3]
    else:
        parts = [int(x) for x in text.split(":")]
        if len(parts) == 1:
            h, mi, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, mi, s = 0, parts[0], parts[1]
        else:
            h, mi, s = parts
    if (len(parts) > 1 and s > 59) or (("-" in text or len(parts) == 3) and mi > 59):
        raise ValueError(f"{text!r}: minutes and seconds must be below 60")
    return ((days * 24 + h) * 60 + mi) * 60 + s


def format_duration(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24), accepted by Slurm and PBS alike."""
    h, rest = divmod(int(seconds), 3600)
    mi, s = divmod(rest, 60)
    return f"{h:02d}:{mi:02d}:{s:02d}"


def readable_duration(limit: str) -> str:
    """A time limit as people say it: ``90`` -> ``1 h 30 min``, ``1-00:00:00`` -> ``1 day``."""
    try:
        seconds = duration_seconds(str(limit))
    except ValueError:
        return str(limit)
    parts = []
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min"), (1, "s")):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''}")
    return " ".join(parts) or "0 min"


__all__ = ["duration_seconds", "format_duration", "readable_duration"]
