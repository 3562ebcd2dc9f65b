"""Cancel orphaned notebook jobs: ``firecrestspawner reap``.

A job is an orphan when its name says it belongs to this hub
(``fcs.<hub_id>.<user>.<server>.<spawn>``, see :mod:`firecrestspawner.naming`)
but it is not the job of an active server (running, starting or stopping).
Jobs are matched to servers by job name, the spawn's identity: the hub
reports each active server's spawner state (``job_name``, ``job_id`` and the
``orphans`` it recorded), so a second job of a user whose server is active
(a lost submit answer, a cancel that failed) is an orphan too, and so is a
job the spawner recorded as one. A server whose state names no job (a spawn
that has not named its job yet, another spawner class) keeps every job of
its user and server name, as does a server whose spawn is in progress.
Orphans come from a hub that crashed between submit and saving its state, a
cancel that failed, a submit whose answer was lost, or a hub database that
was reset. Jobs of other hubs, jobs not named by firecrestspawner and jobs in
an unknown state are never touched.

Safety rules:

* the hub is asked first (``GET /hub/api/users?state=active``, every page);
  if that fails, or the token cannot see servers and their state (scopes
  ``read:servers``, ``admin:server_state``), nothing is cancelled;
* a job is cancelled only when it is older than ``--min-age``: a running job
  by its elapsed time, a queued job (FirecREST reports no submit time) by how
  long this reaper has seen it queued (kept across runs with ``--state-file``
  and across cycles with ``--every``), so a spawn in progress is never touched;
* ``--dry-run`` lists what would be cancelled.

Jobs are listed (``allusers``) and cancelled through the site's service
account, which must be allowed to cancel other users' jobs (a Slurm operator).
All FirecREST traffic goes through :mod:`firecrestspawner.client`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import stamina

from . import client as fc
from . import metrics
from .auth import AuthError, get_service_account_auth
from .jobs import confirm
from .logs import install_retry_summary
from .reaper_plan import (
    ActiveServer,
    Decision,
    hub_slug,
    job_age,
    parse_duration,
    plan,
    seen_key,
    server_key,
)
from .redact import redact, register_secret

log = logging.getLogger(__name__)

#: Default minimum age of a job before it may be cancelled (seconds).
DEFAULT_MIN_AGE = 600.0
#: Scopes the hub API token needs (the service's role): the active servers
#: and their spawners' state, which names each server's job.
REQUIRED_SCOPES = ("list:users", "read:servers", "admin:server_state")
_PAGINATION = "application/jupyterhub-pagination+json"


class ReaperError(Exception):
    """A problem that stops a reap cycle before anything is cancelled."""


# ----------------------------------------------------------------- the hub


def _hub_retryable(exc: Exception) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (
        429,
        500,
        502,
        503,
        504,
    )


def _hub_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    message = body.get("message") if isinstance(body, dict) else None
    return redact(f"HTTP {resp.status_code}: {message or resp.reason_phrase}")[:300]


async def active_server_records(
    api_url: str,
    token: str,
    *,
    timeout: float = 30.0,
    attempts: int = 3,
    page_size: int = 200,
    verify: bool | str = True,
) -> list[ActiveServer]:
    """Every active server of the hub, with the job its spawner's state names.

    Reads every page of ``GET /users?state=active``; raises :class:`ReaperError`
    when any page fails or when the token cannot read servers and their state
    (:data:`REQUIRED_SCOPES`), since a partial answer would make live servers
    look orphaned.
    """
    register_secret(token)
    base = api_url.rstrip("/")
    headers = {"Authorization": f"token {token}", "Accept": _PAGINATION}
    found: list[ActiveServer] = []
    async with httpx.AsyncClient(timeout=timeout, headers=headers, verify=verify) as http:

        async def get(url: str, params: dict[str, Any]) -> Any:
            async for attempt in stamina.retry_context(
                on=_hub_retryable, attempts=max(1, attempts), timeout=timeout * attempts
            ):
                with attempt:
                    resp = await http.get(url, params=params)
                    if resp.status_code >= 500 or resp.status_code == 429:
                        resp.raise_for_status()
            if resp.status_code in (401, 403):
                raise ReaperError(
                    f"the hub refused the API token ({_hub_message(resp)}); it needs the scopes "
                    + ", ".join(REQUIRED_SCOPES)
                )
            if resp.status_code != 200:
                raise ReaperError(f"the hub API answered {_hub_message(resp)}")
            try:
                return resp.json()
            except ValueError as e:
                raise ReaperError("the hub API answered with something that is not JSON") from e

        # The token's own scopes first: a filtered scope (``list:users!group=x``)
        # would hide active servers and make their jobs look orphaned.
        try:
            me = await get(f"{base}/user", {})
        except httpx.HTTPStatusError as e:
            raise ReaperError(f"the hub API answered {_hub_message(e.response)}") from e
        except httpx.HTTPError as e:
            raise ReaperError(f"the hub API at {base} is unreachable: {redact(e)}") from e
        have = set(me.get("scopes") or []) if isinstance(me, dict) else set()
        lacking = [scope for scope in REQUIRED_SCOPES if scope not in have]
        if lacking:
            raise ReaperError(
                "the hub API token lacks the unfiltered scope(s) "
                + ", ".join(lacking)
                + " (needed to see every active server and the job it runs)"
            )
        offset = 0
        while True:
            try:
                body = await get(
                    f"{base}/users", {"state": "active", "offset": offset, "limit": page_size}
                )
            except httpx.HTTPStatusError as e:
                raise ReaperError(f"the hub API answered {_hub_message(e.response)}") from e
            except httpx.HTTPError as e:
                raise ReaperError(f"the hub API at {base} is unreachable: {redact(e)}") from e
            items = body.get("items") if isinstance(body, dict) else body
            if not isinstance(items, list):
                raise ReaperError("unexpected answer from the hub's user list")
            for user in items:
                if not isinstance(user, dict) or "servers" not in user:
                    raise ReaperError(
                        "the hub API token cannot read servers: give the service the scopes "
                        + ", ".join(REQUIRED_SCOPES)
                    )
                for server, model in (user["servers"] or {}).items():
                    found.append(
                        ActiveServer.from_model(
                            str(user["name"]), str(server), model if isinstance(model, dict) else {}
                        )
                    )
            pagination = body.get("_pagination") if isinstance(body, dict) else None
            if not pagination or not pagination.get("next"):
                return found
            offset = int(pagination["next"].get("offset", offset + len(items)))


# ----------------------------------------------------------------- one cycle


@dataclass
class ReapSettings:
    """Everything one reap cycle needs (built from the command line and environment)."""

    firecrest_url: str
    systems: list[str]
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    hub_api_url: str
    hub_api_token: str = field(repr=False)
    hub_id: str = "jupyterhub"
    min_age: float = DEFAULT_MIN_AGE
    dry_run: bool = False
    state_file: Path | None = None
    timeout: float = 30.0
    verify: bool | str = True


@dataclass
class Report:
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def cancelled(self) -> list[Decision]:
        return [d for d in self.decisions if d.result == "cancelled"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "cancel": [asdict(d) for d in self.decisions if d.action == "cancel"],
            "keep": [asdict(d) for d in self.decisions if d.action == "keep"],
            "errors": list(self.errors),
        }


def _load_seen(path: Path | None) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.warning("Ignoring unreadable state file %s: %s", path, e)
        return {}
    seen = data.get("first_seen") if isinstance(data, dict) else None
    if not isinstance(seen, dict):
        return {}
    return {str(k): float(v) for k, v in seen.items() if isinstance(v, int | float)}


def _save_seen(path: Path | None, seen: Mapping[str, float]) -> None:
    if path is None:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump({"first_seen": dict(seen)}, f)
    os.replace(tmp, path)


class Reaper:
    """Reap cycles with memory: when each queued job was first seen."""

    def __init__(self, settings: ReapSettings) -> None:
        self.settings = settings
        register_secret(settings.client_secret)
        register_secret(settings.hub_api_token)
        self.first_seen: dict[str, float] = _load_seen(settings.state_file)

    def _client(self) -> fc.FirecrestClient:
        s = self.settings
        auth = get_service_account_auth(s.client_id, s.client_secret, s.token_url)
        client_settings = fc.ClientSettings(
            request_timeout=s.timeout,
            read_attempts=3,
            read_deadline=s.timeout * 3,
            verify=s.verify,
        )
        return fc.get_client(s.firecrest_url, f"sa:{s.client_id}", auth, client_settings)

    async def run_once(self) -> Report:
        """One cycle: ask the hub, list each system, cancel the orphans found."""
        s = self.settings
        report = Report(dry_run=s.dry_run)
        active = await active_server_records(
            s.hub_api_url, s.hub_api_token, timeout=s.timeout, verify=s.verify
        )
        client = self._client()
        now = time.time()
        listed: set[str] = set()
        for system in s.systems:
            try:
                jobs = await client.jobs(system, allusers=True)
            except Exception as e:  # noqa: BLE001 - reported, other systems go on
                report.errors.append(f"{system}: cannot list jobs: {_describe(e)}")
                listed.update(k for k in self.first_seen if k.startswith(f"{system.lower()}/"))
                continue
            for job in jobs:
                key = seen_key(system, str(job.get("jobId") or ""))
                listed.add(key)
                self.first_seen.setdefault(key, now)
            for decision in plan(
                jobs,
                system=system,
                hub_id=s.hub_id,
                active=active,
                min_age=s.min_age,
                now=now,
                first_seen=self.first_seen,
            ):
                report.decisions.append(decision)
                if decision.action != "cancel":
                    continue
                metrics.orphan_found("reaper")
                if s.dry_run:
                    decision.result = "would cancel"
                    continue
                decision.result = await self._cancel(client, decision)
                if decision.result not in ("cancelled", "already ended"):
                    report.errors.append(f"{system}: job {decision.job_id}: {decision.result}")
        # Forget jobs that are no longer listed.
        self.first_seen = {k: v for k, v in self.first_seen.items() if k in listed}
        try:
            await asyncio.to_thread(_save_seen, s.state_file, dict(self.first_seen))
        except OSError as e:
            report.errors.append(f"cannot write the state file {s.state_file}: {e}")
        return report

    async def _cancel(self, client: fc.FirecrestClient, decision: Decision) -> str:
        result = await cancel_and_confirm(client, decision.system, decision.job_id)
        if result in ("cancelled", "already ended"):
            metrics.orphan_cancelled("reaper")
        if result == "cancelled":
            log.info(
                "Cancelled orphaned job %s (%s) of %s on %s: %s",
                decision.job_id,
                decision.name,
                decision.user,
                decision.system,
                decision.reason,
            )
        else:
            log.warning(
                "Job %s (%s) on %s: %s", decision.job_id, decision.name, decision.system, result
            )
        return result


async def cancel_and_confirm(client: fc.FirecrestClient, system: str, job_id: str) -> str:
    """Cancel one job through the spawner's cancel-and-confirm; one line of outcome.

    Returns ``"cancelled"``, ``"already ended"`` or one line saying why not
    (never raises for FirecREST's answers).
    """
    try:
        cancelled = await confirm.cancel_and_confirm(client, system, job_id)
    except fc.CancelNotAccepted as refused:
        return f"refused: {refused.message}"
    except Exception as e:  # noqa: BLE001 - reported
        return f"failed: {_describe(e)}"
    return "cancelled" if cancelled else "already ended"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AuthError):
        return redact(f"service account: {exc}")
    return fc.describe(exc)


# ----------------------------------------------------------------- output


def _age_text(age: float | None) -> str:
    if age is None:
        return "-"
    age = int(age)
    if age < 120:
        return f"{age}s"
    if age < 7200:
        return f"{age // 60}m"
    return f"{age // 3600}h{(age % 3600) // 60:02d}m"


def format_report(report: Report) -> str:
    """The human-readable report: one line per job of this hub, then a summary."""
    lines = []
    for d in report.decisions:
        what = d.result or ("would cancel" if d.action == "cancel" else "keep")
        lines.append(
            f"{d.system}\t{d.job_id}\t{d.name}\t{d.user}\t{d.state}\tage {_age_text(d.age)}"
            f"\t{what} ({d.reason})"
        )
    to_cancel = [d for d in report.decisions if d.action == "cancel"]
    kept = len(report.decisions) - len(to_cancel)
    if report.dry_run:
        summary = f"dry run: would cancel {len(to_cancel)} job(s), keep {kept}"
    else:
        summary = f"cancelled {len(report.cancelled)} of {len(to_cancel)} orphan(s), kept {kept}"
    lines.append(summary)
    lines.extend(f"error: {e}" for e in report.errors)
    return "\n".join(lines)


# ----------------------------------------------------------------- command line


class _RefuseSecret(argparse.Action):
    """``--client-secret VALUE``: refused without repeating the value anywhere."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(
            "--client-secret is not accepted (command lines are visible to other users): "
            "set SA_CLIENT_SECRET or use --client-secret-file"
        )


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reap",
        # No prefix matching: "--client-secret" must not become "--client-secret-file".
        allow_abbrev=False,
        help="cancel jobs of this hub that belong to no active server",
        description=(
            "List jobs through the service account, ask the hub which servers are "
            "active, and cancel this hub's jobs (by name) that match none and are "
            "older than --min-age. Secrets come from the environment "
            "(SA_CLIENT_SECRET, JUPYTERHUB_API_TOKEN) or --client-secret-file, "
            "never from the command line."
        ),
    )
    env = os.environ.get
    p.add_argument(
        "--firecrest-url",
        default=env("FIRECREST_URL", ""),
        help="FirecREST base URL (default $FIRECREST_URL)",
    )
    p.add_argument(
        "--system",
        action="append",
        dest="systems",
        default=[],
        help="system to reap (repeatable; at least one)",
    )
    p.add_argument(
        "--client-id",
        default=env("SA_CLIENT_ID", ""),
        help="service account client id (default $SA_CLIENT_ID)",
    )
    p.add_argument(
        "--client-secret-file",
        default=None,
        help="file holding the service account secret (default: $SA_CLIENT_SECRET)",
    )
    p.add_argument("--client-secret", action=_RefuseSecret, help=argparse.SUPPRESS)
    p.add_argument(
        "--token-url",
        default=env("SA_AUTH_TOKEN_URL", ""),
        help="token endpoint of the service account (default $SA_AUTH_TOKEN_URL)",
    )
    p.add_argument(
        "--hub-api-url",
        default=env("JUPYTERHUB_API_URL", ""),
        help="the hub API, e.g. http://127.0.0.1:8081/hub/api (default $JUPYTERHUB_API_URL)",
    )
    p.add_argument(
        "--hub-id",
        default=env("FIRECRESTSPAWNER_HUB_ID", "jupyterhub"),
        help="the spawner's hub_id (default $FIRECRESTSPAWNER_HUB_ID, else 'jupyterhub')",
    )
    p.add_argument(
        "--min-age",
        type=parse_duration,
        default=DEFAULT_MIN_AGE,
        help="never cancel a job younger than this (default 10m; 600, 90s, 10m, 2h)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be cancelled")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--every",
        type=parse_duration,
        default=None,
        help="run forever, one cycle every this long (as a JupyterHub service)",
    )
    p.add_argument(
        "--state-file",
        default=None,
        help="remember when queued jobs were first seen across runs (JSON file)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)"
    )
    p.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ReapSettings:
    """Build settings; raises ReaperError naming what is missing."""
    if args.client_secret_file:
        try:
            secret = Path(args.client_secret_file).read_text().strip()
        except OSError as e:
            raise ReaperError(f"cannot read --client-secret-file: {e}") from e
    else:
        secret = environ.get("SA_CLIENT_SECRET", "")
    missing = [
        label
        for label, value in (
            ("--firecrest-url or FIRECREST_URL", args.firecrest_url),
            ("--system", args.systems),
            ("--client-id or SA_CLIENT_ID", args.client_id),
            ("SA_CLIENT_SECRET or --client-secret-file", secret),
            ("--token-url or SA_AUTH_TOKEN_URL", args.token_url),
            ("--hub-api-url or JUPYTERHUB_API_URL", args.hub_api_url),
            ("JUPYTERHUB_API_TOKEN", environ.get("JUPYTERHUB_API_TOKEN", "")),
        )
        if not value
    ]
    if missing:
        raise ReaperError("missing: " + "; ".join(missing))
    return ReapSettings(
        firecrest_url=args.firecrest_url,
        systems=list(dict.fromkeys(args.systems)),
        client_id=args.client_id,
        client_secret=secret,
        token_url=args.token_url,
        hub_api_url=args.hub_api_url,
        hub_api_token=environ["JUPYTERHUB_API_TOKEN"],
        hub_id=args.hub_id,
        min_age=args.min_age,
        dry_run=args.dry_run,
        state_file=Path(args.state_file) if args.state_file else None,
        timeout=args.timeout,
    )


def _print(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict()), flush=True)
    else:
        print(format_report(report), flush=True)


async def _cycle(reaper: Reaper, as_json: bool) -> int:
    try:
        report = await reaper.run_once()
    except ReaperError as e:
        message = f"nothing cancelled: {redact(e)}"
        if as_json:
            print(json.dumps({"dry_run": reaper.settings.dry_run, "error": message}), flush=True)
        else:
            print(f"firecrestspawner reap: {message}", file=sys.stderr, flush=True)
        return 2
    _print(report, as_json)
    return 1 if report.errors else 0


async def _main(settings: ReapSettings, every: float | None, as_json: bool) -> int:
    reaper = Reaper(settings)
    try:
        if every is None:
            return await _cycle(reaper, as_json)
        while True:
            try:
                await _cycle(reaper, as_json)
            except Exception as e:  # noqa: BLE001 - a service keeps going; next cycle retries
                log.error("Reap cycle failed: %s", e)
            # Jitter spreads the load when several hubs reap the same cluster.
            await asyncio.sleep(every * random.uniform(0.9, 1.1))  # noqa: S311 - not crypto
    finally:
        await fc.close_all()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_retry_summary()  # retries counted, not one bare stamina line each
    try:
        settings = settings_from_args(args, os.environ)
    except ReaperError as e:
        print(f"firecrestspawner reap: {e}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main(settings, args.every, args.json))
    return 130


__all__ = [
    "DEFAULT_MIN_AGE",
    "REQUIRED_SCOPES",
    "ActiveServer",
    "Decision",
    "ReapSettings",
    "Reaper",
    "ReaperError",
    "Report",
    "active_server_records",
    "cancel_and_confirm",
    "format_report",
    "hub_slug",
    "job_age",
    "parse_duration",
    "plan",
    "server_key",
]
