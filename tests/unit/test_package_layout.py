"""The layout of the whole package: module size, the architecture document, pure modules.

``tests/profiles/test_layout.py`` does the same for the profiles package in more
detail; this file covers every other module of ``firecrestspawner``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "firecrestspawner"
MAX_LINES = 700

MODULES = sorted(
    p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
)

#: Modules the architecture document calls pure: importing one loads no hub, network,
#: event-loop or validation library (checked in a fresh interpreter below).
PURE = ["naming", "states", "reaper_plan", "jobenv", "jobs.record", "remembered"]

#: Top-level packages of libraries a pure module must not load, not even indirectly.
#: (``threading`` is not among them: :mod:`logging` loads it for every module.)
IMPURE = {
    "asyncio",
    "firecrest",
    "httpx",
    "jupyterhub",
    "pydantic",
    "socket",
    "sqlalchemy",
    "ssl",
    "subprocess",
    "tornado",
    "traitlets",
}


@pytest.mark.parametrize("name", MODULES)
def test_module_size(name: str) -> None:
    lines = len((PACKAGE / name).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"firecrestspawner/{name} has {lines} lines; split it by concern"


def test_architecture_doc_names_every_module() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", doc))
    missing = []
    for name in MODULES:
        parts = name.split("/")
        if parts[0] == "profiles":
            continue  # tests/profiles/test_layout.py checks that folder module by module
        if len(parts) == 1:
            if name not in named and name != "__init__.py":
                missing.append(name)
        elif parts[0] in ("emulator", "doctor"):
            if f"{parts[0]}/" not in named:  # a folder row covers its modules
                missing.append(f"{parts[0]}/")
        elif parts[-1] != "__init__.py" and name not in named:
            missing.append(name)
    assert not sorted(set(missing)), f"docs/architecture.md does not name {sorted(set(missing))}"


def test_architecture_doc_says_pure_only_of_tested_modules() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w/]+)\.py`[^|]*\|[^|]*\| yes\b", doc, re.M)
    said_pure = {row.replace("/", ".") for row in rows if not row.startswith("profiles/")}
    assert said_pure == set(PURE)


@pytest.mark.parametrize("name", PURE)
def test_pure_module_loads_no_hub_or_io_library(name: str) -> None:
    code = (
        "import json, sys\n"
        f"import firecrestspawner.{name}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    assert not loaded & IMPURE, f"importing firecrestspawner.{name} loads {sorted(loaded & IMPURE)}"


def test_the_purity_check_sees_an_impure_import() -> None:
    # The check itself: a module known to use the network must be caught.
    code = (
        "import json, sys\n"
        "import firecrestspawner.client\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    assert {"httpx", "asyncio"} <= loaded
