"""Placeholder: the subcommands of this module are being written."""

from __future__ import annotations

import argparse


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # pragma: no cover
    """Add this module's subcommands (none yet)."""
