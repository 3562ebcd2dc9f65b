"""Every documented name exists with the documented kind, and every trait has help."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets import TraitType

from firecrestspawner import spawner as module

REFERENCE = Path(__file__).with_name("api-reference.txt")
_CLASS_RE = re.compile(r"^class firecrestspawner\.spawner\.(\w+)\(")
_METHOD_RE = re.compile(r"^(async )?([a-z_][a-z0-9_]*)\((.*)\)(.*)$")
_NAME_RE = re.compile(r"^([a-z_][a-z0-9_]*)(?: = .*)?$")


def documented() -> list[tuple[str, str, str]]:
    """(class, name, kind) for every entry of the reference; kind in
    trait/sync/async/asyncgen."""
    entries = []
    cls = None
    for raw in REFERENCE.read_text().splitlines():
        line = raw.strip()
        m = _CLASS_RE.match(line)
        if m:
            cls = m.group(1)
            continue
        if cls is None or not line:
            continue
        m = _METHOD_RE.match(line)
        if m and not line.endswith("."):
            kind = "async" if m.group(1) else "sync"
            if "AsyncGenerator" in m.group(4):
                kind = "asyncgen"
            entries.append((cls, m.group(2), kind))
            continue
        m = _NAME_RE.match(line)
        if m:
            entries.append((cls, m.group(1), "trait"))
    return entries


ENTRIES = documented()


def test_reference_parsed():
    names = {(c, n) for c, n, _ in ENTRIES}
    assert ("FirecRESTSpawnerBase", "start") in names
    assert ("FirecRESTSpawnerRegexStates", "state_exechost_exp") in names
    assert ("SlurmSpawner", "firecrest_url") in names
    assert ("AuthorizationCodeFlowAuth", "get_access_token") in names
    assert len(ENTRIES) > 70


@pytest.mark.parametrize(("cls_name", "name", "kind"), ENTRIES, ids=lambda v: str(v))
def test_documented_name_exists_with_kind(cls_name, name, kind):
    cls = getattr(module, cls_name)
    if kind == "trait":
        if hasattr(cls, "class_traits") and name in cls.class_traits():
            assert isinstance(cls.class_traits()[name], TraitType)
        else:
            assert hasattr(cls, name), f"{cls_name}.{name} missing"
        return
    fn = getattr(cls, name)
    if kind == "asyncgen":
        assert inspect.isasyncgenfunction(fn), f"{cls_name}.{name} must be an async generator"
    elif kind == "async":
        assert inspect.iscoroutinefunction(fn), f"{cls_name}.{name} must be async"
    else:
        assert callable(fn)
        assert not inspect.iscoroutinefunction(fn), f"{cls_name}.{name} must be sync"
        assert not inspect.isasyncgenfunction(fn)


def test_jobstatus_values():
    assert {s.name: s.value for s in module.JobStatus} == {
        "NOTFOUND": 0,
        "RUNNING": 1,
        "PENDING": 2,
        "UNKNOWN": 3,
    }


def test_format_template_is_exported():
    assert module.format_template("{a}-{b}", a=1, b=2) == "1-2"
    assert module.format_template("{{ a }}", a="x") == "x"


def own_traits():
    seen = {}
    for cls in (module.SlurmSpawner, module.FirecRESTSpawnerRegexStates):
        for name, trait in cls.class_traits().items():
            if trait.this_class.__module__.startswith("firecrestspawner"):
                seen[name] = trait
    return sorted(seen.items())


@pytest.mark.parametrize(("name", "trait"), own_traits(), ids=lambda v: str(v))
def test_every_trait_has_help(name, trait):
    assert (trait.help or "").strip(), f"trait {name} has no help string"


def test_import_needs_no_environment():
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    code = "import firecrestspawner.spawner as s; print(s.SlurmSpawner.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "SlurmSpawner"


ENV_KEYS = ("FIRECREST_URL", "SA_CLIENT_ID", "SA_CLIENT_SECRET", "SA_AUTH_TOKEN_URL")
