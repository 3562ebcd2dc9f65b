"""The profile loader: example files, error format, schema drift, directory reloads, CLI."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from firecrestspawner.cli import main as cli_main
from firecrestspawner.profiles import (
    ProfileDirectory,
    ProfileError,
    load_profile_file,
    load_profile_text,
)
from firecrestspawner.profiles import models as m

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VALID = sorted(p for p in (HERE / "valid").iterdir() if p.suffix in (".yaml", ".yml", ".toml"))
INVALID = sorted(p for p in (HERE / "invalid").iterdir() if p.suffix in (".yaml", ".yml", ".toml"))
SHIPPED = sorted(p for p in (ROOT / "profiles").iterdir() if p.suffix in (".yaml", ".yml", ".toml"))


@pytest.mark.parametrize("path", VALID + SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_valid_files_load(path: Path) -> None:
    ps = load_profile_file(path)
    assert len(ps) >= 1
    for profile in ps:
        assert profile.template.strip()
        assert profile.source == str(path)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_files_report_expected_errors(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text(encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile_text(path.read_text(encoding="utf-8"), name=path.name, base_dir=path.parent)
    assert str(info.value) + "\n" == expected


def test_every_invalid_case_has_expected_file() -> None:
    for path in INVALID:
        assert path.with_suffix(".expected").is_file(), path


def test_yaml_errors_carry_file_line_and_column() -> None:
    path = HERE / "invalid" / "unknown-key.yaml"
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    problem = info.value.problems[0]
    assert (problem.file, problem.line, problem.column) == (str(path), 3, 5)
    assert str(info.value).startswith(f"{path}:3:5: $.systems[0].schedular: unknown key")


def test_all_schema_errors_are_collected() -> None:
    text = """
systems: [{name: cluster, schedular: slurm}]
profiles:
  - {id: Bad, display_name: X, system: cluster}
  - {id: ok, system: cluster}
"""
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, name="t.yaml")
    paths = [p.path for p in info.value.problems]
    assert paths == ["$.systems[0].schedular", "$.profiles[0].id", "$.profiles[1]"]
    assert [p.line for p in info.value.problems] == [2, 4, 5]


def test_yaml_12_keeps_times_and_no_as_strings() -> None:
    ps = load_profile_file(HERE / "valid" / "yaml12-scalars.yaml")
    runtime, exclusive = ps.profiles[0].options
    assert runtime.max == "1:00:00"
    assert exclusive.default == "no"
    assert list(exclusive.choices) == ["no", "yes"]


def test_toml_and_yaml_give_the_same_profile() -> None:
    a = load_profile_file(HERE / "valid" / "same-as-toml.yaml").profiles[0]
    b = load_profile_file(HERE / "valid" / "same-as-toml.toml").profiles[0]
    assert a.spec == b.spec
    assert (a.fixed, a.defaults, a.template) == (b.fixed, b.defaults, b.template)


def test_toml_validation_errors_have_path_but_no_line() -> None:
    path = HERE / "invalid" / "unquoted-toml-duration.toml"
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    (problem,) = info.value.problems
    assert problem.line is None
    assert str(problem).startswith(f"{path}: $.profiles[0].options[0].max:")


class _TomlErrorWithPosition(ValueError):
    """What tomllib raises from Python 3.14 (and recent tomli): the position as attributes."""

    msg = "Invalid value"
    lineno = 3
    colno = 7


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            ValueError("Illegal character '\\n' (at line 2, column 16)"),
            ("Illegal character '\\n'", 2, 16),
            id="position-in-the-message",
        ),
        pytest.param(
            _TomlErrorWithPosition("Invalid value (at line 3, column 7)"),
            ("Invalid value", 3, 7),
            id="position-as-attributes",
        ),
        pytest.param(ValueError("Unclosed array"), ("Unclosed array", None, None), id="none"),
    ],
)
def test_toml_error_positions(error: ValueError, expected: tuple) -> None:
    from firecrestspawner.profiles.parse import toml_error

    assert toml_error(error) == expected


def test_paths_are_written_as_jsonschema_writes_them() -> None:
    # Our own checks and schema errors share jsonschema's json_path format,
    # also for keys that are no identifiers (uenv image labels).
    text = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - id: env
        kind: uenv
        display_name: E
        images:
          prgenv-gnu/24.11:v1: {views: {default: {}}, default_view: nope}
          x-y: {display_nam: typo}
"""
    with pytest.raises(ProfileError) as info:
        load_profile_text(text, name="t.yaml")
    paths = [p.path for p in info.value.problems]
    # one pass: the cross-field error of the other image is reported with the schema error
    assert paths == [
        "$.profiles[0].options[0].images['prgenv-gnu/24.11:v1'].default_view",
        "$.profiles[0].options[0].images['x-y'].display_nam",
    ]
    with pytest.raises(ProfileError) as info:
        load_profile_text(text.replace("display_nam:", "display_name:"), name="t.yaml")
    assert [p.path for p in info.value.problems] == [
        "$.profiles[0].options[0].images['prgenv-gnu/24.11:v1'].default_view"
    ]


def test_profiles_are_frozen() -> None:
    profile = load_profile_file(HERE / "valid" / "minimal.yaml").profiles[0]
    with pytest.raises(AttributeError):
        profile.system = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        profile.fixed["x"] = "y"  # type: ignore[index]
    with pytest.raises(Exception, match="frozen"):
        profile.spec.id = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("scheduler", "pending", "running"),
    [
        pytest.param("slurm", "PENDING ", "RUNNING nid001", id="slurm"),
        pytest.param("pbs", "Q ", "R node1/0*8", id="pbs"),
    ],
)
def test_state_defaults_per_scheduler(scheduler: str, pending: str, running: str) -> None:
    import re

    text = f"""
systems: [{{name: c, scheduler: {scheduler}}}]
profiles: [{{id: p, display_name: P, system: c}}]
"""
    profile = load_profile_text(text, name="t.yaml").profiles[0]
    assert re.search(profile.states.pending, pending)
    assert re.search(profile.states.running, running)
    assert not re.search(profile.states.running, pending)
    assert profile.template.startswith(
        "#!/bin/bash\n#SBATCH" if scheduler == "slurm" else "#!/bin/bash\n#PBS"
    )


def test_state_regexes_layer_profile_over_system() -> None:
    text = r"""
systems:
  - name: c
    states: {pending: '^WAIT', exechost: '^\S+\s+(\S+)'}
profiles:
  - {id: p, display_name: P, system: c, states: {pending: '^QUEUED'}}
"""
    states = load_profile_text(text, name="t.yaml").profiles[0].states
    assert states.pending == "^QUEUED"
    assert states.exechost == r"^\S+\s+(\S+)"
    assert states.running == r"^(?:RUNNING|COMPLETING)"


# -- schema ----------------------------------------------------------------------------
def test_checked_in_schema_is_current() -> None:
    checked_in = json.loads((ROOT / "schemas" / "profile.schema.json").read_text(encoding="utf-8"))
    assert checked_in == m.generate_schema(), (
        "schemas/profile.schema.json is stale: run `firecrestspawner schema > schemas/profile.schema.json`"
    )


def test_reference_doc_is_current() -> None:
    from firecrestspawner.profiles.cli import schema_markdown

    current = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert current == schema_markdown(m.generate_schema()), (
        "docs/profiles.md is stale: run `firecrestspawner schema --markdown > docs/profiles.md`"
    )


def test_reference_doc_covers_every_definition() -> None:
    from firecrestspawner.profiles.cli import _SECTIONS

    assert {name for name, _ in _SECTIONS if name} == set(m.generate_schema()["$defs"])


def test_schema_is_valid_2020_12_with_id() -> None:
    schema = m.generate_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("profile.schema.json")


def _properties(schema: dict) -> list[tuple[str, dict]]:
    out = [(f"$.{name}", sub) for name, sub in schema["properties"].items()]
    for def_name, definition in schema["$defs"].items():
        assert definition.get("description"), f"$defs.{def_name} has no description"
        for name, sub in definition.get("properties", {}).items():
            out.append((f"{def_name}.{name}", sub))
    return out


def test_every_schema_property_has_a_description() -> None:
    missing = [name for name, sub in _properties(m.generate_schema()) if not sub.get("description")]
    assert missing == []


def test_shipped_profiles_validate_against_checked_in_schema() -> None:
    from firecrestspawner.profiles.parse import parse_text

    schema = json.loads((ROOT / "schemas" / "profile.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED + VALID:
        data, _ = parse_text(
            path.read_text(encoding="utf-8"),
            str(path),
            "toml" if path.suffix == ".toml" else "yaml",
        )
        assert list(validator.iter_errors(data)) == [], path


# -- ProfileDirectory ------------------------------------------------------------------------
_TICK = [0]


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # a strictly later modification time per write, even on coarse-timestamp filesystems
    _TICK[0] += 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + _TICK[0] * 1_000_000_000))


GOOD = """
systems: [{name: cluster}]
profiles: [{id: %s, display_name: "%s", system: cluster}]
"""


def test_directory_picks_up_changes_and_skips_broken_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path / "a.yaml", GOOD % ("a", "A"))
    _write(tmp_path / "b.yaml", GOOD % ("b", "B"))
    (tmp_path / "notes.txt").write_text("not a profile")
    directory = ProfileDirectory(tmp_path)
    assert directory.current().ids == ("a", "b")
    assert directory.errors == []

    # an edit is seen on the next call
    _write(tmp_path / "a.yaml", GOOD % ("a", "A renamed"))
    assert directory.current().get("a").display_name == "A renamed"

    # a broken file is logged and skipped; the others keep working
    with caplog.at_level(logging.ERROR, logger="firecrestspawner.profiles"):
        _write(
            tmp_path / "b.yaml",
            "systems: [{name: cluster}]\nprofiles: [{id: b, system: cluster}]\n",
        )
        ps = directory.current()
    assert ps.ids == ("a",)
    assert len(directory.errors) == 1
    assert "b.yaml:2:" in str(directory.errors[0])
    assert any(
        "b.yaml" in r.getMessage() and "display_name" in r.getMessage() for r in caplog.records
    )

    # fixed again, and a new file appears
    _write(tmp_path / "b.yaml", GOOD % ("b", "B"))
    _write(
        tmp_path / "c.toml",
        'systems = [{name = "cluster"}]\n[[profiles]]\nid = "c"\ndisplay_name = "C"\nsystem = "cluster"\n',
    )
    assert directory.current().ids == ("a", "b", "c")
    assert directory.errors == []

    # a removed file disappears
    (tmp_path / "a.yaml").unlink()
    assert directory.current().ids == ("b", "c")


def test_directory_does_not_reread_unchanged_files(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", GOOD % ("a", "A"))
    directory = ProfileDirectory(tmp_path)
    first = directory.current()
    assert directory.current() is first


def test_directory_reloads_when_template_file_changes(tmp_path: Path) -> None:
    (tmp_path / "t.sh").write_text("#!/bin/bash\n{{ cmd }}\n")
    _write(
        tmp_path / "a.yaml",
        "systems: [{name: c}]\nprofiles: [{id: a, display_name: A, system: c, batch_script: {template_file: t.sh}}]\n",
    )
    directory = ProfileDirectory(tmp_path)
    assert directory.current().profiles[0].template == "#!/bin/bash\n{{ cmd }}\n"
    _write(tmp_path / "t.sh", "#!/bin/bash\necho hi\n{{ cmd }}\n")
    assert "echo hi" in directory.current().profiles[0].template


def test_directory_reports_profile_ids_defined_in_two_files(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", GOOD % ("same", "A"))
    _write(tmp_path / "b.yaml", GOOD % ("same", "B"))
    directory = ProfileDirectory(tmp_path)
    ps = directory.current()
    # Neither definition is served (tests/hardening/test_duplicate_ids.py: why).
    assert ps.ids == ()
    assert len(directory.errors) == 2
    assert "also defined in" in str(directory.errors[0])


def test_missing_directory_gives_empty_set(tmp_path: Path) -> None:
    assert ProfileDirectory(tmp_path / "nope").current().ids == ()


# -- CLI ---------------------------------------------------------------------------------
def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(argv)
    return code, capsys.readouterr().out


def test_cli_validate_shipped_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["validate", str(ROOT / "profiles")], capsys)
    assert code == 0, out
    assert f"{len(SHIPPED)} file(s) valid" in out


def test_cli_validate_broken_file_exits_1_with_location(capsys: pytest.CaptureFixture[str]) -> None:
    path = HERE / "invalid" / "unknown-system.yaml"
    code, out = _run(["validate", str(path), str(HERE / "valid" / "minimal.yaml")], capsys)
    assert code == 1
    assert f"{path}:6:13: $.profiles[0].system: unknown system 'dainty'" in out
    assert "hint: did you mean `daint`?" in out
    assert "ok: " in out


def test_cli_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = HERE / "invalid" / "unknown-system.yaml"
    code, out = _run(["validate", "--json", str(path)], capsys)
    report = json.loads(out)
    assert code == 1
    assert report["valid"] is False
    assert report["errors"][0]["line"] == 6
    assert report["errors"][0]["path"] == "$.profiles[0].system"


def test_cli_validate_missing_path_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _run(["validate", str(tmp_path / "missing")], capsys)
    assert code == 1
    assert "no such file or directory" in out


def test_cli_schema_prints_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["schema"], capsys)
    assert code == 0
    assert json.loads(out) == m.generate_schema()


def test_pre_commit_hook_runs_validate() -> None:
    from ruamel.yaml import YAML

    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "firecrestspawner-validate"]
    assert hook["entry"].split()[:2] == ["firecrestspawner", "validate"]


def test_copy_of_shipped_profiles_is_independent(tmp_path: Path) -> None:
    # The shipped profiles are meant to be copied into a site's profiles_dir.
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    out = io.StringIO()
    from firecrestspawner.profiles.cli import cmd_validate

    class Args:
        paths = [str(tmp_path / "profiles")]
        json = False

    assert cmd_validate(Args(), out) == 0, out.getvalue()  # type: ignore[arg-type]


def test_readme_worked_example_is_a_validated_file() -> None:
    example = (HERE / "valid" / "readme-example.yaml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{example}```" in readme
    assert load_profile_file(HERE / "valid" / "readme-example.yaml").ids == ("cpu",)


def test_readme_render_command_works(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        [
            "render",
            str(ROOT / "profiles" / "generic-slurm.yaml"),
            "--profile",
            "cpu",
            "--set",
            "partition=debug",
            "--user",
            "alice",
            "--group",
            "proj1",
            "--cluster",
            "accounts=proj1",
        ]
    )
    assert code == 0
    assert "#SBATCH --partition=debug\n" in capsys.readouterr().out


def test_packaged_schema_matches_models() -> None:
    from firecrestspawner.profiles import profile_schema

    assert profile_schema() == m.generate_schema()


def _alias_bomb() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        pytest.param(_alias_bomb(), "bomb.yaml", id="yaml-alias-bomb"),
        pytest.param("a: " + "[" * 5000 + "]" * 5000, "deep.yaml", id="yaml-deep"),
        pytest.param("a = " + "[" * 3000 + "]" * 3000, "deep.toml", id="toml-deep"),
        pytest.param("# " + "x" * (2 * 1024 * 1024), "big.yaml", id="huge"),
    ],
)
def test_hostile_documents_are_refused_cleanly(text: str, name: str) -> None:
    with pytest.raises(ProfileError, match="too large or too deeply nested"):
        load_profile_text(text, name=name)


def test_directory_notices_atomic_replace_with_same_size_and_mtime(tmp_path: Path) -> None:
    target = tmp_path / "a.yaml"
    target.write_text(GOOD % ("a", "A"), encoding="utf-8")
    before = target.stat()
    directory = ProfileDirectory(tmp_path)
    assert directory.current().get("a").display_name == "A"
    staged = tmp_path / ".a.yaml.tmp"
    staged.write_text(GOOD % ("a", "B"), encoding="utf-8")  # same size
    os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    os.replace(staged, target)
    assert directory.current().get("a").display_name == "B"
