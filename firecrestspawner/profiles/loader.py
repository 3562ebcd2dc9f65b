"""Loading profile files: one file through the whole pipeline, several files merged (pure).

The pipeline for one file: parse (:mod:`.parse`), collect *every* JSON Schema
error (:mod:`.report`), then the cross-field checks the schema cannot express
(:mod:`.checks`), then a frozen result. Every problem is reported as
``FILE:LINE:COL: $.json.path: message`` followed by a ``hint:`` line
(:mod:`.errors`); TOML gives positions only for parse errors, so its
validation problems carry the file and the JSON path.

Files are read from disk here (and their ``template_file`` in :mod:`.checks`);
watching a directory for changes is :mod:`.reload`'s job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from . import models as m
from .checks import check_file
from .errors import Problem, ProfileError, describe_type, json_path, sort_problems
from .fastyaml import NOT_FAST, load_plain
from .fields import ValidationError
from .models import Profile, ProfileSet
from .parse import MAX_FILE_BYTES, format_for, parse_text, position
from .prune import map_back, prune
from .report import kind_branch, schema_errors, schema_problems

#: File names a profile directory reads.
PROFILE_SUFFIXES = (".yaml", ".yml", ".toml")


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


@dataclass(frozen=True)
class LoadedFile:
    """One profile file after the whole pipeline."""

    source: str
    spec: m.ProfileFile
    profiles: tuple[Profile, ...]
    dependencies: tuple[Path, ...] = ()
    #: What works but not as well as it could (a pattern the browser cannot check).
    warnings: tuple[Problem, ...] = ()


#: Files loaded, by (name, format, base directory, SHA-256 of the text) -> (result,
#: SHA-256 of each ``template_file`` it read). A file whose text and templates are
#: unchanged is not parsed or validated again (a rewrite by configuration management,
#: a ``touch``, another :class:`~.reload.ProfileDirectory` of the same files). Plain
#: dict operations only (atomic; callers may be threads); emptied when full.
_CACHE: dict[tuple[str, str, str, str], tuple[LoadedFile, tuple[str | None, ...]]] = {}
_CACHE_SIZE = 2048


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return _digest(path.read_bytes())
    except OSError:
        return None


def load_profile_text(
    text: str, *, name: str = "<profile>", fmt: str | None = None, base_dir: Path | None = None
) -> LoadedFile:
    """Run the pipeline on text; raise :class:`ProfileError` with every problem found.

    Each valid text is parsed and validated once: the result is kept by content
    hash (with the hashes of its ``template_file`` files) and handed out again while
    both are unchanged. Files with problems are not kept (they are read again).
    """
    fmt = fmt or format_for(name)
    key = (name, fmt, str(base_dir) if base_dir is not None else "", _digest(text.encode()))
    hit = _CACHE.get(key)
    if hit is not None:
        loaded, dep_digests = hit
        if tuple(_file_digest(d) for d in loaded.dependencies) == dep_digests:
            return loaded
    loaded = _load_text(text, name, fmt, base_dir)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = (loaded, tuple(_file_digest(d) for d in loaded.dependencies))
    return loaded


def _load_text(text: str, name: str, fmt: str, base_dir: Path | None) -> LoadedFile:
    """The pipeline itself (uncached).

    YAML is first read at C speed without positions (:mod:`.fastyaml`, which
    declines any text it cannot read exactly as ruamel does); a file with a
    problem or a warning is read again with positions, so that what is
    reported is what the exact parse alone reports.
    """
    if fmt == "yaml" and len(text) <= MAX_FILE_BYTES:
        data = load_plain(text)
        if data is not NOT_FAST:
            try:
                loaded = _pipeline(data, None, name, base_dir)
            except ProfileError:
                loaded = None
            if loaded is not None and not loaded.warnings:
                return loaded
    data, doc = parse_text(text, name, fmt)
    return _pipeline(data, doc, name, base_dir)


def _pipeline(data: Any, doc: Any, name: str, base_dir: Path | None) -> LoadedFile:
    """Schema, models and checks of parsed data; ``doc`` gives positions (None: none)."""
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
                    f"expected a mapping at the top level, got {describe_type(data)}",
                    "a profile file starts with keys such as `systems:` and `profiles:`",
                    1,
                    1,
                )
            ]
        )
    errors = schema_errors(data)
    schema_found = schema_problems(errors, name, doc)
    pruned = None
    if schema_found:
        # One pass: check what the schema accepted too, so every problem is reported at once.
        pruned = prune(data, errors, schema_errors, kind_branch)
        if pruned is None:
            raise ProfileError(sort_problems(schema_found))
        data = pruned.data
    try:
        spec = m.ProfileFile.model_validate(data)
    except ValidationError as e:  # the schema and the models agree; this is a safety net
        if schema_found:
            raise ProfileError(sort_problems(schema_found)) from None
        raise ProfileError(
            sort_problems(
                Problem(
                    name, json_path(err["loc"]), err["msg"], "", *position(doc, list(err["loc"]))
                )
                for err in e.errors()
            )
        ) from None
    profiles, problems, deps, warnings = check_file(spec, name, doc, base_dir)
    if pruned is not None:
        problems = map_back(pruned, problems, doc)
    if problems or schema_found:
        raise ProfileError(_unique(sort_problems([*schema_found, *problems])))
    return LoadedFile(name, spec, tuple(profiles), tuple(deps), tuple(sort_problems(warnings)))


def _unique(problems: list[Problem]) -> list[Problem]:
    # Problems are hashable (frozen); a dict keeps the first of each in order.
    return list(dict.fromkeys(problems))


def load_profile_file(path: str | os.PathLike[str]) -> ProfileSet:
    """Load one profile file (``.yaml``, ``.yml`` or ``.toml``); raise :class:`ProfileError`."""
    loaded = read_profile_file(Path(path))
    return ProfileSet(loaded.profiles)


def read_profile_file(path: Path) -> LoadedFile:
    """Load one profile file; the whole result (:class:`LoadedFile`), or :class:`ProfileError`."""
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


#: ``id: name`` / ``id = "name"`` anywhere in a text: how a file that does not parse
#: is searched for the profile ids it may define (option ids match too: fail closed).
_ID_SCAN_RE = re.compile(r"""(?:^|[\s{,\-])id\s*[:=]\s*["']?([A-Za-z0-9][A-Za-z0-9_.\-]*)""", re.M)


def claimed_ids(text: str, name: str = "<profile>") -> frozenset[str]:
    """The profile ids a file that fails to load may define.

    Its ``profiles[].id`` when the text parses into that shape, else every
    ``id`` it mentions. A broken file keeps these ids from being served by
    another file (see :func:`merge_profiles`), so breaking a file can never let a
    duplicate take the place of its definition.
    """
    try:
        data, _ = parse_text(text, name, format_for(name))
    except (ProfileError, ValueError):
        data = None
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if isinstance(profiles, list):
        ids = {p.get("id") for p in profiles if isinstance(p, dict)}
        if all(isinstance(i, str) for i in ids):
            return frozenset(ids)  # type: ignore[arg-type]
    return frozenset(_ID_SCAN_RE.findall(text))


def read_claimed_ids(path: Path) -> frozenset[str]:
    """:func:`claimed_ids` of a file on disk (undecodable bytes replaced; unreadable: none)."""
    try:
        text = path.read_bytes()[: 4 * 1024 * 1024].decode("utf-8", "replace")
    except OSError:
        return frozenset()
    return claimed_ids(text, str(path))


def merge_profiles(
    loaded: Iterable[LoadedFile],
    broken: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[Profile], list[ProfileError]]:
    """The profiles of several files, with one rule for ids defined more than once.

    A profile id that more than one file defines, counting the ids a broken
    file may define (``broken``: source -> :func:`claimed_ids`), is served by
    **none** of them, and each loaded file that defines it gets an error. The
    rule does not depend on file names or order, and a file breaking can only
    withhold profiles, never let another definition (with other restrictions)
    take the place of its own.
    """
    loaded = list(loaded)
    owners: dict[str, list[str]] = {}
    for lf in loaded:
        for profile in lf.profiles:
            owners.setdefault(profile.id, []).append(lf.source)
    for source, ids in (broken or {}).items():
        for profile_id in ids:
            if profile_id in owners:
                owners[profile_id].append(f"{source} (which does not load)")
    out: list[Profile] = []
    errors: list[ProfileError] = []
    # `default: true` in several files: an error in each, naming the others, and no
    # profile preselected (the first in file order is), whatever the file names.
    flagged = [(lf.source, i, p) for lf in loaded for i, p in enumerate(lf.profiles) if p.default]
    clash = len({source for source, _, _ in flagged}) > 1
    if clash:
        for source, i, profile in flagged:
            others = [f"{s} (profile {p.id!r})" for s, _, p in flagged if s != source]
            errors.append(
                ProfileError(
                    [
                        Problem(
                            source,
                            f"$.profiles[{i}].default",
                            f"profile {profile.id!r} has `default: true`, and so has "
                            f"{', '.join(others)}; none is preselected until one file has it",
                            "keep `default: true` on one profile of the whole directory",
                        )
                    ]
                )
            )
    for lf in loaded:
        for i, profile in enumerate(lf.profiles):
            if clash and profile.default:
                profile = dataclasses.replace(profile, default=False)
            others = [o for o in owners[profile.id] if o != lf.source]
            if not others:
                out.append(profile)
                continue
            errors.append(
                ProfileError(
                    [
                        Problem(
                            lf.source,
                            f"$.profiles[{i}].id",
                            f"profile id {profile.id!r} is also defined in {', '.join(others)}; "
                            "no definition of it is served until one file defines it",
                            "profile ids are unique across the files of a profile directory",
                        )
                    ]
                )
            )
    return out, errors


__all__ = [
    "PROFILE_SUFFIXES",
    "LoadedFile",
    "claimed_ids",
    "load_profile_file",
    "load_profile_text",
    "merge_profiles",
    "profile_files",
    "profile_schema",
    "read_claimed_ids",
    "read_profile_file",
]
