"""Classic mode (no profiles): the existing firecrestspawner's constructs, with the checks kept.

Pure functions of :mod:`firecrestspawner.request`; the hub-level test of a
chart-style configuration is ``tests/real/test_migration.py``.
"""

from __future__ import annotations

import pytest

from firecrestspawner.profiles.script import ScriptRejected, render_batch_script
from firecrestspawner.request import (
    ADMIN_FRAGMENTS,
    ClassicOptionError,
    FormValue,
    classic_user_variables,
    ensure_job_name,
    format_command,
    runs_wrapper,
    trusted_variables,
)

WRAPPER = "firecrestspawner-singleuser"

#: A template written with the constructs of the existing project's Helm chart.
CHART_STYLE = """#!/bin/bash
#SBATCH --job-name=spawner-jupyterhub
{% if partition %}#SBATCH --partition={{partition}}{% endif %}
{% if runtime %}#SBATCH --time={{runtime[0]}}{% endif %}
{% if nnodes %}#SBATCH --nodes={{nnodes[0]}}{% endif %}
{% if reservation_custom[0] %}
#SBATCH --reservation={{reservation_custom[0]}}
{% elif reservation[0] %}
#SBATCH --reservation={{reservation[0]}}
{% endif %}
{% if account is string %}
#SBATCH --account={{account}}
{% else %}
#SBATCH --account={{account[0]}}
{% endif %}
{{prologue}}
{% if srun %}{{srun}}{% endif %} {{cmd}}
"""


def directives(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def render(variables: dict, user_set: frozenset[str] = frozenset()) -> str:
    return render_batch_script(
        CHART_STYLE, variables, trusted=trusted_variables(variables, user_set)
    )


def base() -> dict:
    return {
        name: FormValue(value)
        for name, value in {
            "partition": "normal",
            "runtime": "",
            "nnodes": "",
            "reservation": "",
            "reservation_custom": "",
            "account": "",
            "prologue": "module load jupyter\necho ready",
            "srun": "",
            "cmd": "firecrestspawner-singleuser jupyterhub-singleuser",
        }.items()
    }


def test_a_string_cmd_is_shell_text_as_the_existing_spawner_joined_it():
    # JupyterHub keeps c.Spawner.cmd = "a b" as ["a b"].
    assert format_command([f"{WRAPPER} jupyterhub-singleuser"]) == (
        f"{WRAPPER} jupyterhub-singleuser"
    )
    uenv = (
        'bash -c ". /user-environment/env/default/activate.sh && '
        + WRAPPER
        + ' jupyterhub-singleuser"'
    )
    assert format_command([uenv]) == uenv
    # List items and args stay one word each.
    assert (
        format_command(["/opt/my env/bin/x", "y"], ["--a=b c"]) == "'/opt/my env/bin/x' y '--a=b c'"
    )


@pytest.mark.parametrize(
    ("cmd", "runs"),
    [
        ([f"{WRAPPER} jupyterhub-singleuser"], True),
        ([f"/opt/env/bin/{WRAPPER}", "jupyterhub-singleuser"], True),
        ([f'bash -c ". /x/activate.sh && {WRAPPER} jupyterhub-singleuser"'], True),
        (["jupyterhub-singleuser"], False),
        ([f"not-{WRAPPER}", "x"], False),
    ],
)
def test_the_token_file_check_finds_the_wrapper_in_string_and_bash_c_commands(cmd, runs):
    assert runs_wrapper(cmd, WRAPPER) is runs


def test_form_values_are_lists_and_index_0_gives_the_whole_value():
    chosen = classic_user_variables(
        {"runtime": ["4:00:00"], "account": ["proj-b"], "nnodes": "2", "_xsrf": ["t"]}
    )
    assert set(chosen) == {"runtime", "account", "nnodes"}
    assert chosen["runtime"] == "4:00:00"
    assert chosen["runtime"][0] == "4:00:00"  # never its first character
    assert chosen["nnodes"][0] == "2"
    assert chosen["runtime"][1:3] == ":0"  # otherwise a plain string
    multi = classic_user_variables({"features": ["a", "b"]})["features"]
    assert multi == ["a", "b"]


def test_chart_style_template_renders_the_users_choices():
    variables = base()
    chosen = classic_user_variables(
        {"runtime": ["4:00:00"], "nnodes": ["2"], "account": ["proj-b"],
         "reservation": ["resA"], "reservation_custom": [""]}
    )  # fmt: skip
    variables.update(chosen)
    script = render(variables, frozenset(chosen))
    assert directives(script) == [
        "#SBATCH --job-name=spawner-jupyterhub",
        "#SBATCH --partition=normal",
        "#SBATCH --time=4:00:00",
        "#SBATCH --nodes=2",
        "#SBATCH --reservation=resA",
        "#SBATCH --account=proj-b",
    ]
    # A custom reservation wins, as in the chart; an empty one is falsy.
    variables.update(classic_user_variables({"reservation_custom": ["myres"]}))
    assert "#SBATCH --reservation=myres" in directives(render(variables, frozenset(chosen)))


def test_a_plain_string_from_the_rest_api_is_not_cut_to_one_character():
    variables = base()
    chosen = classic_user_variables({"runtime": "00:05:00", "account": "proj-a"})
    variables.update(chosen)
    lines = directives(render(variables, frozenset(chosen)))
    assert "#SBATCH --time=00:05:00" in lines
    assert "#SBATCH --account=proj-a" in lines


@pytest.mark.parametrize(
    "value",
    [
        "1:00:00 --uid=0",
        "1:00:00' --qos=high",
        "1:00:00 #SBATCH --partition=debug",
    ],
)
def test_a_user_value_cannot_add_a_directive(value):
    variables = base()
    chosen = classic_user_variables({"runtime": [value]})
    variables.update(chosen)
    with pytest.raises(ScriptRejected) as info:
        render(variables, frozenset(chosen))
    assert info.value.field == "runtime"


@pytest.mark.parametrize(
    "value", ["1:00:00\n#SBATCH --partition=debug", "1:00:00\u2028#SBATCH --account=x", "a\x00b"]
)
def test_a_line_break_or_control_character_is_refused_naming_the_field(value):
    with pytest.raises(ClassicOptionError) as info:
        classic_user_variables({"runtime": [value]})
    assert info.value.field == "runtime"


@pytest.mark.parametrize("name", sorted({"cmd", "prologue", "srun", "job_name", "host", "options"}))
def test_a_user_option_cannot_set_the_sites_fragments_or_the_spawners_values(name):
    with pytest.raises(ClassicOptionError) as info:
        classic_user_variables({name: ["x"]})
    assert info.value.field == name


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"bad name": "x"}, "bad name"),
        ({"runtime": {"nested": 1}}, "runtime"),
        ({"runtime": ["x" * 2000]}, "runtime"),
        ({"runtime": [["nested"]]}, "runtime"),
    ],
)
def test_bad_option_names_and_values_name_the_field(options, field):
    with pytest.raises(ClassicOptionError) as info:
        classic_user_variables(options)
    assert info.value.field == field


def test_one_trust_rule_only_the_admins_fragments_minus_what_the_user_set():
    variables = dict.fromkeys([*ADMIN_FRAGMENTS, "partition", "account"], "x")
    assert trusted_variables(variables) == ADMIN_FRAGMENTS
    assert "partition" not in trusted_variables(variables)
    assert trusted_variables(variables, frozenset({"options"})) == ADMIN_FRAGMENTS - {"options"}


def test_the_spawn_job_name_is_the_one_the_scheduler_takes():
    script = "#!/bin/bash\n#SBATCH --job-name=spawner-jupyterhub\n#SBATCH --time=1\n\necho hi\n"
    renamed, changed = ensure_job_name(script, "fcs.hub.alice.x.1")
    assert changed
    assert directives(renamed)[-1] == "#SBATCH --job-name=fcs.hub.alice.x.1"
    assert renamed.endswith("\necho hi\n")
    same, changed = ensure_job_name(renamed, "fcs.hub.alice.x.1")
    assert (same, changed) == (renamed, False)
    bare, changed = ensure_job_name("#!/bin/bash\necho\n", "n1")
    assert bare.splitlines()[:2] == ["#!/bin/bash", "#SBATCH --job-name=n1"]
    pbs, _ = ensure_job_name("#!/bin/bash\n#PBS -N other\necho\n", "n1", "pbs")
    assert [line for line in pbs.splitlines() if line.startswith("#PBS")][-1] == "#PBS -N n1"
