"""The examples in docs/reaper.md are the ones that work."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from traitlets.config import Config

from firecrestspawner.cli import build_parser
from firecrestspawner.emulator.config import EmulatorConfig
from firecrestspawner.reaper import REQUIRED_SCOPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "reaper.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_emulator_operators_example_is_valid():
    (example,) = blocks("yaml")
    config = EmulatorConfig.model_validate(YAML(typ="safe", pure=True).load(example))
    assert config.systems[0].operators == ["firecrestspawner"]


def test_service_snippet_has_the_minimal_role_and_a_valid_command(monkeypatch):
    (snippet,) = [b for b in blocks("python") if "c.JupyterHub.services" in b]
    monkeypatch.setenv("SA_CLIENT_SECRET", "example-secret")
    c = Config()
    exec(snippet, {"c": c})  # noqa: S102 - our own documentation
    (service,) = c.JupyterHub.services
    (role,) = c.JupyterHub.load_roles
    assert role["scopes"] == list(REQUIRED_SCOPES)
    assert role["services"] == [service["name"]]
    assert service["command"][0] == "firecrestspawner"
    args = build_parser().parse_args(service["command"][1:])
    assert (args.command, args.every, args.systems) == ("reap", 600.0, ["daint"])
    assert "SA_CLIENT_SECRET" in service["environment"]
    assert not any("secret" in part.lower() for part in service["command"])


def reap_parser():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return subparsers.choices["reap"]


def test_every_documented_option_exists():
    table = re.findall(r"^\| `(--[a-z-]+)`(?:, `(--[a-z-]+)`)?", DOC.read_text(), re.M)
    documented = {name for row in table for name in row if name}
    assert "--min-age" in documented
    options = {s for a in reap_parser()._actions for s in a.option_strings}
    assert documented <= options
