"""Profile file text -> plain data, with positions and size limits (pure).

YAML is read with ruamel.yaml's round-trip loader in YAML 1.2 (PyYAML would
turn ``1:00:00`` into 3600 and ``no`` into False), which keeps the line and
column of every node, so later problems can point at them (:func:`position`).
TOML is read with ``tomllib``; it gives positions only for syntax errors.
Limits on size, number of values and depth keep a hostile file (alias bombs,
deep nesting) from exhausting the hub.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Iterable
from typing import Any

from .errors import Problem, ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Limits that keep a hostile file (alias bombs, deep nesting) from exhausting the hub.
MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 40

_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def format_for(name: str) -> str:
    """``toml`` for ``*.toml`` file names, else ``yaml``."""
    return "toml" if name.lower().endswith(".toml") else "yaml"


class _TooLarge(Exception):
    pass


def toml_error(error: ValueError) -> tuple[str, int | None, int | None]:
    """Message, line and column (1-based) of a TOML syntax error.

    From the error's ``msg``, ``lineno`` and ``colno`` where the parser has
    them (``tomllib`` from Python 3.14, recent ``tomli``), else from its text,
    which ends with "(at line X, column Y)"; without either, no position.
    """
    line, col, msg = (getattr(error, a, None) for a in ("lineno", "colno", "msg"))
    text = str(error)
    if not (isinstance(line, int) and isinstance(col, int)):
        found = _TOML_POS_RE.search(text)
        line, col = (int(found.group(1)), int(found.group(2))) if found else (None, None)
    message = msg if isinstance(msg, str) and msg else _TOML_POS_RE.sub("", text).strip()
    return message, line, col


def _plain_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _plain(node: Any, budget: list[int] | None = None, depth: int = 0) -> Any:
    """ruamel's round-trip nodes -> plain JSON-like Python values (bounded in size and depth)."""
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooLarge
    if isinstance(node, dict):
        return {_plain_key(k): _plain(v, budget, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v, budget, depth + 1) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, (datetime.date, datetime.datetime, datetime.time)):
        return node.isoformat()
    return node


def _too_large(name: str) -> ProfileError:
    return ProfileError(
        [
            Problem(
                name,
                "$",
                f"the document is too large or too deeply nested (limits: {MAX_FILE_BYTES} bytes, "
                f"{MAX_NODES} values, depth {MAX_DEPTH})",
                "split it into several profile files; avoid YAML aliases that repeat large parts",
                1,
                1,
            )
        ]
    )


def parse_text(text: str, name: str, fmt: str) -> tuple[Any, Any]:
    """Return (plain data, position tree or None); raise :class:`ProfileError` on syntax errors.

    The position tree is ruamel's document (YAML), for :func:`position`;
    TOML has none.
    """
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(name)
    try:
        return _parse(text, name, fmt)
    except (_TooLarge, RecursionError):
        raise _too_large(name) from None


def _parse(text: str, name: str, fmt: str) -> tuple[Any, Any]:
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            message, line, col = toml_error(e)
            raise ProfileError(
                [
                    Problem(
                        name,
                        "$",
                        f"TOML syntax error: {message}",
                        "check quoting and brackets at that position",
                        line,
                        col,
                    )
                ]
            ) from None
        return _plain(data), None
    # Imported here: a valid YAML file is read by libyaml (:mod:`.fastyaml`) and
    # needs ruamel only when it has a problem to place (``firecrestspawner validate``).
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or str(e)).strip()
        hint = "fix the YAML syntax at that position"
        if "duplicate key" in problem or "found duplicate key" in str(e):
            quoted = re.search(r'"([^"]*)"', e.problem or "")
            problem = "duplicate key" + (f" {quoted.group(1)!r}" if quoted else "")
            hint = "each key may appear once in a mapping; remove or rename one"
        raise ProfileError(
            [
                Problem(
                    name,
                    "$",
                    f"YAML syntax error: {problem}",
                    hint,
                    (mark.line + 1) if mark else None,
                    (mark.column + 1) if mark else None,
                )
            ]
        ) from None
    except YAMLError as e:
        raise ProfileError([Problem(name, "$", f"YAML error: {e}", "", 1, 1)]) from None
    return _plain(doc), doc


def position(
    doc: Any, parts: Iterable[Any], *, key: str | None = None
) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the node at ``parts`` (or of its ``key``) in a YAML document."""
    if doc is None:
        return None, None
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    line, col = 1, 1
    node = doc
    for part in parts:
        try:
            if isinstance(node, CommentedMap) and part in node:
                ln, cl = node.lc.value(part) if node[part] is not None else node.lc.key(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                ln, cl = node.lc.item(part)
                node = node[part]
            else:
                break
        except (AttributeError, KeyError, TypeError):
            break
        line, col = ln + 1, cl + 1
    if key is not None and isinstance(node, CommentedMap) and key in node:
        try:
            ln, cl = node.lc.key(key)
            line, col = ln + 1, cl + 1
        except (AttributeError, KeyError, TypeError):  # pragma: no cover
            pass
    return line, col


def block_line(doc: Any, parts: list[Any], text: str, word: str) -> int | None:
    """The file line of the first use of ``word`` in an inline block-scalar (``|``) template."""
    if doc is None or parts[-1] != "template":
        return None
    node: Any = doc
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    from ruamel.yaml.scalarstring import LiteralScalarString

    if not isinstance(node, LiteralScalarString):
        return None
    start, _ = position(doc, parts)
    if start is None:
        return None
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    for i, line in enumerate(text.splitlines()):
        if pattern.search(line):
            return start + 1 + i
    return None


__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "block_line",
    "format_for",
    "parse_text",
    "position",
    "toml_error",
]
