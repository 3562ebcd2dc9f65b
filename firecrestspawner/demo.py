"""``firecrestspawner demo``: a working hub on this machine in one command.

Starts, each as a child process in its own process group:

1. the FirecREST emulator with its identity provider (backend ``slurm`` when a
   local Slurm answers ``sinfo``, else the in-process ``local`` scheduler);
2. JupyterHub with configurable-http-proxy on ``http://127.0.0.1:8000``, our
   spawner in profile mode with the shipped ``profiles/demo.yaml``, and
   :class:`~firecrestspawner.demo_auth.DemoAuthenticator`, which gets a real
   refresh token from the identity provider into ``auth_state``.

Ctrl-C stops the hub (which cancels the servers' jobs), cancels any job of
this emulator still queued or running, then stops the emulator.

:class:`DemoStack` is also what the end-to-end tests run, so the demo and the
tests share one configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .redact import redact
from .remaining import HUB_TEMPLATES

#: The repository checkout this module runs from (editable install), if any.
REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = REPO / "profiles" / "demo.yaml"
CLIENT_ID = "firecrestspawner-demo"
#: The hub's secrets, passed in its environment; never given to the emulator.
HUB_SECRET_VARS = frozenset(
    {
        "JUPYTERHUB_CRYPT_KEY",
        "FIRECRESTSPAWNER_DEMO_CLIENT_SECRET",
        "FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN",
    }
)
#: Job states after which nothing is left to cancel.
FINAL_STATES = frozenset(
    {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}
)


class DemoError(Exception):
    """The demo could not start; the message says why and where the logs are."""


def slurm_answers(timeout: float = 5.0) -> bool:
    """True when a local Slurm controller answers ``sinfo``."""
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return False
    try:
        result = subprocess.run(  # noqa: S603 - fixed command
            [sinfo, "-h", "-o", "%P"], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def free_port() -> int:
    """A TCP port free right now, below the kernel's ephemeral range when it can.

    The demo's services bind their ports a moment after they are picked. A
    port of the ephemeral range (the kernel's own choice) can meanwhile become
    the local port of any outgoing connection on the machine; a port below
    that range cannot, so only another listener could take it.
    """
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randint(max(1024, low - 12000), low - 1)  # noqa: S311 - not a secret
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of Linux's ephemeral range (``ip_local_port_range``); 32768 elsewhere."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low if low > 2048 else 32768


def find_command(name: str) -> str | None:
    """``name`` next to this Python (the venv), in the checkout's node_modules, or on PATH."""
    for directory in (Path(sys.executable).parent, REPO / "node_modules" / ".bin"):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return redact("\n".join(text.splitlines()[-lines:]))


@dataclass
class DemoOptions:
    """What a demo (or an end-to-end test) runs; everything has a demo default."""

    port: int = 8000
    ip: str = "127.0.0.1"
    #: ``auto`` (slurm when ``sinfo`` answers, else local), ``local`` or ``slurm``.
    backend: str = "auto"
    #: Directory of profile files; None: a copy of the shipped ``profiles/demo.yaml``.
    profiles_dir: Path | None = None
    #: Where configuration, state, logs and job directories go; None: a new temporary directory.
    base_dir: Path | None = None
    #: Stop (cancel) every server when the hub stops. Production HPC hubs set False.
    cleanup_servers: bool = True
    #: Let users run several named servers (as the README shows); at most 3 each.
    named_servers: bool = True
    #: An API token with admin scopes, registered as service ``demo-admin`` (tests use it).
    service_token: str | None = None
    #: Python appended to the generated ``jupyterhub_config.py``.
    extra_config: str = ""
    #: Fields of the emulator's system config (e.g. ``{"slots": 1}`` for the local backend).
    system_overrides: dict[str, Any] = field(default_factory=dict)
    #: A real FirecREST server for the spawner; the emulator then serves only as
    #: identity provider (the server must trust its JWKS: see ``signing_key_file``).
    firecrest_url: str | None = None
    #: The identity provider's signing key file (kept across restarts and shared
    #: with other emulators); None: a new key per start.
    signing_key_file: Path | None = None
    #: ``preferred_username`` of the service account's tokens (a cluster account
    #: that may list every user's jobs); None: the client id.
    service_account_username: str | None = None
    #: Python that replaces the generated spawner settings (a site's own, e.g. in
    #: the existing firecrestspawner's style); the authenticator, proxy and
    #: database settings stay. None: the demo's profile-mode spawner.
    spawner_config: str | None = None
    #: Extra environment variables of the hub process (e.g. ``FIRECREST_URL``).
    hub_env: dict[str, str] = field(default_factory=dict)


class DemoStack:
    """The emulator and JupyterHub as child processes, configured in ``base_dir``."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.backend = options.backend
        if self.backend == "auto":
            self.backend = "slurm" if slurm_answers() else "local"
        if self.backend not in ("local", "slurm"):
            raise DemoError(f"unknown backend {self.backend!r} (auto, local or slurm)")
        if options.base_dir is None:
            self.base = Path(tempfile.mkdtemp(prefix="firecrestspawner-demo-"))
            # mkdtemp makes it 0700; job users must reach their directories in it.
            # The secrets live in hub/ (0700).
            self.base.chmod(0o755)
        else:
            self.base = Path(options.base_dir)
            self.base.mkdir(parents=True, exist_ok=True)
        self.hub_dir = self.base / "hub"
        self.hub_dir.mkdir(mode=0o700, exist_ok=True)
        self.users_dir = self.base / "users"
        self.users_dir.mkdir(mode=0o755, exist_ok=True)
        self.profiles_dir = self._profiles_dir()
        self.emulator_port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        self.firecrest_url = options.firecrest_url or self.emulator_url
        self.token_url = f"{self.emulator_url}/idp/token"
        self.hub_url = f"http://{options.ip}:{options.port}/"
        self.admin_token = secrets.token_urlsafe(24)
        self.client_secret = secrets.token_urlsafe(24)
        self.crypt_key = self._crypt_key()
        self.emulator_log = self.base / "emulator.log"
        self.hub_log = self.base / "hub.log"
        self.hub_config = self.hub_dir / "jupyterhub_config.py"
        self.emulator_config = self.hub_dir / "emulator.json"
        #: The emulator's state (jobs, signing key, refresh tokens): a restarted
        #: emulator, or a demo restarted with the same base directory, carries on.
        self.emulator_state = self.hub_dir / "emulator-state.json"
        self._emulator: subprocess.Popen[bytes] | None = None
        self._hub: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ configuration

    def _profiles_dir(self) -> Path:
        if self.options.profiles_dir is not None:
            path = Path(self.options.profiles_dir).resolve()
            if not path.is_dir():
                raise DemoError(f"profiles directory {path} does not exist")
            return path
        if not DEFAULT_PROFILE.is_file():
            raise DemoError(
                f"{DEFAULT_PROFILE} not found: pass --profiles-dir with the demo's profile files"
            )
        path = self.base / "profiles"
        path.mkdir(exist_ok=True)
        shutil.copy2(DEFAULT_PROFILE, path / DEFAULT_PROFILE.name)
        return path

    def _crypt_key(self) -> str:
        """JUPYTERHUB_CRYPT_KEY for auth_state, kept in hub/ so a hub restart can read it."""
        path = self.hub_dir / "crypt_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def system_names(self) -> list[str]:
        """The systems the profiles use: the emulator serves each of them."""
        from .profiles import ProfileDirectory

        current = ProfileDirectory(self.profiles_dir).current()
        names = sorted({v.system for p in current for v in (p.variants.values() or (p,))})
        if not names:
            raise DemoError(f"no valid profile in {self.profiles_dir}")
        return names

    def emulator_settings(self) -> dict[str, Any]:
        """The emulator's configuration (an ``EmulatorConfig`` as JSON data)."""
        from .emulator.config import (
            EmulatorConfig,
            FileSystemConfig,
            IdpClient,
            IdpConfig,
            SystemConfig,
        )

        systems = [
            SystemConfig(
                name=name,
                backend=self.backend,  # type: ignore[arg-type]
                node_name="127.0.0.1",
                file_systems=[
                    FileSystemConfig(
                        path=str(self.users_dir), data_type="users", default_work_dir=True
                    ),
                    FileSystemConfig(path="/home", data_type="users"),
                    FileSystemConfig(path=tempfile.gettempdir(), data_type="scratch"),
                ],
                spool_dir=str(self.base / "spool" / name),
                # The hub relies on its service account cancelling any user's job
                # (stop_with_service_account): make it an operator, as a site must.
                **{
                    "operators": [self.options.service_account_username or CLIENT_ID],
                    **self.options.system_overrides,
                },
            )
            for name in self.system_names()
        ]
        config = EmulatorConfig(
            host="127.0.0.1",
            port=self.emulator_port,
            admin_token=self.admin_token,
            state_file=str(self.emulator_state),
            systems=systems,
            idp=IdpConfig(
                clients={
                    CLIENT_ID: IdpClient(
                        secret=self.client_secret, username=self.options.service_account_username
                    )
                },
                signing_key_file=(
                    str(self.options.signing_key_file) if self.options.signing_key_file else None
                ),
            ),
        )
        return config.model_dump(mode="json")

    def hub_settings(self) -> str:
        """The generated ``jupyterhub_config.py`` (values written with ``repr``)."""
        chp = find_command("configurable-http-proxy") or "configurable-http-proxy"
        cmd = [
            find_command("firecrestspawner-singleuser") or "firecrestspawner-singleuser",
            find_command("jupyterhub-singleuser") or "jupyterhub-singleuser",
        ]
        args = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
        text = f"""\
        # Generated by `firecrestspawner demo`; rewritten at every start.
        import os

        c = get_config()  # noqa: F821

        c.JupyterHub.bind_url = {f"http://{self.options.ip}:{self.options.port}"!r}
        c.JupyterHub.hub_bind_url = {f"http://127.0.0.1:{self.hub_port}"!r}
        c.ConfigurableHTTPProxy.api_url = {f"http://127.0.0.1:{self.proxy_api_port}"!r}
        c.ConfigurableHTTPProxy.command = [{chp!r}]
        c.ConfigurableHTTPProxy.pid_file = {str(self.hub_dir / "proxy.pid")!r}
        c.JupyterHub.db_url = {"sqlite:///" + str(self.hub_dir / "jupyterhub.sqlite")!r}
        c.JupyterHub.cookie_secret_file = {str(self.hub_dir / "cookie_secret")!r}
        c.JupyterHub.pid_file = {str(self.hub_dir / "jupyterhub.pid")!r}
        c.JupyterHub.cleanup_servers = {self.options.cleanup_servers!r}
        c.JupyterHub.allow_named_servers = {self.options.named_servers!r}
        c.JupyterHub.named_server_limit_per_user = 3
        # The home page shows each running server's remaining time.
        c.JupyterHub.template_paths = [{HUB_TEMPLATES!r}]

        c.JupyterHub.authenticator_class = "firecrestspawner.demo_auth.DemoAuthenticator"
        c.DemoAuthenticator.token_url = {self.token_url!r}
        c.DemoAuthenticator.client_id = {CLIENT_ID!r}
        c.DemoAuthenticator.client_secret = os.environ["FIRECRESTSPAWNER_DEMO_CLIENT_SECRET"]
        c.Authenticator.enable_auth_state = True
        c.Authenticator.allow_all = True

        """
        spawner = f"""\
        c.JupyterHub.spawner_class = "firecrest-slurm"
        c.FirecRESTSpawnerBase.firecrest_url = {self.firecrest_url!r}
        c.FirecRESTSpawnerBase.service_account_client_id = {CLIENT_ID!r}
        c.FirecRESTSpawnerBase.service_account_client_secret = os.environ[
            "FIRECRESTSPAWNER_DEMO_CLIENT_SECRET"
        ]
        c.FirecRESTSpawnerBase.service_account_token_url = {self.token_url!r}
        c.FirecRESTSpawnerBase.profiles_dir = {str(self.profiles_dir)!r}
        c.FirecRESTSpawnerBase.workdir = {str(self.users_dir)!r}
        c.FirecRESTSpawnerBase.hub_id = "demo"
        c.Spawner.cmd = {cmd!r}
        c.Spawner.args = {args!r}
        c.Spawner.default_url = "/lab"
        c.Spawner.start_timeout = 300
        c.Spawner.http_timeout = 120
        """
        if self.options.spawner_config is not None:
            spawner = self.options.spawner_config
        text = textwrap.dedent(text) + "\n" + textwrap.dedent(spawner)
        if self.options.service_token:
            text += textwrap.dedent(
                """
                c.JupyterHub.services = [
                    {"name": "demo-admin", "api_token": os.environ["FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN"]}
                ]
                c.JupyterHub.load_roles = [
                    {
                        "name": "demo-admin",
                        "scopes": ["admin:users", "admin:servers", "list:users", "read:users"],
                        "services": ["demo-admin"],
                    }
                ]
                """
            )
        if self.options.extra_config:
            text += "\n" + textwrap.dedent(self.options.extra_config) + "\n"
        return text

    @property
    def hub_env_file(self) -> Path:
        """The secret the configuration reads from the environment, as ``KEY=VALUE`` (0600).

        For ``firecrestspawner doctor -f <hub_config> --env-file <this>``.
        """
        return self.hub_dir / "hub.env"

    def write_config(self) -> None:
        self.emulator_config.write_text(json.dumps(self.emulator_settings(), indent=2))
        self.emulator_config.chmod(0o600)
        self.hub_config.write_text(self.hub_settings())
        fd = os.open(self.hub_env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"FIRECRESTSPAWNER_DEMO_CLIENT_SECRET={self.client_secret}\n")

    # ------------------------------------------------------------ processes

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(  # noqa: S603 - our own commands
                argv,
                cwd=self.hub_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _emulator_env(self) -> dict[str, str]:
        """The emulator's environment: this process's, with none of the hub's secrets.

        The emulator reads its own secrets (client secret, admin token) from its
        configuration file; the crypt key and service token are the hub's alone.
        """
        env = {k: v for k, v in os.environ.items() if k not in HUB_SECRET_VARS}
        path_dirs = [str(Path(sys.executable).parent)]
        chp = find_command("configurable-http-proxy")
        if chp:
            path_dirs.append(str(Path(chp).parent))
        env["PATH"] = os.pathsep.join([*path_dirs, env.get("PATH", "")])
        return env

    def _env(self) -> dict[str, str]:
        """The hub's environment: the emulator's plus the hub's settings and secrets."""
        env = self._emulator_env()
        env.update(self.options.hub_env)
        env["JUPYTERHUB_CRYPT_KEY"] = self.crypt_key
        env["FIRECRESTSPAWNER_DEMO_CLIENT_SECRET"] = self.client_secret
        if self.options.service_token:
            env["FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN"] = self.options.service_token
        return env

    def _wait_http(
        self, url: str, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(
                    f"{what} exited with status {proc.returncode}; last lines of {log}:\n"
                    + _tail(log)
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise DemoError(f"{what} did not answer {url} within {timeout:.0f} s; see {log}")

    def start_emulator(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "firecrestspawner",
            "emulator",
            "--config",
            str(self.emulator_config),
        ]
        self._emulator = self._spawn(argv, self.emulator_log, self._emulator_env())
        self._wait_http(
            f"{self.emulator_url}/idp/jwks", self._emulator, self.emulator_log, "the emulator", 60
        )

    def start_hub(self) -> None:
        jupyterhub = find_command("jupyterhub")
        if jupyterhub is None:
            raise DemoError("jupyterhub not found: run `bash scripts/setup.sh`")
        if find_command("configurable-http-proxy") is None:
            raise DemoError("configurable-http-proxy not found: run `bash scripts/setup.sh`")
        self.hub_config.write_text(self.hub_settings())
        self._hub = self._spawn([jupyterhub, "-f", str(self.hub_config)], self.hub_log, self._env())
        self._wait_http(f"{self.hub_url}hub/health", self._hub, self.hub_log, "JupyterHub", 120)

    def start(self) -> None:
        """Start the emulator then the hub; on failure stop what started and raise."""
        self.write_config()
        try:
            self.start_emulator()
            self.start_hub()
        except BaseException:
            self.stop()
            raise

    def stop_hub(self, timeout: float = 90.0) -> None:
        """SIGTERM the hub (it stops the proxy and, with cleanup_servers, the servers)."""
        proc, self._hub = self._hub, None
        if proc is not None:
            _terminate_group(proc, timeout)
        # A hub killed hard leaves its proxy (own session) behind.
        pid_file = self.hub_dir / "proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            pid_file.unlink()

    def stop_emulator(self) -> None:
        proc, self._emulator = self._emulator, None
        if proc is not None:
            _terminate_group(proc, 30.0)

    def stop(self) -> None:
        """Stop the hub, cancel this emulator's unfinished jobs, stop the emulator."""
        self.stop_hub()
        if self._emulator is not None and self._emulator.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                self.cancel_jobs()
        self.stop_emulator()

    def dead_child(self) -> str | None:
        """Name of a child that exited on its own, if any."""
        for name, proc in (("emulator", self._emulator), ("JupyterHub", self._hub)):
            if proc is not None and proc.poll() is not None:
                return name
        return None

    def __enter__(self) -> DemoStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ emulator admin

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the emulator's admin API (``/_emulator/...``); returns the JSON answer."""
        resp = httpx.request(
            method,
            f"{self.emulator_url}/_emulator/{path.lstrip('/')}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        resp.raise_for_status()
        return resp.json()

    def jobs(self) -> list[dict[str, Any]]:
        """Every job this emulator submitted (FirecREST job models plus ``system``)."""
        return list(self.admin("GET", "jobs"))

    def cancel_jobs(self) -> list[str]:
        """Cancel, as their owners, the jobs of this emulator that are not finished."""
        cancelled = []
        for job in self.jobs():
            if job["status"]["state"] in FINAL_STATES:
                continue
            token = self.admin("POST", "tokens", json={"username": job["user"], "type": "access"})
            resp = httpx.delete(
                f"{self.emulator_url}/compute/{job['system']}/jobs/{job['jobId']}",
                headers={"Authorization": f"Bearer {token['token']}"},
                timeout=30,
            )
            if resp.status_code < 400:
                cancelled.append(str(job["jobId"]))
        return cancelled


def _terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process, wait, then SIGKILL its whole process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


@contextlib.contextmanager
def _signals_raise_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the demo (KeyboardInterrupt).

    SIGINT is set explicitly: a shell starting the demo in the background
    without job control makes it ignore SIGINT, and Python then keeps it ignored.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run a demo hub: JupyterHub + this spawner + the FirecREST emulator",
        description=(
            "Start the FirecREST emulator (local Slurm when `sinfo` answers, else an "
            "in-process scheduler) with its identity provider, and JupyterHub behind "
            "configurable-http-proxy using this spawner with the demo profiles. Any user "
            "name logs in. Ctrl-C stops everything and cancels the jobs it started."
        ),
    )
    p.add_argument("--port", type=int, default=8000, help="public port of the hub (default 8000)")
    p.add_argument("--ip", default="127.0.0.1", help="public address (default 127.0.0.1)")
    p.add_argument(
        "--backend",
        choices=["auto", "local", "slurm"],
        default="auto",
        help="scheduler behind the emulator (default auto: slurm if `sinfo` answers)",
    )
    p.add_argument(
        "--profiles-dir",
        type=Path,
        default=None,
        help="directory of profile files (default: the shipped profiles/demo.yaml)",
    )
    p.add_argument(
        "--base-dir",
        type=Path,
        default=None,
        help="where configuration, logs and job directories go (default: a new temporary one)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        port=args.port,
        ip=args.ip,
        backend=args.backend,
        profiles_dir=args.profiles_dir,
        base_dir=args.base_dir,
    )
    try:
        stack = DemoStack(options)
    except DemoError as e:
        print(f"firecrestspawner demo: {e}", file=sys.stderr)
        return 2
    scheduler = "the local Slurm" if stack.backend == "slurm" else "the in-process scheduler"
    print(f"Starting the FirecREST emulator ({scheduler}) and JupyterHub in {stack.base} ...")
    with _signals_raise_interrupt():
        try:
            stack.start()
        except DemoError as e:
            print(f"firecrestspawner demo: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        print(
            textwrap.dedent(
                f"""
                JupyterHub is ready: {stack.hub_url}

                  1. Open it and log in with any user name (lower-case letters and
                     digits) and any password.
                  2. Pick a profile and press Start: JupyterLab starts as a batch job
                     submitted through FirecREST ({scheduler}).
                  3. Stop your server from the hub's home page (File > Hub Control Panel).

                FirecREST emulator: {stack.emulator_url}  (identity provider: {stack.token_url})
                Profiles: {stack.profiles_dir}
                Logs: {stack.hub_log}  {stack.emulator_log}
                Check the set-up: firecrestspawner doctor -f {stack.hub_config} \\
                    --env-file {stack.hub_env_file}
                Press Ctrl-C to stop; running jobs are cancelled.
                """
            ),
            flush=True,
        )
        status = 0
        try:
            while (dead := stack.dead_child()) is None:
                time.sleep(0.5)
            log = stack.hub_log if dead == "JupyterHub" else stack.emulator_log
            print(f"\n{dead} exited; last lines of {log}:\n{_tail(log)}", file=sys.stderr)
            status = 1
        except KeyboardInterrupt:
            print("\nStopping: cancelling jobs, stopping JupyterHub and the emulator ...")
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            stack.stop()
    print("Stopped.")
    return status
