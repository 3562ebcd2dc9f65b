"""Measurements taken inside the hub process: event-loop lag, CPU, memory."""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import time


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class LagProbe:
    """Overshoot of ``asyncio.sleep(interval)``: how late the hub loop runs callbacks."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None
        self._sleeping_since: float | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = self._sleeping_since = loop.time()
            await asyncio.sleep(self.interval)
            self._sleeping_since = None
            self.samples.append(max(0.0, loop.time() - t0 - self.interval))

    def start(self) -> LagProbe:
        self.samples = []
        self._task = asyncio.ensure_future(self._run())
        return self

    async def stop(self) -> dict[str, float]:
        # A sleep still unfinished counts with the overshoot it has so far
        # (a loop blocked for the whole window must not look idle).
        if self._sleeping_since is not None:
            late = asyncio.get_running_loop().time() - self._sleeping_since - self.interval
            if late > 0:
                self.samples.append(late)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.summary()

    def summary(self) -> dict[str, float]:
        s = self.samples
        return {
            "lag_p50_ms": percentile(s, 50) * 1e3,
            "lag_p99_ms": percentile(s, 99) * 1e3,
            "lag_max_ms": (max(s) if s else math.nan) * 1e3,
            "lag_samples": len(s),
        }


class CpuTimer:
    """CPU seconds of this process (all its threads) between start and stop."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.w0 = 0.0

    def start(self) -> CpuTimer:
        self.t0 = time.process_time()
        self.w0 = time.monotonic()
        return self

    def stop(self) -> tuple[float, float]:
        """(cpu seconds, wall seconds)."""
        return time.process_time() - self.t0, time.monotonic() - self.w0


def rss_bytes() -> int:
    """Current resident set size of this process (Linux), in bytes."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize()
