"""Batch script rendering: sandbox, strict variables, value checks, directive structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.profiles import load_profile_file
from firecrestspawner.profiles.options import (
    UserInfo,
    cluster_lists,
    default_options,
    validate_options,
)
from firecrestspawner.profiles.script import (
    BUILTIN_REQ_NAMES,
    ScriptRejected,
    ScriptTemplateError,
    builtin_template,
    directive_lines,
    format_template,
    render_batch_script,
    template_variables,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={{ job_name }}
#SBATCH --partition={{ partition }}
{% if account %}#SBATCH --account={{ account }}
{% endif %}#SBATCH --time={{ runtime }}
echo {{ note | shquote }}
{{ cmd }}
"""
SAFE = {
    "job_name": "j",
    "partition": "normal",
    "account": "",
    "runtime": "01:00:00",
    "note": "hi",
    "cmd": "jupyterhub-singleuser",
}


def test_renders_with_strict_variables() -> None:
    script = render_batch_script(TEMPLATE, SAFE)
    assert "#SBATCH --partition=normal\n" in script
    assert "--account" not in script
    assert script.endswith("jupyterhub-singleuser\n")  # trailing newline kept


def test_undefined_variable_is_an_error() -> None:
    with pytest.raises(ScriptTemplateError, match="'partition' is undefined"):
        render_batch_script(TEMPLATE, {k: v for k, v in SAFE.items() if k != "partition"})


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ cmd.__class__.__mro__ }}", id="dunder"),
        pytest.param("{{ cmd.format.__globals__ }}", id="globals"),
        pytest.param("{{ ''.__class__.__subclasses__() }}", id="subclasses"),
    ],
)
def test_sandbox_blocks_attribute_escapes(template: str) -> None:
    with pytest.raises(ScriptTemplateError):
        render_batch_script(template, {"cmd": "x"})


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        pytest.param("partition", "normal\n#SBATCH --uid=0", "U+000A", id="newline"),
        pytest.param("partition", "normal\r", "U+000D", id="cr"),
        pytest.param("partition", "nor\x00mal", "U+0000", id="nul"),
        pytest.param("partition", "a\tb", "U+0009", id="tab"),
        pytest.param("partition", "a\x1bb", "U+001B", id="escape"),
        pytest.param("partition", "a\x7fb", "U+007F", id="del"),
        pytest.param("partition", "a\x85b", "U+0085", id="nel"),
        pytest.param("partition", "a\u2028b", "U+2028", id="line-separator"),
        pytest.param("partition", "a\u2029b", "U+2029", id="paragraph-separator"),
        pytest.param("runtime", ["1:00:00\n"], "U+000A", id="in-list"),
    ],
)
def test_control_characters_are_refused(field: str, value: object, reason: str) -> None:
    with pytest.raises(ScriptRejected) as info:
        render_batch_script(TEMPLATE, {**SAFE, field: value})
    assert info.value.field == field
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("partition", "normal --uid=0", id="extra-option"),
        pytest.param("partition", "normal #x", id="space-comment"),
        pytest.param("partition", 'normal"', id="open-quote"),
        pytest.param("runtime", "1:00:00 --account=other", id="second-directive-option"),
        pytest.param("account", "a --qos=high", id="conditional-line"),
    ],
)
def test_values_cannot_change_directives(field: str, value: str) -> None:
    with pytest.raises(ScriptRejected) as info:
        render_batch_script(TEMPLATE, {**SAFE, field: value})
    assert info.value.field == field
    assert "directive" in info.value.reason


def test_value_cannot_become_an_option_word() -> None:
    template = "#!/bin/bash\n#SBATCH --partition {{ partition }}\n{{ cmd }}\n"
    with pytest.raises(ScriptRejected) as info:
        render_batch_script(template, {"partition": "--uid=0", "cmd": "x"})
    assert info.value.field == "partition"
    assert render_batch_script(template, {"partition": "normal", "cmd": "x"}).startswith(
        "#!/bin/bash\n#SBATCH --partition normal\n"
    )


def test_value_at_line_start_cannot_add_a_directive() -> None:
    template = "#!/bin/bash\n#SBATCH --job-name=x\n{{ extra }}\n{{ cmd }}\n"
    with pytest.raises(ScriptRejected) as info:
        render_batch_script(template, {"extra": "#SBATCH --uid=0", "cmd": "x"})
    assert info.value.field == "extra"
    assert "add or remove" in info.value.reason


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("$(rm -rf ~)", id="command-substitution"),
        pytest.param("`id`", id="backticks"),
        pytest.param("'; id; '", id="single-quotes"),
        pytest.param('"; id; "', id="double-quotes"),
        pytest.param("#SBATCH --uid=0", id="directive-text"),
    ],
)
def test_quoted_values_are_inert_on_shell_lines(value: str) -> None:
    script = render_batch_script(TEMPLATE, {**SAFE, "note": value})
    import shlex

    (echo_line,) = [line for line in script.splitlines() if line.startswith("echo ")]
    assert shlex.split(echo_line) == ["echo", value]
    assert directive_lines(script) == directive_lines(render_batch_script(TEMPLATE, SAFE))


def test_trusted_values_skip_the_checks() -> None:
    template = "#!/bin/bash\n#SBATCH --job-name=x\n{{ prologue }}\n{{ cmd }}\n"
    prologue = "module load a\nmodule load b"
    with pytest.raises(ScriptRejected):
        render_batch_script(template, {"prologue": prologue, "cmd": "x"})
    script = render_batch_script(template, {"prologue": prologue, "cmd": "x"}, trusted=["prologue"])
    assert "module load a\nmodule load b\n" in script


def test_branches_on_plain_values_are_kept() -> None:
    # Plain words are not replaced by placeholders, so equality tests in templates still work.
    template = (
        '#!/bin/bash\n{% if partition == "gpu" %}#SBATCH --gres=gpu:4\n{% endif %}{{ cmd }}\n'
    )
    script = render_batch_script(template, {"partition": "gpu", "cmd": "x y"})
    assert "#SBATCH --gres=gpu:4" in script


def test_pbs_directives_are_checked_too() -> None:
    template = "#!/bin/bash\n#PBS -q {{ queue }}\n{{ cmd }}\n"
    with pytest.raises(ScriptRejected):
        render_batch_script(template, {"queue": "workq -A other", "cmd": "x"})


# -- legacy str.format templates and format_template -------------------------------------------
def test_format_template_picks_engine() -> None:
    assert format_template("run {cmd}", cmd="x") == "run x"
    assert format_template("run {{ cmd }}", cmd="x") == "run x"
    assert format_template("{% if a %}A{% endif %}", a=True) == "A"


def test_str_format_template_with_lists() -> None:
    script = render_batch_script(
        "#!/bin/bash\n#SBATCH --time={runtime[0]}\n{cmd}\n", {"runtime": ["01:00:00"], "cmd": "x"}
    )
    assert "#SBATCH --time=01:00:00\n" in script


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{cmd.__class__}", id="attribute"),
        pytest.param("{cmd[__class__]}", id="key"),
        pytest.param("{missing}", id="undefined"),
        pytest.param("{cmd", id="syntax"),
    ],
)
def test_str_format_templates_are_restricted(template: str) -> None:
    with pytest.raises(ScriptTemplateError):
        render_batch_script(template, {"cmd": "x"})


def test_template_variables() -> None:
    assert template_variables(TEMPLATE) == set(SAFE)
    assert template_variables("{cmd} {runtime[0]}") == {"cmd", "runtime"}
    with pytest.raises(ScriptTemplateError):
        template_variables("{% if %}")


def test_builtin_templates_use_only_known_variables() -> None:
    # scheduler_options: a profile's expert options (the templates test `is defined` for
    # classic mode, which has none).
    known = set(BUILTIN_REQ_NAMES) | {"cmd", "job_name", "workdir", "scheduler_options"}
    for name in ("slurm", "pbs"):
        assert template_variables(builtin_template(name)) <= known
    with pytest.raises(ScriptTemplateError, match="unknown built-in template"):
        builtin_template("sge")


# -- shipped profiles render ------------------------------------------------------------------
SHIPPED = sorted(p for p in (ROOT / "profiles").iterdir() if p.suffix in (".yaml", ".toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_profile_renders(path: Path) -> None:
    ps = load_profile_file(path)
    for profile in ps:
        user = UserInfo("alice", tuple(profile.groups or ()))
        cluster = cluster_lists(
            {
                profile.system: {
                    "accounts": ["proj1"],
                    "reservations": ["jupyter-day"],
                    "partitions": ["normal"],
                }
            }
        )
        raw = default_options(profile)
        if any(o.id == "account" and o.kind == "text" for o in profile.options):
            raw["account"] = "ab12"
        vo = validate_options(ps, raw, user=user, cluster=cluster)
        script = vo.render_script(
            cmd="firecrestspawner-singleuser jupyterhub-singleuser",
            job_name="fcs.hub.alice._.abc123",
            workdir="/home/alice",
            extra={"username": "alice"},
        )
        assert script.startswith("#!/bin/bash\n")
        assert "firecrestspawner-singleuser jupyterhub-singleuser\n" in script
        assert "{{" not in script
        assert "{%" not in script
        directives = directive_lines(script)
        assert any("fcs.hub.alice._.abc123" in d for d in directives), directives
        assert any("/home/alice/fcs.hub.alice._.log" in d for d in directives)


def test_multi_system_gpu_script() -> None:
    ps = load_profile_file(ROOT / "profiles" / "multi-system.yaml")
    cluster = cluster_lists(
        {"daint": {"accounts": ["g1", "g2"], "reservations": ["course-x", "maint"]}}
    )
    vo = validate_options(
        ps,
        {
            "profile": "daint-gpu",
            "uenv": "pytorch/v2.6.0:v1",
            "account": "g2",
            "reservation": "course-x",
            "nnodes": "2",
        },
        user=UserInfo("alice", ("g2",)),
        cluster=cluster,
    )
    script = vo.render_script(cmd="jupyterhub-singleuser", job_name="j", workdir="/users/alice")
    assert directive_lines(script) == [
        "#SBATCH --job-name=j",
        "#SBATCH --output=/users/alice/j.log",
        "#SBATCH --error=/users/alice/j.log",
        "#SBATCH --chdir=/users/alice",
        "#SBATCH --get-user-env=L",
        "#SBATCH --partition=normal",
        "#SBATCH --account=g2",
        "#SBATCH --reservation=course-x",
        "#SBATCH --time=02:00:00",
        "#SBATCH --nodes=2",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --uenv=pytorch/v2.6.0:v1",
        "#SBATCH --view=default",
    ]
    assert "\nsrun jupyterhub-singleuser\n" in script


def test_pbs_site_script_and_states() -> None:
    import re

    ps = load_profile_file(ROOT / "profiles" / "pbs-site.toml")
    profile = ps.get("pbs-cpu")
    vo = validate_options(
        ps, {"queue": "short", "ncpus": "8", "account": "ab12"}, user=UserInfo("u")
    )
    script = vo.render_script(cmd="jupyterhub-singleuser", job_name="j", workdir="/home/u")
    assert directive_lines(script) == [
        "#PBS -N j",
        "#PBS -q short",
        "#PBS -l walltime=01:00:00",
        "#PBS -l select=1:ncpus=8:mem=16gb",
        "#PBS -j oe",
        "#PBS -o /home/u/j.log",
        "#PBS -A ab12",
    ]
    assert re.search(profile.states.running, "R node12/0*8+node13/0*8")
    host = re.search(profile.states.exechost, "R node12/0*8+node13/0*8")
    assert host.expand(profile.states.exechost_exp) == "node12.ib.pbs-site.example"


def test_scope_variables_are_decoded_in_the_job(tmp_path: Path) -> None:
    # Run the compatibility snippet of the built-in template in a real bash.
    import base64
    import subprocess

    template = builtin_template("slurm")
    start = template.index("for _fcs_var")
    end = template.index("unset _fcs_var")
    snippet = (
        template[start:end]
        + 'printf "%s|%s" "$JUPYTERHUB_OAUTH_SCOPES" "$JUPYTERHUB_OAUTH_ACCESS_SCOPES"'
    )
    encoded = base64.b64encode(b'["a","b"]').decode()
    out = subprocess.run(
        ["bash", "-c", snippet],
        env={
            "JUPYTERHUB_OAUTH_SCOPES": encoded,
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": '["plain"]',
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == '["a","b"]|["plain"]'


# -- render CLI ------------------------------------------------------------------------
def test_cli_render_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    from firecrestspawner.cli import main

    code = main(
        [
            "render",
            str(ROOT / "profiles" / "demo.yaml"),
            "--profile",
            "notebook",
            "--set",
            "partition=debug",
            "--user",
            "alice",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "#SBATCH --partition=debug\n" in out
    assert "#SBATCH --time=00:30:00\n" in out
    assert out.rstrip().endswith("firecrestspawner-singleuser jupyterhub-singleuser")


def test_cli_render_refuses_like_a_spawn(capsys: pytest.CaptureFixture[str]) -> None:
    from firecrestspawner.cli import main

    code = main(
        [
            "render",
            str(ROOT / "profiles" / "demo.yaml"),
            "--profile",
            "notebook",
            "--set",
            "partition=gpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "refused: partition: 'gpu' is not allowed; choose one of: normal, debug" in captured.err


def test_cli_render_redacts_secrets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from firecrestspawner.cli import main
    from firecrestspawner.redact import forget_secret, register_secret

    canary = "canary-secret-token-1234567890"
    (tmp_path / "p.yaml").write_text(
        f"systems: [{{name: c}}]\nprofiles: [{{id: p, display_name: P, system: c, req: {{prologue: 'export T={canary}'}}}}]\n"
    )
    register_secret(canary)
    try:
        code = main(["render", str(tmp_path / "p.yaml"), "--profile", "p"])
    finally:
        forget_secret(canary)
    out = capsys.readouterr().out
    assert code == 0
    assert canary not in out
    assert "export T=[redacted]" in out
