"""FirecREST refusing tokens after a key rotation (401) and rate limiting (429),
20 users at once (issue #13, findings 4 and 5)."""

from __future__ import annotations

import asyncio
import re

import pytest

from .conftest import (
    JOB_LIST,
    JOB_ONE,
    SUBMIT,
    FaultStack,
    assert_clean_log,
    assert_invariants,
    fired,
    settle,
    users,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chp, pytest.mark.timeout(600)]

RATE_CAUSE = re.compile(r"429|too many requests|rate", re.I)


def _count(statuses: dict[str, int], suffix: str) -> int:
    return sum(n for key, n in statuses.items() if key.endswith(suffix))


async def test_401_after_key_rotation_fetches_new_tokens(fault_stack: FaultStack):
    """The identity provider rotates its signing key while 20 servers run: every
    cached access token is refused (401). Polls go on, stops and new spawns of the
    same sessions work, no server is declared dead."""
    hub = fault_stack
    names = users("rot")
    outcomes = await hub.spawn_all(names)
    assert all(o.ready for o in outcomes.values()), {n: o.message for n, o in outcomes.items()}
    mark = hub.log_mark()
    hub.stack.admin("DELETE", "counters")
    hub.stack.admin("POST", "rotate_key")
    await settle(6)  # the hub's polls (poll_interval 2 s) meet the 401 first
    restart = names[:10]
    await hub.stop_all(restart)
    again = await hub.spawn_all(restart, login=False)  # the sessions' cached tokens
    statuses = hub.statuses()
    assert _count(statuses, " 401") > 0, statuses
    failed = {n: o.message for n, o in again.items() if not o.ready}
    assert not failed, f"spawns after the key rotation failed: {failed}"
    hub.reap()
    assert_invariants(hub, names, await hub.servers(names), set(names))
    assert_clean_log(hub.log_since(mark))
    await hub.stop_all(names)
    assert_invariants(hub, names, await hub.servers(names), set())


async def test_429_give_up_declares_no_server_dead_and_names_the_cause(fault_stack: FaultStack):
    """Every job read answers 429 for longer than a read's deadline while 20
    servers run, and 5 users try to start while every submit answers 429.
    The running servers stay (a read that gave up is not evidence of an end);
    the 5 spawns fail naming the rate limit; nothing is left untracked."""
    hub = fault_stack
    names = users("rate")
    late = users("rates", 5)
    outcomes = await hub.spawn_all(names)
    assert all(o.ready for o in outcomes.values()), {n: o.message for n, o in outcomes.items()}
    await hub.login_all(late)
    mark = hub.log_mark()
    hub.faults(
        rules=[
            {"route": JOB_LIST, "status": 429, "retry_after": 1},
            {"route": JOB_ONE, "status": 429, "retry_after": 1},
            {"route": SUBMIT, "status": 429, "retry_after": 1},
        ]
    )
    try:
        # Longer than firecrest_read_deadline (8 s): reads give up meanwhile.
        late_outcomes, _ = await asyncio.gather(hub.spawn_all(late, login=False), settle(12))
        assert fired(hub, JOB_LIST) + fired(hub, JOB_ONE) > 0, hub.fault_stats()
        assert fired(hub, SUBMIT) > 0, hub.fault_stats()
    finally:
        hub.clear_faults()
    await settle(4)
    wrong = {n: o.message for n, o in late_outcomes.items() if o.ready}
    assert not wrong, f"spawns started although every submit answered 429: {wrong}"
    unnamed = {n: o.message for n, o in late_outcomes.items() if not RATE_CAUSE.search(o.message)}
    assert not unnamed, f"failed spawns whose message does not name the rate limit: {unnamed}"
    hub.reap()
    assert_invariants(hub, names + late, await hub.servers(names + late), set(names))
    assert_clean_log(hub.log_since(mark))
    await hub.stop_all(names + late)
