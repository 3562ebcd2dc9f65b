"""Hub CPU per spawn: a storm of N spawns after a warm-up of W, in one process.

``python -m benchmarks.storm_cpu MODE [--spawns 30] [--warmup 5] [--repeat 2]``
prints one JSON line per repeat: ``cpu_s / N`` of :func:`.storm.run_storm`
(the hub process, all its threads, the job's part of the harness excluded),
the share of it spent in the garbage collector (and how many full, "gen2",
collections ran in the window), loop lag and the load average. The warm-up
storm (same mode, unmeasured) leaves imports, the TLS context and the API
version behind, as in a hub that has already served spawns.

``--freeze``: ``gc.freeze()`` after the warm-up (a what-if: a hub that moves
its start-up objects out of the collector's reach).
``--profile FILE``: a cProfile (CPU time of the event loop's thread) of the
measured window only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import time
from typing import Any

from . import storm as storm_mod
from .emulator import bench_config, emulator_process
from .probes import CpuTimer

QUEUE_DELAY = 5.0


class _GcClock:
    """CPU time of the collections that run while ``on`` (gc.callbacks)."""

    def __init__(self) -> None:
        self.on = False
        self.cpu = 0.0
        self.runs = 0
        self.full = 0
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._t0 = time.thread_time()
            return
        self.cpu += time.thread_time() - self._t0
        self.runs += 1
        self.full += info.get("generation") == 2


def _timer_class(clock: _GcClock, profile: cProfile.Profile | None) -> type[CpuTimer]:
    class WindowTimer(CpuTimer):
        def start(self) -> CpuTimer:
            clock.on, clock.cpu, clock.runs, clock.full = True, 0.0, 0, 0
            if profile is not None:
                profile.enable()
            return super().start()

        def stop(self) -> tuple[float, float]:
            result = super().stop()
            if profile is not None:
                profile.disable()
            clock.on = False
            return result

    return WindowTimer


async def measure(
    mode: str, spawns: int, warmup: int, *, freeze: bool = False, profile: str = ""
) -> dict[str, Any]:
    clock = _GcClock()
    prof = cProfile.Profile(time.thread_time) if profile else None
    original = storm_mod.CpuTimer
    storm_mod.CpuTimer = _timer_class(clock, prof)  # type: ignore[misc]
    try:
        with emulator_process(bench_config(queue_delay=QUEUE_DELAY)) as emu:
            await storm_mod.run_storm(emu, warmup, mode, queue_delay=QUEUE_DELAY)
            if freeze:
                gc.collect()
                gc.freeze()
            r = await storm_mod.run_storm(emu, spawns, mode, queue_delay=QUEUE_DELAY)
    finally:
        storm_mod.CpuTimer = original
        if freeze:
            gc.unfreeze()
    if prof is not None:
        prof.dump_stats(profile)
    return {
        "mode": mode,
        "spawns": spawns,
        "freeze": freeze,
        "ok": r.ok,
        "failed": r.failed,
        "cpu_ms_per_spawn": round(1000 * r.cpu_s / spawns, 2),
        "gc_ms_per_spawn": round(1000 * clock.cpu / spawns, 2),
        "gc_runs": clock.runs,
        "gc_full_runs": clock.full,
        "lag_p99_ms": round(r.lag.get("lag_p99_ms", float("nan")), 1),
        "lag_max_ms": round(r.lag.get("lag_max_ms", float("nan")), 1),
        "firecrest_per_spawn": round(r.firecrest_per_spawn, 2),
        "idp_per_spawn": round(r.idp_per_spawn, 2),
        "to_submit_p50_s": round(r.to_submit_p50_s, 3),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "errors": r.errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", help="a storm mode: ours, ours-returning, ...")
    parser.add_argument("--spawns", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--profile", default="")
    args = parser.parse_args(argv)
    for _ in range(args.repeat):
        result = asyncio.run(
            measure(args.mode, args.spawns, args.warmup, freeze=args.freeze, profile=args.profile)
        )
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
