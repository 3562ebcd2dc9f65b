"""The ``firecrestspawner`` command.

Each subcommand lives with the concern it belongs to; this module only wires
them together. Every provider module exposes ``register_cli(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from ._version import __version__

#: Modules that contribute subcommands, in the order they appear in --help.
CLI_MODULES = (
    "firecrestspawner.profiles.cli",  # validate, render, schema
    "firecrestspawner.emulator.cli",  # emulator
    "firecrestspawner.demo",  # demo
    "firecrestspawner.reaper",  # reap
    "firecrestspawner.doctor",  # doctor
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firecrestspawner",
        description="Tools for the FirecREST JupyterHub spawner and its site profiles.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in CLI_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)
