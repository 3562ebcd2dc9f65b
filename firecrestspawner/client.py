"""The only module that talks to FirecREST.

* One :class:`FirecrestClient` (wrapping one pyfirecrest ``AsyncFirecrest``)
  per (event loop, FirecREST URL, identity), reused by every spawner; the
  credential behind an identity can be swapped without a new HTTP session.
* Every request has a timeout (pyfirecrest's default is none at all).
* Idempotent reads are retried a bounded number of times with exponential
  backoff and jitter; a 429 waits for its ``Retry-After`` (capped), and so do
  the client's later requests (:mod:`firecrestspawner.retry`). pyfirecrest's
  own 429 loop is switched off so there is one retry policy.
* A 401 (FirecREST refused the access token: expired early, signed with a key
  it no longer knows) forgets that token and repeats the request once with a
  fresh one, for every request including submit (a 401 is answered before
  anything runs); a second refusal is :class:`FirecrestAuthFailed`.
* Submit is one request (:meth:`FirecrestClient.submit_once`), never retried
  here: the caller, which knows the job's name and can save it first, decides
  what an ambiguous failure means (the spawner's
  :class:`~firecrestspawner.jobs.control.JobController`, the doctor's
  ``doctor.jobs.submit``: look the job up by name, never a second job under
  one name). A refusal by the scheduler (FirecREST's 500 carrying sbatch's
  error, or a 403 for a QOS limit) is :class:`SubmitRefused`, definite.
* Only a 404 "Job not found" means a job is gone; a 404 "System not found"
  is a configuration error (:class:`SystemNotFound`).

What FirecREST's answers mean (error classes, classifiers) is in
:mod:`firecrestspawner.firecrest_errors`; every name of it is importable from
here as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from firecrest import correlation_id
from firecrest.FirecrestException import FirecrestException, UnexpectedStatusException
from packaging.version import Version

from .client_files import FileOperations
from .firecrest_errors import (
    CORRELATION_NAMESPACE,
    MAX_ERROR_CHARS,
    NOT_PROCESSED_STATUSES,
    TRANSIENT_STATUSES,
    CancelNotAccepted,
    FileAccessFailed,
    FirecrestAuthFailed,
    SubmitOutcomeUnknown,
    SubmitRefused,
    SystemNotFound,
    bearer_token,
    correlation_id_for,
    describe,
    error_message,
    http_status,
    informative_text,
    is_auth_refused,
    is_file_missing,
    is_job_not_found,
    is_not_found,
    is_system_not_found,
    is_transient,
    is_unprocessed,
    release_version,
    retry_after,
    sbatch_refusal,
)
from .pyfirecrest_adapter import SwappableAuth, VersionSafeAsyncFirecrest, tls_context
from .remembered import Remembered
from .retry import RetryAfterGate, retrying

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ClientSettings:
    """Timeouts and retry bounds for one client (from the spawner's traits)."""

    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    read_attempts: int = 4
    read_deadline: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    backoff_jitter: float = 1.0
    max_retry_after: float = 30.0
    #: How long a submitted job may stay invisible in the job list (the doctor's
    #: lookup by name after an ambiguous submit).
    lookup_grace: float = 6.0
    api_version: str = ""
    verify: bool | str = True
    #: How long a private directory made (or found) 0700 is trusted without a check.
    private_dir_ttl: float = 3600.0


# ----------------------------------------------------------------- client


class FirecrestClient(FileOperations):
    """One FirecREST identity at one URL: bounded, timed, retried calls."""

    def __init__(self, url: str, auth: Any, settings: ClientSettings, identity: str = ""):
        self.url = url.rstrip("/")
        self.settings = settings
        #: Who the credential is (``user:<name>``, ``sa:<client id>``), for log lines.
        self.identity = identity
        #: When FirecREST may be asked again after a 429 (shared by every request).
        self.gate = RetryAfterGate(settings.max_retry_after)
        #: Requests repeated with a fresh token after a 401 (tests, metrics).
        self.token_retries = 0
        self._auth = SwappableAuth(auth)
        self.loop = asyncio.get_running_loop()
        self.raw = VersionSafeAsyncFirecrest(
            self.url, self._auth, verify=tls_context(settings.verify)
        )
        self.raw.timeout = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout)
        # One retry policy (ours): pyfirecrest would otherwise loop on 429 forever.
        self.raw.num_retries_rate_limit = 0
        self.raw.disable_client_logging = True
        self._version: Version | None = None
        self._version_lock = asyncio.Lock()
        self._version_checked = False
        #: What does not change per spawn (default account, private directories).
        self.remembered = Remembered()

    def set_auth(self, auth: Any) -> None:
        self._auth.current = auth

    # -- retries

    async def read(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent request with bounded retries, backoff, jitter and Retry-After."""
        s = self.settings
        return await retrying(
            what,
            lambda: self._authenticated(what, fn),
            url=self.url,
            gate=self.gate,
            attempts=s.read_attempts,
            deadline=s.read_deadline,
            wait_initial=s.backoff_initial,
            wait_max=s.backoff_max,
            wait_jitter=s.backoff_jitter,
        )

    async def _authenticated(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()``; after a 401, once more with a fresh access token.

        The refused token is forgotten only if the credential still holds it,
        so that a burst of requests refused together fetches one new token.
        """
        try:
            return await fn()
        except FirecrestException as e:
            if not is_auth_refused(e):
                raise
            refused: FirecrestException = e
        if not self._auth.invalidate(bearer_token(refused)):
            raise FirecrestAuthFailed(
                self.url, refused, identity=self.identity, retried=False
            ) from refused
        self.token_retries += 1
        log.info(
            "FirecREST at %s refused the access token of %s for %s (%s); "
            "retrying once with a new token",
            self.url,
            self.identity or "this client",
            what,
            describe(refused),
        )
        try:
            return await fn()
        except FirecrestException as e:
            if is_auth_refused(e):
                raise FirecrestAuthFailed(self.url, e, identity=self.identity) from e
            raise

    @contextlib.contextmanager
    def _system_checked(self, system: str) -> Iterator[None]:
        """Turn a 404 "System not found" into :class:`SystemNotFound`."""
        try:
            yield
        except UnexpectedStatusException as e:
            if is_system_not_found(e):
                raise SystemNotFound(system, self.url, e) from e
            raise

    # -- version

    async def ensure_version(self) -> Version | None:
        """Pin pyfirecrest's API version once, from config or the server.

        Only a release version ``X.Y.Z`` is pinned; a development build
        (``2.x.x``, which pyfirecrest reports as ``2``) or a configured
        ``2``/``dev`` keeps pyfirecrest's default, the newest API.
        """
        if self._version_checked:
            return self._version
        async with self._version_lock:
            if self._version_checked:
                return self._version
            text = self.settings.api_version
            source = "configured"
            if not text:
                source = "reported by the server"
                # One question per URL, not per identity: a user's first
                # spawn does not ask again what another's already learned.
                if self.url in _server_versions:
                    text = _server_versions[self.url]
                else:
                    try:
                        text = await self._ask_version()
                    except Exception as e:  # noqa: BLE001 - version is an optimisation
                        log.warning(
                            "Could not read the FirecREST version at %s: %s", self.url, describe(e)
                        )
                        return None
            self._version = release_version(text)
            if self._version is not None:
                self.raw.set_api_version(str(self._version))
            elif text:
                log.info(
                    "FirecREST version %r %s at %s is not a release; assuming the newest API",
                    text,
                    source,
                    self.url,
                )
            self._version_checked = True
            return self._version

    async def _ask_version(self) -> str:
        """The server's version, asked once for all the clients of this URL asking now."""
        key = (id(self.loop), self.url)
        task = _version_asks.get(key)
        if task is None:
            task = asyncio.ensure_future(self.read("server_version", self.raw.server_version))
            _version_asks[key] = task

            def done(t: asyncio.Future[Any]) -> None:
                _version_asks.pop(key, None)
                if not t.cancelled() and t.exception() is None:
                    _server_versions[self.url] = str(t.result() or "")

            task.add_done_callback(done)
        return str(await asyncio.shield(task) or "")

    def supports(self, version: str) -> bool:
        return self._version is not None and self._version >= Version(version)

    # -- reads

    async def jobs(self, system: str, *, allusers: bool = False) -> list[dict]:
        """The job list of this identity (or all users) on ``system``."""
        with self._system_checked(system):
            return await self.read("job list", lambda: self.raw.job_info(system, allusers=allusers))

    async def job(self, system: str, job_id: str) -> dict | None:
        """One job by id; None only when FirecREST answers 404 "Job not found".

        Any other 404 (a wrong system: :class:`SystemNotFound`; a wrong URL)
        is raised: it says nothing about the job.
        """
        try:
            with self._system_checked(system):
                result = await self.read("job", lambda: self.raw.job_info(system, jobid=job_id))
        except UnexpectedStatusException as e:
            if is_job_not_found(e):
                return None
            raise
        return result[0] if result else None

    async def jobs_named(self, system: str, name: str) -> list[dict]:
        """Jobs called ``name`` (filtered here too: old servers ignore ``name``)."""
        await self.ensure_version()
        if self.supports("2.6.0"):
            found = await self.read("job lookup", lambda: self.raw.job_info(system, name=name))
        else:
            found = await self.jobs(system)
        return [j for j in found if j.get("name") == name]

    async def metadata(self, system: str, job_id: str) -> dict | None:
        """A job's metadata; None only when FirecREST answers 404 "Job not found"."""
        try:
            with self._system_checked(system):
                result = await self.read(
                    "job metadata", lambda: self.raw.job_metadata(system, job_id)
                )
        except UnexpectedStatusException as e:
            if is_job_not_found(e):
                return None
            raise
        return result[0] if result else None

    async def userinfo(self, system: str) -> dict:
        with self._system_checked(system):
            return await self.read("userinfo", lambda: self.raw.userinfo(system))

    async def tail(self, system: str, path: str, lines: int = 30, max_bytes: int = 8192) -> str:
        """The last ``lines`` of a file, at most ``max_bytes`` characters."""
        with self._system_checked(system):
            out = await self.read("tail", lambda: self.raw.tail(system, path, num_lines=lines))
        content = out.get("content", "") if isinstance(out, dict) else str(out or "")
        return content[-max_bytes:]

    # -- writes

    async def cancel(self, system: str, job_id: str) -> None:
        """Cancel a job; :class:`CancelNotAccepted` for 404/500 (maybe gone).

        Cancelling twice is harmless, so transient errors are retried.
        """

        async def cancel_once() -> None:
            try:
                await self.raw.cancel_job(system, job_id)
            except UnexpectedStatusException as e:
                if is_system_not_found(e):
                    raise SystemNotFound(system, self.url, e) from e
                # FirecREST answers 404 (REST mode) or 500 (scancel error) for
                # a job that already ended; the caller confirms with a GET.
                if http_status(e) in (404, 500):
                    raise CancelNotAccepted(e) from e
                raise

        await self.read("cancel", cancel_once)

    async def submit_once(
        self,
        system: str,
        *,
        job_name: str,
        workdir: str,
        script: str,
        env: dict[str, str],
        account: str | None = None,
    ) -> str:
        """One submit request, no retry and no lookup: the caller decides.

        Only a 401 is repeated, once, with a fresh token (FirecREST answers it
        before anything runs). Raises :class:`SubmitRefused` when the
        scheduler refused the job, :class:`SystemNotFound` for an unknown
        system, :class:`FirecrestAuthFailed` when the token is refused again,
        else the request's error as it is (:func:`is_unprocessed` tells
        whether FirecREST provably did not act on it).
        """
        await self.ensure_version()
        try:
            with correlation_id(correlation_id_for(job_name)), self._system_checked(system):
                result = await self._authenticated(
                    "submit",
                    lambda: self.raw.submit(
                        system, workdir, script_str=script, env_vars=env, account=account or None
                    ),
                )
        except Exception as e:
            if sbatch_refusal(e) is not None:
                raise SubmitRefused(job_name, e) from e
            raise
        return str(result["jobId"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.raw.close_session()


# ----------------------------------------------------------------- pool

_pool: dict[tuple[int, str, str], FirecrestClient] = {}
#: What each FirecREST URL answered for its version (kept until :func:`close_all`).
_server_versions: dict[str, str] = {}
_version_asks: dict[tuple[int, str], asyncio.Future[Any]] = {}


def get_client(url: str, identity: str, auth: Any, settings: ClientSettings) -> FirecrestClient:
    """The shared client for (running loop, ``url``, ``identity``).

    ``auth`` replaces the credential of an existing client (a user's refreshed
    session); settings of the first caller win.
    """
    loop = asyncio.get_running_loop()
    key = (id(loop), url.rstrip("/"), identity)
    client = _pool.get(key)
    if client is None or client.loop is not loop or client.raw.is_session_closed:
        client = FirecrestClient(url, auth, settings, identity)
        _pool[key] = client
    else:
        client.set_auth(auth)
    return client


async def close_all() -> None:
    """Close the clients of the running loop (hub shutdown, tests)."""
    loop_id = id(asyncio.get_running_loop())
    _server_versions.clear()
    for key in [k for k in _pool if k[0] == loop_id]:
        client = _pool.pop(key)
        await client.close()


__all__ = [
    "CORRELATION_NAMESPACE",
    "MAX_ERROR_CHARS",
    "NOT_PROCESSED_STATUSES",
    "TRANSIENT_STATUSES",
    "CancelNotAccepted",
    "ClientSettings",
    "FileAccessFailed",
    "FirecrestAuthFailed",
    "FirecrestClient",
    "SubmitOutcomeUnknown",
    "SubmitRefused",
    "SystemNotFound",
    "close_all",
    "correlation_id_for",
    "describe",
    "error_message",
    "get_client",
    "http_status",
    "informative_text",
    "is_auth_refused",
    "is_file_missing",
    "is_job_not_found",
    "is_not_found",
    "is_system_not_found",
    "is_transient",
    "is_unprocessed",
    "release_version",
    "retry_after",
    "sbatch_refusal",
    "tls_context",
]
