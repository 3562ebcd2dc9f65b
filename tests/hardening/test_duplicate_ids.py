"""Finding 5: a profile id in two files; a broken file never changes what is served.

The rule: an id that more than one file defines (a file that does not load
counts with the ids it may define) is served by none of them. ``validate`` and
the hub's hot reload apply the same function and agree.
"""

from __future__ import annotations

import io
import json
import os
from argparse import Namespace
from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileDirectory
from firecrestspawner.profiles.cli import cmd_validate
from firecrestspawner.profiles.loader import claimed_ids
from firecrestspawner.profiles.options import UserInfo, visible_profiles

RESTRICTED = """\
version: 1
firecrest_url: http://firecrest.invalid
systems: [{name: cluster}]
profiles:
  - id: gpu
    display_name: GPU (staff only)
    system: cluster
    groups: [staff]
  - id: small
    display_name: Small
    system: cluster
"""
OPEN = """\
version: 1
firecrest_url: http://firecrest.invalid
systems: [{name: cluster}]
profiles:
  - id: gpu
    display_name: GPU for everyone
    system: cluster
  - id: other
    display_name: Other
    system: cluster
"""
BROKEN_SCHEMA = RESTRICTED.replace("display_name: GPU (staff only)", "display_nam: typo")
BROKEN_SYNTAX = RESTRICTED.replace("systems: [{name: cluster}]", "systems: [{name: cluster}")
BROKEN_BYTES = RESTRICTED.encode() + b"\xff\xfe: [\n"

EVERYONE = UserInfo("mallory")


def _write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    # Hot reload notices a change by its stamp; make each write a new one.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _served(directory: Path) -> set[str]:
    return {p.id for p in ProfileDirectory(directory).current().profiles}


def _validate_served(directory: Path) -> tuple[int, set[str]]:
    out = io.StringIO()
    status = cmd_validate(Namespace(paths=[str(directory)], json=True), out=out)
    return status, set(json.loads(out.getvalue())["served"])


@pytest.mark.parametrize("restricted_name", ["a-site.yaml", "z-site.yaml"])
@pytest.mark.parametrize("broken", [BROKEN_SCHEMA, BROKEN_SYNTAX, BROKEN_BYTES])
def test_broken_file_never_lets_a_duplicate_replace_a_restricted_profile(
    tmp_path: Path, restricted_name: str, broken: str | bytes
) -> None:
    restricted = tmp_path / restricted_name
    _write(restricted, RESTRICTED)
    _write(tmp_path / "m-open.yaml", OPEN)
    directory = ProfileDirectory(tmp_path)

    # Both load: the duplicate id is served by neither file (whatever their names).
    first = directory.current()
    assert {p.id for p in first.profiles} == {"small", "other"}
    assert any("'gpu' is also defined" in str(e) for e in first.errors)

    # The restricted file breaks: still no definition of gpu, so nobody gains access.
    _write(restricted, broken)
    now = directory.current()
    assert "gpu" not in {p.id for p in now.profiles}
    assert "gpu" not in {p.id for p in visible_profiles(now, EVERYONE)}

    # validate reads the same files the same way.
    status, served = _validate_served(tmp_path)
    assert status == 1
    assert served == {p.id for p in now.profiles}

    # A hub started while the file is broken serves the same.
    assert _served(tmp_path) == {p.id for p in now.profiles}

    # Once the file is fixed and the other definition removed, the restricted one serves.
    _write(restricted, RESTRICTED)
    _write(tmp_path / "m-open.yaml", OPEN.replace("id: gpu", "id: gpu2"))
    fixed = directory.current()
    assert "gpu" in {p.id for p in fixed.profiles}
    assert "gpu" not in {p.id for p in visible_profiles(fixed, EVERYONE)}
    assert "gpu" in {p.id for p in visible_profiles(fixed, UserInfo("ann", ("staff",)))}


def test_validate_and_hub_agree_on_shipped_and_duplicated_directories(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "profiles"
    status, served = _validate_served(root)
    assert status == 0
    assert served == _served(root)
    for case, files in {
        "dup": {"a.yaml": RESTRICTED, "b.yaml": OPEN},
        "one": {"a.yaml": RESTRICTED},
        "broken": {"a.yaml": BROKEN_SYNTAX, "b.yaml": OPEN},
    }.items():
        directory = tmp_path / case
        directory.mkdir()
        for name, text in files.items():
            _write(directory / name, text)
        status, served = _validate_served(directory)
        assert served == _served(directory), case
        assert status == (0 if case == "one" else 1), case


def test_claimed_ids_of_unparseable_text_fail_closed() -> None:
    assert claimed_ids(RESTRICTED, "x.yaml") == {"gpu", "small"}
    assert {"gpu", "small"} <= claimed_ids(BROKEN_SYNTAX, "x.yaml")
    toml = 'profiles = [\n  { id = "gpu", display_name = "x" \n'
    assert "gpu" in claimed_ids(toml, "x.toml")
