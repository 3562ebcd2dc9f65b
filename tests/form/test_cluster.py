"""Cluster-derived choices: conversion of FirecREST answers, TTL cache, bounded
fetches with stale and static fallbacks, against the FirecREST emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from firecrestspawner import client as fc_client
from firecrestspawner.cluster import (
    ClusterCache,
    ClusterChoice,
    PooledStatusClient,
    nodes_to_choices,
    partitions_to_choices,
    reservations_to_choices,
    userinfo_to_accounts,
)
from firecrestspawner.emulator.config import (
    EmulatorConfig,
    PartitionConfig,
    ReservationConfig,
    SystemConfig,
)
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param([{"name": "normal", "partition": "UP"}], ["normal"], id="up"),
        pytest.param([{"name": "old", "partition": "DOWN"}], [], id="down-dropped"),
        pytest.param([{"name": "x", "partition": ["UP"]}], ["x"], id="state-as-list"),
        pytest.param([{"name": "", "partition": "UP"}], [], id="nameless-dropped"),
        pytest.param(
            [{"name": "a", "partition": "INACTIVE"}, {"name": "b", "partition": "UP"}],
            ["b"],
            id="inactive-dropped",
        ),
    ],
)
def test_partitions_to_choices(answer, expected):
    assert [c.value for c in partitions_to_choices(answer)] == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param([{"name": "r", "state": "active"}], ["r"], id="active"),
        pytest.param([{"name": "r", "state": "inactive"}], [], id="inactive"),
        pytest.param(
            [{"name": "r", "startTime": NOW - 10, "endTime": NOW + 10}], ["r"], id="times-now"
        ),
        pytest.param(
            [{"name": "r", "startTime": NOW + 10, "endTime": NOW + 20}], [], id="times-future"
        ),
        pytest.param([{"name": "r", "startTime": NOW - 20, "endTime": NOW - 10}], [], id="past"),
    ],
)
def test_reservations_to_choices(answer, expected):
    assert [c.value for c in reservations_to_choices(answer, now=NOW)] == expected


@pytest.mark.parametrize(
    ("answer", "expected", "default"),
    [
        pytest.param(
            {"accounts": [{"name": "a1", "default": False}, {"name": "a2", "default": True}]},
            ["a1", "a2"],
            "a2",
            id="accounts",
        ),
        pytest.param(
            {"accounts": None, "group": {"id": "1", "name": "grp"}}, ["grp"], "grp", id="null"
        ),
        pytest.param({"accounts": None, "group": None}, [], None, id="nothing"),
    ],
)
def test_userinfo_to_accounts(answer, expected, default):
    choices = userinfo_to_accounts(answer)
    assert [c.value for c in choices] == expected
    assert next((c.value for c in choices if c.default), None) == default


def test_nodes_to_choices_drops_unavailable_nodes():
    nodes = [
        {"name": "n1", "state": ["IDLE"], "idleCpus": 8},
        {"name": "n2", "state": ["DOWN"], "idleCpus": 0},
        {"name": "n3", "state": ["MIXED", "DRAIN"], "idleCpus": 2},
    ]
    choices = nodes_to_choices(nodes)
    assert [c.value for c in choices] == ["n1"]
    assert choices[0].detail == "8 idle CPUs"


# --------------------------------------------------------------------------
# Against the emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    now = int(time.time())
    config = EmulatorConfig(
        systems=[
            SystemConfig(
                name="alps",
                node_name="127.0.0.1",
                partitions=[
                    PartitionConfig(name="normal", default=True),
                    PartitionConfig(name="debug"),
                    PartitionConfig(name="broken", state="DOWN"),
                    PartitionConfig(name="secret", hidden=True),
                ],
                reservations=[
                    ReservationConfig(name="course"),
                    ReservationConfig(name="tomorrow", start_time=now + 86400),
                ],
                accounts={"alice": ["proj-a", "proj-b"], "bob": ["proj-c"]},
            )
        ]
    )
    with running_emulator(config) as e:
        yield e


class _TokenAuth:
    """A fixed access token (the spawner uses auth.py's refreshing credential)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_client(emu):
    tokens: dict[str, str] = {}

    def make(user: str, attempts: int = 1):
        if user not in tokens:
            tokens[user] = emu.issue_access_token(user, lifetime=3600)
        auth = _TokenAuth(tokens[user])
        settings = fc_client.ClientSettings(
            read_attempts=attempts, backoff_initial=0.05, backoff_jitter=0.05, api_version="2.5.6"
        )

        async def factory():
            # The pool keys clients by identity and keeps the first settings.
            ident = f"{user}#{attempts}"
            return PooledStatusClient(fc_client.get_client(emu.url, ident, auth, settings))

        return factory

    return make


@pytest.fixture
def faults(emu):
    yield emu.admin
    emu.admin.reset_faults()


def _status_count(emu: RunningEmulator, kind: str) -> int:
    return emu.admin.counters()["endpoints"].get(f"GET /status/{{system}}/{kind}", 0)


async def test_live_choices_from_the_emulator(emu, make_client):
    cache = ClusterCache()
    args = {"firecrest_url": emu.url, "system": "alps", "user": "alice"}
    parts = await cache.get(make_client("alice"), source="partitions", **args)
    assert parts.origin == "live"
    assert parts.note == ""
    assert parts.values == ("normal", "debug")  # DOWN and hidden ones are not offered
    res = await cache.get(make_client("alice"), source="reservations", **args)
    assert res.values == ("course",)  # the future one is not active now
    acc = await cache.get(make_client("alice"), source="accounts", **args)
    assert acc.values == ("proj-a", "proj-b")
    assert acc.default == "proj-a"
    nodes = await cache.get(make_client("alice"), source="nodes", **args)
    assert nodes.origin == "live"


async def test_allow_list_intersects_cluster_values(emu, make_client):
    cache = ClusterCache()
    parts = await cache.get(
        make_client("alice"),
        firecrest_url=emu.url,
        system="alps",
        user="alice",
        source="partitions",
        allow=["debug", "gpu"],
    )
    assert parts.values == ("debug",)


async def test_cache_serves_within_ttl_and_refetches_after(emu, make_client):
    clock = [1000.0]
    cache = ClusterCache(clock=lambda: clock[0])
    args = {"firecrest_url": emu.url, "system": "alps", "source": "partitions", "ttl": 60}
    before = _status_count(emu, "partitions")
    first = await cache.get(make_client("alice"), user="alice", **args)
    # Partitions do not depend on the user: bob is served from alice's fetch.
    second = await cache.get(make_client("bob"), user="bob", **args)
    assert (first.origin, second.origin) == ("live", "cache")
    assert _status_count(emu, "partitions") == before + 1
    clock[0] += 61
    third = await cache.get(make_client("alice"), user="alice", **args)
    assert third.origin == "live"
    assert _status_count(emu, "partitions") == before + 2


async def test_accounts_are_cached_per_user(emu, make_client):
    cache = ClusterCache()
    args = {"firecrest_url": emu.url, "system": "alps", "source": "accounts"}
    alice = await cache.get(make_client("alice"), user="alice", **args)
    bob = await cache.get(make_client("bob"), user="bob", **args)
    assert alice.values == ("proj-a", "proj-b")
    assert bob.values == ("proj-c",)
    again = await cache.get(make_client("bob"), user="bob", **args)
    assert again.origin == "cache"
    assert again.values == ("proj-c",)


async def test_firecrest_down_without_cache_gives_fallback_and_note(emu, make_client, faults):
    faults.set_faults(rules=[{"route": "GET /status/*", "status": 503}])
    cache = ClusterCache()
    result = await cache.get(
        make_client("alice"),
        firecrest_url=emu.url,
        system="alps",
        user="alice",
        source="partitions",
        fallback=[ClusterChoice("normal")],
    )
    assert result.origin == "fallback"
    assert result.values == ("normal",)
    assert "could not list partitions" in result.note
    assert "default list" in result.note


async def test_firecrest_down_after_expiry_serves_stale_list(emu, make_client, faults):
    clock = [0.0]
    cache = ClusterCache(clock=lambda: clock[0])
    args = {
        "firecrest_url": emu.url,
        "system": "alps",
        "user": "alice",
        "source": "accounts",
        "ttl": 10,
        "fallback": [ClusterChoice("fallback-account")],
    }
    assert (await cache.get(make_client("alice"), **args)).origin == "live"
    clock[0] = 100
    faults.set_faults(rules=[{"route": "GET /status/*", "status": 500}])
    stale = await cache.get(make_client("alice"), **args)
    assert stale.origin == "stale"
    assert stale.values == ("proj-a", "proj-b")
    assert "showing the list from" in stale.note


async def test_slow_firecrest_is_not_awaited_and_fills_the_cache_later(emu, make_client, faults):
    # Slow and then failing once: the client's bounded retry then succeeds.
    faults.set_faults(rules=[{"route": "GET /status/*", "status": 503, "delay": 1.0, "times": 1}])
    cache = ClusterCache()
    args = {
        "firecrest_url": emu.url,
        "system": "alps",
        "user": "alice",
        "source": "reservations",
        "timeout": 0.2,
        "fallback": [ClusterChoice("static-res")],
    }
    slow = await cache.get(make_client("alice", attempts=2), **args)
    assert slow.origin == "fallback"
    assert slow.values == ("static-res",)
    assert "did not answer within 0.2 s" in slow.note
    # The fetch went on in the background (one in flight, not one per render).
    again = await cache.get(make_client("alice", attempts=2), **args)
    assert again.origin == "fallback"
    assert cache.fetches["reservations"] == 1
    await asyncio.gather(*cache._inflight.values())
    later = await cache.get(make_client("alice"), **args)
    assert later.origin == "cache"
    assert later.values == ("course",)


async def test_unknown_source_is_a_programming_error(emu, make_client):
    with pytest.raises(ValueError, match="unknown cluster source"):
        await ClusterCache().get(
            make_client("alice"), firecrest_url=emu.url, system="alps", user="a", source="qos"
        )


@pytest.fixture(scope="module", autouse=True)
async def _close_clients():
    yield
    await fc_client.close_all()


async def test_latency_gives_fallback_then_the_late_answer_is_cached(emu, make_client, faults):
    faults.set_faults(rules=[{"route": "GET /status/*", "effect": "latency", "delay": 1.0}])
    cache = ClusterCache()
    args = {
        "firecrest_url": emu.url,
        "system": "alps",
        "user": "alice",
        "source": "partitions",
        "timeout": 0.2,
        "fallback": [ClusterChoice("normal")],
    }
    first = await cache.get(make_client("alice"), **args)
    assert (first.origin, first.values) == ("fallback", ("normal",))
    await asyncio.gather(*cache._inflight.values())
    later = await cache.get(make_client("alice"), **args)
    assert (later.origin, later.values) == ("cache", ("normal", "debug"))
