"""The reaper's decisions (pure): which jobs of which hub are orphans, and how old."""

from __future__ import annotations

import pytest

from firecrestspawner import naming
from firecrestspawner.reaper import (
    ActiveServer,
    hub_slug,
    job_age,
    parse_duration,
    plan,
    seen_key,
    server_key,
)

NOW = 1_800_000_000.0
HUB = "Site Hub"


def job(name, state="RUNNING", *, job_id="1", elapsed=None, start=None, user="alice"):
    return {
        "jobId": job_id,
        "name": name,
        "user": user,
        "status": {"state": state},
        "time": {"elapsed": elapsed, "start": start},
    }


def ours(user="alice", server="", spawn="abc123", hub=HUB):
    return naming.job_name(hub, user, server, spawn)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("600", 600, id="bare-seconds"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("10m", 600, id="minutes"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param("1d", 86400, id="days"),
        pytest.param("0.5", 0.5, id="fraction"),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "-5", "10x", "5 minutes"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_slugs_are_the_ones_job_names_use():
    parsed = naming.parse_job_name(naming.job_name(HUB, "Alice@Example.org", "My Server", "9"))
    assert parsed is not None
    assert hub_slug(HUB) == parsed.hub
    assert server_key("Alice@Example.org", "My Server") == (parsed.user, parsed.server)
    assert server_key("alice", "") == ("alice", "_")


@pytest.mark.parametrize(
    ("j", "first_seen", "age"),
    [
        pytest.param(job("x", elapsed=700, start=NOW - 5), None, 700, id="running-elapsed"),
        pytest.param(job("x", start=NOW - 300), None, 300, id="running-start-only"),
        pytest.param(job("x", "PENDING", start=NOW - 999), None, None, id="pending-unseen"),
        pytest.param(job("x", "PENDING"), NOW - 120, 120, id="pending-seen-before"),
        pytest.param(job("x", elapsed=10), NOW - 900, 900, id="seen-longer-than-elapsed"),
        pytest.param(job("x", "SUSPENDED", elapsed=50), None, 50, id="suspended-counts-as-running"),
    ],
)
def test_job_age(j, first_seen, age):
    assert job_age(j, NOW, first_seen) == age


def decide(jobs, *, active=(), min_age=600, first_seen=None):
    return {
        d.name: (d.action, d.reason)
        for d in plan(
            jobs,
            system="cluster",
            hub_id=HUB,
            active={server_key(u, s) for u, s in active},
            min_age=min_age,
            now=NOW,
            first_seen=first_seen or {},
        )
    }


def test_plan_cancels_only_old_jobs_of_this_hub_without_a_server():
    jobs = [
        job(ours("ghost"), elapsed=3600, job_id="1"),
        job(ours("alice"), elapsed=3600, job_id="2"),
        job(ours("alice", "gpu"), elapsed=3600, job_id="3"),
        job(ours("bob", hub="other hub"), elapsed=3600, job_id="4"),
        job("my-own-job", elapsed=3600, job_id="5"),
        job(ours("young"), elapsed=30, job_id="6"),
        job(ours("queued"), "PENDING", job_id="7"),
        job(ours("done"), "COMPLETED", elapsed=3600, job_id="8"),
        job(ours("ending"), "COMPLETING", elapsed=3600, job_id="9"),
        job(ours("odd"), "WEIRD_NEW_STATE", elapsed=3600, job_id="10"),
        job(ours("cancelled"), "CANCELLED by 0", elapsed=3600, job_id="11"),
    ]
    assert decide(jobs, active=[("alice", "")]) == {
        ours("ghost"): ("cancel", "no active server"),
        ours("alice"): ("keep", "active server"),
        ours("alice", "gpu"): ("cancel", "no active server"),
        ours("young"): ("keep", "younger than min-age"),
        ours("queued"): ("keep", "younger than min-age"),
    }


def test_plan_queued_job_seen_long_enough_is_an_orphan():
    j = job(ours("queued"), "PENDING", job_id="7")
    assert decide([j], first_seen={seen_key("cluster", "7"): NOW - 601}) == {
        ours("queued"): ("cancel", "no active server")
    }
    # the same job id on another system was not seen
    assert decide([j], first_seen={seen_key("other", "7"): NOW - 601}) == {
        ours("queued"): ("keep", "younger than min-age")
    }


def test_plan_min_age_zero_still_needs_an_age():
    assert decide([job(ours("q"), "PENDING")], min_age=0) == {
        ours("q"): ("keep", "younger than min-age")
    }
    assert decide([job(ours("r"), elapsed=0)], min_age=0) == {
        ours("r"): ("cancel", "no active server")
    }


def decide_servers(jobs, servers, *, min_age=600):
    return {
        d.name: (d.action, d.reason)
        for d in plan(
            jobs,
            system="cluster",
            hub_id=HUB,
            active=servers,
            min_age=min_age,
            now=NOW,
            first_seen={},
        )
    }


def server(user="alice", name="", **state):
    """An active server whose spawner state is ``state`` (None: the hub gave no state)."""
    model = {"pending": state.pop("pending", None)}
    if state.get("state", True) is not None:
        model["state"] = {k: v for k, v in state.items() if k != "state"}
    return ActiveServer.from_model(user, name, model)


def test_jobs_are_matched_to_servers_by_job_name():
    current, extra = ours("alice", spawn="cur1"), ours("alice", spawn="old1")
    jobs = [job(current, elapsed=3600, job_id="1"), job(extra, elapsed=3600, job_id="2")]
    assert decide_servers(jobs, [server(job_name=current, job_id="1")]) == {
        current: ("keep", "active server"),
        extra: ("cancel", "not the job of the active server"),
    }
    # min-age still protects a young extra job
    young = [job(extra, elapsed=30, job_id="2")]
    assert decide_servers(young, [server(job_name=current)]) == {
        extra: ("keep", "younger than min-age")
    }


@pytest.mark.parametrize(
    ("active", "reason"),
    [
        pytest.param(server(state=None), "active server", id="state-not-readable"),
        pytest.param(server(), "active server", id="state-names-no-job"),
        pytest.param(
            server(job_name="x", pending="spawn"), "spawn in progress", id="spawn-in-progress"
        ),
        pytest.param(server(job_id="2"), "active server", id="legacy-state-with-job-id"),
    ],
)
def test_a_server_whose_state_cannot_tell_keeps_its_jobs(active, reason):
    other = ours("alice", spawn="zzz9")
    assert decide_servers([job(other, elapsed=3600, job_id="2")], [active]) == {
        other: ("keep", reason)
    }


def test_legacy_state_with_another_job_id_is_an_extra_job():
    other = ours("alice", spawn="zzz9")
    assert decide_servers([job(other, elapsed=3600, job_id="3")], [server(job_id="2")]) == {
        other: ("cancel", "not the job of the active server")
    }


def test_orphans_recorded_by_the_spawner_are_cancelled():
    current = ours("alice", spawn="cur1")
    by_name, by_id = ours("alice", spawn="lost1"), ours("bob", spawn="lost2")
    jobs = [
        job(current, elapsed=3600, job_id="1"),
        job(by_name, elapsed=3600, job_id="2"),
        job(by_id, elapsed=3600, job_id="3"),
    ]
    servers = [
        server(job_name=current, orphans=[{"job_name": by_name}]),  # no job id: a lost submit
        server(
            "carol",
            orphans=[{"job_id": "3", "system": "Cluster", "job_name": ""}, "not a dict"],
        ),
    ]
    assert decide_servers(jobs, servers) == {
        current: ("keep", "active server"),
        by_name: ("cancel", "recorded as an orphan by its spawner"),
        by_id: ("cancel", "recorded as an orphan by its spawner"),
    }
    # An orphan's id on another system is another job.
    other_system = [{"job_id": "3", "system": "other"}]
    assert decide_servers([job(by_id, elapsed=3600, job_id="3")], [server(orphans=other_system)])[
        by_id
    ] == ("cancel", "no active server")
