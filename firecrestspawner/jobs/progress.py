"""What the user reads while a spawn progresses (plain text; escaped for HTML)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import AsyncIterator
from typing import Any

from .. import metrics, states
from .record import JobRecord


def progress_event(phase: str, r: JobRecord) -> tuple[int, str] | None:
    """What the user should see about the job in ``phase`` (plain text), or None."""
    log_note = f" Log: {r.log_path}" if r.log_path else ""
    if phase == "submitting":
        return 10, f"Submitting batch job {r.job_name} to {r.system}"
    if not r.job_id:
        return None
    if phase in ("queued", "waiting") and r.last_error:
        return 30, f"Job {r.job_id}: status unknown for now ({r.last_error})"
    if phase == "queued" and not r.seen:
        return 20, f"Submitted job {r.job_id} to {r.system}.{log_note}"
    job = r.job or {}
    if phase == "queued" and states.phase(states.state_of(job)) is states.Phase.QUEUED:
        reason = states.reason_of(job)
        text = f"Job {r.job_id} is pending in the queue"
        if reason:
            text += f" (reason: {reason})"
        start = (job.get("time") or {}).get("start")
        if isinstance(start, (int, float)) and start > time.time():
            when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(start))
            text += f"; expected start {when}"
        return 40, text + "." + log_note
    if phase == "queued":
        nodes = str(job.get("nodes") or "")
        return 60, f"Job {r.job_id} is running on {nodes}.{end_note(r)}{log_note}"
    if phase == "waiting":
        text = f"Job {r.job_id} runs on {r.host}; waiting for the server.{end_note(r)}"
        return 80, text + log_note
    return None


def end_note(r: JobRecord) -> str:
    """`` Ends at <time> (time limit).`` when the job's end is known, else empty."""
    end = r.ends_at
    if not end:
        return ""
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(end))
    # No "N min left": the text would change, one more event, every minute.
    return f" Ends at {when} (its time limit)."


def progress_message(progress: int, message: str) -> dict[str, Any]:
    return {"progress": progress, "message": message, "html_message": html.escape(message)}


class ProgressLog:
    """One spawn's progress events, and the phase they are derived from."""

    def __init__(self) -> None:
        self.phase = ""
        self.events: list[dict[str, Any]] = []
        self._changed: asyncio.Event | None = None
        self._timer = metrics.SpawnTimer()

    def reset(self, first_message: str = "") -> None:
        """A new spawn; ``first_message`` (a notice from an earlier one) comes first."""
        self.events = [progress_message(0, first_message)] if first_message else []

    def set_phase(self, phase: str, record: JobRecord) -> None:
        self.phase = phase
        self._timer.phase(phase, record.profile, record.system)
        self.note(record)

    def note(self, record: JobRecord) -> None:
        """Record an event when what the user should see has changed."""
        event = progress_event(self.phase, record)
        if event is not None and (not self.events or self.events[-1]["message"] != event[1]):
            self.events.append(progress_message(*event))
        if self._changed is not None:
            self._changed.set()

    async def stream(self) -> AsyncIterator[dict[str, Any]]:
        """Every event, as it comes, until the spawn is ready or failed."""
        sent = 0
        if self._changed is None:
            self._changed = asyncio.Event()
        while True:
            self._changed.clear()
            while sent < len(self.events):
                yield dict(self.events[sent])
                sent += 1
            if self.phase in ("ready", "failed"):
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)


__all__ = ["ProgressLog", "end_note", "progress_event", "progress_message"]
