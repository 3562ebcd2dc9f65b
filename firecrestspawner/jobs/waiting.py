"""The one wait loop: exponential backoff with jitter, bounded by a deadline.

Every place that waits for a job (until it runs, for its port, for it to be
listed by name, for it to leave the queue after a cancel) iterates over a
:class:`Backoff`; requests themselves are retried by the client (``stamina``).
Modelled on JupyterHub's ``utils.exponential_backoff``, but as an iterator so
that the caller's check stays in the caller's code::

    async for attempt in Backoff(deadline, first=0.5, most=2.0):
        if await job_is_running():
            return
    raise TimeoutError  # the deadline passed

The first attempt comes at once, the last one at the deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable


class Backoff:
    """Attempts ``0, 1, 2, ...`` with growing, jittered pauses until ``deadline``.

    ``deadline`` is in the running loop's clock (``loop.time()``). Pauses start
    at ``first`` seconds and grow by ``factor`` up to ``most``; each is scaled
    by a random factor in ``[1 - jitter, 1 + jitter]`` so that many spawners
    started together do not poll in step. ``wake`` (optional) is awaited
    instead of sleeping; it may return early (a reported port, for example):
    the next attempt then comes at once. ``clock`` replaces the loop's
    clock (tests pair it with a ``wake`` that advances it).
    """

    def __init__(
        self,
        deadline: float,
        *,
        first: float,
        most: float,
        factor: float = 1.5,
        jitter: float = 0.1,
        wake: Callable[[float], Awaitable[object]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if first <= 0 or most <= 0:
            raise ValueError("Backoff pauses must be positive")
        self.deadline = deadline
        self.interval = first
        self.most = max(first, most)
        self.factor = max(1.0, factor)
        self.jitter = min(max(jitter, 0.0), 0.9)
        self.wake = wake
        self.clock = clock
        self.attempt = -1
        self._done = False

    def remaining(self) -> float:
        """Seconds left until the deadline (negative once it passed)."""
        now = self.clock() if self.clock is not None else asyncio.get_running_loop().time()
        return self.deadline - now

    def __aiter__(self) -> Backoff:
        return self

    async def __anext__(self) -> int:
        if self._done:
            raise StopAsyncIteration
        if self.attempt >= 0:
            remaining = self.remaining()
            if remaining <= 0:
                self._done = True
                raise StopAsyncIteration
            pause = self.interval * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - jitter, not crypto
            pause = min(pause, remaining)
            if self.wake is None:
                await asyncio.sleep(pause)
            else:
                await self.wake(pause)
            self.interval = min(self.interval * self.factor, self.most)
            if self.remaining() <= 0:
                self._done = True  # this is the attempt at the deadline
        self.attempt += 1
        return self.attempt


def deadline_in(seconds: float) -> float:
    """The loop time ``seconds`` from now (for :class:`Backoff`)."""
    return asyncio.get_running_loop().time() + seconds


__all__ = ["Backoff", "deadline_in"]
