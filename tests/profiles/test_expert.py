"""Expert scheduler options (#14.2): an allow-list, one directive line per option.

Before this kind, a text option routed to the extra options refused every
value, even `--exclusive`. Here an allowed option renders as its own
`#SBATCH`/`#PBS` line, on every path through the one validator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.profiles import ProfileError, ProfileSet, load_profile_file
from firecrestspawner.profiles.directives import directive_lines, slurm_directives
from firecrestspawner.profiles.loader import load_profile_text
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options

HERE = Path(__file__).resolve().parent
PS: ProfileSet = load_profile_file(HERE / "valid" / "dependent-expert.yaml")
ALICE = UserInfo("alice")
SPAWN = {"cmd": "jupyterhub-singleuser", "job_name": "fcs.alice.1", "workdir": "/home/alice"}


def script(extra: Any, profile: str = "gpu") -> str:
    vo = validate_options(PS, {"profile": profile, "extra": extra}, user=ALICE)
    return vo.render_script(**SPAWN)


def refused(extra: Any, profile: str = "gpu") -> OptionError:
    with pytest.raises(OptionError) as info:
        validate_options(PS, {"profile": profile, "extra": extra}, user=ALICE)
    return info.value


def test_allowed_options_become_directive_lines_of_their_own() -> None:
    text = script("--exclusive --constraint=gpu,nvme --mem 64G --comment a --comment b -C x")
    lines = directive_lines(text)
    for expected in (
        "#SBATCH --exclusive",
        "#SBATCH --constraint=gpu,nvme",
        "#SBATCH --mem=64G",
        "#SBATCH --comment=a",
        "#SBATCH --comment=b",
        "#SBATCH -C x",
    ):
        assert expected in lines
    # As sbatch reads them: each its own option, nothing else added.
    args = [a for line in slurm_directives(text) for a in line]
    assert args[-7:] == [
        "--exclusive",
        "--constraint=gpu,nvme",
        "--mem=64G",
        "--comment=a",
        "--comment=b",
        "-C",
        "x",
    ]


def test_the_empty_value_adds_nothing() -> None:
    base = directive_lines(script(""))
    assert not any("exclusive" in line for line in base)
    assert len(directive_lines(script("--exclusive"))) == len(base) + 1


def test_pbs_renders_hash_pbs_lines() -> None:
    lines = directive_lines(script("-l place=excl", profile="pbs-expert"))
    assert "#PBS -l place=excl" in lines


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("--job-name=x", "'--job-name' is not allowed; allowed: --exclusive"),
        ("--exclusive --exclusive", "--exclusive may be given only once"),
        ("--exclusive=yes", "--exclusive takes no value"),
        ("--mem", "--mem needs a value"),
        ("--mem=", "--mem needs a value"),
        ("--mem=lots", "--mem: 'lots' does not match the allowed pattern"),
        ("--comment=-x", "does not match the allowed pattern"),
        ("gpu", "'gpu' is not a scheduler option"),
        ("--constraint=a&b", "does not match the allowed pattern"),
        ("--comment=packjob", "contains 'packjob' or 'hetjob'"),
        ("--comment " * 9 + "a", "needs a value"),
    ],
)
def test_refusals_name_the_field_and_the_option(value: str, message: str) -> None:
    e = refused(value)
    assert e.field == "extra"
    assert message in e.message


def test_too_many_options_are_refused() -> None:
    e = refused(" ".join(["--comment a"] * 9))
    assert "at most 8 options" in e.message


def test_values_must_be_inert_words_even_if_the_pattern_allows_more() -> None:
    text = """
systems: [{name: daint}]
profiles:
  - id: p
    display_name: P
    system: daint
    options:
      - id: extra
        kind: scheduler_options
        display_name: X
        allow: {--comment: {value: ".*"}}
"""
    ps = ProfileSet(load_profile_text(text, name="x.yaml").profiles)
    for hostile in ("a'b", "a#b", "-x", ":x", "a\\b", "$(id)", "a;b"):
        with pytest.raises(OptionError) as info:
            validate_options(ps, {"extra": f"--comment={hostile}"}, user=ALICE)
        assert info.value.field == "extra", hostile
    with pytest.raises(OptionError) as info:
        validate_options(ps, {"extra": "--comment=a\nb"}, user=ALICE)
    assert info.value.field == "extra"


def test_rest_and_saved_options_are_checked_alike() -> None:
    vo = validate_options(PS, {"profile": "gpu", "extra": "--mem  64G   --exclusive"}, user=ALICE)
    saved = vo.user_options()
    assert saved["extra"] == "--mem=64G --exclusive"
    assert validate_options(PS, saved, user=ALICE).values["extra"] == saved["extra"]
    with pytest.raises(OptionError):
        validate_options(PS, {"profile": "gpu", "extra": ["--mem=1G", "--exclusive"]}, user=ALICE)
    with pytest.raises(OptionError):
        validate_options(PS, {"profile": "gpu", "extra": {"--mem": "1G"}}, user=ALICE)


def test_a_custom_template_gets_the_items() -> None:
    text = """
systems: [{name: daint}]
profiles:
  - id: p
    display_name: P
    system: daint
    batch_script:
      template: |
        #!/bin/bash
        {% for o in scheduler_options %}#SBATCH {{ o }}
        {% endfor %}{% for o in extra %}# {{ o.name }} {{ o.value }}
        {% endfor %}{{ cmd }}
    options:
      - id: extra
        kind: scheduler_options
        display_name: X
        allow: {--constraint: {value: "[a-z]+"}, --exclusive: {}}
"""
    ps = ProfileSet(load_profile_text(text, name="x.yaml").profiles)
    vo = validate_options(ps, {"extra": "--constraint=gpu --exclusive"}, user=ALICE)
    assert vo.render_script(**SPAWN) == (
        "#!/bin/bash\n#SBATCH --constraint=gpu\n#SBATCH --exclusive\n"
        "# --constraint gpu\n# --exclusive \njupyterhub-singleuser\n"
    )


@pytest.mark.parametrize(
    ("allow", "scheduler", "expected"),
    [
        ("{--job-name: {value: '[a-z]+'}}", "slurm", "--job-name is set by the spawner"),
        ("{--output: {value: '[a-z]+'}}", "slurm", "--output is set by the spawner"),
        ("{--exclusive: {}}", "pbs", "qsub options are one letter"),
        ("{-N: {value: '[a-z]+'}}", "pbs", "-N is set by the spawner"),
        ("{--comment: {value: '(a)\\1'}}", "slurm", "cannot run in linear time"),
        ("{exclusive: {}}", "slurm", "'exclusive' is not a valid name"),
    ],
)
def test_validate_checks_the_allow_list(allow: str, scheduler: str, expected: str) -> None:
    text = f"""
systems: [{{name: s, scheduler: {scheduler}}}]
profiles:
  - id: p
    display_name: P
    system: s
    options:
      - id: extra
        kind: scheduler_options
        display_name: X
        allow: {allow}
"""
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, name="x.yaml")
    assert any(expected in p.message for p in info.value.problems), info.value.problems


def test_validate_checks_the_default_against_the_allow_list() -> None:
    text = """
systems: [{name: s}]
profiles:
  - id: p
    display_name: P
    system: s
    options:
      - id: extra
        kind: scheduler_options
        display_name: X
        default: --exclusive --nope
        allow: {--exclusive: {}}
"""
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, name="x.yaml")
    assert [p.line for p in info.value.problems] == [11]
    assert "'--nope' is not allowed" in info.value.problems[0].message


def test_legacy_lists_keep_the_items_under_the_option_id() -> None:
    text = """
legacy_lists: true
systems: [{name: daint}]
profiles:
  - id: p
    display_name: P
    system: daint
    options:
      - id: extra
        kind: scheduler_options
        display_name: X
        allow: {--exclusive: {}}
"""
    ps = ProfileSet(load_profile_text(text, name="x.yaml").profiles)
    vo = validate_options(ps, {"extra": "--exclusive"}, user=ALICE)
    assert "#SBATCH --exclusive" in directive_lines(vo.render_script(**SPAWN))
    variables = vo.template_variables(**SPAWN)
    assert [(item.name, item.value) for item in variables["extra"]] == [("--exclusive", "")]


def test_validate_warns_when_an_allowed_option_overrides_another_option() -> None:
    text = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: runtime, kind: duration, display_name: T, max: "1:00:00"}
      - id: extra
        kind: scheduler_options
        display_name: X
        allow:
          --time: {value: "[0-9:]+"}
          --comment: {value: "[a-z]+"}
"""
    loaded = load_profile_text(text, name="x.yaml")
    assert [(w.line, w.message.split(" comes")[0]) for w in loaded.warnings] == [(13, "--time")]
    assert "option 'runtime'" in loaded.warnings[0].message
