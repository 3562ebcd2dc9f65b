"""``firecrestspawner validate`` builds the profile models without pydantic: the same results.

:mod:`firecrestspawner.profiles.lightmodels` replaces pydantic in a ``validate``
process (start-up time). Here both ways load every profile file of the
repository, the invalid ones included, and generated sites, and must agree on
everything: the report (errors with file:line:col, warnings, what is served)
and each loaded profile down to the type of every value (an int is not a float).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Prints the report and every loaded file of the paths in argv, as plain JSON.
DUMP = r"""
import dataclasses, json, sys
from pathlib import PurePath
from firecrestspawner.profiles.cli import _validate

STACK = []

def dump(x):
    if hasattr(x, "model_fields_set") and hasattr(x, "model_dump"):
        names = list(x.model_dump())
        return {"__class__": type(x).__name__, "__set__": sorted(x.model_fields_set),
                **{n: dump(getattr(x, n)) for n in names}}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if any(x is y for y in STACK):  # a multi-system profile is among its variants
            return "<the enclosing profile>"
        STACK.append(x)
        out = {"__class__": type(x).__name__,
               **{f.name: dump(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        STACK.pop()
        return out
    if hasattr(x, "items"):
        return {"__mapping__": [[dump(k), dump(v)] for k, v in x.items()]}
    if isinstance(x, (list, tuple, frozenset, set)):
        items = [dump(v) for v in x]
        return sorted(items, key=json.dumps) if isinstance(x, (set, frozenset)) else items
    if isinstance(x, PurePath):
        return str(x)
    return [type(x).__name__, x]

loaded, errors, served = _validate(sys.argv[1:])
print(json.dumps({
    "served": served,
    "errors": [str(p) for e in errors for p in e.problems],
    "loaded": [dump(lf) for lf in loaded],
    "pydantic": "pydantic" in sys.modules,
}, sort_keys=True))
"""


def _profile_files() -> list[str]:
    files = [*ROOT.glob("profiles/**/*.yaml"), *ROOT.glob("profiles/**/*.toml")]
    for pattern in ("*.yaml", "*.yml", "*.toml"):
        files += (ROOT / "tests").rglob(pattern)
    return sorted(str(f) for f in files if "node_modules" not in f.parts)


def _run(paths: list[str], light: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "_FIRECRESTSPAWNER_LIGHT_MODELS"}
    env["PYTHONPATH"] = str(ROOT)
    if light:
        env["_FIRECRESTSPAWNER_LIGHT_MODELS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", DUMP, *paths],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(proc.stdout)


def _same(paths: list[str]) -> dict:
    full, light = _run(paths, light=False), _run(paths, light=True)
    assert full.pop("pydantic") is True
    assert light.pop("pydantic") is False
    assert light == full
    return full


def test_every_profile_file_of_the_repository_loads_the_same_both_ways() -> None:
    files = _profile_files()
    result = _same(files)
    # Not vacuous: valid files with profiles, invalid ones with positioned errors.
    assert len(result["loaded"]) >= 7
    assert {"gc-gpu", "ps-bigmem", "pbs-chunks"} <= set(result["served"])
    assert any(":8:15: $.profiles[0].options[0].kind" in e for e in result["errors"])
    assert len(result["errors"]) >= 20


@pytest.mark.parametrize("seed_files", [40])
def test_generated_sites_load_the_same_both_ways(tmp_path: Path, seed_files: int) -> None:
    from benchmarks.profiles_bench import generate

    generate(tmp_path, seed_files)
    result = _same([str(tmp_path)])
    assert len(result["loaded"]) == seed_files
    assert not result["errors"]


def test_number_and_alias_fields_come_out_as_pydantic_gives_them(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        """\
$schema: ../schemas/profile.schema.json
version: 1
systems: [{name: cluster}]
profiles:
  - id: p
    display_name: P
    system: cluster
    options:
      - {id: mem, display_name: Memory, kind: number, min: 1, max: 2.5, step: 1, default: 2}
      - {id: nodes, display_name: Nodes, kind: integer, min: 1.0, max: 4, default: 2}
      - {id: big, display_name: Big, kind: boolean}
      - id: runtime
        display_name: Time
        kind: duration
        max: "2:00:00"
        depends_on: {big: {true: {max: "1:00:00"}}}
""",
        encoding="utf-8",
    )
    result = _same([str(site)])
    spec = result["loaded"][0]["spec"]
    assert spec["schema_"] == ["str", "../schemas/profile.schema.json"]
    mem, nodes, _, runtime = spec["profiles"][0]["options"]
    assert mem["min"] == ["float", 1.0]
    assert mem["step"] == ["float", 1.0]
    assert nodes["min"] == ["int", 1]
    # depends_on keys as `when` writes them (the mode="before" validator ran)
    assert runtime["depends_on"]["__mapping__"][0][1]["__mapping__"][0][0] == ["str", "true"]
