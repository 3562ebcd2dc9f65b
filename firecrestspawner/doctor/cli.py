"""``firecrestspawner doctor``: the command line around :class:`~.checks.Doctor`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from ..redact import redact, register_secret
from .checks import TOKEN_ENV, Doctor, DoctorOptions
from .report import Report, Step, format_report
from .settings import ConfigProblem, hub_settings, read_env_file

#: Variables of an --env-file whose values are secrets (never printed).
_SECRET_NAME = re.compile(r"(?i)TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE|KEY")


class _RefuseToken(argparse.Action):
    """``--user-token VALUE``: refused without repeating the value anywhere."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(
            "--user-token is not accepted (command lines are visible to other users): "
            f"set {TOKEN_ENV} or use --user-token-file"
        )


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        allow_abbrev=False,
        help="check a hub's FirecREST set-up step by step (and, with --probe, a real job)",
        description=(
            "Read the hub's jupyterhub_config.py (without starting a hub) and its profiles, "
            "and check, each step with what to fix: FirecREST reachable and its version, "
            "each system healthy, the service account's token and rights, a user's "
            "credential and working directory, node names, and with --probe a short job "
            "that reports to the hub's API from the compute node and opens a port this "
            "host must reach. Run it where the hub and the proxy run, with the hub's "
            "environment. Exit status 1 when a check fails, 2 when the configuration "
            "cannot be read."
        ),
    )
    p.add_argument("-f", "--config", default="jupyterhub_config.py",
                   help="the hub's configuration file (default ./jupyterhub_config.py)")  # fmt: skip
    p.add_argument("--env-file", action="append", default=[],
                   help="KEY=VALUE file to add to the environment before reading the "
                        "configuration, e.g. the hub's systemd EnvironmentFile (repeatable)")  # fmt: skip
    p.add_argument(
        "--user",
        default="",
        help="check this user's credential and working directory, and submit as them a "
        "short test job the service account cancels (and the --probe job)",
    )
    p.add_argument("--user-token-file", default=None,
                   help=f"file holding the user's token (default: ${TOKEN_ENV})")  # fmt: skip
    p.add_argument("--user-token", action=_RefuseToken, help=argparse.SUPPRESS)
    p.add_argument("--token-kind", choices=["refresh", "access"], default="refresh",
                   help="the user's token is a refresh token (default; the hub's refresh "
                        "grant is checked, and an identity provider that rotates refresh "
                        "tokens invalidates the one given) or an access token")  # fmt: skip
    p.add_argument("--group", action="append", default=[], dest="groups",
                   help="a JupyterHub group of the user (profiles' group allow-lists)")  # fmt: skip
    p.add_argument("--probe", action="store_true",
                   help="submit a short job as --user that proves node -> hub API and "
                        "proxy -> node")  # fmt: skip
    p.add_argument("--profile", default="",
                   help="profile of the probe and test jobs (default: the user's default)")  # fmt: skip
    p.add_argument("--probe-timeout", type=float, default=None,
                   help="seconds the probe job may take to start and report "
                        "(default: c.Spawner.start_timeout)")  # fmt: skip
    p.add_argument("--callback-host", default="",
                   help="address of this host the nodes reach, for the probe's report while "
                        "the hub runs (default: the host of the hub's API URL)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds per network request (default 10)")  # fmt: skip
    p.add_argument("--max-nodes", type=int, default=50,
                   help="node names to resolve per system at most (default 50)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--log-level", default="ERROR", help="logging level (default ERROR)")
    p.set_defaults(func=run)


def _read_token(args: argparse.Namespace, environ: dict[str, str]) -> str:
    if args.user_token_file:
        try:
            return Path(args.user_token_file).read_text().strip()
        except OSError as e:
            raise ConfigProblem(
                f"cannot read --user-token-file: {e.strerror}", "check the path and its mode"
            ) from None
    return environ.get(TOKEN_ENV, "").strip()


def _emit(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2), flush=True)
    else:
        print(format_report(report), flush=True)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        for env_file in args.env_file:
            try:
                values = read_env_file(env_file)
            except OSError as e:
                raise ConfigProblem(f"cannot read --env-file {env_file}: {e.strerror}") from None
            for key, value in values.items():
                if _SECRET_NAME.search(key):
                    register_secret(value)
            os.environ.update(values)
        token = _read_token(args, dict(os.environ))
        if token:
            register_secret(token)
        settings = hub_settings(args.config)
    except ConfigProblem as e:
        report = Report(str(args.config))
        report.add(Step("config", "Hub configuration", "fail", e.message, e.fix))
        _emit(report, args.json)
        return 2
    options = DoctorOptions(
        user=args.user,
        user_token=token,
        token_kind=args.token_kind,
        groups=tuple(args.groups),
        probe=args.probe,
        profile=args.profile,
        probe_timeout=args.probe_timeout,
        callback_host=args.callback_host,
        timeout=args.timeout,
        max_nodes=args.max_nodes,
    )
    with contextlib.suppress(KeyboardInterrupt):
        report = asyncio.run(Doctor(settings, options).run())
        _emit(report, args.json)
        return 0 if report.ok else 1
    print(redact("firecrestspawner doctor: interrupted"), file=sys.stderr)
    return 130
