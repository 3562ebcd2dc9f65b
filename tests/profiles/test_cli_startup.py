"""The ``firecrestspawner`` command imports only what the subcommand it runs needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema.exceptions import ValidationError

from firecrestspawner.cli import COMMANDS, build_parser
from firecrestspawner.profiles.errors import json_path

ROOT = Path(__file__).resolve().parents[2]

#: Modules a `validate` process must not import (JupyterHub, the emulator, the demo,
#: the spawner, pydantic) and the optional jsonschema imports that only serve format checks.
NOT_FOR_VALIDATE = (
    "jupyterhub",
    "firecrestspawner.spawner",
    "firecrestspawner.emulator",
    "firecrestspawner.demo",
    "firecrestspawner.doctor",
    "firecrestspawner.reaper",
    # the profile models are built without pydantic (profiles/lightmodels.py)
    "pydantic",
    "pydantic_core",
    "rfc3987_syntax",
    # the rest of jsonschema's format-only imports (formats are never checked)
    "rfc3986_validator",
    "rfc3339_validator",
    "isoduration",
    "arrow",
    "uri_template",
    "jsonpointer",
    "webcolors",
    "fqdn",
)
#: Imported only when a file has a problem to place: ruamel (positions).
NOT_FOR_A_VALID_FILE = ("ruamel",)


def _subcommands(parser):
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return action


def test_the_help_table_is_what_each_module_registers():
    action = _subcommands(build_parser())
    registered = {a.dest: a.help for a in action._choices_actions}
    assert registered == {name: help_text for name, (_, help_text) in COMMANDS.items()}
    assert list(registered) == list(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_subcommand_is_registered_for_real_when_named(command):
    parser = build_parser(command)
    sub = _subcommands(parser).choices[command]
    assert sub.add_help  # the real parser, not the placeholder
    assert any(a.dest != "help" for a in sub._actions)
    top_help = parser.format_help()
    for name in COMMANDS:
        assert name in top_help


def _imported_after(argv: list[str]) -> dict:
    code = (
        "import json, sys\n"
        "from firecrestspawner.cli import main\n"
        f"sys.argv = ['firecrestspawner', *{argv!r}]\n"
        "try:\n"
        "    code = main()\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        f"names = {[*NOT_FOR_VALIDATE, *NOT_FOR_A_VALID_FILE]!r}\n"
        "print(json.dumps({'code': code, 'imported': [n for n in names "
        "if any(m == n or m.startswith(n + '.') for m, v in sys.modules.items() if v)]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_validate_imports_no_hub_emulator_demo_or_format_grammar():
    result = _imported_after(["validate", str(ROOT / "profiles" / "demo.yaml")])
    assert result == {"code": 0, "imported": []}


def test_validate_of_several_valid_files_imports_no_yaml_position_reader():
    # profiles/: files libyaml reads exactly as ruamel does (see fastyaml.py)
    result = _imported_after(["validate", str(ROOT / "profiles")])
    assert result == {"code": 0, "imported": []}


def test_validate_still_reports_a_schema_error_with_its_line():
    bad = ROOT / "tests" / "profiles" / "invalid" / "bad-kind.yaml"
    result = _imported_after(["validate", str(bad)])
    # ruamel is read for the positions of the problems, and only then
    assert result == {"code": 1, "imported": list(NOT_FOR_A_VALID_FILE)}
    proc = subprocess.run(
        [sys.executable, "-m", "firecrestspawner", "validate", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert f"{bad}:8:15: $.profiles[0].options[0].kind: unknown option kind" in proc.stdout


def test_version_imports_no_subcommand():
    result = _imported_after(["--version"])
    assert result == {"code": 0, "imported": []}


@pytest.mark.parametrize(
    "parts",
    [
        [],
        ["profiles", 0, "options", "partition"],
        ["profiles", 3, "choices", "a-b"],
        ["x", "it's", "back\\slash", "_under", "9lives", "ok_9"],
    ],
)
def test_json_path_is_written_as_jsonschema_writes_it(parts):
    assert json_path(parts) == ValidationError("", path=parts).json_path


def test_the_cli_names_the_light_models_switch_the_models_read() -> None:
    from firecrestspawner.cli import LIGHT_MODELS_ENV
    from firecrestspawner.profiles.lightmodels import ENV

    assert LIGHT_MODELS_ENV == ENV


def test_validate_called_in_process_keeps_pydantic_models() -> None:
    # Only a process that *is* `firecrestspawner validate` switches: main(argv) in a
    # hub or a test changes nothing (models are already imported there anyway).
    import io
    from contextlib import redirect_stdout

    from firecrestspawner.cli import LIGHT_MODELS_ENV, main

    with redirect_stdout(io.StringIO()):
        assert main(["validate", str(ROOT / "profiles" / "demo.yaml")]) == 0
    assert LIGHT_MODELS_ENV not in os.environ
