"""Finding 4: profile regexes run in linear time; what RE2 cannot run is refused by ``validate``.

The hostile values here are long enough that a backtracking engine would need
far more than 2**60 steps (it would never finish: the test would hit pytest's
timeout), while RE2 answers in microseconds. Nothing asserts a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError, load_profile_text
from firecrestspawner.profiles.choices import cluster_name_ok
from firecrestspawner.profiles.loader import read_profile_file
from firecrestspawner.profiles.models import ProfileSet
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options
from firecrestspawner.profiles.regex import regex_problem

NESTED = ["(a+)+$", "(a|aa)+$", "(a*)*b", "([a-z]+)*[0-9]", "(x+x+)+y"]

PROFILE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems: [{{name: cluster}}]
profiles:
  - id: p
    display_name: P
    system: cluster
    options:
      - id: label
        display_name: Label
        kind: text
        max_length: 4096
        pattern: '{pattern}'
        req: comment
      - id: account
        display_name: Account
        kind: cluster_choice
        source: accounts
        filter: '{pattern}'
"""


def _profile(pattern: str) -> ProfileSet:
    return ProfileSet(load_profile_text(PROFILE.format(pattern=pattern), name="p.yaml").profiles)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pattern", NESTED)
def test_backtracking_regex_cannot_stall_the_validator(pattern: str) -> None:
    profiles = _profile(pattern)
    hostile = "a" * 4000 + "!"
    with pytest.raises(OptionError) as info:
        validate_options(profiles, {"profile": "p", "label": hostile}, user=UserInfo("u"))
    assert info.value.field == "label"
    # The cluster's names go through the filter too.
    option = profiles.profiles[0].options[1]
    assert not cluster_name_ok(option, "a" * 120 + "-")


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        ("(a)\\1", "escape"),
        ("(?=a)a", "(?="),
        ("(?<!x)a", "(?<"),
        ("(?>a+)b", "(?>"),
        ("a++", "repetition"),
        ("a{1001}", "{1001}"),
    ],
)
def test_unsupported_regex_constructs_are_refused_at_validate_with_position(
    tmp_path: Path, pattern: str, construct: str
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(PROFILE.format(pattern=pattern), encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        read_profile_file(path)
    problems = [p for p in info.value.problems if p.path.endswith(".pattern")]
    assert problems, str(info.value)
    problem = problems[0]
    assert (problem.line, problem.column) == (13, 18)
    assert str(problem).startswith(f"{path}:13:18: ")
    assert "linear time" in problem.message
    assert construct in problem.message
    assert any(p.path.endswith(".filter") for p in info.value.problems)


def test_regex_problem_accepts_ordinary_patterns() -> None:
    for pattern in [r"[A-Za-z0-9._-]{1,32}", r"(?:gpu|mc)-\d+", r"[^\x00-\x1f]*", NESTED[0]]:
        assert regex_problem(pattern) is None, pattern
