"""The ``firecrestspawner`` command.

Each subcommand lives with the concern it belongs to; this module only wires
them together. Every provider module exposes ``register_cli(subparsers)``.

Start-up is kept cheap: :func:`main` imports only the module of the subcommand
it runs (``validate`` must not pay for JupyterHub, the emulator or the demo; a
pre-commit hook runs it on every commit), and ``validate`` builds the profile
models without pydantic (:mod:`firecrestspawner.profiles.lightmodels`). The other subcommands appear in
``--help`` from :data:`COMMANDS` without being imported.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ._version import __version__

#: profiles/lightmodels.py ``ENV`` (not imported from there: that would load the package).
LIGHT_MODELS_ENV = "_FIRECRESTSPAWNER_LIGHT_MODELS"

#: Subcommand -> (module whose ``register_cli`` adds it, its line in ``--help``),
#: in the order they appear in --help. The help text must be the one the module
#: registers (tests/profiles/test_cli_startup.py compares them).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("firecrestspawner.profiles.cli", "check site profile files"),
    "render": ("firecrestspawner.profiles.cli", "print the batch script a profile produces"),
    "schema": ("firecrestspawner.profiles.cli", "print the profile JSON Schema"),
    "emulator": (
        "firecrestspawner.emulator.cli",
        "run a FirecREST v2 emulator (with a development identity provider)",
    ),
    "demo": (
        "firecrestspawner.demo",
        "run a demo hub: JupyterHub + this spawner + the FirecREST emulator",
    ),
    "reap": ("firecrestspawner.reaper", "cancel jobs of this hub that belong to no active server"),
    "doctor": (
        "firecrestspawner.doctor.cli",
        "check a hub's FirecREST set-up step by step (and, with --probe, a real job)",
    ),
}

#: Modules that contribute subcommands, in --help order.
CLI_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))

#: Optional imports of jsonschema (``jsonschema/_format.py``) that serve only its
#: format checks, which profile validation never runs (no format checker, no
#: ``format`` in the schema); importing rfc3987_syntax alone compiles a grammar for
#: about a second, and the others (arrow and dateutil through isoduration) cost
#: about 40 ms together. Skipped (jsonschema then goes without those formats) only
#: when a profile command is the process.
_UNUSED_BY_PROFILE_COMMANDS = (
    "rfc3987_syntax",
    "rfc3987",
    "rfc3986_validator",
    "rfc3339_validator",
    "isoduration",
    "uri_template",
    "jsonpointer",
    "webcolors",
    "fqdn",
    "idna",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand's module is imported.

    ``command=None`` imports every module (the complete parser, for tests and
    documentation); any other value registers the named subcommand (if known)
    for real and the rest as placeholders that only carry their help line.
    """
    parser = argparse.ArgumentParser(
        prog="firecrestspawner",
        description="Tools for the FirecREST JupyterHub spawner and its site profiles.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = CLI_MODULES if command is None else ()
    if command in COMMANDS:
        wanted = (COMMANDS[command][0],)
    for name in wanted:
        importlib.import_module(name).register_cli(subparsers)
    registered = set(subparsers.choices)
    for name, (_, help_text) in COMMANDS.items():
        if name not in registered:
            subparsers.add_parser(name, help=help_text, add_help=False)
    # argparse lists subcommands in the order they were added; keep COMMANDS' order.
    order = list(COMMANDS)
    subparsers._choices_actions.sort(key=lambda a: order.index(a.dest))
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The subcommand named on the command line ("" when none: --help, --version)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; ``argv=None`` means this process is the command (sys.argv)."""
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    if as_program and COMMANDS.get(command, ("",))[0] == "firecrestspawner.profiles.cli":
        for name in _UNUSED_BY_PROFILE_COMMANDS:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
        # pydantic looks for plugins (every installed distribution's entry points,
        # 10-30 ms) when it builds the first validator; the profile models use none.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if as_program and command == "validate":
        # The profile models as plain classes (no pydantic import): every text they
        # get has passed the JSON Schema first (see profiles/lightmodels.py).
        os.environ[LIGHT_MODELS_ENV] = "1"
    parser = build_parser(command)
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)
