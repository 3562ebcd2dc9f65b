"""Cut the parts of a document the schema refuses, so the cross-field checks still run (pure).

``validate`` reports every problem of a file in one pass: the schema errors
*and* the cross-field errors (unknown system, ``when`` naming a missing
option, ...) of everything the schema accepted. The cross-field checks need
the typed models, so the schema-invalid parts are removed first: a bad key is
deleted (its default applies), and where that is not enough (a required key
is missing or wrong) the enclosing list element (option, profile, system) is
dropped. Problems the checks then report are mapped back to the positions of
the original file, and problems that only name something dropped are left out
(they would be consequences of an error already reported).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import jsonschema

from .errors import Problem, json_path
from .parse import position

#: Rounds of pruning before giving up (each round removes something, so this only bounds work).
MAX_ROUNDS = 20


@dataclass
class Pruned:
    """A document with its schema-invalid parts removed, and how to map back to the original."""

    data: Any
    #: id() of each list element of ``data`` -> its path in the original document.
    origin: dict[int, list[Any]] = field(default_factory=dict)
    #: ids and names of the dropped list elements (problems naming only these are consequences).
    dropped_names: set[str] = field(default_factory=set)
    #: keeps the elements of ``origin`` alive so their id() stays unique.
    _keep: list[Any] = field(default_factory=list)


def _error_paths(error: jsonschema.ValidationError, kind_branch: Any) -> list[list[Any]]:
    parts = list(error.absolute_path)
    if error.validator == "oneOf":
        branch = kind_branch(error)
        if branch:
            return [p for e in branch for p in _error_paths(e, kind_branch)]
        return [parts]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties") or {}
        extra = [
            k
            for k in error.instance
            if k not in allowed and not any(re.search(p, str(k)) for p in patterns)
        ]
        return [[*parts, k] for k in extra] or [parts]
    return [parts]


def _walk(data: Any, parts: list[Any]) -> Any:
    node = data
    for part in parts:
        node = node[part]
    return node


def _target(data: Any, parts: list[Any]) -> list[Any] | None:
    """What to remove for an error at ``parts``: the key itself, else the enclosing list element."""
    while parts:
        try:
            parent = _walk(data, parts[:-1])
        except (KeyError, IndexError, TypeError):
            return None
        last = parts[-1]
        if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            return parts
        if isinstance(parent, dict) and last in parent and len(parts) > 1:
            return parts
        parts = parts[:-1]
    return None


def prune(
    data: Any,
    errors: Iterable[jsonschema.ValidationError],
    validate: Any,
    kind_branch: Any,
) -> Pruned | None:
    """``data`` without the parts ``errors`` (and the errors that removal reveals) are about.

    ``None`` when nothing sensible is left (the top level itself is wrong).
    """
    doc = copy.deepcopy(data)
    result = Pruned(doc)

    def index(node: Any, parts: list[Any]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                index(v, [*parts, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, (dict, list)):
                    result.origin[id(v)] = [*parts, i]
                    result._keep.append(v)
                index(v, [*parts, i])

    index(doc, [])
    errs = list(errors)
    for _ in range(MAX_ROUNDS):
        if not errs:
            return result
        targets: set[tuple[Any, ...]] = set()
        for error in errs:
            for parts in _error_paths(error, kind_branch):
                target = _target(doc, parts)
                if target is None:
                    return None
                targets.add(tuple(target))
        for path in sorted(
            targets,
            key=lambda t: [(0, p) if isinstance(p, int) else (1, str(p)) for p in t],
            reverse=True,
        ):
            try:
                parent = _walk(doc, list(path[:-1]))
                removed = parent[path[-1]]
            except (KeyError, IndexError, TypeError):
                continue
            if isinstance(parent, list):
                for key in ("id", "name"):
                    if isinstance(removed, dict) and isinstance(removed.get(key), str):
                        result.dropped_names.add(removed[key])
                del parent[path[-1]]
            else:
                del parent[path[-1]]
        errs = list(validate(doc))
    return None


_PART_RE = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def path_parts(path: str) -> list[Any]:
    """``["a", 0, "b"]`` for ``$.a[0].b`` (the inverse of :func:`~.errors.json_path`)."""
    parts: list[Any] = []
    for m in _PART_RE.finditer(path[1:] if path.startswith("$") else path):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            parts.append(re.sub(r"\\(.)", r"\1", m.group(3)))
    return parts


def map_back(pruned: Pruned, problems: Iterable[Problem], doc: Any) -> list[Problem]:
    """The cross-field problems of the pruned document, at their places in the original one."""
    out: list[Problem] = []
    for problem in problems:
        if any(repr(name) in problem.message for name in pruned.dropped_names):
            continue
        parts = path_parts(problem.path)
        node, mapped, rest = pruned.data, list(parts), 0
        try:
            for i, part in enumerate(parts):
                node = node[part]
                if id(node) in pruned.origin:
                    mapped, rest = pruned.origin[id(node)], i + 1
        except (KeyError, IndexError, TypeError):
            pass
        new_parts = [*mapped[: len(mapped)], *parts[rest:]] if rest else parts
        if new_parts != parts:
            line, col = position(doc, new_parts)
            problem = replace(problem, path=json_path(new_parts), line=line, column=col)
        out.append(problem)
    return out


__all__ = ["Pruned", "map_back", "path_parts", "prune"]
