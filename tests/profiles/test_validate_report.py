"""Issue 14, findings 6, 7 and 8 (validate): one pass, CI formats, duplicates, the hook."""

from __future__ import annotations

import io
import json
import re
from argparse import Namespace
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from firecrestspawner.profiles import ProfileError, load_profile_text
from firecrestspawner.profiles.cli import cmd_validate, github_annotation
from firecrestspawner.profiles.errors import Problem
from firecrestspawner.profiles.loader import merge_profiles, read_profile_file

ROOT = Path(__file__).resolve().parents[2]

#: Two schema errors and three cross-field errors, spread over profiles and options.
MIXED = """\
systems: [{name: daint}]
profiles:
  - id: broken
    system: daint
  - id: gpu
    display_name: GPU
    system: dainty
    colour: red
    options:
      - id: nodes
        kind: integer
        display_name: Nodes
        min: 1
        max: 4
        when: {partition: [debug]}
      - id: partition
        kind: choice
        display_name: Partition
        choices: {normal: {display_name: Normal}}
        default: debug
"""


def _problems(text: str, name: str = "t.yaml") -> list[Problem]:
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, name=name)
    return list(info.value.problems)


def _validate(paths: list[str], fmt: str = "text") -> tuple[int, str]:
    out = io.StringIO()
    code = cmd_validate(Namespace(paths=paths, format=fmt, json=False), out)
    return code, out.getvalue()


def test_validate_reports_schema_and_cross_field_errors_in_one_pass() -> None:
    found = {(p.line, p.path) for p in _problems(MIXED)}
    assert found == {
        # schema: a required key missing, an unknown key
        (3, "$.profiles[0]"),
        (8, "$.profiles[1].colour"),
        # cross-field, in the same report, at the places of the original file
        (7, "$.profiles[1].system"),
        (15, "$.profiles[1].options[0].when.partition"),
        (20, "$.profiles[1].options[1].default"),
    }


def test_one_pass_maps_positions_past_a_dropped_profile() -> None:
    # profile 0 is cut for the cross-field checks; profile 1's error keeps its own index/line
    problems = _problems(MIXED)
    (system,) = [p for p in problems if p.path.endswith(".system")]
    assert "unknown system 'dainty'" in system.message
    assert (system.line, system.column) == (7, 13)


def test_one_pass_does_not_report_consequences_of_a_dropped_option() -> None:
    text = """\
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - id: partition
        kind: choice
        display_name: Partition
        choices: nope
      - id: nodes
        kind: integer
        display_name: Nodes
        when: {partition: [debug]}
"""
    messages = [p.message for p in _problems(text)]
    assert len(messages) == 1, messages
    assert "partition" not in messages[0]


def test_validate_format_github_annotations(tmp_path: Path) -> None:
    bad = tmp_path / "profiles" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(MIXED, encoding="utf-8")
    code, out = _validate([str(bad)], "github")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 5
    assert all(line.startswith("::error file=") for line in lines)
    assert f"::error file={bad},line=7,col=13,title=$.profiles[1].system::" in out
    # one annotation per line: a multi-line message is escaped, never split
    assert "%0Ahint: did you mean `daint`?" in out


def test_github_annotation_escapes_properties_and_message() -> None:
    problem = Problem("a,b:c.yaml", "$.x", "100% bad\nreally", "fix", 1, 2)
    line = github_annotation(problem)
    assert (
        line
        == "::error file=a%2Cb%3Ac.yaml,line=1,col=2,title=$.x::$.x: 100%25 bad%0Areally%0Ahint: fix"
    )


def test_validate_format_json_has_every_error_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MIXED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(MIXED.replace("dainty", "daint"), encoding="utf-8")
    code, out = _validate([str(tmp_path)], "json")
    report = json.loads(out)
    assert code == 1
    assert report["valid"] is False
    by_file: dict[str, int] = {}
    for e in report["errors"]:
        by_file[Path(e["file"]).name] = by_file.get(Path(e["file"]).name, 0) + 1
    assert by_file == {"a.yaml": 5, "b.yaml": 4}


ONE = """\
systems: [{name: c}]
profiles:
  - id: %s
    display_name: X
    system: c
    default: true
"""


def test_duplicate_ids_name_both_files_and_no_ok_for_either(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ONE % "same", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        (ONE % "same").replace("    default: true\n", ""), encoding="utf-8"
    )
    code, out = _validate([str(tmp_path)])
    assert code == 1
    assert "ok:" not in out
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    assert f"{a}: $.profiles[0].id: profile id 'same' is also defined in {b}" in out
    assert f"{b}: $.profiles[0].id: profile id 'same' is also defined in {a}" in out
    assert out.rstrip().endswith("0 file(s) valid, 2 error(s)")


def test_several_default_profiles_across_files_are_errors_naming_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ONE % "first", encoding="utf-8")
    (tmp_path / "b.yaml").write_text(ONE % "second", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        (ONE % "third").replace("    default: true\n", ""), encoding="utf-8"
    )
    code, out = _validate([str(tmp_path)])
    assert code == 1
    assert f"ok: {tmp_path / 'c.yaml'} (third)" in out
    assert "ok: " + str(tmp_path / "a.yaml") not in out
    assert re.search(
        r"a\.yaml: \$\.profiles\[0\]\.default: profile 'first' has `default: true`, "
        r"and so has .*b\.yaml \(profile 'second'\)",
        out,
    )
    assert re.search(r"b\.yaml: .*profile 'second' .*a\.yaml \(profile 'first'\)", out)
    # the hub serves all three, none preselected (not "the first alphabetically wins")
    served, errors = merge_profiles(
        read_profile_file(tmp_path / n) for n in ("b.yaml", "a.yaml", "c.yaml")
    )
    assert [p.id for p in served] == ["second", "first", "third"]
    assert not any(p.default for p in served)
    assert len(errors) == 2


def test_pre_commit_hook_checks_only_profiles_dir_by_default() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "firecrestspawner-validate"]
    files = re.compile(hook["files"])
    assert files.search("profiles/gpu.yaml")
    assert files.search("profiles/pbs-site.toml")
    for other in (".github/workflows/ci.yml", "pyproject.toml", "docs/x.yaml", "a/profiles.yaml"):
        assert not files.search(other), other


#: A template that refuses an empty value where a directive needs a word.
RESERVATION_SITE = """\
version: 1
systems:
  - name: cluster
profiles:
  - id: p
    display_name: P
    system: cluster
{fixed}    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --reservation {{{{ reservation }}}}
        {{{{ cmd }}}}
{options}"""

NO_RESERVATION_CHOSEN = """\
    options:
      - id: reservation
        display_name: Reservation
        kind: cluster_choice
        source: reservations
        required: false
"""


def test_a_refused_value_the_cluster_or_a_user_gives_is_left_to_the_spawn() -> None:
    # The trial rendering gives the optional cluster_choice its empty value, which the
    # directive refuses; that is the user's pick (refused with a message at the spawn),
    # not a mistake of the file: trial.py turns it into the option's OptionError, skipped.
    text = RESERVATION_SITE.format(fixed="", options=NO_RESERVATION_CHOSEN)
    loaded = load_profile_text(text, name="t.yaml")
    assert [p.id for p in loaded.profiles] == ["p"]


def test_the_same_refused_value_written_by_the_file_is_reported() -> None:
    # The control: the same empty value as a fixed request value is the file's error,
    # at its position, so the trial above did render the refusing line.
    text = RESERVATION_SITE.format(fixed='    req: {reservation: ""}\n', options="")
    (problem,) = _problems(text)
    assert problem.path == "$.profiles[0].req.reservation"
    assert problem.line == 8
    assert "is empty where a directive needs a word" in problem.message
