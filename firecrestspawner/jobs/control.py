"""Job control of one spawn: submit, wait, cancel, orphans. No traitlets, no hub.

:class:`JobController` acts on a :class:`~firecrestspawner.jobs.record.JobRecord`
through FirecREST clients it gets from a :class:`JobAccess`, with the bounds
of a :class:`JobSettings`. The spawner builds one per operation from its
traits; tests build one against the emulator without a hub.

Rules it keeps:

* A submit is repeated under the same name only when FirecREST provably did
  not act on it (429, 502, 503, connection refused). After an ambiguous
  failure the job is looked up **by name** for ``lookup_window`` seconds
  (a new job may be listed late; one empty answer proves nothing). If it
  never shows up, the name is recorded as an orphan, the token file of that
  attempt is removed, and a new attempt uses a **new name** and token file
  (none when the token went in the job's environment, or its file could not
  be removed: a late job could still start a server with it):
  one spawn never has two jobs under one name, and every name it used is
  either its job or an orphan to cancel.
* Cancel, then confirm: a refused cancel is checked with a fresh read.
* Every wait loop is a :class:`~firecrestspawner.jobs.waiting.Backoff` with a deadline.
* Orphans (by id or by name) are cancelled at the next start and stop; an
  expected failure to cancel is one log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .. import client as fc
from .. import states
from .. import status as status_cache
from ..auth import SessionExpired
from ..errors import HTTPError, spawn_error, user_error
from ..handlers import LEGACY_WRAPPER_HINT, PortReportError, PortWaiter
from ..profiles.script import log_path
from ..redact import redact
from ..request import SpawnRequest
from ..states import JobStatus
from .cancelling import JobCanceller
from .waiting import Backoff, deadline_in

WRAPPER = "firecrestspawner-singleuser"
LOG_TAIL_LINES = 30
LOG_TAIL_BYTES = 4096

#: ``prepare(job_name) -> (script, env)``: render the script and deliver the
#: token for one submit attempt under ``job_name``.
Prepare = Callable[[str], Awaitable[tuple[str, dict[str, str]]]]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


class JobController(JobCanceller):
    """Submit, wait for, cancel and clean up the job of ``record`` (no traitlets, no hub)."""

    # ---------------------------------------------------------------- submit

    async def submit(
        self, request: SpawnRequest, prepare: Prepare, new_name: Callable[[], str]
    ) -> str:
        """Submit the job; the id is in the record before anything else is awaited.

        ``prepare(name)`` renders the script and delivers the token for a
        name; ``new_name()`` gives a fresh name when an ambiguous submit is
        not found (see the module's rules). The user's client is read from
        ``auth_state`` once for all of it (:meth:`holding_user_client`).
        """
        with self.holding_user_client():
            return await self._submit(request, prepare, new_name)

    async def _submit(
        self, request: SpawnRequest, prepare: Prepare, new_name: Callable[[], str]
    ) -> str:
        r = self.record
        attempts = max(1, self.settings.submit_attempts)
        prepared: tuple[str, dict[str, str]] | None = None
        account_checked = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            if prepared is None:
                prepared = await prepare(r.job_name)
            script, env = prepared
            r.submitted_at = time.time()
            self.log.info(
                "Submitting job %s for %s to %s", r.job_name, self.access.owner, request.system
            )
            # Until FirecREST answers, a job may exist under this name (a
            # timeout or a cancellation can interrupt a request already sent).
            r.submit_unknown = True
            if self._on_submitted is not None:
                # Saved before the request: a hub killed while it is in flight
                # finds the name at restart and cancels whatever carries it.
                self._on_submitted()
            try:
                client = await self.user_client()
                job_id = await client.submit_once(
                    request.system,
                    job_name=r.job_name,
                    workdir=request.workdir,
                    script=script,
                    env=env,
                )
            except Exception as e:  # noqa: BLE001 - classified: each branch raises or retries
                more = attempt < attempts
                if not fc.is_transient(e) or isinstance(e, (fc.SubmitRefused, fc.SystemNotFound)):
                    r.submit_unknown = False
                    if (
                        isinstance(e, fc.SubmitRefused)
                        and isinstance(prepare, Preparation)
                        and not account_checked
                    ):
                        # No job exists: the same name may be submitted again.
                        account_checked = True
                        if await prepare.account_changed(e.reason):
                            attempt -= 1
                            prepared = None
                            continue
                    raise self._submit_error(e) from None
                if fc.is_unprocessed(e):
                    r.submit_unknown = False
                    self._log_retry(e, attempt, attempts, "not accepted")
                    if not more:
                        raise self._submit_error(e) from None
                    wait = fc.retry_after(e)
                    pause = min(wait, self.settings.max_retry_after) if wait is not None else None
                    await asyncio.sleep(pause if pause is not None else _jittered(attempt))
                    continue
                self._log_retry(e, attempt, attempts, "failed ambiguously; looking it up by name")
                found = await self._find_submitted(e)
                if found is not None:
                    self.log.info(
                        "Adopted job %s (%s) after an ambiguous submit", found, r.job_name
                    )
                    job_id = found
                else:
                    # A new attempt only if the token cannot reach a late job:
                    # it was in a file of this attempt, and the file is gone.
                    had_file = bool(r.token_file)
                    await self._abandon_name()
                    if not more or not had_file or r.token_file:
                        self.log.warning(
                            "Job %s not confirmed after %d submit attempts; giving up",
                            r.job_name,
                            attempt,
                        )
                        raise self._unconfirmed_error(e) from None
                    old, r.job_name = r.job_name, new_name()
                    self.log.warning(
                        "Submitting again as %s (attempt %d of %d); %s is cancelled if it shows up",
                        r.job_name,
                        attempt + 1,
                        attempts,
                        old,
                    )
                    prepared = None
                    continue
            self._submitted(job_id, request)
            return job_id
        raise AssertionError("unreachable")  # pragma: no cover

    def _submitted(self, job_id: str, request: SpawnRequest) -> None:
        # No await between here and the end of this method.
        r = self.record
        r.submit_unknown = False
        r.ended = False
        r.job_id = job_id
        r.job_status = "PENDING"
        r.log_path = log_path(request.workdir, r.job_name)
        status_cache.get_status(request.firecrest_url, request.system).invalidate(job_id)
        self.log.info("Job %s (%s) submitted for %s", job_id, r.job_name, self.access.owner)
        if self._on_submitted is not None:
            self._on_submitted()

    def _log_retry(self, e: BaseException, attempt: int, attempts: int, what: str) -> None:
        self.log.warning(
            "Submit of %s (correlation id %s) %s (%s), attempt %d of %d",
            self.record.job_name,
            fc.correlation_id_for(self.record.job_name),
            what,
            fc.describe(e),
            attempt,
            attempts,
        )

    async def _find_submitted(self, cause: BaseException) -> str | None:
        """The id of the job a lost submit created, None if it never showed up.

        Looks for ``lookup_window`` seconds, at least twice: a new job may be
        listed late, and Slurm's accounting briefly names a just-ended job
        ``allocation``, so one empty answer proves nothing.
        """
        r = self.record
        try:
            # The lookup belongs to the submit: FirecREST's logs show one correlation id.
            with fc.correlation_id(fc.correlation_id_for(r.job_name)):
                jobs = await self.find_by_name(r.job_name, self.settings.lookup_window)
        except Exception as e:  # noqa: BLE001 - the outcome stays unknown
            raise spawn_error(
                "The batch job could not be submitted: FirecREST did not answer clearly "
                "and could not be asked whether the job exists. Please try again later.",
                reason="submit-unknown",
                log_message=f"Submit of {r.job_name} has an unknown outcome: "
                f"{fc.describe(cause)}; lookup failed: {fc.describe(e)}",
                status_code=503,
            ) from None
        if not jobs:
            return None
        ids = sorted(str(j["jobId"]) for j in jobs)
        if len(ids) > 1:
            self.log.warning("Several jobs named %s: %s; keeping %s", r.job_name, ids, ids[0])
        return ids[0]

    async def find_by_name(
        self, name: str, window: float, *, url: str = "", system: str = ""
    ) -> list[dict]:
        """Jobs called ``name``, looked up until one shows or ``window`` passes."""
        system = system or self.record.system
        client = await self.user_client(url)
        jobs: list[dict] = []
        async for _ in Backoff(deadline_in(window), first=0.5, most=2.0, jitter=0.2):
            jobs = await client.jobs_named(system, name)
            if jobs:
                break
        return jobs

    async def _abandon_name(self) -> None:
        """The name of a lost submit that never showed up: an orphan, its token file removed."""
        r = self.record
        self.log.warning(
            "Job %s did not show up within %.0f s after an ambiguous submit; "
            "recording the name to cancel later",
            r.job_name,
            self.settings.lookup_window,
        )
        self.keep_orphan()
        r.submit_unknown = False
        await self.remove_token_file()

    def _unconfirmed_error(self, cause: BaseException) -> HTTPError:
        return spawn_error(
            "The batch job could not be submitted: FirecREST did not answer and the job "
            "did not show up on the cluster. Please try again later.",
            reason="submit-unknown",
            log_message=f"Submit of {self.record.job_name} not confirmed: {fc.describe(cause)}",
            status_code=503,
        )

    def _submit_error(self, e: BaseException) -> BaseException:
        name = self.record.job_name
        if isinstance(e, SessionExpired):
            self._auth(False)
            return e.spawn_error()
        if isinstance(e, fc.SubmitRefused):
            return spawn_error(
                f"The batch job was refused by the scheduler:\n{e.reason}",
                reason="submit-refused",
                log_message=f"Submit of {name} refused by sbatch: {e.reason}",
                status_code=400,
            )
        if isinstance(e, fc.SystemNotFound):
            return e
        return user_error(
            e,
            f"The batch job could not be submitted: {fc.error_message(e)}",
            reason="submit-failed",
            log_message=f"Submit of {name} failed: {fc.describe(e)}",
            status_code=503 if fc.is_transient(e) else 400,
        )

    # ---------------------------------------------------------------- token file

    def preparer(
        self,
        request: SpawnRequest,
        *,
        token: str,
        render: Callable[[str, str], str],
        env: Callable[[str | None], dict[str, str]],
    ) -> Preparation:
        """What comes before each submit attempt of ``request`` (see :class:`Preparation`)."""
        return Preparation(self, request, token=token, render=render, env=env)

    async def token_directory(self, workdir: str) -> None:
        """Make the private directory of token files (0700), unless already known."""
        directory = _token_dir(workdir)
        with self._token_errors(directory):
            client = await self.user_client()
            if not client.private_dir_known(self.record.system, directory):
                await client.ensure_private_dir(self.record.system, directory)

    async def upload_token(self, workdir: str, token: str) -> str:
        """Write the API token to a 0600 file for the job; the path is in the record."""
        r = self.record
        directory = _token_dir(workdir)
        with self._token_errors(directory):
            client = await self.user_client()
            path = await client.write_private_file(
                r.system, directory, f"{r.job_name}.token", token
            )
        r.token_file = path
        return path

    @contextlib.contextmanager
    def _token_errors(self, directory: str) -> Iterator[None]:
        """A failure of the token file as the user reads it (naming its cause)."""
        try:
            yield
        except SessionExpired as e:
            self._auth(False)
            raise e.spawn_error() from None
        except fc.SystemNotFound:
            raise
        except Exception as e:  # noqa: BLE001 - reported to the user, not swallowed
            # A failure that names its cause (identity provider, FirecREST
            # refusing the token, file access) keeps it.
            raise user_error(
                e,
                "The server cannot start: the access file for the job could not be "
                f"written in {directory} ({fc.error_message(e)}).",
                reason="token-file",
                log_message=f"Token file for {self.record.job_name} failed: {fc.describe(e)}",
                status_code=500,
            ) from None

    async def remove_token_file(self) -> None:
        """Delete the job's token file if the job never read it (best effort, logged).

        The path is kept when removal fails, so ``stop()`` tries again.
        """
        r = self.record
        path = r.token_file
        if not path:
            return
        try:
            # Clean-up: a session revoked since the upload is noticed (the
            # canceller's rules apply to the job, the file is the user's).
            client = await self.user_client(fresh=True)
            removed = await asyncio.wait_for(
                client.remove_file(r.system, path), self.settings.action_timeout
            )
        except Exception as e:  # noqa: BLE001 - logged; the spawn's outcome stands
            self.log.warning(
                "Could not remove the token file %s of job %s: %s", path, r.job_name, fc.describe(e)
            )
            return
        r.token_file = ""
        if removed:
            self.log.info("Removed the unused token file %s of job %s", path, r.job_name)

    async def check_token_file_read(self) -> None:
        """Fail the spawn when the running job never read its token file."""
        r = self.record
        try:
            client = await self.user_client()
            present = await client.file_exists(r.system, r.token_file)
        except Exception as e:  # noqa: BLE001 - a courtesy check; the port wait goes on
            self.log.debug("Could not check the token file of %s: %s", r.job_name, e)
            return
        if present:
            raise spawn_error(
                f"Job {r.job_id} runs but never read its API token file: "
                + LEGACY_WRAPPER_HINT.format(
                    problem="cannot read the API token file",
                    setting="set c.FirecRESTSpawnerBase.api_token_delivery = 'env'",
                )
                + f" (Spawner.cmd must run {WRAPPER} of this version.)",
                reason="legacy-wrapper",
                status_code=500,
            )

    # ---------------------------------------------------------------- waits

    async def wait_until_running(
        self, deadline: float, start_timeout: float, waiter: PortWaiter | None = None
    ) -> None:
        """Wait until FirecREST shows the job running.

        The job is read through the shared cache, with pauses growing from
        ``startup_poll_interval`` to ``startup_poll_max_interval``. The job's
        port report (``waiter``) proves that it runs: it ends the pause, and
        the job is read again from a request made after the report, because
        its host comes from FirecREST, never from the report.
        """
        r = self.record
        s = self.settings
        first = max(0.05, s.startup_poll_interval)
        most = max(first, s.startup_poll_max_interval)
        async for _ in Backoff(deadline, first=first, most=most, wake=_report_wake(waiter)):
            if waiter is not None and waiter.reported_at is not None:
                await self._confirm_running(deadline, start_timeout, waiter)
                return
            status = await self.status(max_age=s.startup_poll_interval)
            if status is JobStatus.RUNNING:
                return
            if status is JobStatus.NOTFOUND:
                await self.raise_job_ended("before the server started")
            if status is JobStatus.UNKNOWN:
                self.log.debug("Job %s status unknown: %s", r.job_id, r.last_error)
        raise self._start_timeout(start_timeout)

    async def _confirm_running(
        self, deadline: float, start_timeout: float, waiter: PortWaiter
    ) -> None:
        """After the job reported: read it from requests made since, until it shows running.

        Normally one read. While FirecREST cannot be read (an outage) or
        does not show the job running yet, the reads go on with backoff
        until the deadline: the job is kept, the spawn goes on.
        """
        r = self.record
        s = self.settings
        _reported_port(waiter, r.job_id)  # a report that cannot work ends the spawn now
        since = waiter.reported_at
        self.log.debug("Job %s reported its port; reading its state", r.job_id)
        first = max(0.05, min(s.startup_poll_interval, 1.0))
        most = max(first, s.startup_poll_max_interval)
        async for attempt in Backoff(deadline, first=first, most=most):
            status = await self.status(max_age=0, since=since)
            if status is JobStatus.RUNNING:
                return
            if status is JobStatus.NOTFOUND:
                await self.raise_job_ended("before the server started")
            level = logging.INFO if attempt == 0 else logging.DEBUG  # once per spawn
            if status is JobStatus.UNKNOWN:
                self.log.log(
                    level,
                    "Job %s reported its port, but its state cannot be read (retrying): %s",
                    r.job_id,
                    r.last_error,
                )
            else:
                self.log.log(
                    level,
                    "Job %s reported its port, but FirecREST shows it %s (retrying)",
                    r.job_id,
                    r.job_status or "unknown",
                )
        raise self._start_timeout(start_timeout)

    def _start_timeout(self, start_timeout: float) -> HTTPError:
        # Our own deadline, whatever the job record says: the caller cancels the job.
        r = self.record
        return spawn_error(
            f"Job {r.job_id} did not start within {start_timeout:.0f} s "
            f"(last state: {r.job_status or r.last_error or 'unknown'}).",
            reason="start-timeout",
            status_code=500,
        )

    async def wait_for_port(self, deadline: float, waiter: PortWaiter) -> int:
        """Wait for the port the job reports, checking the job between waits."""
        r = self.record
        s = self.settings
        check_file_at = deadline_in(s.token_file_check_delay)
        first = max(1.0, s.startup_poll_interval)
        most = max(first, s.startup_poll_max_interval)
        async for _ in Backoff(deadline, first=first, most=most, wake=_report_wake(waiter)):
            port = _reported_port(waiter, r.job_id)
            if port is not None:
                return port
            if r.token_file and asyncio.get_running_loop().time() >= check_file_at:
                check_file_at = deadline  # once per spawn
                await self.check_token_file_read()
            status = await self.status(max_age=s.startup_poll_interval)
            if status is JobStatus.NOTFOUND:
                await self.raise_job_ended("before the server reported its port")
        raise spawn_error(
            f"Job {r.job_id} runs on {r.host}, but the server did not report its port in time.",
            reason="port-timeout",
            status_code=500,
        )

    # ---------------------------------------------------------------- ended jobs

    async def settle_final_state(self) -> None:
        """Read the job a little longer while it is COMPLETING (for a useful message)."""
        r = self.record
        async for _ in Backoff(deadline_in(3.5), first=0.5, most=2.0, factor=2.0):
            if states.phase(states.state_of(r.job or {})) is not states.Phase.ENDING:
                return
            try:
                client = await self.user_client()
                job = await client.job(r.system, r.job_id)
            except Exception as e:  # noqa: BLE001 - the message is a courtesy
                self.log.debug("Final state of job %s unknown: %s", r.job_id, fc.describe(e))
                return
            if job:
                r.job = job

    async def raise_job_ended(self, when: str) -> None:
        r = self.record
        await self.settle_final_state()
        job = r.job or {}
        state = states.state_of(job) or "gone"
        reason = states.reason_of(job)
        code = (job.get("status") or {}).get("exitCode")
        parts = [f"Job {r.job_id} ended {when}: state {state}"]
        if reason:
            parts.append(f"reason {reason}")
        if code is not None:
            parts.append(f"exit code {code}")
        message = ", ".join(parts) + "."
        tail = await self.log_tail()
        if tail:
            message += f"\nLast lines of {r.log_path}:\n{tail}"
        raise spawn_error(
            message,
            reason="job-ended",
            log_message=f"Job {r.job_id} ({r.job_name}) ended {when}: {state} {reason}",
            status_code=500,
        )

    async def log_tail(self) -> str:
        """The redacted tail of the job's output ("" if unreadable)."""
        r = self.record
        try:
            client = await self.user_client()
            meta = await client.metadata(r.system, r.job_id)
            path = str((meta or {}).get("standardOutput") or "") or r.log_path
            if path:
                r.log_path = path
            if not r.log_path:
                return ""
            text = await client.tail(r.system, r.log_path, LOG_TAIL_LINES, LOG_TAIL_BYTES)
        except Exception as e:  # noqa: BLE001 - the tail is a courtesy
            self.log.debug("No log tail for job %s: %s", r.job_id, fc.describe(e))
            return ""
        return redact(text).strip()


class Preparation:
    """``await prepare(job_name)``: the script and environment of one submit attempt.

    The user's default account (when the request sets none) and the token
    file's directory are looked up and made at the same time, once per
    spawn; each is remembered by the user's pooled client, so a later spawn
    asks for neither. Then ``render(job_name, account)`` gives the script, the
    token (if any) is written to the attempt's file, and ``env(token_file)``
    gives the job's environment.
    """

    def __init__(
        self,
        jobs: JobController,
        request: SpawnRequest,
        *,
        token: str,
        render: Callable[[str, str], str],
        env: Callable[[str | None], dict[str, str]],
    ) -> None:
        self.jobs = jobs
        self.request = request
        self.token = token
        self.render = render
        self.env = env
        #: The default account used (None until looked up; "" for none).
        self.account: str | None = None

    @property
    def _needs_account(self) -> bool:
        return not self.request.variables.get("account")

    async def __call__(self, job_name: str) -> tuple[str, dict[str, str]]:
        jobs, request = self.jobs, self.request
        if self.account is None:
            found, _ = await _together(
                jobs.default_account(request.system) if self._needs_account else _nothing(""),
                jobs.token_directory(request.workdir) if self.token else _nothing(None),
            )
            self.account = found or ""
        script = self.render(job_name, self.account)
        token_file = await jobs.upload_token(request.workdir, self.token) if self.token else None
        return script, self.env(token_file)

    async def account_changed(self, refusal: str) -> bool:
        """After the scheduler refused the job over its account: ask FirecREST again.

        True when the default account used (perhaps remembered from an
        earlier spawn) is no longer the user's default, so that the job is
        submitted again with the new one; the new answer is remembered either way.
        """
        if not (self.account and self._needs_account and "account" in refusal.lower()):
            return False
        used = self.account
        fresh = await self.jobs.default_account(self.request.system, fresh=True)
        if fresh == used:
            return False
        self.jobs.log.info(
            "The default account %s of %s on %s was refused; it is now %s: submitting again",
            used,
            self.jobs.access.owner,
            self.request.system,
            fresh or "(none)",
        )
        self.account = fresh
        return True


def _report_wake(waiter: PortWaiter | None) -> Callable[[float], Awaitable[None]]:
    """A Backoff pause that ends early when the job reports (a port, or a failing report)."""

    async def wake(pause: float) -> None:
        if waiter is None or (waiter.reported_at is None and not waiter.open):
            await asyncio.sleep(pause)  # no report can come any more
            return
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError, PortReportError, RuntimeError):
            await waiter.wait(pause)

    return wake


def _reported_port(waiter: PortWaiter, job_id: str) -> int | None:
    """The reported port, None while none came; a spawn error after a report that cannot work."""
    try:
        return waiter.reported()
    except PortReportError as e:
        raise spawn_error(
            f"Job {job_id} cannot serve the notebook: {e}",
            reason="legacy-wrapper",
            status_code=500,
        ) from None


def _token_dir(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/.firecrestspawner"


async def _nothing(value: T) -> T:
    return value


async def _together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results; when one fails the other is cancelled (and awaited) first."""
    one, two = asyncio.ensure_future(first), asyncio.ensure_future(second)
    tasks: list[asyncio.Future[Any]] = [one, two]
    try:
        a, b = await asyncio.gather(one, two)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return a, b


def _jittered(attempt: int) -> float:
    return min(10.0, 0.5 * 2 ** (attempt - 1)) + random.uniform(0, 1.0)  # noqa: S311 - jitter


__all__ = ["WRAPPER", "JobController", "Preparation", "Prepare"]
