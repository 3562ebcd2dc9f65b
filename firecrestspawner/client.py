"""The only module that talks to FirecREST.

* One :class:`FirecrestClient` (wrapping one pyfirecrest ``AsyncFirecrest``)
  per (event loop, FirecREST URL, identity), reused by every spawner; the
  credential behind an identity can be swapped without a new HTTP session.
* Every request has a timeout (pyfirecrest's default is none at all).
* Idempotent reads are retried a bounded number of times with exponential
  backoff and jitter (``stamina``); a 429 waits for its ``Retry-After`` (capped).
  pyfirecrest's own 429 loop is switched off so there is one retry policy.
* Submit is never retried blindly. Every job carries a unique name; after an
  ambiguous failure (timeout, 5xx, dropped connection) the job is looked up by
  name, and only when it is positively absent is the script submitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import stamina
from firecrest import correlation_id
from firecrest.FirecrestException import FirecrestException, UnexpectedStatusException
from firecrest.v2 import AsyncFirecrest
from packaging.version import InvalidVersion, Version

from .redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Statuses after which a read may be repeated.
TRANSIENT_STATUSES = frozenset({408, 424, 429, 500, 502, 503, 504})
#: Statuses that prove the server did not act on the request.
NOT_PROCESSED_STATUSES = frozenset({429, 502, 503})


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
    submit_attempts: int = 3
    #: How long a submitted job may stay invisible in the job list.
    lookup_grace: float = 6.0
    api_version: str = ""
    verify: bool | str = True


class CancelNotAccepted(Exception):
    """A cancel answered 404/500: the job ended already, or the scheduler refused.

    Not retried; the caller confirms with a GET which one it was.
    """

    def __init__(self, cause: BaseException):
        super().__init__(describe(cause))
        self.cause = cause
        self.message = error_message(cause)


class SubmitOutcomeUnknown(Exception):
    """Submit failed ambiguously and the job could not be looked up.

    A job named ``job_name`` may exist; the caller should keep the name so that
    stop() can still find and cancel it.
    """

    def __init__(self, job_name: str, cause: BaseException):
        super().__init__(f"submission of job {job_name} has an unknown outcome: {describe(cause)}")
        self.job_name = job_name
        self.cause = cause


# ----------------------------------------------------------------- errors


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a FirecREST error, None for transport errors."""
    if isinstance(exc, FirecrestException):
        with contextlib.suppress(IndexError, AttributeError):
            return int(exc.responses[-1].status_code)
    return None


def error_message(exc: BaseException) -> str:
    """FirecREST's ``message`` (or the exception text), redacted, one line."""
    text = ""
    if isinstance(exc, FirecrestException):
        with contextlib.suppress(Exception):
            body = exc.responses[-1].json()
            text = str(body.get("message") or "")
    if not text:
        text = str(exc) or type(exc).__name__
    return redact(text.splitlines()[0] if text else "")[:300]


def describe(exc: BaseException) -> str:
    status = http_status(exc)
    prefix = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{prefix}: {error_message(exc)}"


def is_not_found(exc: BaseException) -> bool:
    return http_status(exc) == 404


def is_transient(exc: BaseException) -> bool:
    """True for errors worth repeating an idempotent request for."""
    if isinstance(exc, httpx.TransportError):  # timeouts, resets, dropped connections
        return True
    return http_status(exc) in TRANSIENT_STATUSES


def is_unprocessed(exc: BaseException) -> bool:
    """True when the request provably never reached FirecREST's backend."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True
    return http_status(exc) in NOT_PROCESSED_STATUSES


def retry_after(exc: BaseException) -> float | None:
    """Seconds from ``Retry-After`` (or ``RateLimit-Reset``) of a 429, if any."""
    if not isinstance(exc, FirecrestException) or http_status(exc) != 429:
        return None
    headers = exc.responses[-1].headers
    value = headers.get("Retry-After") or headers.get("RateLimit-Reset")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


# ----------------------------------------------------------------- auth


class _SwappableAuth:
    """Lets a pooled client pick up a new credential object for its identity."""

    def __init__(self, auth: Any):
        self.current = auth

    async def auth_headers(self) -> dict[str, str]:
        fn = getattr(self.current, "auth_headers", None)
        if fn is None:
            token = await asyncio.to_thread(self.current.get_access_token)
            return {"Authorization": f"Bearer {token}"}
        headers = fn()
        if asyncio.iscoroutine(headers) or isinstance(headers, Awaitable):
            headers = await headers
        return dict(headers)


# ----------------------------------------------------------------- TLS


@functools.lru_cache(maxsize=8)
def tls_context(verify: bool | str = True) -> ssl.SSLContext | bool:
    """One TLS context per ``verify`` setting, shared by every HTTP client of the hub.

    Building a context loads the CA bundle, about 20 ms of CPU on the event
    loop; doing it per client or per token request stalls a spawn storm.
    """
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context()


# ----------------------------------------------------------------- client


class FirecrestClient:
    """One FirecREST identity at one URL: bounded, timed, retried calls."""

    def __init__(self, url: str, auth: Any, settings: ClientSettings):
        self.url = url.rstrip("/")
        self.settings = settings
        self._auth = _SwappableAuth(auth)
        self.loop = asyncio.get_running_loop()
        self.raw = AsyncFirecrest(self.url, self._auth, verify=tls_context(settings.verify))
        self.raw.timeout = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout)
        # One retry policy (ours): pyfirecrest would otherwise loop on 429 forever.
        self.raw.num_retries_rate_limit = 0
        self.raw.disable_client_logging = True
        self._version: Version | None = None
        self._version_lock = asyncio.Lock()
        self._version_checked = False

    def set_auth(self, auth: Any) -> None:
        self._auth.current = auth

    # -- retries

    def _retry_hook(self, exc: Exception) -> bool | float:
        if not is_transient(exc):
            return False
        wait = retry_after(exc)
        if wait is not None:
            return min(wait, self.settings.max_retry_after)
        return True

    async def read(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent request with bounded retries, backoff and jitter."""
        s = self.settings
        async for attempt in stamina.retry_context(
            on=self._retry_hook,
            attempts=max(1, s.read_attempts),
            timeout=s.read_deadline,
            wait_initial=s.backoff_initial,
            wait_max=s.backoff_max,
            wait_jitter=s.backoff_jitter,
        ):
            with attempt:
                if attempt.num > 1:
                    log.debug("FirecREST %s: attempt %d", what, attempt.num)
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- version

    async def ensure_version(self) -> Version | None:
        """Pin pyfirecrest's API version once, from config or the server."""
        if self._version_checked:
            return self._version
        async with self._version_lock:
            if self._version_checked:
                return self._version
            text = self.settings.api_version
            if not text:
                try:
                    text = await self.read("server_version", self.raw.server_version) or ""
                except Exception as e:  # noqa: BLE001 - version is an optimisation
                    log.warning(
                        "Could not read the FirecREST version at %s: %s", self.url, describe(e)
                    )
                    return None
            try:
                self._version = Version(text)
                self.raw.set_api_version(text)
            except InvalidVersion:
                self._version = None  # development builds ("2"/"2.x.x"): keep pyfirecrest's default
            self._version_checked = True
            return self._version

    def supports(self, version: str) -> bool:
        return self._version is not None and self._version >= Version(version)

    # -- reads

    async def jobs(self, system: str, *, allusers: bool = False) -> list[dict]:
        """The job list of this identity (or all users) on ``system``."""
        return await self.read("job list", lambda: self.raw.job_info(system, allusers=allusers))

    async def job(self, system: str, job_id: str) -> dict | None:
        """One job by id; None when FirecREST answers 404."""
        try:
            result = await self.read("job", lambda: self.raw.job_info(system, jobid=job_id))
        except UnexpectedStatusException as e:
            if is_not_found(e):
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
        try:
            result = await self.read("job metadata", lambda: self.raw.job_metadata(system, job_id))
        except UnexpectedStatusException as e:
            if is_not_found(e):
                return None
            raise
        return result[0] if result else None

    async def userinfo(self, system: str) -> dict:
        return await self.read("userinfo", lambda: self.raw.userinfo(system))

    async def tail(self, system: str, path: str, lines: int = 30, max_bytes: int = 8192) -> str:
        """The last ``lines`` of a file, at most ``max_bytes`` characters."""
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
                # FirecREST answers 404 (REST mode) or 500 (scancel error) for
                # a job that already ended; the caller confirms with a GET.
                if http_status(e) in (404, 500):
                    raise CancelNotAccepted(e) from e
                raise

        await self.read("cancel", cancel_once)

    async def submit(
        self,
        system: str,
        *,
        job_name: str,
        workdir: str,
        script: str,
        env: dict[str, str],
        account: str | None = None,
    ) -> str:
        """Submit once; after an ambiguous failure adopt the job found by name."""
        s = self.settings
        await self.ensure_version()
        last: BaseException | None = None
        for attempt in range(1, max(1, s.submit_attempts) + 1):
            try:
                with correlation_id(job_name):
                    result = await self.raw.submit(
                        system,
                        workdir,
                        script_str=script,
                        env_vars=env,
                        account=account or None,
                    )
                return str(result["jobId"])
            except Exception as e:
                if not is_transient(e):
                    raise
                last = e
                if is_unprocessed(e):
                    wait = retry_after(e)
                    log.warning(
                        "Submit of %s refused (%s), attempt %d", job_name, describe(e), attempt
                    )
                    await asyncio.sleep(
                        min(wait, s.max_retry_after) if wait is not None else self._backoff(attempt)
                    )
                    continue
                log.warning(
                    "Submit of %s failed ambiguously (%s); looking it up by name",
                    job_name,
                    describe(e),
                )
                found = await self._lookup_after_ambiguous(system, job_name, e)
                if found is not None:
                    log.info("Adopted job %s (%s) after an ambiguous submit", found, job_name)
                    return found
                log.warning("Job %s is not on the cluster; submitting again", job_name)
        raise last if last is not None else RuntimeError("submit_attempts must be >= 1")

    async def _lookup_after_ambiguous(
        self, system: str, job_name: str, cause: BaseException
    ) -> str | None:
        """The id of the job named ``job_name``; None only if positively absent."""
        deadline = time.monotonic() + self.settings.lookup_grace
        delay = 0.5
        while True:
            try:
                matches = await self.jobs_named(system, job_name)
            except Exception as e:  # any failure means "don't know"
                raise SubmitOutcomeUnknown(job_name, cause) from e
            if matches:
                ids = sorted(str(j["jobId"]) for j in matches)
                if len(ids) > 1:
                    log.warning("Several jobs named %s: %s; keeping %s", job_name, ids, ids[0])
                return ids[0]
            if time.monotonic() >= deadline:
                return None
            # Slurm may not list a job right after sbatch: look again briefly.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _backoff(self, attempt: int) -> float:
        import random

        s = self.settings
        base = min(s.backoff_max, s.backoff_initial * (2 ** (attempt - 1)))
        return base + random.uniform(0, s.backoff_jitter)  # noqa: S311 - jitter, not crypto

    async def write_private_file(self, system: str, directory: str, name: str, content: str) -> str:
        """Create ``directory`` (0700) and a 0600 file ``name`` in it; return its path.

        The content goes through FirecREST's upload, never through a command
        line. The local copy lives in a 0700 temporary directory for the
        duration of the upload only.
        """
        if not await self._exists(system, directory):
            await self.read("mkdir", lambda: self.raw.mkdir(system, directory, create_parents=True))
        await self.read("chmod", lambda: self.raw.chmod(system, directory, "700"))
        local_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="fcs-")
        local = os.path.join(local_dir, name)
        try:
            await asyncio.to_thread(_write_private, local, content)
            await self.read(
                "upload", lambda: self.raw.upload(system, local, directory, name, blocking=True)
            )
        finally:
            await asyncio.to_thread(_remove_tree, local_dir)
        path = f"{directory.rstrip('/')}/{name}"
        await self.read("chmod", lambda: self.raw.chmod(system, path, "600"))
        return path

    async def _exists(self, system: str, path: str) -> bool:
        try:
            await self.read("stat", lambda: self.raw.stat(system, path))
        except UnexpectedStatusException as e:
            if is_not_found(e):
                return False
            raise
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.raw.close_session()


def _write_private(path: str, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------- pool

_pool: dict[tuple[int, str, str], FirecrestClient] = {}


def get_client(url: str, identity: str, auth: Any, settings: ClientSettings) -> FirecrestClient:
    """The shared client for (running loop, ``url``, ``identity``).

    ``auth`` replaces the credential of an existing client (a user's refreshed
    session); settings of the first caller win.
    """
    loop = asyncio.get_running_loop()
    key = (id(loop), url.rstrip("/"), identity)
    client = _pool.get(key)
    if client is None or client.loop is not loop or client.raw.is_session_closed:
        client = FirecrestClient(url, auth, settings)
        _pool[key] = client
    else:
        client.set_auth(auth)
    return client


async def close_all() -> None:
    """Close the clients of the running loop (hub shutdown, tests)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _pool if k[0] == loop_id]:
        client = _pool.pop(key)
        await client.close()


__all__ = [
    "CancelNotAccepted",
    "ClientSettings",
    "FirecrestClient",
    "SubmitOutcomeUnknown",
    "close_all",
    "describe",
    "error_message",
    "get_client",
    "http_status",
    "is_not_found",
    "is_transient",
    "retry_after",
]
