"""The layout of ``firecrestspawner/profiles``: which modules are pure, and their size.

A *pure* module decides from its arguments (and the profile or template files
it is asked to read): it imports nothing of the hub (jupyterhub, tornado,
traitlets, sqlalchemy), no network client (httpx, pyfirecrest, socket, ...),
and no processes, threads or event loops (subprocess, threading, asyncio, ...).
The spawner, the CLI and the tests call the same pure functions.

Every module of the package is either pure or listed in ``NOT_PURE`` with the
reason; a new module has to be put in one of the two.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "firecrestspawner.profiles"
ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "firecrestspawner" / "profiles"
MODULES = sorted(p.stem for p in FOLDER.glob("*.py"))

#: Modules that are not pure, and why.
NOT_PURE = {
    "__init__": "re-exports ProfileDirectory from reload",
    "cli": "command line: argparse, stdout/stderr, reads paths it is given",
    "reload": "ProfileDirectory: a lock shared by the hub's threads, stats a directory",
}
PURE = [name for name in MODULES if name not in NOT_PURE]

#: Imported directly by no pure module (the module or any submodule of it).
FORBIDDEN = (
    "jupyterhub",
    "tornado",
    "traitlets",
    "sqlalchemy",
    "httpx",
    "firecrest",
    "requests",
    "aiohttp",
    "stamina",
    "asyncio",
    "subprocess",
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "threading",
    "multiprocessing",
    "concurrent",
    "selectors",
    "signal",
)
#: Modules of firecrestspawner outside this package that pure modules may use.
ALLOWED_OUTSIDE = {"firecrestspawner.request", "firecrestspawner.states"}
#: Loaded by no module of the package, not even indirectly through a library (checked in a
#: fresh interpreter; socket and threading are left out: pydantic's importlib.metadata loads them).
FORBIDDEN_LOADED = (
    "jupyterhub",
    "tornado",
    "traitlets",
    "sqlalchemy",
    "httpx",
    "firecrest",
    "requests",
    "stamina",
)
MAX_LINES = 700


def imports(name: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in a module of the package, at any depth."""
    tree = ast.parse((FOLDER / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, str(node.module)
                continue
            parts = PACKAGE.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            if node.module:
                yield node.lineno, f"{base}.{node.module}"
                continue
            for alias in node.names:  # from . import models; from .. import states
                is_name = base == PACKAGE and not (FOLDER / f"{alias.name}.py").is_file()
                yield node.lineno, base if is_name else f"{base}.{alias.name}"
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                yield node.lineno, "<dynamic import>"


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_every_module_is_classified() -> None:
    assert set(NOT_PURE) <= set(MODULES), "NOT_PURE names a module that does not exist"
    assert PURE, "no pure module found"


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports(name: str) -> None:
    bad = []
    for line, module in imports(name):
        if module == "<dynamic import>":
            bad.append(f"{name}.py:{line}: dynamic import")
        elif any(_under(module, f) for f in FORBIDDEN):
            bad.append(f"{name}.py:{line}: imports {module}")
        elif _under(module, "firecrestspawner") and not _under(module, PACKAGE):
            if module not in ALLOWED_OUTSIDE:
                bad.append(f"{name}.py:{line}: imports {module}, which is not known to be pure")
        elif module == PACKAGE or any(_under(module, f"{PACKAGE}.{n}") for n in NOT_PURE):
            bad.append(f"{name}.py:{line}: imports {module}, which is not pure")
    assert bad == [], "\n".join(bad)


def test_no_module_loads_a_hub_or_network_library() -> None:
    # Not even the CLI or the hot reload: `firecrestspawner validate` runs without a hub.
    modules = [PACKAGE] + [f"{PACKAGE}.{name}" for name in MODULES if name != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in {FORBIDDEN_LOADED!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", MODULES)
def test_module_size(name: str) -> None:
    lines = len((FOLDER / f"{name}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}.py has {lines} lines; split it by concern"


def test_the_import_walker_sees_what_it_must() -> None:
    # The walker itself: relative, nested and dynamic imports are all seen.
    found = {module for _, module in imports("checks")}
    assert {"firecrestspawner.states", f"{PACKAGE}.models", f"{PACKAGE}.script"} <= found
    assert "firecrestspawner.naming" in {module for _, module in imports("cli")}  # in a function


def test_architecture_doc_lists_every_module_and_says_pure_only_where_tested() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `profiles/(\w+)\.py`[^|]*\|[^|]*\| (yes|no)\b", doc, re.M))
    assert set(rows) == set(MODULES), "docs/architecture.md: list every module of profiles/"
    assert {name for name, pure in rows.items() if pure == "yes"} == set(PURE)


def test_models_still_gives_every_option_kind_of_the_split() -> None:
    # option_kinds.py was split from models.py; callers write `m.ChoiceOption`.
    from firecrestspawner.profiles import models, option_kinds

    for name in option_kinds.__all__:
        assert getattr(models, name) is getattr(option_kinds, name), name
    assert set(option_kinds.__all__) <= set(models.__all__)
    union, _ = typing.get_args(models.Option)
    kinds = [typing.get_args(c.model_fields["kind"].annotation)[0] for c in typing.get_args(union)]
    assert sorted(kinds) == sorted(models.OPTION_KINDS)
