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
  A refusal by sbatch (FirecREST's 500 carrying sbatch's error) is definite:
  it is neither retried nor looked up.
* Only a 404 "Job not found" means a job is gone; a 404 "System not found"
  is a configuration error (:class:`SystemNotFound`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import os
import re
import ssl
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
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
#: Longest error text kept from FirecREST (whole multi-line messages otherwise).
MAX_ERROR_CHARS = 1000
#: Namespace of the correlation ids derived from job names
#: (``uuid5(NAMESPACE_URL, "urn:firecrestspawner:correlation-id")``).
CORRELATION_NAMESPACE = uuid.UUID("8e355920-ceb4-5d51-9cf2-9563ca979ab1")

_RELEASE_RE = re.compile(r"\d+\.\d+\.\d+")
#: FirecREST's wrapper around a scheduler command's failure.
_UNEXPECTED_RE = re.compile(
    r"Unexpected Slurm command response\.\s*exit_status:\s*(-?\d+)\s*std_err:", re.IGNORECASE
)
#: sbatch's own words when it refuses a job (it then exits non-zero, no job).
_SBATCH_REFUSAL_RE = re.compile(
    r"(?im)^\s*sbatch:\s*(?:error:|fatal:|unrecognized option|invalid option)"
    r"|Batch job submission failed"
)
#: Exit statuses of a command that was killed or timed out: sbatch may have run.
_KILLED_STATUSES = frozenset({124, 137, 143})
#: Lines that only say what a command is doing (``scancel --verbose``).
_CHATTER_RE = re.compile(
    r"^(?:\w+:\s*)?(?:Terminating (?:job|step)|Signal \d+ to (?:job|step)|Sending signal)\b",
    re.IGNORECASE,
)


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


class SystemNotFound(Exception):
    """FirecREST does not know the system (404 "System not found").

    A configuration error (the spawner's ``req_host`` or a profile's system),
    never evidence that a job ended.
    """

    def __init__(self, system: str, url: str, cause: BaseException | None = None):
        super().__init__(
            f"FirecREST at {url} has no system named {system!r} "
            "(check req_host or the profile's system)"
        )
        self.system = system
        self.url = url
        self.cause = cause


class SubmitRefused(Exception):
    """sbatch refused the job (invalid partition, option, account, script...).

    Definite: no job exists, so the submit is neither repeated nor looked up.
    ``reason`` is sbatch's own text, redacted, informative line first.
    """

    def __init__(self, job_name: str, cause: BaseException):
        self.job_name = job_name
        self.cause = cause
        self.reason = error_message(cause)
        super().__init__(f"sbatch refused job {job_name}: {self.reason}")


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


def _raw_message(exc: BaseException) -> str:
    """FirecREST's ``message`` as sent (unredacted: never log or show it as is)."""
    if isinstance(exc, FirecrestException):
        with contextlib.suppress(Exception):
            body = exc.responses[-1].json()
            return str(body.get("message") or "")
    return ""


def informative_text(text: str) -> str:
    """Multi-line scheduler output with the line that says what went wrong first.

    ``scancel --verbose`` prints ``scancel: Terminating job N`` before its
    error, and FirecREST prefixes the command's stderr with
    ``Unexpected Slurm command response. exit_status:N std_err:``. Lines
    naming an error come first, then the other lines, then progress chatter
    and FirecREST's prefix; nothing is dropped but blank lines.
    """
    header = ""
    m = _UNEXPECTED_RE.search(text)
    if m:
        header = f"{text[: m.start()]}{m.group(0)}".strip()
        header = header.removesuffix("std_err:").strip()
        text = text[m.end() :]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    chatter = [line for line in lines if line not in errors and _CHATTER_RE.match(line)]
    rest = [line for line in lines if line not in errors and line not in chatter]
    ordered = errors + rest + chatter + ([header] if header else [])
    return "\n".join(ordered)


def error_message(exc: BaseException) -> str:
    """FirecREST's whole ``message`` (or the exception text), redacted and bounded.

    Multi-line: the informative line first (see :func:`informative_text`).
    """
    text = _raw_message(exc) or str(exc) or type(exc).__name__
    text = redact(informative_text(text))
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1].rstrip() + "\u2026"
    return text


def describe(exc: BaseException) -> str:
    status = http_status(exc)
    prefix = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{prefix}: {error_message(exc)}"


def _message_is(exc: BaseException, status: int, expected: str) -> bool:
    if http_status(exc) != status:
        return False
    return _raw_message(exc).strip().rstrip(".").lower() == expected.lower()


def is_not_found(exc: BaseException) -> bool:
    """Any 404 (a job, a file, a system or a path): see the two checks below."""
    return http_status(exc) == 404


def is_job_not_found(exc: BaseException) -> bool:
    """A 404 "Job not found" (with or without period): the job is gone or not yet listed."""
    return _message_is(exc, 404, "Job not found")


def is_file_missing(exc: BaseException) -> bool:
    """A 404 from a file operation whose command said "No such file or directory"."""
    return http_status(exc) == 404 and "no such file or directory" in _raw_message(exc).lower()


def is_system_not_found(exc: BaseException) -> bool:
    """A 404 "System not found": the system name is wrong (configuration)."""
    return _message_is(exc, 404, "System not found")


def sbatch_refusal(exc: BaseException) -> str | None:
    """sbatch's error text when FirecREST says sbatch refused the job, else None.

    FirecREST answers a failed ``sbatch`` with 500 ``Unexpected Slurm command
    response. exit_status:N std_err:...``. A non-zero exit with sbatch's own
    error words means no job was created; a killed or timed-out command
    (124, 137, 143) or any other 500 keeps the outcome unknown.
    """
    if http_status(exc) != 500:
        return None
    message = _raw_message(exc)
    m = _UNEXPECTED_RE.search(message)
    if m is None:
        return None
    status = int(m.group(1))
    if status == 0 or status in _KILLED_STATUSES:
        return None
    stderr = message[m.end() :]
    if not _SBATCH_REFUSAL_RE.search(stderr):
        return None
    return stderr


def correlation_id_for(job_name: str) -> str:
    """The ``X-Correlation-ID`` of a job's requests: a UUID derived from its name.

    FirecREST accepts only UUIDs there (anything else: 400, empty body);
    deriving it from the name lets the server's logs be matched to a job.
    """
    return str(uuid.uuid5(CORRELATION_NAMESPACE, job_name))


def release_version(text: str | None) -> Version | None:
    """The version in ``F7T-AppVersion`` when it is a release ``X.Y.Z``, else None.

    Builds from FirecREST's main branch answer ``2.x.x`` (which pyfirecrest's
    ``server_version()`` turns into ``2``); ``2``, ``2.5``, ``dev`` or an empty
    header say nothing about which features exist and must never pin an old API.
    """
    text = (text or "").strip()
    if not _RELEASE_RE.fullmatch(text):
        return None
    try:
        return Version(text)
    except InvalidVersion:  # pragma: no cover - the pattern is a valid version
        return None


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


class _AsyncFirecrest(AsyncFirecrest):
    """pyfirecrest's client, without re-pinning from a non-release ``F7T-AppVersion``.

    pyfirecrest reads the header of every response and sets its API version
    from anything ``packaging`` parses: ``2`` or ``2.5`` would pin an old API,
    after which ``allusers``, ``account``, partitions and reservations raise
    ``NotImplementedOnAPIversion``. Only a release ``X.Y.Z`` may set it.
    """

    def _update_api_version_from_response(self, response: httpx.Response) -> None:
        header = response.headers.get("f7t-appversion")
        if header is not None and release_version(header) is None:
            return
        super()._update_api_version_from_response(response)


class FirecrestClient:
    """One FirecREST identity at one URL: bounded, timed, retried calls."""

    def __init__(self, url: str, auth: Any, settings: ClientSettings):
        self.url = url.rstrip("/")
        self.settings = settings
        self._auth = _SwappableAuth(auth)
        self.loop = asyncio.get_running_loop()
        self.raw = _AsyncFirecrest(self.url, self._auth, verify=tls_context(settings.verify))
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
                try:
                    text = await self.read("server_version", self.raw.server_version) or ""
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
        """Submit once; after an ambiguous failure adopt the job found by name.

        Raises :class:`SubmitRefused` when sbatch refused the job (definite,
        not repeated), :class:`SystemNotFound` for an unknown system,
        :class:`SubmitOutcomeUnknown` when the job could not be looked up, and
        the last error when every attempt failed and no job exists.
        """
        s = self.settings
        await self.ensure_version()
        attempts = max(1, s.submit_attempts)
        cid = correlation_id_for(job_name)
        last: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                with correlation_id(cid), self._system_checked(system):
                    result = await self.raw.submit(
                        system,
                        workdir,
                        script_str=script,
                        env_vars=env,
                        account=account or None,
                    )
                return str(result["jobId"])
            except Exception as e:
                if sbatch_refusal(e) is not None:
                    raise SubmitRefused(job_name, e) from e
                if not is_transient(e):
                    raise
                last = e
                again = attempt < attempts
                if is_unprocessed(e):
                    log.warning(
                        "Submit of %s (correlation id %s) not accepted (%s), attempt %d of %d%s",
                        job_name,
                        cid,
                        describe(e),
                        attempt,
                        attempts,
                        "" if again else "; giving up",
                    )
                    if again:
                        wait = retry_after(e)
                        await asyncio.sleep(
                            min(wait, s.max_retry_after)
                            if wait is not None
                            else self._backoff(attempt)
                        )
                    continue
                log.warning(
                    "Submit of %s (correlation id %s) failed ambiguously (%s); "
                    "looking it up by name",
                    job_name,
                    cid,
                    describe(e),
                )
                with correlation_id(cid):  # the lookup belongs to the same submit
                    found = await self._lookup_after_ambiguous(system, job_name, e)
                if found is not None:
                    log.info("Adopted job %s (%s) after an ambiguous submit", found, job_name)
                    return found
                if again:
                    log.warning(
                        "Job %s is not on the cluster; submitting again (attempt %d of %d)",
                        job_name,
                        attempt + 1,
                        attempts,
                    )
                else:
                    log.warning(
                        "Job %s is not on the cluster after %d submit attempts; giving up",
                        job_name,
                        attempts,
                    )
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
        duration of the upload only. If the file cannot be made private after
        the upload, it is removed again.
        """
        with self._system_checked(system):
            if not await self.file_exists(system, directory):
                await self.read(
                    "mkdir", lambda: self.raw.mkdir(system, directory, create_parents=True)
                )
            await self.read("chmod", lambda: self.raw.chmod(system, directory, "700"))
            local_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="fcs-")
            local = os.path.join(local_dir, name)
            try:
                await asyncio.to_thread(_write_private, local, content)
                await self.read(
                    "upload",
                    lambda: self.raw.upload(system, local, directory, name, blocking=True),
                )
            finally:
                await asyncio.to_thread(_remove_tree, local_dir)
            path = f"{directory.rstrip('/')}/{name}"
            try:
                await self.read("chmod", lambda: self.raw.chmod(system, path, "600"))
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.remove_file(system, path)
                raise
            return path

    async def remove_file(self, system: str, path: str) -> bool:
        """Delete ``path``; False when it was not there (404 "No such file or directory").

        Bounded by ``read_deadline`` as a whole, including pyfirecrest's
        fallback to a transfer job after a 408.
        """
        deadline = self.settings.read_deadline
        try:
            with self._system_checked(system):
                await asyncio.wait_for(
                    self.read("rm", lambda: self.raw.rm(system, path, timeout=deadline)),
                    deadline,
                )
        except UnexpectedStatusException as e:
            if is_file_missing(e):
                return False
            raise
        return True

    async def file_exists(self, system: str, path: str) -> bool:
        """Whether ``path`` exists on ``system`` (a stat; 404 means no)."""
        try:
            with self._system_checked(system):
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
    "SubmitRefused",
    "SystemNotFound",
    "close_all",
    "correlation_id_for",
    "describe",
    "error_message",
    "get_client",
    "http_status",
    "informative_text",
    "is_file_missing",
    "is_job_not_found",
    "is_not_found",
    "is_system_not_found",
    "is_transient",
    "release_version",
    "retry_after",
    "sbatch_refusal",
]
