"""Job control, part one: who acts (:class:`JobAccess`), within which bounds
(:class:`JobSettings`), and the job's state read through the shared status cache.

:class:`JobReader` is the base of :class:`~firecrestspawner.jobs.control.JobController`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import client as fc
from .. import states
from .. import status as status_cache
from ..auth import AuthError
from ..states import JobStatus
from .record import JobRecord


@dataclass(frozen=True)
class JobSettings:
    """Bounds of job control (the spawner's traits of the same names)."""

    startup_poll_interval: float = 0.5
    startup_poll_max_interval: float = 2.0
    status_max_age: float = 10.0
    not_found_grace_period: float = 60.0
    unknown_grace_period: float = 600.0
    stop_timeout: float = 60.0
    token_file_check_delay: float = 30.0
    #: Bound of one clean-up action (a cancel, a file removal).
    action_timeout: float = 60.0
    submit_attempts: int = 3
    max_retry_after: float = 30.0
    #: How long a job is looked up by name after an ambiguous submit.
    lookup_window: float = 60.0
    #: How long the user's default account is reused without asking FirecREST.
    default_account_ttl: float = 600.0

    @classmethod
    def from_traits(cls, config: Any) -> JobSettings:
        """From an object with the spawner's traits (a spawner, or its configuration)."""
        same = (
            "startup_poll_interval",
            "startup_poll_max_interval",
            "status_max_age",
            "not_found_grace_period",
            "unknown_grace_period",
            "stop_timeout",
            "token_file_check_delay",
        )
        return cls(
            **{name: getattr(config, name) for name in same},
            action_timeout=config.firecrest_timeout * 2,
            submit_attempts=config.firecrest_submit_attempts,
            max_retry_after=config.firecrest_max_retry_after,
            # A new job may be listed late (8-15 s measured): as long as
            # "not found" means pending after a submit.
            lookup_window=config.not_found_grace_period,
            default_account_ttl=getattr(config, "default_account_ttl", cls.default_account_ttl),
        )


def client_settings(config: Any) -> fc.ClientSettings:
    """FirecREST client bounds from an object with the spawner's ``firecrest_*`` traits."""
    return fc.ClientSettings(
        request_timeout=config.firecrest_timeout,
        connect_timeout=min(10.0, config.firecrest_timeout),
        read_attempts=config.firecrest_read_attempts,
        read_deadline=config.firecrest_read_deadline,
        max_retry_after=config.firecrest_max_retry_after,
        lookup_grace=min(config.not_found_grace_period, 10.0),
        api_version=config.firecrest_api_version,
        verify=config.firecrest_verify,
    )


@dataclass
class JobAccess:
    """How the controller reaches FirecREST for one user."""

    owner: str
    #: ``await user(url)``: the user's client (raises ``AuthError`` without a session).
    user: Callable[[str], Awaitable[fc.FirecrestClient]]
    #: ``await service(url)``: the service account's client; None if not configured.
    service: Callable[[str], Awaitable[fc.FirecrestClient]] | None = None
    service_identity: str = ""
    poll_with_service: bool = True
    stop_with_service: bool = True
    #: Told whether the user's credential worked (``access_token_is_valid``).
    on_auth: Callable[[bool], None] | None = None


class JobReader:
    """The job of ``record``: clients to act with, and its state (no traitlets)."""

    def __init__(
        self,
        record: JobRecord,
        access: JobAccess,
        settings: JobSettings,
        log: logging.Logger | logging.LoggerAdapter[Any],
        *,
        classify: Callable[[], JobStatus] | None = None,
        on_change: Callable[[], None] | None = None,
        on_submitted: Callable[[], None] | None = None,
    ) -> None:
        self.record = record
        self.access = access
        self.settings = settings
        self.log = log
        self._classify = classify or self.default_classify
        self._on_change = on_change
        self._on_submitted = on_submitted
        #: The user's client held for the requests of one submit (see :meth:`holding_user_client`).
        self._held: dict[str, asyncio.Future[fc.FirecrestClient]] | None = None

    # ---------------------------------------------------------------- clients

    async def user_client(self, url: str = "", *, fresh: bool = False) -> fc.FirecrestClient:
        """The user's pooled client; reads ``auth_state`` unless held for a submit.

        ``fresh``: read ``auth_state`` again even while a client is held (what
        clean-up uses, so that a session revoked or renewed since is noticed).
        """
        url = url or self.record.firecrest_url
        held = self._held
        try:
            if held is None or fresh:
                client = await self.access.user(url)
            else:
                # Concurrent askers (the account and the directory) share one read.
                pending = held.get(url)
                if pending is None:
                    pending = held[url] = asyncio.ensure_future(self.access.user(url))
                    pending.add_done_callback(_retrieved)
                try:
                    client = await asyncio.shield(pending)
                except BaseException:
                    if pending.done() and held.get(url) is pending:
                        del held[url]  # a failed read is not kept
                    raise
        except BaseException:
            self._auth(False)
            raise
        self._auth(True)
        return client

    @contextlib.contextmanager
    def holding_user_client(self) -> Iterator[None]:
        """Within: one ``auth_state`` read for the user's requests (not clean-up's).

        Each read is a decryption in a thread, ~4 per submit otherwise. The
        credential object is the same either way (one per user, kept by
        :mod:`~firecrestspawner.auth`), and it reads ``auth_state`` again by
        itself when the identity provider refuses its refresh token (after a
        401). What a held client does not see is a session cleared meanwhile:
        clean-up asks with ``fresh=True``.
        """
        if self._held is not None:  # nested: the outer hold decides
            yield
            return
        self._held = {}
        try:
            yield
        finally:
            self._held = None

    def _auth(self, ok: bool) -> None:
        if self.access.on_auth is not None:
            self.access.on_auth(ok)

    async def as_canceller(
        self, action: Callable[[fc.FirecrestClient], Awaitable[Any]], url: str = ""
    ) -> Any:
        """``action(client)`` as the user, or as the service account when the
        user's session has expired and the policy allows it."""
        try:
            return await action(await self.user_client(url, fresh=True))
        except AuthError as e:
            self._auth(False)
            if not (self.access.stop_with_service and self.access.service is not None):
                raise
            self.log.info("Acting for %s through the service account: %s", self.access.owner, e)
            return await action(await self.access.service(url or self.record.firecrest_url))

    # ---------------------------------------------------------------- status

    async def observe(self, max_age: float, since: float | None = None) -> status_cache.Observation:
        """The job through the shared cache; ``since`` (``time.monotonic``): fetched after it."""
        r = self.record
        cache = status_cache.get_status(r.firecrest_url, r.system)
        job_id, system = r.job_id, r.system
        try:
            if self.access.poll_with_service and self.access.service is not None:
                client = await self.access.service(r.firecrest_url)
                identity, allusers = self.access.service_identity, True
            else:
                client = await self.user_client()
                identity, allusers = f"user:{self.access.owner}", False
        except Exception as e:  # noqa: BLE001 - no credential: state unknown
            return status_cache.Observation(None, time.monotonic(), e)
        return await cache.observe(
            job_id,
            identity=identity,
            list_jobs=lambda: client.jobs(system, allusers=allusers),
            get_job=lambda: client.job(system, job_id),
            max_age=max_age,
            since=since,
        )

    async def status(
        self, max_age: float | None = None, *, since: float | None = None
    ) -> JobStatus:
        """Observe the job (shared cache) and update the record.

        ``since`` (``time.monotonic``): from a request that started after it.
        """
        if not self.record.job_id:
            return JobStatus.NOTFOUND
        age = self.settings.status_max_age if max_age is None else max_age
        result = self.apply(await self.observe(age, since))
        if self._on_change is not None:
            self._on_change()
        return result

    def apply(self, obs: status_cache.Observation) -> JobStatus:
        """Turn one observation into a JobStatus and update the record."""
        r = self.record
        if obs.error is not None:
            described = fc.describe(obs.error)
            if isinstance(obs.error, fc.SystemNotFound) and described != r.last_error:
                # A configuration error, not a job that ended: keep the job, tell the operator.
                self.log.error(
                    "Status of job %s (%s) of %s unknown: %s",
                    r.job_id,
                    r.job_name,
                    self.access.owner,
                    described,
                )
            r.last_error = described
            if r.unknown_since is None:
                r.unknown_since = time.monotonic()
            return JobStatus.UNKNOWN
        r.unknown_since = None
        r.last_error = ""
        if obs.job is not None:
            r.seen = True
            r.job = obs.job
            r.job_status = states.job_status_string(
                states.state_of(obs.job), str(obs.job.get("nodes") or "")
            )
            result = self._classify()
            if result is JobStatus.NOTFOUND:
                r.ended = True
            return result
        # FirecREST does not know the job.
        recent = time.time() - r.submitted_at < self.settings.not_found_grace_period
        if not r.seen and r.submitted_at and recent:
            return JobStatus.PENDING
        r.ended = True
        return JobStatus.NOTFOUND

    def default_classify(self) -> JobStatus:
        """The state regexes of the record (a profile's or the defaults) and the state table."""
        r = self.record
        return states.classify(
            r.job_status,
            pending_re=r.regexes.pending,
            running_re=r.regexes.running,
            unknown_re=r.regexes.unknown,
        )

    async def default_account(self, system: str, *, fresh: bool = False) -> str:
        """The user's default Slurm account on ``system``, or "" to let Slurm choose.

        FirecREST's ``userinfo`` lists the accounts from ``sacctmgr`` with one
        marked ``default``. The Unix group is not an account: without
        accounts, no ``--account`` is better than a refused or wrong one. An
        answer is reused for ``default_account_ttl`` seconds (kept by the
        user's pooled client) unless ``fresh``; a failed lookup is not.
        """
        try:
            client = await self.user_client()
            key = ("default-account", system)
            known = None if fresh else client.remembered.get(key, self.settings.default_account_ttl)
            if known is not None:
                return str(known)
            info = await client.userinfo(system)
        except fc.SystemNotFound:
            raise
        except Exception as e:  # noqa: BLE001 - no account is a valid outcome
            self.log.warning("No default account for %s on %s: %s", self.access.owner, system, e)
            return ""
        found = ""
        for account in (info or {}).get("accounts") or []:
            if isinstance(account, dict) and account.get("default") and account.get("name"):
                found = str(account["name"])
                break
        client.remembered.put(key, found)
        return found

    def warn_if_unknown_too_long(self) -> None:
        r = self.record
        if r.unknown_since is None:
            return
        now = time.monotonic()
        grace = self.settings.unknown_grace_period
        if now - r.unknown_since < grace or now - r.unknown_warned_at < grace:
            return
        r.unknown_warned_at = now
        self.log.warning(
            "Status of job %s (%s) on %s unknown for %.0f s (%s); still treating it as running",
            r.job_id,
            r.job_name,
            r.system,
            now - r.unknown_since,
            r.last_error,
        )


def _retrieved(future: asyncio.Future[Any]) -> None:
    # A read whose askers were all cancelled: its error is not "never retrieved".
    if not future.cancelled():
        future.exception()


__all__ = ["JobAccess", "JobReader", "JobSettings", "client_settings"]
