"""``firecrestspawner emulator``: run the FirecREST v2 emulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .config import EmulatorConfig, load_config


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="run a FirecREST v2 emulator (with a development identity provider)",
        description=(
            "Serve FirecREST v2 on loopback, backed by the real local Slurm or an "
            "in-process scheduler, with an identity provider under /idp/ and an "
            "admin API under /_emulator/."
        ),
    )
    p.add_argument(
        "--backend",
        choices=["local", "slurm"],
        default=None,
        help="scheduler for every configured system (default: as configured, else local)",
    )
    p.add_argument("--port", type=int, default=None, help="TCP port (default 8000; 0: any)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--config", default=None, help="YAML file with an EmulatorConfig")
    p.add_argument(
        "--state-file",
        default=None,
        help="keep jobs, keys and refresh tokens in this file across restarts",
    )
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    config = load_config(args.config) if args.config else EmulatorConfig(port=8000)
    if args.port is not None:
        config.port = args.port
    if args.host is not None:
        config.host = args.host
    if args.state_file is not None:
        config.state_file = args.state_file
    if args.backend is not None:
        for system in config.systems:
            system.backend = args.backend
    return config


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = build_config(args)
    except (OSError, ValueError) as e:
        print(f"firecrestspawner emulator: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(config))


async def _serve(config: EmulatorConfig) -> int:
    from .app import Emulator
    from .state import StateFileError

    emu = Emulator(config)
    try:
        await emu.start()
    except StateFileError as e:
        print(f"firecrestspawner emulator: {e}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    systems = ", ".join(f"{s.name} ({s.backend})" for s in config.systems)
    print(f"FirecREST emulator: {emu.url}  systems: {systems}", flush=True)
    print(f"  token endpoint: {emu.url}/idp/token   JWKS: {emu.url}/idp/jwks", flush=True)
    print(
        f"  admin API:      {emu.url}/_emulator/  (Bearer admin token from the config)", flush=True
    )
    await stop.wait()
    await emu.stop()
    return 0
