"""Findings 1 and 2 on the validator and ``render``: every hostile value, every option kind.

Each value either validates or is refused with an :class:`OptionError` naming
the field (a 400 at the hub); nothing else is raised. An accepted value leaves
the directives ``sbatch`` reads (the project's port of its tokenizer, checked
against real ``sbatch`` in ``test_directive_injection.py``) as the
administrator wrote them, with the value inside one argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.profiles import load_profile_file, load_profile_text
from firecrestspawner.profiles.directives import DirectiveSyntaxError, slurm_directives
from firecrestspawner.profiles.models import ProfileSet
from firecrestspawner.profiles.options import OptionError, UserInfo, cluster_lists, validate_options
from firecrestspawner.profiles.script import ScriptRejected, render_batch_script, trusted_variables

from .corpus import HOSTILE_JSON, hostile_values

ROOT = Path(__file__).resolve().parents[2]
PH = "fcsvPHx"
#: What the cluster reports (hostile names too: they are validated like user values).
CLUSTER = {
    source: ["proj-x", "normal", "debug", "res1", "a b", "--uid=0"]
    for source in ("accounts", "partitions", "reservations", "nodes", "qos")
}

#: A site that gives a text option a permissive pattern and puts it on directive lines.
PERMISSIVE = """
version: 1
firecrest_url: http://firecrest.invalid
systems: [{name: cluster, workdir: /scratch}]
profiles:
  - id: open
    display_name: Open
    system: cluster
    options:
      - {id: comment, display_name: C, kind: text, pattern: '[^\\x00-\\x1f]*', max_length: 300, req: reservation_custom}
      - {id: account, display_name: A, kind: text, pattern: '.*', req: account}
      - {id: nnodes, display_name: N, kind: integer, min: 1, max: 8, step: 1}
      - {id: mem, display_name: M, kind: number, min: 0.5, max: 64, step: 0.5, req: memory}
      - {id: runtime, display_name: R, kind: duration, max: "1-00:00:00"}
      - {id: gpu, display_name: G, kind: boolean}
      - {id: part, display_name: P, kind: choice, choices: {normal: {display_name: n}, debug: {display_name: d}}, req: partition}
"""


def _sets() -> list[ProfileSet]:
    files = sorted(p for p in (ROOT / "profiles").iterdir() if p.is_file())
    # Two examples with dependent and expert options (project-site.yaml needs the user's
    # cluster identity from FirecREST: its own tests cover it).
    files += [ROOT / "profiles" / "examples" / n for n in ("gpu-centre.yaml", "pbs-select.yaml")]
    sets = [load_profile_file(p) for p in files]
    sets.append(ProfileSet(load_profile_text(PERMISSIVE, name="open.yaml").profiles))
    return sets


def _render(vo: Any) -> str:
    return vo.render_script(cmd="jupyterhub-singleuser", job_name="job-x", workdir="/scratch/u")


def _directives(script: str) -> list[list[str]] | None:
    try:
        return slurm_directives(script)
    except DirectiveSyntaxError:
        return None


def _expected(vo: Any, option_id: str, value: str) -> list[list[str]] | None:
    """The directives with the option's request value as a placeholder, then the value put back."""
    name = next(o.req_name for o in vo.profile.options if o.id == option_id)
    variables = vo.template_variables(cmd="c", job_name="job-x", workdir="/scratch/u")
    if variables.get(name) != value or value == "":
        return None
    variables[name] = PH
    script = render_batch_script(
        vo.profile.template,
        variables,
        trusted=trusted_variables(variables, vo.untrusted_variables()),
    )
    lines = _directives(script)
    return None if lines is None else [[a.replace(PH, value) for a in line] for line in lines]


@pytest.mark.parametrize("profile_set", _sets(), ids=lambda s: s.profiles[0].source.split("/")[-1])
def test_hostile_values_are_accepted_or_refused_naming_the_field(profile_set: ProfileSet) -> None:
    values: list[Any] = [*hostile_values(300), *HOSTILE_JSON]
    outcomes = {"accepted": 0, "refused": 0}
    changed = []
    wrong_field = []
    for profile in profile_set.profiles:
        user = UserInfo("alice", tuple(profile.groups or ()))
        for option in profile.options:
            for value in values:
                raw = {"profile": profile.id, option.id: value}
                cluster = cluster_lists({profile.system: CLUSTER})
                try:
                    vo = validate_options(profile_set, raw, user=user, cluster=cluster)
                    script = vo.render_script(
                        cmd="jupyterhub-singleuser", job_name="job-x", workdir="/scratch/u"
                    )
                except OptionError as e:
                    if not e.field.startswith(option.id):
                        wrong_field.append((option.id, value, str(e)))
                    outcomes["refused"] += 1
                    continue
                except ScriptRejected as e:  # a variable no option set: must not happen here
                    pytest.fail(f"{profile.id}.{option.id}={value!r}: {e}")
                outcomes["accepted"] += 1
                # Saved options validate again to the same result.
                again = validate_options(profile_set, vo.user_options(), user=user, cluster=cluster)
                assert again.values == vo.values
                if isinstance(value, str):
                    expected = _expected(vo, option.id, value)
                    if expected is not None and _directives(script) != expected:
                        changed.append((profile.id, option.id, value))
    assert changed == []
    assert wrong_field == []
    assert outcomes["refused"] > 0


def test_overflowing_numbers_are_a_400_naming_the_field() -> None:
    profile_set = ProfileSet(load_profile_text(PERMISSIVE, name="open.yaml").profiles)
    user = UserInfo("alice")
    for option in ("nnodes", "mem"):
        for value in (10**400, -(10**400), 10**19, 1e308, float("inf"), float("nan"), "9" * 400):
            with pytest.raises(OptionError) as info:
                validate_options(profile_set, {"profile": "open", option: value}, user=user)
            assert info.value.field == option
            assert len(str(info.value)) < 300


def test_render_command_answers_every_hostile_value(tmp_path: Path) -> None:
    """``firecrestspawner render --set``: exit 0 with a script or 1 with a reason, never a crash."""
    import io
    from argparse import Namespace

    from firecrestspawner.profiles.cli import DEFAULT_CMD, cmd_render

    site = tmp_path / "open.yaml"
    site.write_text(PERMISSIVE, encoding="utf-8")
    statuses: dict[int, int] = {}
    for option in ("comment", "account", "nnodes", "mem", "runtime", "gpu", "part"):
        for value in [v for v in hostile_values(150) if "\ud800" not in v]:
            out, err = io.StringIO(), io.StringIO()
            args = Namespace(
                file=str(site),
                profile="open",
                set=[f"{option}={value}"],
                user="alice",
                group=None,
                cluster=None,
                cmd=DEFAULT_CMD,
                workdir=None,
                job_name=None,
                show_request=False,
            )
            status = cmd_render(args, out=out, err=err)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 1:
                assert err.getvalue().startswith("refused: "), err.getvalue()[:200]
                assert option in err.getvalue()
    assert set(statuses) <= {0, 1}
    assert statuses.get(1, 0) > 500
