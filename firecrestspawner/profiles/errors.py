"""Problems in profile files and how they are written (pure).

Every problem the loader finds is a :class:`Problem`, written as
``FILE:LINE:COL: $.json.path: message`` followed by a ``hint:`` line saying
what to write instead; a file with problems raises :class:`ProfileError`
holding all of them. The helpers here describe values in messages the same
way everywhere (the schema reporter, the cross-field checks and the option
validator).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One error in a profile file."""

    file: str
    path: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def __str__(self) -> str:
        text = f"{self.location()}: {self.path}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ProfileError(ValueError):
    """A profile file (or profile set) is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def file(self) -> str:
        return self.problems[0].file if self.problems else ""


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems in file order (line, column, path)."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))


def json_path(parts: Iterable[Any]) -> str:
    """``$.a[0].b`` for the path ``["a", 0, "b"]``.

    The same rule as jsonschema's ``ValidationError.json_path`` (a key that is
    not a plain name is written ``['key']``), so the paths of our own checks and
    of schema errors always look alike; written here so that loading a valid
    file need not import jsonschema (tests/profiles/test_cli_startup.py compares them).
    """
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY_RE.match(str(part)):
            path += "." + str(part)
        else:
            path += "['" + str(part).replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


#: A key written ``.key`` in a JSON path (jsonschema's ``_JSON_PATH_COMPATIBLE_PROPERTY_PATTERN``).
_PLAIN_KEY_RE = re.compile("^[a-zA-Z][a-zA-Z0-9_]*$")


def describe_type(value: Any) -> str:
    """The kind of a parsed value, for messages (``a string``, ``a list``, ...)."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class OptionError(ValueError):
    """A user option was refused. ``field`` names it; ``message`` says why and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def short(value: Any) -> str:
    """A value as shown in a message: quoted text, JSON otherwise, at most 60 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**60:
        return f"{'-' if value < 0 else ''}a number of {len(str(abs(value) // 10**60)) + 60} digits"
    try:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    except (ValueError, TypeError, RecursionError):  # huge ints, cycles, deep nesting
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "OptionError",
    "Problem",
    "ProfileError",
    "describe_type",
    "json_path",
    "short",
    "sort_problems",
]
