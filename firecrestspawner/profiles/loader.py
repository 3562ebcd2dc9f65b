"""Site profiles: load, check and resolve profile files (pure).

The pipeline for one file: parse (YAML 1.2 with ruamel.yaml's round-trip
loader, which keeps line and column of every node, or TOML), collect *every*
JSON Schema error (for the option ``oneOf`` the branch named by ``kind``), then
the cross-field checks the schema cannot express, then a frozen result. Every
problem is reported as ``FILE:LINE:COL: $.json.path: message`` followed by a
``hint:`` line; TOML gives positions only for parse errors, so its validation
problems carry the file and the JSON path.

:class:`ProfileDirectory` watches a directory of such files: each
:meth:`~ProfileDirectory.current` call stats the files and re-reads only those
that changed, so a site edits profiles without restarting the hub, and a
broken file is logged and skipped while the others keep working.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..request import StateRegexes
from ..states import (
    DEFAULT_EXECHOST_RE,
    DEFAULT_PENDING_RE,
    DEFAULT_RUNNING_RE,
    DEFAULT_UNKNOWN_RE,
)
from . import models as m
from .script import (
    BUILTIN_REQ_NAMES,
    BUILTIN_TEMPLATES,
    SPAWN_VARIABLES,
    ScriptTemplateError,
    builtin_template,
    template_variables,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

#: File names a profile directory reads.
PROFILE_SUFFIXES = (".yaml", ".yml", ".toml")

#: Request-variable names an option may not set: the spawner provides them.
RESERVED_OPTION_REQ = frozenset({*SPAWN_VARIABLES, "host", "username", "homedir"})

#: Default state regexes per scheduler (Slurm: the documented trait defaults).
SCHEDULER_STATES: Mapping[str, StateRegexes] = {
    "slurm": StateRegexes(
        pending=DEFAULT_PENDING_RE,
        running=DEFAULT_RUNNING_RE,
        unknown=DEFAULT_UNKNOWN_RE,
        exechost=DEFAULT_EXECHOST_RE,
    ),
    # FirecREST reports PBS job states as the PBS letters (Q, H, W, T, R, E, ...)
    # and the exec host as "node/0*8+node2/0"; the first node is the host.
    "pbs": StateRegexes(
        pending=r"^(?:Q|H|W|T|S|QUEUED|HELD|WAITING|PENDING)\b",
        running=r"^(?:R|E|B|RUNNING|EXITING)\b",
        unknown="",
        exechost=r"^\S+\s+([^\s/+]+)",
    ),
}


# -- problems ---------------------------------------------------------------
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


# -- resolved, frozen profiles ---------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """A profile with everything a spawn needs, resolved from its file.

    ``defaults`` are the file's ``defaults`` plus the system's ``req``;
    ``fixed`` the profile's own ``req``. Options are the frozen models of
    :mod:`firecrestspawner.profile_models`.
    """

    id: str
    display_name: str
    description: str
    system: str
    scheduler: str
    firecrest_url: str | None
    workdir: str | None
    default: bool
    groups: tuple[str, ...] | None
    users: tuple[str, ...] | None
    template: str
    template_name: str
    defaults: Mapping[str, str]
    fixed: Mapping[str, str]
    states: StateRegexes
    options: tuple[m.Option, ...]
    legacy_lists: bool
    source: str
    spec: m.ProfileSpec = field(repr=False, compare=False)

    def option(self, option_id: str) -> m.Option | None:
        for option in self.options:
            if option.id == option_id:
                return option
        return None


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, str]:
    import types

    return types.MappingProxyType({k: str(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class ProfileSet:
    """The profiles currently offered, in file and declaration order."""

    profiles: tuple[Profile, ...] = ()
    errors: tuple[ProfileError, ...] = ()

    def get(self, profile_id: str) -> Profile | None:
        for profile in self.profiles:
            if profile.id == profile_id:
                return profile
        return None

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.profiles)

    def __len__(self) -> int:
        return len(self.profiles)

    def __contains__(self, profile_id: object) -> bool:
        return any(p.id == profile_id for p in self.profiles)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.profiles)


# -- schema ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def profile_schema() -> dict[str, Any]:
    """The published JSON Schema (the copy shipped in the package or the repository)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "schemas" / "profile.schema.json",
    ]
    try:
        packaged = (
            resources.files("firecrestspawner").joinpath("schemas").joinpath("profile.schema.json")
        )
        if packaged.is_file():
            return json.loads(packaged.read_text(encoding="utf-8"))
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover
        pass
    for candidate in candidates:
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return m.generate_schema()  # pragma: no cover - a broken install


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    # Validate against the models' schema: the checked-in file is tested to equal it.
    return jsonschema.Draft202012Validator(m.generate_schema())


# -- parsing ---------------------------------------------------------------------------
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _plain_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


#: Limits that keep a hostile file (alias bombs, deep nesting) from exhausting the hub.
MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 40


class _TooLarge(Exception):
    pass


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


def _parse(text: str, name: str, fmt: str) -> tuple[Any, Any]:
    """Return (plain data, position tree or None)."""
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(name)
    try:
        return _parse_inner(text, name, fmt)
    except (_TooLarge, RecursionError):
        raise _too_large(name) from None


def _parse_inner(text: str, name: str, fmt: str) -> tuple[Any, Any]:
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            msg = str(e)
            pos = _TOML_POS_RE.search(msg)
            line, col = (int(pos.group(1)), int(pos.group(2))) if pos else (None, None)
            raise ProfileError(
                [
                    Problem(
                        name,
                        "$",
                        f"TOML syntax error: {_TOML_POS_RE.sub('', msg).strip()}",
                        "check quoting and brackets at that position",
                        line,
                        col,
                    )
                ]
            ) from None
        return _plain(data), None
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


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _position(
    doc: Any, parts: Iterable[Any], *, key: str | None = None
) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the node at ``parts`` (or of its ``key``)."""
    if doc is None:
        return None, None
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


# -- schema errors -> problems -------------------------------------------------------
_PATTERN_HINTS = {
    m.SLUG_PATTERN: "use lowercase letters, digits and '-', e.g. `gpu-large`",
    m.IDENT_PATTERN: "use lowercase letters, digits and '_', starting with a letter, e.g. `partition`",
    m.SYSTEM_PATTERN: "use the FirecREST system name: letters, digits, '.', '_' or '-'",
    m.CHOICE_PATTERN: "one word of letters, digits and `._:/@%+=-`; no spaces, quotes or '#'",
    m.DURATION_PATTERN: "write a Slurm time such as `30` (minutes), `1:00:00` or `1-00:00:00`, and quote it in TOML",
    m.PRINCIPAL_PATTERN: "a user or group name without spaces or control characters",
}


_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _describe_type(value: Any) -> str:
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


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_branch(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError] | None:
    """For the option ``oneOf``, the errors of the branch ``kind`` names."""
    instance = error.instance
    if not isinstance(instance, dict) or "kind" not in error.schema.get("discriminator", {}).get(
        "propertyName", ""
    ):
        return None
    kind = instance.get("kind")
    if kind not in m.OPTION_KINDS:
        return None
    index = m.OPTION_KINDS.index(kind)
    return [
        e
        for e in error.context or ()
        if e.relative_schema_path and e.relative_schema_path[0] == index
    ]


def _schema_problems(
    errors: Iterable[jsonschema.ValidationError], name: str, doc: Any
) -> list[Problem]:
    problems: list[Problem] = []
    for error in errors:
        parts = list(error.absolute_path)
        key = None
        hint = error.schema.get("x-hint", "") if isinstance(error.schema, dict) else ""
        v = error.validator
        if v == "oneOf":
            branch = _kind_branch(error)
            if branch is not None:
                problems.extend(_schema_problems(branch, name, doc))
                continue
            kind = error.instance.get("kind") if isinstance(error.instance, dict) else None
            if isinstance(error.instance, dict) and kind is None:
                message = "missing required key 'kind'"
            elif isinstance(error.instance, dict):
                message = f"unknown option kind {_short(kind)}"
                parts = [*parts, "kind"]
            else:
                message = f"expected a mapping, got {_describe_type(error.instance)}"
            hint = "`kind:` is one of " + ", ".join(m.OPTION_KINDS)
        elif v == "anyOf":
            sub = [e for e in error.context or () if e.validator != "type"]
            if sub and all(e.validator != "anyOf" for e in sub):
                problems.extend(_schema_problems(sub[:1], name, doc))
                continue
            kinds = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
            names = " or ".join(_TYPE_NAMES.get(str(k), str(k)) for k in kinds)
            message = f"expected {names}, got {_describe_type(error.instance)}"
            hint = hint or "write a single value"
        elif v == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            patterns = error.schema.get("patternProperties")
            if patterns:
                extra = [k for k in extra if not any(re.search(p, k) for p in patterns)]
            for key in extra or [None]:
                if patterns:
                    pattern = next(iter(patterns))
                    message = f"{key!r} is not a valid name"
                    hint = _PATTERN_HINTS.get(pattern, f"names must match {pattern}")
                    if isinstance(key, str) and key.startswith("req_"):
                        hint = f"write `{key[4:]}`: names here have no `req_` prefix"
                else:
                    message = f"unknown key {key!r}"
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = (f"did you mean `{close[0]}`? " if close else "") + (
                        "allowed keys: " + ", ".join(allowed)
                    )
                line, col = _position(doc, parts, key=key)
                problems.append(Problem(name, _json_path([*parts, key]), message, hint, line, col))
            continue
        elif v == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            key_desc = error.schema.get("properties", {}).get(missing[0], {}).get("description", "")
            message = f"missing required key {missing[0]!r}"
            hint = hint or (f"add `{missing[0]}:`" + (f" ({key_desc})" if key_desc else ""))
        elif v == "type":
            wanted = _TYPE_NAMES.get(error.validator_value, str(error.validator_value))
            message = f"expected {wanted}, got {_describe_type(error.instance)}"
            if error.instance is not None:
                message += f" {_short(error.instance)}"
            if error.instance is None:
                hint = "write a value, or leave the key out to get the default"
            elif error.validator_value == "boolean" and isinstance(error.instance, str):
                hint = "write true or false (YAML 1.2 reads yes, no, on and off as text)"
            elif error.validator_value == "array":
                hint = "write a list: one `- item` per line, or [a, b]"
            elif error.validator_value == "string" and isinstance(
                error.instance, (int, float, bool)
            ):
                hint = hint or 'quote the value, e.g. "1:00:00" or "no"'
        elif v == "pattern":
            message = f"{_short(error.instance)} is not valid here"
            hint = hint or _PATTERN_HINTS.get(
                error.validator_value, f"must match {error.validator_value}"
            )
        elif v in ("const", "enum"):
            allowed_values = [error.validator_value] if v == "const" else error.validator_value
            message = f"{_short(error.instance)} is not allowed"
            hint = hint or "use one of: " + ", ".join(_short(a) for a in allowed_values)
        elif v in ("minProperties", "maxProperties"):
            message = "wrong number of keys" if not hint else error.message
            if hint:
                message = "give exactly one of the keys"
        elif v in ("minItems", "minLength"):
            message = "must not be empty"
        else:
            message = error.message
        if not hint:
            hint = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
            hint = hint.split("\n")[0]
        line, col = _position(doc, parts, key=key)
        problems.append(Problem(name, _json_path(parts), message, hint, line, col))
    return problems


# -- semantic checks ---------------------------------------------------------------------
class _Checker:
    def __init__(self, name: str, doc: Any, base_dir: Path | None) -> None:
        self.name = name
        self.doc = doc
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.dependencies: list[Path] = []

    def add(self, parts: list[Any], message: str, hint: str = "", key: str | None = None) -> None:
        line, col = _position(self.doc, parts, key=key)
        path = _json_path([*parts, key] if key is not None else parts)
        self.problems.append(Problem(self.name, path, message, hint, line, col))

    def regex(self, parts: list[Any], pattern: str | None, groups: int = 0) -> None:
        if pattern is None:
            return
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            self.add(
                parts,
                f"regular expression does not compile: {e}",
                "check escaping; YAML single quotes keep backslashes as they are",
            )
            return
        if groups and compiled.groups < groups:
            self.add(
                parts,
                "regular expression needs a capture group",
                "wrap the host part in ( ), e.g. `^\\S+\\s+(\\S+)`",
            )

    def template_text(
        self, parts: list[Any], spec: m.ProfileSpec, scheduler: str
    ) -> tuple[str, str] | None:
        bs = spec.batch_script
        if bs is None:
            return builtin_template(scheduler), f"builtin:{scheduler}"
        if bs.builtin is not None:
            if bs.builtin not in BUILTIN_TEMPLATES:
                close = difflib.get_close_matches(bs.builtin, list(BUILTIN_TEMPLATES), n=1)
                self.add(
                    [*parts, "batch_script", "builtin"],
                    f"unknown built-in template {bs.builtin!r}",
                    (f"did you mean `{close[0]}`? " if close else "")
                    + "known: "
                    + ", ".join(sorted(BUILTIN_TEMPLATES)),
                )
                return None
            return builtin_template(bs.builtin), f"builtin:{bs.builtin}"
        if bs.template_file is not None:
            if self.base_dir is None:
                self.add(
                    [*parts, "batch_script", "template_file"],
                    "template_file needs a profile file on disk",
                    "use `template: |` inline",
                )
                return None
            path = Path(bs.template_file)
            if path.is_absolute() or ".." in path.parts:
                self.add(
                    [*parts, "batch_script", "template_file"],
                    "template_file must be a relative path inside the profile directory",
                    "write e.g. `templates/site.sh.j2`",
                )
                return None
            full = self.base_dir / path
            self.dependencies.append(full)
            try:
                return full.read_text(encoding="utf-8"), str(full)
            except OSError as e:
                self.add(
                    [*parts, "batch_script", "template_file"],
                    f"cannot read template file {bs.template_file!r}: {e.strerror}",
                    "the path is relative to the profile file",
                )
                return None
        assert bs.template is not None  # noqa: S101 - the schema guarantees one of the three
        return bs.template, f"{self.name}#{spec.id}"


def _range(lo: Any, hi: Any) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _when_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_option_defaults(
    c: _Checker, parts: list[Any], opt: m.Option, option_ids: list[str]
) -> None:
    if isinstance(opt, m.ChoiceOption):
        if opt.default is not None and opt.default not in opt.choices:
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} is not among the choices",
                "use one of: " + ", ".join(opt.choices),
            )
        for key, choice in opt.choices.items():
            for name in choice.req:
                if name.startswith("req_"):
                    c.add(
                        [*parts, "choices", key, "req"],
                        f"{name!r} has a `req_` prefix",
                        f"write `{name[4:]}`",
                        key=name,
                    )
    elif isinstance(opt, m.UenvOption):
        if opt.default is not None and opt.default not in opt.images:
            c.add(
                [*parts, "default"],
                f"default image {opt.default!r} is not among the images",
                "use one of: " + ", ".join(opt.images),
            )
        for key, image in opt.images.items():
            if image.default_view is not None and image.default_view not in image.views:
                c.add(
                    [*parts, "images", key, "default_view"],
                    f"default view {image.default_view!r} is not a view of {key!r}",
                    "use one of: " + (", ".join(image.views) or "(no views)"),
                )
        if f"{opt.id}_view" in option_ids:
            c.add(
                [*parts, "id"],
                f"option id {opt.id + '_view'!r} is taken by the view of this uenv option",
                "rename the other option",
            )
    elif isinstance(opt, (m.IntegerOption, m.NumberOption)):
        if opt.min is not None and opt.max is not None and opt.min > opt.max:
            c.add([*parts, "min"], f"min {opt.min} is greater than max {opt.max}", "swap them")
        if opt.default is not None:
            if (opt.min is not None and opt.default < opt.min) or (
                opt.max is not None and opt.default > opt.max
            ):
                c.add(
                    [*parts, "default"],
                    f"default {opt.default} is outside {_range(opt.min, opt.max)}",
                    "pick a default between min and max",
                )
            elif opt.step is not None:
                base = opt.min if opt.min is not None else 0
                k = (opt.default - base) / opt.step
                if abs(k - round(k)) > 1e-9:
                    c.add(
                        [*parts, "default"],
                        f"default {opt.default} is not min + k*step (step {opt.step})",
                        "pick a default on the step grid",
                    )
        elif (
            opt.min is None
            and opt.max is not None
            and opt.max < (1 if isinstance(opt, m.IntegerOption) else 0)
        ):
            c.add(
                [*parts, "max"],
                "max is below the implicit default; set `default`",
                "add `default:`",
            )
    elif isinstance(opt, m.DurationOption):
        lo = m.duration_seconds(opt.min) if opt.min else None
        hi = m.duration_seconds(opt.max) if opt.max else None
        if lo is not None and hi is not None and lo > hi:
            c.add([*parts, "min"], f"min {opt.min!r} is longer than max {opt.max!r}", "swap them")
        if opt.default is not None:
            d = m.duration_seconds(opt.default)
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                c.add(
                    [*parts, "default"],
                    f"default {opt.default!r} is outside {_range(opt.min, opt.max)}",
                    "pick a default between min and max",
                )
    elif isinstance(opt, m.TextOption):
        c.regex([*parts, "pattern"], opt.pattern)
        try:
            compiled = re.compile(opt.pattern)
        except re.error:
            return
        if opt.default and not compiled.fullmatch(opt.default):
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} does not match the pattern",
                f"the whole value must match {opt.pattern}",
            )
        if len(opt.default) > opt.max_length:
            c.add(
                [*parts, "default"],
                f"default is longer than max_length {opt.max_length}",
                "shorten it",
            )
    elif isinstance(opt, m.ClusterChoiceOption):
        c.regex([*parts, "filter"], opt.filter)
        if (
            opt.default
            and opt.fallback
            and opt.default not in opt.fallback
            and opt.allow
            and opt.default not in opt.allow
        ):
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} is neither in fallback nor in allow",
                "add it to `fallback`",
            )


def _check_file(
    spec: m.ProfileFile, name: str, doc: Any, base_dir: Path | None
) -> tuple[list[Profile], list[Problem], list[Path]]:
    c = _Checker(name, doc, base_dir)
    systems: dict[str, m.System] = {}
    for i, sys_spec in enumerate(spec.systems):
        if sys_spec.name in systems:
            c.add(
                ["systems", i, "name"],
                f"duplicate system {sys_spec.name!r}",
                "each system is listed once",
            )
        systems[sys_spec.name] = sys_spec
        if sys_spec.states:
            _check_states(c, ["systems", i, "states"], sys_spec.states)
        _check_req_names(c, ["systems", i, "req"], sys_spec.req)
    _check_req_names(c, ["defaults"], spec.defaults)

    seen_profiles: dict[str, int] = {}
    defaults_flagged = [i for i, p in enumerate(spec.profiles) if p.default]
    for i in defaults_flagged[1:]:
        c.add(
            ["profiles", i, "default"],
            "more than one profile has `default: true`",
            f"keep it on profile {spec.profiles[defaults_flagged[0]].id!r} only",
        )

    resolved: list[Profile] = []
    for i, p in enumerate(spec.profiles):
        parts: list[Any] = ["profiles", i]
        before = len(c.problems)
        if p.id in seen_profiles:
            c.add(
                [*parts, "id"],
                f"duplicate profile id {p.id!r} (first at $.profiles[{seen_profiles[p.id]}])",
                "profile ids are unique within a site",
            )
        seen_profiles.setdefault(p.id, i)
        system = systems.get(p.system)
        if system is None:
            close = difflib.get_close_matches(p.system, list(systems), n=1)
            c.add(
                [*parts, "system"],
                f"unknown system {p.system!r}",
                (f"did you mean `{close[0]}`? " if close else "")
                + "declare it under `systems:` or use one of: "
                + ", ".join(systems),
            )
        _check_req_names(c, [*parts, "req"], p.req)
        if p.states:
            _check_states(c, [*parts, "states"], p.states)

        # options: ids, when rules, defaults
        option_ids: list[str] = [o.id for o in p.options]
        declared: dict[str, m.Option] = {}
        known_vars = set(BUILTIN_REQ_NAMES) | set(SPAWN_VARIABLES)
        known_vars |= set(spec.defaults) | set(p.req) | (set(system.req) if system else set())
        legacy = p.legacy_lists if p.legacy_lists is not None else spec.legacy_lists
        for j, opt in enumerate(p.options):
            oparts = [*parts, "options", j]
            if opt.id in declared:
                c.add(
                    [*oparts, "id"],
                    f"duplicate option id {opt.id!r}",
                    "option ids are unique within a profile",
                )
            if opt.id == "profile":
                c.add(
                    [*oparts, "id"],
                    "option id 'profile' is reserved (it carries the profile id)",
                    "rename the option",
                )
            elif opt.req is not None and opt.id in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "id"],
                    f"option id {opt.id!r} is a variable the spawner provides",
                    "rename the option",
                )
            if opt.req_name in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "req" if opt.req else "id"],
                    f"{opt.req_name!r} is provided by the spawner and cannot be set by an option",
                    "pick another request variable name",
                )
            if isinstance(opt, m.UenvOption) and opt.view_req in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "view_req"],
                    f"{opt.view_req!r} is provided by the spawner",
                    "pick another name",
                )
            for target, values in (opt.when or {}).items():
                if target == opt.id:
                    c.add(
                        [*oparts, "when"],
                        f"option {opt.id!r} cannot depend on itself",
                        "remove it from `when`",
                        key=target,
                    )
                elif target not in declared:
                    where = (
                        "is declared below this one"
                        if target in option_ids
                        else "is not an option of this profile"
                    )
                    c.add(
                        [*oparts, "when"],
                        f"`when` refers to {target!r}, which {where}",
                        "`when` may only name options declared above, one of: "
                        + (", ".join(declared) or "(none)"),
                        key=target,
                    )
                else:
                    _check_when_values(c, [*oparts, "when", target], declared[target], values)
            _check_option_defaults(c, oparts, opt, option_ids)
            declared.setdefault(opt.id, opt)
            known_vars.add(opt.req_name)
            if legacy:
                known_vars.add(opt.id)
            if isinstance(opt, m.ChoiceOption):
                for choice in opt.choices.values():
                    known_vars |= set(choice.req)
            if isinstance(opt, m.UenvOption):
                known_vars.add(opt.view_req)
                for image in opt.images.values():
                    known_vars |= set(image.req)

        scheduler = system.scheduler if system else "slurm"
        template = c.template_text(parts, p, scheduler)
        script_key = [
            k
            for k in ("template", "template_file", "builtin")
            if p.batch_script and getattr(p.batch_script, k) is not None
        ]
        script_parts = [*parts, "batch_script", *script_key[:1]]
        if template is not None:
            text, template_name = template
            try:
                used = template_variables(text)
            except ScriptTemplateError as e:
                c.add(script_parts, f"template error: {e}", "fix the template syntax")
            else:
                unknown = sorted(used - known_vars)
                if unknown:
                    line_hint = _template_line(doc, script_parts, text, unknown[0])
                    c.add(
                        script_parts,
                        "template uses undefined variable"
                        + ("s " if len(unknown) > 1 else " ")
                        + ", ".join(repr(u) for u in unknown),
                        "declare them under the profile's `req:` or the file's `defaults:`, or add an option that sets them",
                    )
                    if line_hint is not None:
                        last = c.problems[-1]
                        c.problems[-1] = dataclasses.replace(last, line=line_hint, column=1)
        if len(c.problems) != before or system is None or template is None:
            continue
        states = _resolve_states(scheduler, system.states, p.states)
        url = system.firecrest_url or spec.firecrest_url
        resolved.append(
            Profile(
                id=p.id,
                display_name=p.display_name,
                description=p.description,
                system=p.system,
                scheduler=scheduler,
                firecrest_url=url,
                workdir=system.workdir,
                default=p.default,
                groups=tuple(p.groups) if p.groups is not None else None,
                users=tuple(p.users) if p.users is not None else None,
                template=text,
                template_name=template_name,
                defaults=_freeze({**spec.defaults, **system.req}),
                fixed=_freeze(p.req),
                states=states,
                options=tuple(p.options),
                legacy_lists=legacy,
                source=name,
                spec=p,
            )
        )
    return resolved, c.problems, c.dependencies


def _template_line(doc: Any, parts: list[Any], text: str, name: str) -> int | None:
    """The file line of the first use of ``name`` in an inline block-scalar template."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if doc is None or parts[-1] != "template":
        return None
    node: Any = doc
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(node, LiteralScalarString):
        return None
    start, _ = _position(doc, parts)
    if start is None:
        return None
    word = re.compile(rf"\b{re.escape(name)}\b")
    for i, line in enumerate(text.splitlines()):
        if word.search(line):
            return start + 1 + i
    return None


def _check_req_names(c: _Checker, parts: list[Any], req: Mapping[str, Any]) -> None:
    for name in req:
        if name.startswith("req_"):
            c.add(
                parts,
                f"{name!r} has a `req_` prefix",
                f"write `{name[4:]}`: names here have no `req_` prefix",
                key=name,
            )


def _check_states(c: _Checker, parts: list[Any], states: m.States) -> None:
    for key in ("pending", "running", "unknown"):
        c.regex([*parts, key], getattr(states, key))
    c.regex([*parts, "exechost"], states.exechost, groups=1)


def _check_when_values(c: _Checker, parts: list[Any], target: m.Option, values: list[Any]) -> None:
    allowed: list[str] | None = None
    if isinstance(target, m.ChoiceOption):
        allowed = list(target.choices)
    elif isinstance(target, m.UenvOption):
        allowed = list(target.images)
    elif isinstance(target, m.BooleanOption):
        allowed = ["true", "false"]
    if allowed is None:
        return
    for k, value in enumerate(values):
        if _when_key(value) not in allowed:
            c.add(
                [*parts, k],
                f"{_short(value)} is not a value of option {target.id!r}",
                "use one of: " + ", ".join(allowed),
            )


def _resolve_states(scheduler: str, *layers: m.States | None) -> StateRegexes:
    base = SCHEDULER_STATES.get(scheduler, SCHEDULER_STATES["slurm"])
    values = dataclasses.asdict(base)
    for layer in layers:
        if layer is None:
            continue
        for key, value in layer.model_dump(exclude_none=True).items():
            values[key] = value
    return StateRegexes(**values)


# -- entry points ------------------------------------------------------------------------
def _format_for(name: str) -> str:
    return "toml" if name.lower().endswith(".toml") else "yaml"


@dataclass(frozen=True)
class LoadedFile:
    """One profile file after the whole pipeline."""

    source: str
    spec: m.ProfileFile
    profiles: tuple[Profile, ...]
    dependencies: tuple[Path, ...] = ()


def load_profile_text(
    text: str, *, name: str = "<profile>", fmt: str | None = None, base_dir: Path | None = None
) -> LoadedFile:
    """Run the pipeline on text; raise :class:`ProfileError` with every problem found."""
    fmt = fmt or _format_for(name)
    data, doc = _parse(text, name, fmt)
    if data is None:
        raise ProfileError(
            [
                Problem(
                    name, "$", "the file is empty", "start from one of the files in profiles/", 1, 1
                )
            ]
        )
    if not isinstance(data, dict):
        raise ProfileError(
            [
                Problem(
                    name,
                    "$",
                    f"expected a mapping at the top level, got {_describe_type(data)}",
                    "a profile file starts with keys such as `systems:` and `profiles:`",
                    1,
                    1,
                )
            ]
        )
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = _schema_problems(errors, name, doc)
    if problems:
        raise ProfileError(_sorted(problems))
    try:
        spec = m.ProfileFile.model_validate(data)
    except ValidationError as e:  # the schema and the models agree; this is a safety net
        raise ProfileError(
            _sorted(
                Problem(
                    name, _json_path(err["loc"]), err["msg"], "", *_position(doc, list(err["loc"]))
                )
                for err in e.errors()
            )
        ) from None
    profiles, problems, deps = _check_file(spec, name, doc, base_dir)
    if problems:
        raise ProfileError(_sorted(problems))
    return LoadedFile(name, spec, tuple(profiles), tuple(deps))


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))


def load_profile_file(path: str | os.PathLike[str]) -> ProfileSet:
    """Load one profile file (``.yaml``, ``.yml`` or ``.toml``); raise :class:`ProfileError`."""
    loaded = _load_file(Path(path))
    return ProfileSet(loaded.profiles)


def _load_file(path: Path) -> LoadedFile:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProfileError(
            [Problem(name, "$", f"not UTF-8 text: {e.reason}", "save the file as UTF-8")]
        ) from None
    except OSError as e:
        raise ProfileError(
            [Problem(name, "$", f"cannot read: {e.strerror}", "check the path and permissions")]
        ) from None
    return load_profile_text(text, name=name, base_dir=path.parent)


def profile_files(path: str | os.PathLike[str]) -> list[Path]:
    """Profile files of a directory (not recursive, hidden files skipped), sorted by name."""
    p = Path(path)
    if p.is_file():
        return [p]
    return sorted(
        f
        for f in p.iterdir()
        if f.suffix.lower() in PROFILE_SUFFIXES and not f.name.startswith(".") and f.is_file()
    )


def merge_profiles(loaded: Iterable[LoadedFile]) -> tuple[list[Profile], list[ProfileError]]:
    """Profiles of several files; a profile id seen before is an error of the later file."""
    seen: dict[str, str] = {}
    out: list[Profile] = []
    errors: list[ProfileError] = []
    for lf in loaded:
        for i, profile in enumerate(lf.profiles):
            if profile.id in seen:
                errors.append(
                    ProfileError(
                        [
                            Problem(
                                lf.source,
                                f"$.profiles[{i}].id",
                                f"profile id {profile.id!r} is already defined in {seen[profile.id]}; this one is skipped",
                                "profile ids are unique across the files of a profile directory",
                            )
                        ]
                    )
                )
                continue
            seen[profile.id] = lf.source
            out.append(profile)
    return out, errors


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
                    loaded = _load_file(f)
                except ProfileError as e:
                    self.log.error("Profile file %s is invalid and skipped:\n%s", f, e)
                    self._entries[f] = _Entry(stamp, None, e)
                else:
                    self.log.info("Loaded %d profile(s) from %s", len(loaded.profiles), f)
                    entry = _Entry((), loaded, None)
                    entry.stamp = self._file_stamp(f, entry)
                    self._entries[f] = entry
            if changed or self._stamp is None:
                self._stamp = ()
                loaded_files = [e.loaded for _, e in sorted(self._entries.items()) if e.loaded]
                profiles, dup_errors = merge_profiles(loaded_files)
                for err in dup_errors:
                    self.log.error("%s", err)
                file_errors = [e.error for _, e in sorted(self._entries.items()) if e.error]
                self._current = ProfileSet(tuple(profiles), tuple(file_errors + dup_errors))
            return self._current

    @property
    def errors(self) -> list[ProfileError]:
        """The errors of the files as last read (call :meth:`current` to refresh)."""
        return list(self._current.errors)


__all__ = [
    "PROFILE_SUFFIXES",
    "SCHEDULER_STATES",
    "LoadedFile",
    "Problem",
    "Profile",
    "ProfileDirectory",
    "ProfileError",
    "ProfileSet",
    "load_profile_file",
    "load_profile_text",
    "merge_profiles",
    "profile_files",
    "profile_schema",
]
