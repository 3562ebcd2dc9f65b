"""A profile file is parsed and validated once per change of its text or its templates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError, loader
from firecrestspawner.profiles.loader import load_profile_text, read_profile_file

FILE = (
    "systems: [{name: c}]\n"
    "profiles: [{id: %s, display_name: A, system: c, batch_script: {template_file: t.sh}}]\n"
)


@pytest.fixture
def counted(monkeypatch):
    """How often the uncached pipeline runs."""
    calls: list[str] = []
    real = loader._load_text

    def counting(text, name, fmt, base_dir):
        calls.append(name)
        return real(text, name, fmt, base_dir)

    monkeypatch.setattr(loader, "_load_text", counting)
    return calls


def test_unchanged_text_is_not_validated_again(tmp_path: Path, counted) -> None:
    (tmp_path / "t.sh").write_text("#!/bin/bash\n{{ cmd }}\n")
    path = tmp_path / "a.yaml"
    path.write_text(FILE % "cached")
    first = read_profile_file(path)
    # Rewritten with the same content and a new modification time: same result, no new pass.
    path.write_text(FILE % "cached")
    os.utime(path, ns=(1, 1))
    assert read_profile_file(path) is first
    assert counted == [str(path)]


def test_changed_text_or_template_is_loaded_again(tmp_path: Path, counted) -> None:
    (tmp_path / "t.sh").write_text("#!/bin/bash\n{{ cmd }}\n")
    path = tmp_path / "a.yaml"
    path.write_text(FILE % "one")
    assert read_profile_file(path).profiles[0].id == "one"
    path.write_text(FILE % "two")
    assert read_profile_file(path).profiles[0].id == "two"
    (tmp_path / "t.sh").write_text("#!/bin/bash\necho changed\n{{ cmd }}\n")
    assert "echo changed" in read_profile_file(path).profiles[0].template
    assert len(counted) == 3


def test_the_same_text_under_another_name_reports_its_own_name(counted) -> None:
    text = FILE.replace("{template_file: t.sh}", "{builtin: slurm}") % "named"
    assert load_profile_text(text, name="x.yaml").source == "x.yaml"
    assert load_profile_text(text, name="y.yaml").source == "y.yaml"
    assert len(counted) == 2


def test_a_file_with_problems_is_checked_every_time(counted) -> None:
    bad = "systems: [{name: c}]\nprofiles: [{id: b, system: c, nonsense: 1}]\n"
    for _ in range(2):
        with pytest.raises(ProfileError):
            load_profile_text(bad, name="bad.yaml")
    assert counted == ["bad.yaml", "bad.yaml"]
