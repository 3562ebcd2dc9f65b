"""Job control, part two: cancel and confirm, cancel by name, orphans, stop.

An orphan is a job no spawn tracks any more (see :mod:`~firecrestspawner.jobs.record`);
orphans are cancelled at the next start and stop, and an expected failure to
cancel is one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import time

from .. import client as fc
from .. import metrics, states
from .. import status as status_cache
from ..errors import HTTPError, spawn_error, user_error
from ..states import JobStatus
from .confirm import cancel_and_confirm
from .reading import JobReader
from .record import Orphan
from .waiting import Backoff, deadline_in


class JobCanceller(JobReader):
    """Cancelling the job of ``record`` and its orphans."""

    async def cancel(self) -> None:
        """Cancel the job, then confirm: a refused cancel of a job still queued or
        running is an error (503), of an ended one a success."""
        r = self.record
        system, job_id = r.system, r.job_id
        self.log.info("Cancelling job %s (%s) on %s", job_id, r.job_name, system)
        cache = status_cache.get_status(r.firecrest_url, system)
        try:
            await self.as_canceller(lambda client: client.cancel(system, job_id))
        except fc.CancelNotAccepted as refused:
            cache.invalidate(job_id)
            status = await self.status(max_age=0)
            if status in (JobStatus.RUNNING, JobStatus.PENDING):
                raise spawn_error(
                    f"Job {job_id} could not be cancelled: {refused.message}",
                    reason="cancel-refused",
                    log_message=f"Cancel of job {job_id} refused: {refused}",
                    status_code=503,
                ) from None
            self.log.info("Job %s had already ended (%s)", job_id, r.job_status or "gone")
        finally:
            cache.invalidate(job_id)

    async def cancel_by_name(
        self, name: str, window: float, *, url: str = "", system: str = ""
    ) -> bool:
        """Cancel whatever live job carries ``name``; False if none showed up in ``window``."""
        system = system or self.record.system

        async def cancel_named(client: fc.FirecrestClient) -> bool:
            found = False
            async for _ in Backoff(deadline_in(window), first=0.5, most=2.0, jitter=0.2):
                jobs = await client.jobs_named(system, name)
                for job in jobs:
                    found = True
                    if states.is_gone(states.state_of(job)):
                        continue
                    try:
                        await client.cancel(system, str(job["jobId"]))
                    except fc.CancelNotAccepted:
                        continue
                    self.log.info("Cancelled job %s found by name %s", job["jobId"], name)
                if found:
                    break
            return found

        return bool(await self.as_canceller(cancel_named, url))

    async def cancel_orphan(self, orphan: Orphan) -> bool:
        """Cancel one orphan; True when it is gone (or was never created)."""
        if orphan.job_id:
            await self.as_canceller(
                lambda client: cancel_and_confirm(client, orphan.system, orphan.job_id),
                orphan.firecrest_url,
            )
            return True
        found = await self.cancel_by_name(
            orphan.job_name, 1.0, url=orphan.firecrest_url, system=orphan.system
        )
        # A name never seen may still be listed late: keep it until the grace is over.
        age = time.time() - orphan.recorded_at if orphan.recorded_at else float("inf")
        return found or age > self.settings.not_found_grace_period

    async def cancel_orphans(self, only: list[Orphan] | None = None) -> None:
        """Cancel left-over jobs (best effort, bounded); each failure is one log line.

        ``only``: these of them (not those the caller has just recorded).
        """
        r = self.record
        for orphan in [o for o in r.orphans if only is None or o in only]:
            what = orphan.job_id or f"named {orphan.job_name}"
            try:
                done = await asyncio.wait_for(
                    self.cancel_orphan(orphan), self.settings.action_timeout
                )
            except Exception as e:  # noqa: BLE001 - retried at the next start or stop
                self.log.warning(
                    "Left-over job %s of %s is still not cancelled: %s",
                    what,
                    self.access.owner,
                    fc.describe(e) if not isinstance(e, HTTPError) else e.log_message or e,
                )
                continue
            if done:
                r.remove_orphan(orphan)
                metrics.orphan_cancelled()
                self.log.info(
                    "Cancelled or confirmed gone: left-over job %s (%s)", what, orphan.job_name
                )

    async def stop(self, now: bool) -> None:
        """Cancel the job and, unless ``now``, wait (``stop_timeout``) until it is gone."""
        r = self.record
        earlier = list(r.orphans)  # this stop's own failures wait for the next one
        if not r.job_id:
            if r.submit_unknown and r.job_name:
                await self._stop_by_name()
            await self.cancel_orphans(earlier)
            return
        status = await self.status()
        if status is JobStatus.NOTFOUND:
            await self.cancel_orphans(earlier)
            return
        try:
            await self.cancel()
        except HTTPError:
            self.keep_orphan()
            raise
        except Exception as e:  # noqa: BLE001 - reported to the user, not swallowed
            self.keep_orphan()
            raise user_error(
                e,
                f"Job {r.job_id} could not be cancelled: {fc.error_message(e)}",
                reason="cancel-failed",
                log_message=f"Cancel of job {r.job_id} failed: {fc.describe(e)}",
                status_code=503,
            ) from None
        await self.cancel_orphans(earlier)
        if now:
            return
        async for _ in Backoff(deadline_in(self.settings.stop_timeout), first=0.5, most=5.0):
            if await self.status(max_age=0.5) is JobStatus.NOTFOUND:
                self.log.info("Job %s (%s) stopped", r.job_id, r.job_name)
                return
        self.keep_orphan()
        self.log.warning(
            "Job %s (%s) still %s %.0f s after cancelling",
            r.job_id,
            r.job_name,
            r.job_status or "unknown",
            self.settings.stop_timeout,
        )

    async def _stop_by_name(self) -> None:
        """After a lost submit answer: cancel by name, or keep the name as an orphan."""
        r = self.record
        window = min(self.settings.lookup_window, self.settings.stop_timeout)
        try:
            found = await self.cancel_by_name(r.job_name, window)
        except Exception as e:  # noqa: BLE001 - recorded; cancelled at the next start or stop
            self.keep_orphan()
            r.submit_unknown = False
            self.log.warning(
                "Job named %s of %s may exist and could not be cancelled now (%s); "
                "it is cancelled at the next start or stop",
                r.job_name,
                self.access.owner,
                fc.describe(e) if not isinstance(e, HTTPError) else e.log_message or e,
            )
            return
        if not found:
            self.keep_orphan()
        r.submit_unknown = False

    async def cleanup_failed_start(self, error: BaseException) -> None:
        """Cancel the job of a failed or timed-out start, then remove its unread token file.

        A name a lost submit may have used stays pending when it cannot be
        looked up now: ``poll()`` then answers None, the hub calls ``stop()``,
        which tries again and, failing, keeps the name as an orphan.
        """
        r = self.record
        metrics.spawn_failed(error, r.profile, r.system)
        gone = r.job is not None and states.is_gone(states.state_of(r.job))
        by_name = not r.job_id and r.submit_unknown and bool(r.job_name)
        if (r.job_id and not gone) or by_name:
            self.log.warning(
                "Start of %s's server failed; cancelling job %s (%s)",
                self.access.owner,
                r.job_id or "?",
                r.job_name,
            )
            try:
                if r.job_id:
                    await asyncio.wait_for(self.cancel(), self.settings.action_timeout)
                else:
                    window = min(self.settings.lookup_window, self.settings.stop_timeout)
                    found = await asyncio.wait_for(
                        self.cancel_by_name(r.job_name, window),
                        window + self.settings.action_timeout,
                    )
                    r.submit_unknown = not found
            except Exception as e:  # noqa: BLE001 - logged; the original error is re-raised
                if r.job_id:
                    self.keep_orphan()
                self.log.error(
                    "Could not cancel job %s (%s) of %s after a failed start: %s",
                    r.job_id or "?",
                    r.job_name,
                    self.access.owner,
                    e.log_message if isinstance(e, HTTPError) else fc.describe(e),
                )
        await self.remove_token_file()

    def keep_orphan(self) -> None:
        """Record the current job as an orphan (counted once in the metrics)."""
        r = self.record
        before = len(r.orphans)
        r.add_orphan(r.current_as_orphan())
        if len(r.orphans) > before:
            metrics.orphan_found()

    async def remove_token_file(self) -> None:
        """Remove the spawn's token file; a canceller alone has none (the controller does)."""

    # ---------------------------------------------------------------- interrupted spawns

    def interrupted_submit_notice(self) -> str:
        """The message for a spawn a hub restart interrupted during its submit."""
        r = self.record
        self.log.warning(
            "Job %s of %s was being submitted when the hub restarted: cancelling it by name",
            r.job_name,
            self.access.owner,
        )
        return (
            "Your previous start was interrupted by a hub restart while its job was "
            "being submitted; that job is cancelled. Please start your server again."
        )

    async def end_interrupted_spawn(self) -> str:
        """Cancel the job of a spawn a hub restart interrupted; the message for the user."""
        r = self.record
        message = (
            f"Your previous start was interrupted by a hub restart while job {r.job_id} "
            "waited to start; the job was cancelled. Please start your server again."
        )
        self.log.warning(
            "Job %s (%s) of %s was queued when the hub restarted: cancelling it",
            r.job_id,
            r.job_name,
            self.access.owner,
        )
        try:
            await asyncio.wait_for(self.cancel(), self.settings.action_timeout)
            r.ended = True
        except Exception as e:  # noqa: BLE001 - the job stays an orphan, cancelled later
            self.keep_orphan()
            self.log.warning(
                "Could not cancel job %s of %s now: %s", r.job_id, self.access.owner, e
            )
        await self.remove_token_file()
        return message


__all__ = ["JobCanceller"]
