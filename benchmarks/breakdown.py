"""Where a spawn's time goes: every HTTP request of each spawn, timed.

Runs ``n`` spawns of our spawner at once through the storm harness
(:func:`.storm.spawn_all`) against the benchmark emulator, with
``httpx.AsyncClient.send`` wrapped (here only, the spawner is unchanged) to
record each request of each spawn: method, endpoint, start and end. For the
part of each spawn before its job is submitted it reports, per endpoint, the
requests per spawn and their median time, and the time covered by no request
(the spawner's own CPU, waiting for the event loop, a lock or a pool slot).
After the submit it splits the rest: submit -> the job's port report (the
queue delay, the emulator's start of the job and the job's part noticing it,
:class:`.storm.JobPart`), and report -> ``start()`` returns (our spawner: the
read of the job after the report, the host, the port), with the requests of
that last part.

    .venv/bin/python -m benchmarks.breakdown --spawns 1,50
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import re
import statistics
import time
from typing import Any

import httpx

from . import baseline
from .emulator import bench_config, emulator_process
from .hub import BenchHub, reset_shared_state
from .storm import JobPart, spawn_all

_SPAWN: contextvars.ContextVar[int] = contextvars.ContextVar("bench_spawn", default=-1)
_IDS = re.compile(r"/(?:\d+|[0-9a-f]{16,})(?=/|$)")


def _endpoint(request: httpx.Request) -> str:
    path = _IDS.sub("/{id}", request.url.path)
    return f"{request.method} {path}"


async def run(n: int, queue_delay: float = 1.0, warm: bool = False) -> dict[str, Any]:
    """``n`` spawns at once; ``warm``: each user's second spawn (steady use), measured.

    A warm run first spawns and stops every user once, unmeasured, so that
    what the spawner remembers per user (default account, token directory)
    and per URL (API version) is known, as for a returning user.
    """
    calls: list[tuple[int, str, float, float]] = []
    real_send = httpx.AsyncClient.send

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        t0 = time.time()
        try:
            return await real_send(self, request, **kw)
        finally:
            calls.append((_SPAWN.get(), _endpoint(request), t0, time.time()))

    with emulator_process(bench_config(queue_delay=queue_delay)) as emu:
        await reset_shared_state()
        baseline.reset()
        hub = BenchHub(emu)
        try:
            users = await hub.add_users([f"bd{n}{'w' if warm else ''}u{i}" for i in range(n)])
            if warm:
                first = [hub.new_spawner(u, **hub.traits()) for u in users]
                await spawn_all(first, queue_delay, emu=emu)
                await asyncio.gather(*(s.stop(now=True) for s in first), return_exceptions=True)
            spawners = [hub.new_spawner(u, **hub.traits()) for u in users]
            starts: dict[int, float] = {}
            ended: dict[int, float] = {}
            original = [s.start for s in spawners]

            def tagged(i: int) -> Any:
                async def start() -> Any:
                    _SPAWN.set(i)
                    starts[i] = time.time()
                    result = await original[i]()
                    ended[i] = time.time()
                    return result

                return start

            for i, s in enumerate(spawners):
                s.start = tagged(i)
            httpx.AsyncClient.send = send  # type: ignore[method-assign]
            parts: list[JobPart] = []
            try:
                _durations, errors, _ = await spawn_all(
                    spawners, queue_delay, emu=emu, job_part=parts
                )
            finally:
                httpx.AsyncClient.send = real_send  # type: ignore[method-assign]
            submitted = {i: s.record.submitted_at for i, s in enumerate(spawners)}
            await asyncio.gather(*(s.stop(now=True) for s in spawners), return_exceptions=True)
        finally:
            await reset_shared_state()
            hub.close()
    per_endpoint: dict[str, list[float]] = {}
    to_submit: list[float] = []
    uncovered: list[float] = []
    untagged = 0
    for i in range(n):
        if not submitted.get(i):
            continue
        t_start, t_sub = starts[i], submitted[i]
        to_submit.append(t_sub - t_start)
        mine = sorted((c for c in calls if c[0] == i and c[2] < t_sub + 1e-3), key=lambda c: c[2])
        for _, ep, a, b in mine:
            per_endpoint.setdefault(ep, []).append(b - a)
        # Time before submit covered by no request of this spawn.
        covered, edge = 0.0, t_start
        for _, _, a, b in mine:
            a, b = max(a, edge), min(b, t_sub)
            if b > a:
                covered += b - a
                edge = b
        uncovered.append((t_sub - t_start) - covered)
    untagged = sum(1 for c in calls if c[0] < 0)
    ok = len(to_submit)
    # After the submit: to the report (queue, emulator, job's part), then ours.
    reported = parts[0].reported_at if parts else {}
    to_report: list[float] = []
    after_report: list[float] = []
    late: dict[str, list[float]] = {}
    for i in range(n):
        if i not in ended or i not in reported or not submitted.get(i):
            continue
        to_report.append(reported[i] - submitted[i] - queue_delay)
        after_report.append(ended[i] - reported[i])
        for _, ep, a, b in (c for c in calls if c[0] == i and c[2] >= reported[i]):
            late.setdefault(ep, []).append(b - a)
    return {
        "spawns": n,
        "warm": warm,
        "ok": ok,
        "errors": errors[:3],
        "to_submit_p50_s": statistics.median(to_submit) if to_submit else float("nan"),
        "no_request_p50_s": statistics.median(uncovered) if uncovered else float("nan"),
        "endpoints": {
            ep: {"per_spawn": len(ts) / max(ok, 1), "median_s": statistics.median(ts)}
            for ep, ts in sorted(per_endpoint.items(), key=lambda kv: -sum(kv[1]))
        },
        "untagged_requests": untagged,
        "queue_delay": queue_delay,
        "submit_to_report_beyond_queue_p50_s": _median(to_report),
        "submit_to_report_beyond_queue_p95_s": _p95(to_report),
        "report_to_return_p50_s": _median(after_report),
        "report_to_return_p95_s": _p95(after_report),
        "after_report": {
            ep: {
                "per_spawn": len(ts) / max(len(after_report), 1),
                "median_s": statistics.median(ts),
            }
            for ep, ts in sorted(late.items(), key=lambda kv: -sum(kv[1]))
        },
        "loadavg": os.getloadavg(),
    }


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _p95(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(0.95 * len(xs)))] if xs else float("nan")


def table(r: dict[str, Any]) -> str:
    rows = [
        (
            f"{r['spawns']} {'warm ' if r.get('warm') else ''}spawn(s), {r['ok']} submitted; "
            f"start() -> submit p50 "
            f"{r['to_submit_p50_s']:.3f} s, of which covered by no request p50 "
            f"{r['no_request_p50_s']:.3f} s; load average {r['loadavg'][0]:.1f}"
        ),
        "",
        "| request before submit | per spawn | median time (s) |",
        "|---|---|---|",
    ]
    for ep, d in r["endpoints"].items():
        rows.append(f"| `{ep}` | {d['per_spawn']:.2f} | {d['median_s']:.3f} |")
    if "report_to_return_p50_s" in r:
        rows += [
            "",
            (
                f"After the submit: submit -> port report beyond the queue delay "
                f"({r['queue_delay']:.0f} s) p50 / p95 {r['submit_to_report_beyond_queue_p50_s']:.3f}"
                f" / {r['submit_to_report_beyond_queue_p95_s']:.3f} s; report -> start() returns "
                f"p50 / p95 {r['report_to_return_p50_s']:.3f} / {r['report_to_return_p95_s']:.3f} s"
            ),
            "",
            "| request after the report | per spawn | median time (s) |",
            "|---|---|---|",
        ]
        for ep, d in r["after_report"].items():
            rows.append(f"| `{ep}` | {d['per_spawn']:.2f} | {d['median_s']:.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown")
    parser.add_argument("--spawns", default="1,50", help="storm sizes, e.g. 1,50")
    parser.add_argument(
        "--warm", action="store_true", help="also each user's second spawn (steady use)"
    )
    args = parser.parse_args()
    for n in (int(x) for x in args.spawns.split(",")):
        print(table(asyncio.run(run(n))) + "\n", flush=True)
        if args.warm:
            print(table(asyncio.run(run(n, warm=True))) + "\n", flush=True)


if __name__ == "__main__":
    main()
