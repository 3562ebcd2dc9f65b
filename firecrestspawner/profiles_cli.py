"""``firecrestspawner validate``, ``render`` and ``schema``: site profiles from the command line.

The commands run the same functions the spawner runs: ``validate`` the
profile loader, ``render`` the option validator and the script renderer, so a
site's CI sees exactly the errors a spawn would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from .profiles import LoadedFile, ProfileError, _load_file, merge_profiles, profile_files

DEFAULT_PATHS = ("profiles",)


def _collect(paths: list[str]) -> tuple[list[Path], list[ProfileError]]:
    files: list[Path] = []
    errors: list[ProfileError] = []
    from .profiles import Problem

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = profile_files(p)
            if not found:
                errors.append(
                    ProfileError(
                        [
                            Problem(
                                str(p),
                                "$",
                                "no profile files (*.yaml, *.yml, *.toml) in this directory",
                                "",
                            )
                        ]
                    )
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            errors.append(ProfileError([Problem(str(p), "$", "no such file or directory", "")]))
    return files, errors


def validate_paths(paths: list[str]) -> tuple[list[LoadedFile], list[ProfileError]]:
    """Load every profile file under ``paths``; also report profile ids defined twice."""
    files, errors = _collect(paths)
    loaded: list[LoadedFile] = []
    for f in files:
        try:
            loaded.append(_load_file(f))
        except ProfileError as e:
            errors.append(e)
    _, duplicates = merge_profiles(loaded)
    return loaded, errors + duplicates


def cmd_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    loaded, errors = validate_paths(args.paths or list(DEFAULT_PATHS))
    if args.json:
        report: dict[str, Any] = {
            "valid": not errors,
            "files": [
                {"file": lf.source, "profiles": [p.id for p in lf.profiles]} for lf in loaded
            ],
            "errors": [p.as_dict() for e in errors for p in e.problems],
        }
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        for lf in loaded:
            out.write(f"ok: {lf.source} ({', '.join(p.id for p in lf.profiles)})\n")
        for e in errors:
            out.write(f"{e}\n")
        count = sum(len(e.problems) for e in errors)
        out.write(f"{len(loaded)} file(s) valid" + (f", {count} error(s)\n" if count else "\n"))
    return 1 if errors else 0


def cmd_schema(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from .profile_models import generate_schema

    (out or sys.stdout).write(json.dumps(generate_schema(), indent=2, ensure_ascii=False) + "\n")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``render`` and ``schema``."""
    p = subparsers.add_parser(
        "validate",
        help="check site profile files",
        description="Check profile files (or directories of them) against the schema and the "
        "cross-field rules. Exit status 0 when all are valid, 1 otherwise.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: profiles/)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("schema", help="print the profile JSON Schema")
    p.set_defaults(func=cmd_schema)
