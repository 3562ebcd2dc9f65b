"""Configuration of the FirecREST emulator (pydantic models, loadable from YAML).

Everything the emulator does differently from a plain, healthy FirecREST is a
field here, so a test or a demo states its assumptions in one object.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .faults import FaultRule


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PartitionConfig(_Model):
    """A partition of an emulated system."""

    name: str
    default: bool = False
    #: Maximum run time in seconds; None means unlimited.
    max_time: int | None = None
    hidden: bool = False
    state: str = "UP"


class ReservationConfig(_Model):
    name: str
    #: Epoch seconds; defaults make the reservation active now for a day.
    start_time: int | None = None
    end_time: int | None = None
    features: str | None = None


class FileSystemConfig(_Model):
    path: str
    data_type: Literal["users", "store", "archive", "apps", "scratch", "project"] = "users"
    default_work_dir: bool = False


def _default_file_systems() -> list[FileSystemConfig]:
    return [
        FileSystemConfig(path="/home", data_type="users", default_work_dir=True),
        FileSystemConfig(path="/tmp", data_type="scratch"),  # noqa: S108 - an emulated mount
    ]


def _default_partitions() -> list[PartitionConfig]:
    return [
        PartitionConfig(name="normal", default=True),
        PartitionConfig(name="debug", max_time=1800),
    ]


class SystemConfig(_Model):
    """One system (cluster) served under ``/…/{name}/``."""

    name: str = "cluster"
    backend: Literal["local", "slurm"] = "local"
    #: Local backend: jobs hold no process; they go PENDING -> RUNNING and stay
    #: there until cancelled (or their time limit passes). For benchmarks.
    simulate: bool = False
    #: The node name jobs run on (``nodes`` and ``SLURM_JOB_NODELIST``); the
    #: hub connects to it, so ``localhost`` or ``127.0.0.1`` here.
    node_name: str = "localhost"
    #: Local backend: how many jobs may run at once (None: unlimited).
    slots: int | None = 4
    #: Local backend: seconds a job stays PENDING (reason Priority) before it
    #: may start.
    queue_delay: float = 0.0
    #: Local backend: seconds a finished job stays in COMPLETING.
    completing_time: float = 0.2
    #: Local backend: seconds between SIGTERM and SIGKILL (Slurm's KillWait).
    kill_wait: float = 5.0
    #: Seconds a finished job stays visible before GET answers 404.
    retention: float = 300.0
    #: The Slurm cluster name reported in jobs.
    cluster_name: str = "localcluster"
    partitions: list[PartitionConfig] = Field(default_factory=_default_partitions)
    reservations: list[ReservationConfig] = Field(default_factory=list)
    file_systems: list[FileSystemConfig] = Field(default_factory=_default_file_systems)
    #: Accounts reported by userinfo: {username: [account, ...]}; "*" for everyone.
    #: Empty: ``accounts`` is null (no accounting); the slurm backend then asks
    #: ``sacctmgr`` as the real server does. The local backend charges a
    #: job without ``--account`` to the default account and refuses an account
    #: not in the user's list, like sbatch with accounting enforced.
    accounts: dict[str, list[str]] = Field(default_factory=dict)
    #: The account userinfo marks ``default: true`` (sacctmgr's DefaultAccount):
    #: {username: account}; "*" for everyone. Absent: the first of the user's
    #: ``accounts``; null: none is marked default.
    default_account: dict[str, str | None] = Field(default_factory=dict)
    #: Supplementary Unix groups userinfo reports besides the user's own:
    #: {username: [group, ...]}; "*" for everyone (real accounts add their /etc/group ones).
    unix_groups: dict[str, list[str]] = Field(default_factory=dict)
    #: Users the server has SSH credentials for (None: everyone). Others get
    #: 500 "No SSH credentials found for user" on every endpoint that runs a
    #: command on the system, as with FirecREST's static-keys provider.
    ssh_users: list[str] | None = None
    #: Local backend: ``#SBATCH`` options that spank plugins add at the site
    #: (accepted besides sbatch's own; anything else is refused like sbatch does).
    sbatch_plugin_options: list[str] = Field(default_factory=lambda: ["uenv", "view"])
    #: Seconds before the 408 answer to commands that wait for input which never
    #: comes (a submit without script, an empty upload). The real server waits
    #: for its SSH command timeout (about 10 s measured); 0 answers at once.
    stdin_wait: float = 0.0
    #: Reported in ``servicesHealth``.
    healthy: bool = True
    #: Scheduler connection mode reported in /status/systems; in "rest" mode a
    #: cancel of an unknown job answers 404 instead of the SSH mode's 500.
    connection_mode: Literal["ssh", "rest", "hybrid"] = "ssh"
    scheduler_version: str = "22.05"
    #: Local backend: directory for job scripts; default a temporary directory.
    spool_dir: str | None = None
    #: Slurm backend: timeout for each scheduler command, seconds (like FirecREST's
    #: SSH command timeout, answered with 408).
    command_timeout: float = 5.0
    #: Slurm backend: submit as the token's user (``runuser``) when running as
    #: root and that account exists.
    submit_as_user: bool = True
    #: Token users (the ``username_claim`` of the token, e.g. a service
    #: account's client id) that may cancel any user's job, like a Slurm
    #: operator. Default: nobody; a cancel of another user's job is refused.
    #: The slurm backend runs their ``scancel`` as the emulator's own user
    #: (root when the emulator runs as root).
    operators: list[str] = Field(default_factory=list)
    max_ops_file_size: int = 5 * 1024 * 1024


class IdpClient(_Model):
    secret: str
    #: ``preferred_username`` of tokens issued to this client (service account);
    #: defaults to the client id.
    username: str | None = None


class IdpConfig(_Model):
    """The development identity provider under ``/idp/``."""

    enabled: bool = True
    access_token_lifetime: int = 300
    refresh_token_lifetime: int = 86400
    #: Rotate refresh tokens: each refresh grant returns a new one and
    #: invalidates the one used.
    rotate_refresh_tokens: bool = True
    #: client_id -> client. Tokens for the hub (service account) and the
    #: authenticator's client.
    clients: dict[str, IdpClient] = Field(
        default_factory=lambda: {"firecrestspawner": IdpClient(secret="firecrestspawner-secret")}  # noqa: S106 - dev default
    )
    #: Password grant: username -> password. In dev mode any user and password
    #: is accepted.
    users: dict[str, str] = Field(default_factory=dict)
    dev_mode: bool = True
    #: The ``iss`` claim; default the emulator's own ``/idp`` URL.
    issuer: str | None = None
    #: A file holding the RSA signing key (private JWK, JSON), created 0600 on
    #: first use. Emulators given the same file sign with the same key, and a
    #: restarted emulator keeps it, so a FirecREST server that read the JWKS
    #: once at its start keeps accepting the tokens. None: a new key per start.
    signing_key_file: str | None = None


class AuthConfig(_Model):
    """How the FirecREST side verifies bearer tokens."""

    #: An external JWKS URL (e.g. Keycloak's ``…/protocol/openid-connect/certs``),
    #: downloaded once at start like the real server. None: the emulator's IdP.
    jwks_url: str | None = None
    username_claim: str = "preferred_username"
    #: Tokens with less than this many seconds left are refused (FirecREST 2.5.6: 30).
    min_token_ttl: int = 30


class FaultConfig(_Model):
    """Faults and quirks; all can be changed at run time via ``/_emulator/faults``."""

    #: sbatch's ``--export`` splits on commas: ``A=x,y`` arrives as ``A=x``.
    env_comma_truncation: bool = True
    #: Seconds after submit during which the job answers 404 (as Slurm before
    #: it lists a new job). Off by default.
    visibility_delay: float = 0.0
    #: Local backend: every job that starts is killed as by a node failure
    #: (NODE_FAIL) this many seconds after it started. None: never.
    node_fail_after: float | None = None
    #: Per-route error rates, scripted sequences, latency, drops.
    rules: list[FaultRule] = Field(default_factory=list)
    #: Seed for the random draws of ``probability`` rules (None: random).
    seed: int | None = None


class EmulatorConfig(_Model):
    host: str = "127.0.0.1"
    port: int = 0
    #: ``F7T-AppVersion`` header; pyfirecrest gates features on it.
    app_version: str = "2.5.6"
    #: Bearer token for ``/_emulator/``; generated when empty.
    admin_token: str = Field(default_factory=lambda: secrets.token_urlsafe(24))
    systems: list[SystemConfig] = Field(default_factory=lambda: [SystemConfig()])
    idp: IdpConfig = Field(default_factory=IdpConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    #: Keep the last N requests for ``/_emulator/requests``.
    request_log_size: int = 2000
    #: A file where the emulator keeps what a restart needs (jobs and the next
    #: job id, the identity provider's key and refresh tokens), created 0600.
    #: With it, jobs outlive the emulator (as Slurm jobs outlive a FirecREST
    #: restart) and the local backend keeps job files in ``<state_file>.spool``
    #: unless ``spool_dir`` is set. None: the state lives and dies with the process.
    state_file: str | None = None

    @model_validator(mode="after")
    def _unique_systems(self) -> EmulatorConfig:
        names = [s.name.lower() for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError("system names must be unique (case-insensitively)")
        if not self.systems:
            raise ValueError("at least one system is required")
        return self

    def system(self, name: str) -> SystemConfig | None:
        for s in self.systems:
            if s.name.lower() == name.lower():
                return s
        return None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> EmulatorConfig:
    """Load an :class:`EmulatorConfig` from a YAML (1.2) or JSON file."""
    from ruamel.yaml import YAML

    text = Path(path).read_text()
    data = YAML(typ="safe", pure=True).load(text) or {}
    if overrides:
        data.update(overrides)
    return EmulatorConfig.model_validate(data)
