"""Run the scale benchmarks and print the tables of ``docs/benchmarks.md``.

::

    .venv/bin/python -m benchmarks.run --quick          # ~5 minutes
    .venv/bin/python -m benchmarks.run --full --json results.json   # ~30 minutes

Every scenario gets a fresh FirecREST emulator in its own process (simulated
jobs, request counters, identity provider); the hub side runs in this
process on one asyncio loop, as JupyterHub's does. ``ours`` is the spawner as
shipped; ``baseline`` is the same spawner with the shared status cache and
token caching off (:mod:`benchmarks.baseline`); ``ours-user`` is ours without
service-account credentials (each user's own credential polls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import profiles_bench
from .emulator import bench_config, emulator_process
from .probes import CpuTimer, LagProbe
from .steady import run_steady
from .storm import run_storm

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Preset:
    sizes: list[int]
    steady_modes: dict[int, list[str]]
    poll_interval: int
    status_max_age: float
    rounds: int
    storms: list[int]
    storm_modes: list[str]
    queue_delay: float
    profile_files: int = 200
    validate_repeat: int = 3
    form_profiles: int = 50
    form_renders: int = 200
    #: When the harness reports a job's port (benchmarks/storm.py ``JobPart``): "job", "waiting".
    storm_report: str = "job"
    notes: list[str] = field(default_factory=list)


PRESETS = {
    "quick": Preset(
        sizes=[10, 100, 1000],
        steady_modes={n: ["ours", "baseline"] for n in (10, 100, 1000)},
        poll_interval=10,
        status_max_age=10 / 3,
        rounds=2,
        storms=[50],
        storm_modes=["ours", "baseline", "floor"],
        queue_delay=5.0,
        validate_repeat=1,
        form_renders=50,
    ),
    "full": Preset(
        sizes=[10, 100, 1000, 3000],
        steady_modes={
            10: ["ours", "baseline"],
            100: ["ours", "baseline"],
            1000: ["ours", "ours-user", "baseline"],
            3000: ["ours", "ours-user", "baseline"],
        },
        # JupyterHub's default poll_interval and the spawner's default status_max_age.
        poll_interval=30,
        status_max_age=10.0,
        rounds=2,
        storms=[50, 200],
        storm_modes=["ours", "ours+sharedtls", "ours+sharedtls+fastpoll", "baseline", "floor"],
        queue_delay=5.0,
    ),
}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "jupyterhub": version("jupyterhub"),
        "pyfirecrest": version("pyfirecrest"),
        "commit": commit,
        "loadavg_start": os.getloadavg(),
    }


def _f(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ratio(ours: float, base: float) -> str:
    if base in (0, None) or any(isinstance(v, float) and math.isnan(v) for v in (ours, base)):
        return "-"
    return f"{ours / base:.3g}"


def _net_cpu(r: dict[str, Any], probe_rate: float) -> float:
    """CPU per round minus what the lag probe used in the same time."""
    if not r["rounds"]:
        return float("nan")
    per_round_wall = r["poll_interval"] * r["intervals"] / r["rounds"]
    return r["cpu_per_round_s"] - probe_rate * per_round_wall


def steady_table(results: list[dict[str, Any]], probe_rate: float = 0.0) -> str:
    rows = [
        "| N | mode | rounds | FirecREST req / interval | IdP req / interval | loop lag p50 / p99 / max (ms) | CPU s / round (net of probe) | memory / server (KiB, tracemalloc / RSS) | start-up poll of all (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lag = r["lag"]
        rows.append(
            f"| {r['n']} | {r['mode']} | {_f(r['rounds'])} of {r['intervals']} "
            f"| {_f(r['firecrest_per_interval'])} "
            f"| {_f(r['idp_per_interval'])} | {_f(lag['lag_p50_ms'])} / {_f(lag['lag_p99_ms'])} / "
            f"{_f(lag['lag_max_ms'], 0)} | {_f(_net_cpu(r, probe_rate), 3)} "
            f"| {_f(r['mem_per_server_kib'])} / {_f(r['rss_per_server_kib'])} "
            f"| {_f(r['startup_poll_s'])} |"
        )
    rows += [
        "",
        "| N | ratio ours/baseline: FirecREST | IdP | lag p99 | CPU / round | memory / server |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["mode"]): r for r in results}
    for n in sorted({r["n"] for r in results}):
        o, b = by.get((n, "ours")), by.get((n, "baseline"))
        if not (o and b):
            continue
        rows.append(
            f"| {n} | {_ratio(o['firecrest_per_interval'], b['firecrest_per_interval'])} "
            f"| {_ratio(o['idp_per_interval'], b['idp_per_interval'])} "
            f"| {_ratio(o['lag']['lag_p99_ms'], b['lag']['lag_p99_ms'])} "
            f"| {_ratio(_net_cpu(o, probe_rate), _net_cpu(b, probe_rate))} "
            f"| {_ratio(o['mem_per_server_kib'], b['mem_per_server_kib'])} |"
        )
    return "\n".join(rows)


def storm_table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| spawns | mode | ok / failed | overhead beyond queue p50 / p95 / max (s) | of which start() to submit p50 / p95 (s) | FirecREST req / spawn | IdP req / spawn | loop lag p50 / p99 / max (ms) | hub CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lag = r["lag"]
        rows.append(
            f"| {r['n']} | {r['mode']} | {r['ok']} / {r['failed']} | {_f(r['overhead_p50_s'], 2)} / "
            f"{_f(r['overhead_p95_s'], 2)} / {_f(r['overhead_max_s'], 2)} "
            f"| {_f(r['to_submit_p50_s'], 2)} / {_f(r['to_submit_p95_s'], 2)} "
            f"| {_f(r['firecrest_per_spawn'], 2)} | {_f(r['idp_per_spawn'], 2)} "
            f"| {_f(lag['lag_p50_ms'])} / {_f(lag['lag_p99_ms'])} / {_f(lag['lag_max_ms'], 0)} "
            f"| {_f(r['cpu_s'], 2)} |"
        )
    rows += [
        "",
        "| spawns | ratio ours/baseline: overhead p95 | FirecREST / spawn | IdP / spawn | lag p99 | CPU |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["mode"]): r for r in results}
    for n in sorted({r["n"] for r in results}):
        o, b = by.get((n, "ours")), by.get((n, "baseline"))
        if not (o and b):
            continue
        rows.append(
            f"| {n} | {_ratio(o['overhead_p95_s'], b['overhead_p95_s'])} "
            f"| {_ratio(o['firecrest_per_spawn'], b['firecrest_per_spawn'])} "
            f"| {_ratio(o['idp_per_spawn'], b['idp_per_spawn'])} "
            f"| {_ratio(o['lag']['lag_p99_ms'], b['lag']['lag_p99_ms'])} "
            f"| {_ratio(o['cpu_s'], b['cpu_s'])} |"
        )
    floors = [n for n in sorted({r["n"] for r in results}) if (n, "floor") in by]
    if floors:
        rows += [
            "",
            "| spawns | mode | overhead p95 (s) | mode - floor p50 / p95 (s) | / baseline p95 | CPU mode - floor (s) |",
            "|---|---|---|---|---|---|",
        ]
    for n in floors:
        f, b = by[(n, "floor")], by.get((n, "baseline"))
        for r in results:
            if r["n"] != n or r["mode"] == "floor":
                continue
            ratio = _ratio(r["overhead_p95_s"], b["overhead_p95_s"]) if b else "-"
            rows.append(
                f"| {n} | {r['mode']} | {_f(r['overhead_p95_s'], 2)} "
                f"| {_f(r['overhead_p50_s'] - f['overhead_p50_s'], 2)} / "
                f"{_f(r['overhead_p95_s'] - f['overhead_p95_s'], 2)} | {ratio} "
                f"| {_f(r['cpu_s'] - f['cpu_s'], 2)} |"
            )
        rows.append(
            f"| {n} | floor | {_f(f['overhead_p95_s'], 2)} (p50 {_f(f['overhead_p50_s'], 2)}) "
            "| | | |"
        )
    busy = [r for r in results if r.get("busy")]
    if busy:
        rows += [
            "",
            "| spawns | mode | emulator CPU s | cores used until the last submit: emulator / hub (window s) | after it: emulator / hub (window s) |",
            "|---|---|---|---|---|",
        ]
    for r in busy:
        cells = []
        for key in ("submits", "after_submits"):
            b = r["busy"].get(key)
            cells.append(
                f"{_f(b['emulator'], 2)} / {_f(b['hub'], 2)} ({_f(b['s'], 1)})" if b else "-"
            )
        rows.append(
            f"| {r['n']} | {r['mode']} | {_f(r.get('emulator_cpu_s'), 2)} | {cells[0]} | {cells[1]} |"
        )
    return "\n".join(rows)


def profiles_table(validate: dict[str, Any] | None, form: dict[str, Any] | None) -> str:
    rows = ["| measurement | result |", "|---|---|"]
    if validate:
        rows.append(
            f"| load + validate {validate['files']} files ({validate['profiles']} profiles), "
            f"cold | {validate['seconds_min']:.2f} s (min) / {validate['seconds_max']:.2f} s (max) |"
        )
    if form:
        rows.append(
            f"| form for a user seeing {form['profiles_visible']} profiles, cluster choices cached "
            f"| p50 {form['render_p50_ms']:.1f} ms, p95 {form['render_p95_ms']:.1f} ms "
            f"({form['html_kib']:.0f} KiB HTML; first render with cluster fetches "
            f"{form['first_render_s']:.2f} s) |"
        )
    return "\n".join(rows)


async def probe_cost(seconds: float = 10.0) -> float:
    """CPU seconds per second that the lag probe costs on an idle loop."""
    cpu = CpuTimer().start()
    probe = LagProbe().start()
    await asyncio.sleep(seconds)
    cpu_s, wall = cpu.stop()
    await probe.stop()
    return cpu_s / wall


async def main_async(preset: Preset, only: set[str], log: logging.Logger) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine(), "preset": preset.__dict__}
    out["machine"]["probe_cpu_per_s"] = await probe_cost()
    if "steady" in only:
        out["steady"] = []
        for n in preset.sizes:
            for mode in preset.steady_modes[n]:
                log.info("steady state: N=%d %s", n, mode)
                try:
                    with emulator_process(bench_config()) as emu:
                        r = await run_steady(
                            emu,
                            n,
                            mode,
                            poll_interval=preset.poll_interval,
                            status_max_age=preset.status_max_age,
                            rounds=preset.rounds,
                        )
                except Exception as e:
                    log.exception("steady state N=%d %s failed", n, mode)
                    out.setdefault("failures", []).append(f"steady {n} {mode}: {e!r}")
                    continue
                d = r.as_dict()
                d["loadavg"] = os.getloadavg()
                out["steady"].append(d)
                log.info("  %s", json.dumps({k: v for k, v in d.items() if k != "endpoints"}))
    if "storm" in only:
        out["storm"] = []
        for n in preset.storms:
            for mode in preset.storm_modes:
                log.info("spawn storm: %d spawns %s", n, mode)
                try:
                    with emulator_process(bench_config(queue_delay=preset.queue_delay)) as emu:
                        r = await run_storm(
                            emu,
                            n,
                            mode,
                            queue_delay=preset.queue_delay,
                            report=preset.storm_report,
                        )
                except Exception as e:
                    log.exception("storm %d %s failed", n, mode)
                    out.setdefault("failures", []).append(f"storm {n} {mode}: {e!r}")
                    continue
                d = r.as_dict()
                d["loadavg"] = os.getloadavg()
                out["storm"].append(d)
                log.info("  %s", json.dumps({k: v for k, v in d.items() if k != "endpoints"}))
    if "profiles" in only:
        log.info("profiles: validate %d files", preset.profile_files)
        out["validate"] = await asyncio.to_thread(
            profiles_bench.bench_validate, preset.profile_files, preset.validate_repeat
        )
        log.info("  %s", out["validate"])
        with emulator_process(bench_config()) as emu:
            out["form"] = await profiles_bench.bench_form(
                emu, preset.form_profiles, preset.form_renders
            )
        log.info("  %s", out["form"])
    out["machine"]["loadavg_end"] = os.getloadavg()
    return out


def report(out: dict[str, Any]) -> str:
    m = out["machine"]
    parts = [
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; Python {m['python']}, "
            f"JupyterHub {m['jupyterhub']}, pyfirecrest {m['pyfirecrest']}; commit {m['commit']}; "
            f"load average at start {m['loadavg_start'][0]:.1f}, at end {m['loadavg_end'][0]:.1f}."
        ),
    ]
    if out.get("steady"):
        p = out["preset"]
        parts += [
            "",
            (
                f"### Steady state (poll_interval {p['poll_interval']} s, jitter 10 %, "
                f"status_max_age {p['status_max_age']:.1f} s, {p['rounds']} rounds measured)"
            ),
            "",
            steady_table(out["steady"], m.get("probe_cpu_per_s", 0.0)),
        ]
    if out.get("storm"):
        when = {
            "job": "once the emulator shows the job RUNNING",
            "waiting": "once the spawner waits for it",
        }.get(out["preset"].get("storm_report", "waiting"), "?")
        parts += [
            "",
            f"### Spawn storm (queue delay {out['preset']['queue_delay']:.0f} s)",
            "",
            f"The job's port is reported {when}.",
            "",
            storm_table(out["storm"]),
        ]
    if out.get("failures"):
        parts += ["", "Failed scenarios: " + "; ".join(out["failures"])]
    if out.get("validate") or out.get("form"):
        parts += ["", "### Profiles", "", profiles_table(out.get("validate"), out.get("form"))]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", const="quick", dest="preset")
    g.add_argument("--full", action="store_const", const="full", dest="preset")
    parser.add_argument(
        "--only",
        default="steady,storm,profiles",
        help="comma-separated scenarios: steady, storm, profiles (default: all)",
    )
    parser.add_argument("--sizes", default="", help="override steady-state N, e.g. 10,100")
    parser.add_argument("--storms", default="", help="override storm sizes, e.g. 50")
    parser.add_argument("--storm-modes", default="", help="override storm modes, e.g. ours")
    parser.add_argument(
        "--storm-report",
        choices=("job", "waiting"),
        default="job",
        help="when the harness reports a job's port: once the emulator shows the job "
        "RUNNING, as the job does (default), or once the spawner waits for it (the "
        "harness of earlier rounds)",
    )
    parser.add_argument("--json", default="", help="also write all results to this file")
    parser.add_argument(
        "--report", default="", help="print the tables of a results file written by --json"
    )
    parser.add_argument(
        "--probe-cpu-per-s",
        type=float,
        default=None,
        help="with --report: the lag probe's CPU cost (s/s) if the file lacks it",
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        if args.probe_cpu_per_s is not None:
            saved["machine"].setdefault("probe_cpu_per_s", args.probe_cpu_per_s)
        print(report(saved))
        return 0
    preset = PRESETS[args.preset or "quick"]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
        preset.steady_modes = {n: preset.steady_modes.get(n, ["ours", "baseline"]) for n in sizes}
        preset.sizes = sizes
    if args.storms:
        preset.storms = [int(s) for s in args.storms.split(",")]
    if args.storm_modes:
        preset.storm_modes = args.storm_modes.split(",")
    preset.storm_report = args.storm_report
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in (
        *("alembic", "JupyterHub", "traitlets", "firecrestspawner", "httpx", "tornado"),
        "stamina",
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    log = logging.getLogger("benchmarks")
    t0 = time.monotonic()
    out = asyncio.run(main_async(preset, set(args.only.split(",")), log))
    out["seconds"] = time.monotonic() - t0
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    print(report(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
