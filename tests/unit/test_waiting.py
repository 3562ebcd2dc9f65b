"""The one wait loop: attempts, growing jittered pauses, the deadline (a fake clock)."""

from __future__ import annotations

import pytest

from firecrestspawner.jobs.waiting import Backoff


class FakeClock:
    """A clock that moves only when the loop pauses (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


async def attempts(backoff: Backoff) -> list[int]:
    return [n async for n in backoff]


async def test_first_attempt_at_once_last_at_the_deadline():
    clock = FakeClock()
    backoff = Backoff(
        10.0, first=1.0, most=4.0, factor=2.0, jitter=0.0, wake=clock.pause, clock=clock
    )
    got = await attempts(backoff)
    assert got == list(range(len(got)))
    # 1 + 2 + 4 = 7, then at most 4 more, cut to the 3 left.
    assert clock.pauses == [1.0, 2.0, 4.0, 3.0]
    assert clock.now == 10.0
    assert len(got) == 5  # one attempt after each pause, the last at the deadline


async def test_pauses_stay_within_jitter_and_the_cap():
    clock = FakeClock()
    backoff = Backoff(
        1000.0, first=0.5, most=2.0, factor=1.5, jitter=0.2, wake=clock.pause, clock=clock
    )
    await attempts(backoff)
    assert clock.pauses[0] == pytest.approx(0.5, rel=0.2)
    assert all(p <= 2.0 * 1.2 + 1e-9 for p in clock.pauses)
    assert max(clock.pauses[:-1]) > 2.0 * 0.8  # it does grow to the cap
    assert len(set(clock.pauses)) > 1  # jittered, not in step


async def test_a_passed_deadline_gives_one_attempt():
    clock = FakeClock()
    clock.now = 5.0
    backoff = Backoff(1.0, first=1.0, most=1.0, wake=clock.pause, clock=clock)
    assert await attempts(backoff) == [0]
    assert clock.pauses == []


async def test_breaking_out_stops_waiting():
    clock = FakeClock()
    backoff = Backoff(100.0, first=1.0, most=1.0, jitter=0.0, wake=clock.pause, clock=clock)
    async for attempt in backoff:
        if attempt == 2:
            break
    assert clock.pauses == [1.0, 1.0]


async def test_wake_may_end_a_pause_early():
    clock = FakeClock()

    async def woken(seconds: float) -> None:
        clock.pauses.append(seconds)
        clock.now += 0.01  # something arrived

    backoff = Backoff(10.0, first=5.0, most=5.0, jitter=0.0, wake=woken, clock=clock)
    async for attempt in backoff:
        if attempt == 3:
            break
    assert clock.now == pytest.approx(0.03)


async def test_real_loop_clock_and_sleep():
    import asyncio

    loop = asyncio.get_running_loop()
    backoff = Backoff(loop.time() + 0.05, first=0.01, most=0.02)
    got = await attempts(backoff)
    assert got[:2] == [0, 1]
    assert loop.time() >= backoff.deadline


def test_pauses_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Backoff(1.0, first=0.0, most=1.0)
