"""Finding 6: values the file declares are checked by ``validate`` exactly as user values at a spawn.

Before, a fixed value that changed a directive passed ``validate``, ``render``
printed the injected line, and at the spawn the user got a 400 about a field
they never touched.
"""

from __future__ import annotations

import io
from argparse import Namespace
from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError
from firecrestspawner.profiles.cli import DEFAULT_CMD, cmd_render
from firecrestspawner.profiles.loader import read_profile_file

BASE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems:
  - name: cluster
    req: {system_req}
defaults: {defaults}
profiles:
  - id: p
    display_name: P
    system: cluster
    req: {profile_req}
    options:
      - id: size
        display_name: Size
        kind: choice
        choices:
          small: {{display_name: Small}}
          big: {{display_name: Big, req: {choice_req}}}
      - id: exclusive
        display_name: Exclusive
        kind: boolean
        true_value: {true_value}
        req: constraint
"""
CLEAN = {
    "system_req": "{}",
    "defaults": "{}",
    "profile_req": "{}",
    "choice_req": "{nnodes: '2'}",
    "true_value": "excl",
}


def _site(tmp_path: Path, **changes: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(BASE.format(**{**CLEAN, **changes}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "line", "what"),
    [
        ({"profile_req": "{partition: 'normal --uid=0'}"}, 11, "'partition'"),
        ({"system_req": "{account: 'a b'}"}, 5, "'account'"),
        ({"defaults": "{qos: '-A x'}"}, 6, "'qos'"),
        ({"choice_req": "{nnodes: '2 --qos=high'}"}, 18, "'nnodes'"),
        ({"true_value": "'a\"b'"}, 22, "'constraint'"),
        ({"profile_req": '{partition: "x\\ny"}'}, 11, "'partition'"),
    ],
)
def test_fixed_values_are_checked_by_validate_as_user_values_at_spawn(
    tmp_path: Path, change: dict[str, str], line: int, what: str
) -> None:
    path = _site(tmp_path, **change)
    with pytest.raises(ProfileError) as info:
        read_profile_file(path)
    problems = info.value.problems
    assert any(what in p.message and p.line == line for p in problems), str(info.value)
    # render refuses what a spawn would refuse: no injected line is printed.
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(
        file=str(path),
        profile="p",
        set=["size=big", "exclusive=true"],
        user="alice",
        group=None,
        cluster=None,
        cmd=DEFAULT_CMD,
        workdir=None,
        job_name=None,
        show_request=False,
    )
    assert cmd_render(args, out=out, err=err) == 1
    assert out.getvalue() == ""
    assert what.strip("'") in err.getvalue()


def test_clean_fixed_values_render(tmp_path: Path) -> None:
    path = _site(tmp_path)
    read_profile_file(path)
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(
        file=str(path),
        profile="p",
        set=["size=big", "exclusive=true"],
        user="alice",
        group=None,
        cluster=None,
        cmd=DEFAULT_CMD,
        workdir=None,
        job_name=None,
        show_request=False,
    )
    assert cmd_render(args, out=out, err=err) == 0, err.getvalue()
    assert "#SBATCH --nodes=2" in out.getvalue()
    assert "#SBATCH --constraint=excl" in out.getvalue()


TEXT_ON_DIRECTIVE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems:
  - name: cluster
profiles:
  - id: p
    display_name: P
    system: cluster
    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --comment={{{{ note }}}}
        {{{{ cmd }}}}
    options:
      - id: note
        display_name: Note
        kind: text
        pattern: '[^\\x00-\\x1f]*'
{default}"""


def test_a_text_default_that_would_change_a_directive_is_the_files_error(tmp_path: Path) -> None:
    """A user who leaves the field alone gets the default: its refusal is reported by validate."""
    path = tmp_path / "site.yaml"
    path.write_text(
        TEXT_ON_DIRECTIVE.format(default='        default: "x --uid=0"\n'), encoding="utf-8"
    )
    with pytest.raises(ProfileError) as info:
        read_profile_file(path)
    text = str(info.value)
    assert "option 'note' is refused" in text
    assert "with the default values" in text


def test_a_text_option_without_a_default_is_left_to_the_spawn(tmp_path: Path) -> None:
    """The control: without a declared default nothing of the file is refused (users' values are checked at spawn)."""
    path = tmp_path / "site.yaml"
    path.write_text(TEXT_ON_DIRECTIVE.format(default=""), encoding="utf-8")
    loaded = read_profile_file(path)
    assert [p.id for p in loaded.profiles] == ["p"]
