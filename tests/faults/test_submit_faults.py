"""Lost and ambiguous submit answers, 20 users at once (issue #13, findings 1 and 2)."""

from __future__ import annotations

import re

import pytest

from .conftest import (
    JOB_LIST,
    SUBMIT,
    FaultStack,
    assert_clean_log,
    assert_invariants,
    fired,
    users,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chp, pytest.mark.timeout(600)]

#: What a spawn that failed because of a lost or ambiguous submit must name.
SUBMIT_CAUSE = re.compile(r"submi|outcome|not be looked up|job list|408|timeout", re.I)


@pytest.mark.parametrize("delay", [0, 8, 15])
async def test_lost_submit_answer_leaves_one_job_per_spawn(fault_stack: FaultStack, delay: int):
    """The submit creates the job but its answer is lost (408); the job shows up
    only after ``delay`` seconds. Every spawn ends with exactly one live job."""
    hub = fault_stack
    names = users(f"lost{delay}")
    mark = hub.log_mark()
    hub.faults(
        visibility_delay=float(delay),
        rules=[{"route": SUBMIT, "effect": "error_after", "status": 408, "times": len(names)}],
    )
    try:
        outcomes = await hub.spawn_all(names)
        assert fired(hub, SUBMIT) == len(names), hub.fault_stats()
    finally:
        hub.clear_faults()
    failed = {n: o.message for n, o in outcomes.items() if not o.ready}
    wrong = {n: m for n, m in failed.items() if not SUBMIT_CAUSE.search(m)}
    assert not wrong, f"failed spawns whose message does not name the lost submit: {wrong}"
    ready = {n for n, o in outcomes.items() if o.ready}
    hub.reap()
    assert_invariants(hub, names, await hub.servers(names), ready)
    assert_clean_log(hub.log_since(mark))
    await hub.stop_all(names)
    assert_invariants(hub, names, await hub.servers(names), set())


async def test_ambiguous_submit_with_failing_job_list_leaves_no_untracked_job(
    fault_stack: FaultStack,
):
    """The submit's connection drops after sbatch ran, and the job list answers 500:
    the spawn cannot tell whether its job exists. It fails naming that, and no
    job is left without a record once the reaper made its first pass."""
    hub = fault_stack
    names = users("ambig")
    mark = hub.log_mark()
    hub.faults(
        rules=[
            {"route": SUBMIT, "effect": "drop_after", "times": len(names)},
            {"route": JOB_LIST, "effect": "error", "status": 500},
        ]
    )
    try:
        outcomes = await hub.spawn_all(names)
        assert fired(hub, SUBMIT) == len(names), hub.fault_stats()
        assert fired(hub, JOB_LIST) > 0, hub.fault_stats()
        # Stop what may still be registered while the list still fails (stop's clean-up
        # of a job it cannot find by name is part of the fault).
        await hub.stop_all(names)
    finally:
        hub.clear_faults()
    failed = {n: o.message for n, o in outcomes.items() if not o.ready}
    wrong = {n: m for n, m in failed.items() if not SUBMIT_CAUSE.search(m)}
    assert not wrong, f"failed spawns whose message does not name the ambiguous submit: {wrong}"
    hub.reap()
    assert_invariants(hub, names, await hub.servers(names), set())
    assert_clean_log(hub.log_since(mark))
