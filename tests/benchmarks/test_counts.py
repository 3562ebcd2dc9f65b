"""Small-N runs of the scale benchmarks (``benchmarks/``): request counts only.

Counts are deterministic; times are not, so nothing here asserts a time.
The full figures are in ``docs/benchmarks.md`` (``python -m benchmarks.run``).
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks import baseline, profiles_bench
from benchmarks.emulator import bench_config, emulator_thread
from benchmarks.hub import BenchHub, reset_shared_state
from benchmarks.steady import poll_rounds, run_steady, setup_servers
from benchmarks.storm import run_storm, spawn_all

pytestmark = pytest.mark.timeout(120)

N = 12
ROUNDS = 3
MAX_AGE = 0.2
GAP = 0.35

LIST = "GET /compute/{system}/jobs"
JOB = "GET /compute/{system}/jobs/{job_id}"


@pytest.fixture(scope="module")
def emu():
    with emulator_thread(bench_config()) as handle:
        yield handle


@pytest.fixture
async def hub(emu):
    await reset_shared_state()
    baseline.reset()
    h = BenchHub(emu)
    yield h
    await reset_shared_state()
    h.close()


async def _steady_counts(emu, hub, mode):
    spawners = await setup_servers(emu, hub, N, mode, status_max_age=MAX_AGE)
    # Warm-up round: clients, versions, first tokens.
    assert await poll_rounds(spawners, 1, GAP) == [None] * N
    await asyncio.sleep(GAP)
    emu.admin.reset_counters()
    assert await poll_rounds(spawners, ROUNDS, GAP) == [None] * N
    return emu.counts()


async def test_shared_cache_polls_once_per_round_whatever_the_number_of_servers(emu, hub):
    counts = await _steady_counts(emu, hub, "ours")
    # One job list (all users, service account) per round, for N servers.
    assert counts["endpoints"] == {LIST: ROUNDS}
    assert counts["firecrest"] == ROUNDS
    # Tokens are cached: no identity-provider request in steady state.
    assert counts["idp"] == 0


async def test_baseline_polls_once_per_server_and_gets_a_token_per_request(emu, hub):
    counts = await _steady_counts(emu, hub, "baseline")
    assert counts["endpoints"] == {JOB: ROUNDS * N}
    assert counts["idp"] == ROUNDS * N


async def test_without_service_account_each_user_lists_own_jobs(emu, hub):
    counts = await _steady_counts(emu, hub, "ours-user")
    # The cache is per identity: one list per user per round, still no tokens.
    assert counts["endpoints"] == {LIST: ROUNDS * N}
    assert counts["idp"] == 0


@pytest.mark.parametrize("mode", ["ours", "baseline"])
async def test_spawn_storm_request_counts(emu, hub, mode):
    n = 6
    users = await hub.add_users([f"storm{mode}{i}" for i in range(n)])
    cls = baseline.BaselineSpawner if mode == "baseline" else None
    traits = hub.traits(startup_poll_interval=0.1, startup_poll_max_interval=0.2)
    spawners = [
        hub.new_spawner(u, cls, **traits) if cls else hub.new_spawner(u, **traits) for u in users
    ]
    emu.admin.reset_counters()
    durations, errors, events = await spawn_all(spawners, 0.0, emu=emu)
    assert errors == []
    assert len(durations) == n
    assert events >= n
    counts = emu.counts()
    ep = counts["endpoints"]
    # Exactly one submit per spawn (no blind retry) and the fixed cost of a
    # user's first spawn: default account, the token directory made (mkdir,
    # chmod 0700), the token file (upload, chmod 0600); the API version is
    # asked once per FirecREST URL, not per user.
    assert ep["POST /compute/{system}/jobs"] == n
    assert ep["GET /status/{system}/userinfo"] == n
    assert ep["POST /filesystem/{system}/ops/mkdir"] == n
    assert ep["POST /filesystem/{system}/ops/upload"] == n
    assert ep["PUT /filesystem/{system}/ops/chmod"] == 2 * n
    assert ep["GET /status/systems"] == 1
    assert "GET /filesystem/{system}/ops/stat" not in ep
    if mode == "ours":
        # One refresh per user and one service-account token, nothing more.
        assert counts["idp"] == n + 1
    else:
        # A token request before every FirecREST request.
        assert counts["idp"] == counts["firecrest"]
        assert LIST not in ep
        assert ep[JOB] >= n
    for s in spawners:
        await s.stop(now=True)


BEFORE_SUBMIT = {
    "POST /filesystem/{system}/ops/upload",
    "PUT /filesystem/{system}/ops/chmod",
    "POST /compute/{system}/jobs",
}


async def test_steady_use_spawn_makes_three_requests_and_at_most_one_token(emu, hub):
    """A user's later spawn: token file (upload, chmod) and submit; nothing else to start.

    The default account and the token directory are remembered from the
    first spawn; what the spawn reads while it waits (the shared job list)
    is not part of start() -> submit and is counted apart.
    """
    n = 6
    users = await hub.add_users([f"steady{i}" for i in range(n)])
    traits = hub.traits(startup_poll_interval=0.1, startup_poll_max_interval=0.2)
    first = [hub.new_spawner(u, **traits) for u in users]
    _, errors, _ = await spawn_all(first, 0.0, emu=emu)
    assert errors == []
    for s in first:
        await s.stop(now=True)
    again = [hub.new_spawner(u, **traits) for u in users]
    emu.admin.reset_counters()
    _, errors, _ = await spawn_all(again, 0.0, emu=emu)
    assert errors == []
    counts = emu.counts()
    ep = counts["endpoints"]
    start_to_submit = {k: v for k, v in ep.items() if k in BEFORE_SUBMIT}
    assert start_to_submit == {
        "POST /filesystem/{system}/ops/upload": n,
        "PUT /filesystem/{system}/ops/chmod": n,
        "POST /compute/{system}/jobs": n,
    }
    # Everything else is the wait for the job (one list per poll round, shared).
    assert set(ep) - BEFORE_SUBMIT <= {LIST}
    assert counts["idp"] <= n
    for s in again:
        await s.stop(now=True)


async def test_harness_steady_state_with_periodic_callbacks(emu):
    """The benchmark's own driver (tornado PeriodicCallback, 1 s interval)."""
    ours = await run_steady(emu, 5, "ours", poll_interval=1, status_max_age=0.33, rounds=1)
    base = await run_steady(emu, 5, "baseline", poll_interval=1, status_max_age=0.33, rounds=1)
    assert ours.rounds > 0
    assert base.rounds > 0
    assert ours.idp_per_interval == 0
    # Target: at most the number of systems plus a small constant per interval.
    assert ours.firecrest_per_interval <= 1 + 2
    assert base.idp_per_interval == base.firecrest_per_interval
    assert ours.mem_per_server_kib > 0


async def test_harness_storm(emu):
    r = await run_storm(emu, 3, "ours", queue_delay=0.0, startup_poll_interval=0.1)
    assert (r.ok, r.failed) == (3, 0)
    assert r.endpoints["POST /compute/{system}/jobs"] == 3


async def test_harness_storm_of_returning_users(emu):
    # Mode ours-returning: each user's second spawn; the first taught the spawner
    # the default account and the token directory.
    r = await run_storm(emu, 3, "ours-returning", queue_delay=0.0, startup_poll_interval=0.1)
    assert (r.ok, r.failed) == (3, 0)
    ep = r.endpoints
    assert ep["POST /compute/{system}/jobs"] == 3
    assert ep["POST /filesystem/{system}/ops/upload"] == 3
    assert ep["PUT /filesystem/{system}/ops/chmod"] == 3
    assert "GET /status/{system}/userinfo" not in ep
    assert "POST /filesystem/{system}/ops/mkdir" not in ep


async def test_harness_reports_the_port_once_the_job_runs():
    """The job's part (``report="job"``) reports when the emulator shows the job
    RUNNING, whatever the spawner's phase: with start-up polling set to an hour,
    the spawns end only because the report wakes them (in the earlier harness,
    which waited for the spawner's phase "waiting", they would not)."""
    with emulator_thread(bench_config(queue_delay=1.0)) as slow_queue:
        hour = 3600
        r = await asyncio.wait_for(
            run_storm(
                slow_queue,
                3,
                "ours",
                queue_delay=1.0,
                startup_poll_interval=hour,
                startup_poll_max_interval=hour,
                start_timeout=2 * hour,
            ),
            60,
        )
    assert (r.ok, r.failed) == (3, 0)
    assert r.report == "job"
    assert r.harness_reads > 0
    # The shared job list: read after the submits and again after the reports
    # (concurrent reads share one request), at most twice per spawn.
    assert 2 <= r.endpoints[LIST] <= 6
    assert JOB not in r.endpoints


async def test_harness_storm_floor_does_no_remote_work(emu):
    # The floor (benchmarks/floor.py): the same harness, JupyterHub's spawner
    # machinery only; every spawn gets its port and no request leaves the hub.
    r = await run_storm(emu, 3, "floor", queue_delay=0.0)
    assert (r.ok, r.failed) == (3, 0)
    assert r.firecrest_per_spawn == 0
    assert r.idp_per_spawn == 0
    assert r.to_submit_p95_s >= 0


async def test_harness_profiles(emu):
    v = profiles_bench.bench_validate(files=6, repeat=1)
    assert v["files"] == 6
    assert v["profiles"] >= 6
    f = await profiles_bench.bench_form(emu, visible=4, renders=2)
    assert f["profiles_visible"] == 4
