"""The retry policy of FirecREST requests: bounded, backed off, polite to a 429.

* Idempotent reads are repeated after a transient error (:func:`is_transient`)
  a bounded number of times within a deadline, with exponential backoff and
  jitter (``stamina``, whose retries :mod:`firecrestspawner.logs` counts).
* A 429's ``Retry-After`` (or ``RateLimit-Reset``) is honoured by the retry
  itself and, through a :class:`RetryAfterGate`, by every later request of the
  same client: after a read used up its tries, the next read of anybody waits
  until the time the server named (capped) instead of asking again at once.
* A call that gives up is logged once, in one line (:func:`log_gave_up`); the
  caller decides what it means.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from .firecrest_errors import describe, is_transient, retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff(attempt: int, *, initial: float, maximum: float, jitter: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base + random.uniform(0, jitter)  # noqa: S311 - jitter, not crypto


class RetryAfterGate:
    """When the server may be asked again, from the latest 429's ``Retry-After``.

    One per client (identity at one FirecREST): a gateway's rate limit counts
    that identity's requests, so once it said "not before T" nobody sharing
    the client asks before T. ``cap`` bounds how long one answer can hold
    requests back.
    """

    def __init__(self, cap: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cap = cap
        self.clock = clock
        self.not_before = 0.0
        #: Times a request waited for the gate (tests, metrics).
        self.waits = 0

    def note(self, exc: BaseException) -> float | None:
        """Remember a 429's ``Retry-After``; its (capped) seconds, or None."""
        wait = retry_after(exc)
        if wait is None:
            return None
        wait = min(wait, self.cap)
        self.not_before = max(self.not_before, self.clock() + wait)
        return wait

    def remaining(self) -> float:
        """Seconds until the server may be asked again (0: now)."""
        return max(0.0, self.not_before - self.clock())

    async def wait(self) -> None:
        """Sleep until the server may be asked again (the event loop keeps running)."""
        left = self.remaining()
        if left > 0:
            self.waits += 1
            await asyncio.sleep(left)


def log_gave_up(what: str, url: str, attempts: int, started: float, exc: BaseException) -> None:
    """One line for a read that used up its tries (retries in between are only counted)."""
    if attempts > 1:
        log.warning(
            "FirecREST %s at %s gave up after %d attempts in %.1f s: %s",
            what,
            url,
            attempts,
            time.monotonic() - started,
            describe(exc),
        )


async def retrying(
    what: str,
    fn: Callable[[], Awaitable[T]],
    *,
    url: str,
    gate: RetryAfterGate,
    attempts: int,
    deadline: float,
    wait_initial: float,
    wait_max: float,
    wait_jitter: float,
) -> T:
    """Run an idempotent request with bounded retries, backoff, jitter and the gate."""

    def hook(exc: Exception) -> bool | float:
        if not is_transient(exc):
            return False
        wait = gate.note(exc)
        return wait if wait is not None else True

    started = time.monotonic()
    tries = 0
    try:
        async for attempt in stamina.retry_context(
            on=hook,
            attempts=max(1, attempts),
            timeout=deadline,
            wait_initial=wait_initial,
            wait_max=wait_max,
            wait_jitter=wait_jitter,
        ):
            with attempt:
                tries = attempt.num
                await gate.wait()
                return await fn()
    except Exception as e:
        gate.note(e)
        if is_transient(e):
            log_gave_up(what, url, tries, started, e)
        raise
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["RetryAfterGate", "backoff", "log_gave_up", "retrying"]
