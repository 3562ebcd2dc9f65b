"""Table tests for the state mapping and host extraction (pure)."""

from __future__ import annotations

import pytest

from firecrestspawner import states
from firecrestspawner.states import JobStatus, Phase


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param("PENDING", Phase.QUEUED, id="pending"),
        pytest.param("CONFIGURING", Phase.QUEUED, id="configuring"),
        pytest.param("REQUEUE_HOLD", Phase.QUEUED, id="requeue-hold"),
        pytest.param("RUNNING", Phase.ALLOCATED, id="running"),
        pytest.param("SUSPENDED", Phase.ALLOCATED, id="suspended"),
        pytest.param("COMPLETING", Phase.ENDING, id="completing"),
        pytest.param("STAGE_OUT", Phase.ENDING, id="stage-out"),
        pytest.param("COMPLETED", Phase.FINISHED, id="completed"),
        pytest.param("CANCELLED by 1000", Phase.FINISHED, id="cancelled-by"),
        pytest.param("OUT_OF_MEMORY", Phase.FINISHED, id="oom"),
        pytest.param("running", Phase.ALLOCATED, id="lower-case"),
        pytest.param("WEIRD_NEW_STATE", Phase.UNKNOWN, id="open-set"),
        pytest.param("", Phase.UNKNOWN, id="empty"),
        pytest.param(None, Phase.UNKNOWN, id="none"),
    ],
)
def test_phase(state, expected):
    assert states.phase(state) is expected


@pytest.mark.parametrize(
    ("job_status", "kwargs", "expected"),
    [
        pytest.param("PENDING", {}, JobStatus.PENDING, id="pending"),
        pytest.param("CONFIGURING nid001", {}, JobStatus.PENDING, id="configuring"),
        pytest.param("RUNNING nid001", {}, JobStatus.RUNNING, id="running"),
        pytest.param("SUSPENDED nid001", {}, JobStatus.RUNNING, id="suspended-table"),
        pytest.param("REQUEUED", {}, JobStatus.PENDING, id="requeued-table"),
        # The legacy running regex lists COMPLETING, but the server is gone.
        pytest.param("COMPLETING nid001", {}, JobStatus.NOTFOUND, id="completing-gone"),
        pytest.param("COMPLETED nid001", {}, JobStatus.NOTFOUND, id="completed"),
        pytest.param("CANCELLED by 0", {}, JobStatus.NOTFOUND, id="cancelled"),
        pytest.param("SOMETHING_NEW", {}, JobStatus.UNKNOWN, id="unknown-never-gone"),
        pytest.param("", {}, JobStatus.UNKNOWN, id="empty-is-unknown"),
        pytest.param(
            "slurm_load_jobs error: Unable to contact slurm controller",
            {},
            JobStatus.UNKNOWN,
            id="unknown-re",
        ),
        pytest.param(
            "HELD nid001",
            {"running_re": r"^HELD"},
            JobStatus.RUNNING,
            id="site-running-re",
        ),
        pytest.param("WAITING", {"pending_re": r"^WAIT"}, JobStatus.PENDING, id="site-pending-re"),
        pytest.param(
            "COMPLETED", {"unknown_re": r"^COMPLETED"}, JobStatus.UNKNOWN, id="unknown-re-wins"
        ),
        pytest.param(
            "RUNNING nid001", {"running_re": "", "pending_re": ""}, JobStatus.RUNNING, id="no-re"
        ),
    ],
)
def test_classify(job_status, kwargs, expected):
    assert states.classify(job_status, **kwargs) is expected


@pytest.mark.parametrize(
    ("state", "nodes", "expected"),
    [
        pytest.param("RUNNING", "nid001", "RUNNING nid001", id="node"),
        pytest.param("PENDING", "", "PENDING", id="pending-empty"),
        pytest.param("PENDING", "None assigned", "PENDING", id="pending-sacct"),
        pytest.param("RUNNING", "nid[001-004]", "RUNNING nid[001-004]", id="hostlist"),
    ],
)
def test_job_status_string(state, nodes, expected):
    assert states.job_status_string(state, nodes) == expected


@pytest.mark.parametrize(
    ("job_status", "exechost_re", "exp", "expected"),
    [
        pytest.param("RUNNING nid001", states.DEFAULT_EXECHOST_RE, "", "nid001", id="single"),
        pytest.param(
            "RUNNING nid[003-004],vm", states.DEFAULT_EXECHOST_RE, "", "nid003", id="hostlist"
        ),
        pytest.param("PENDING", states.DEFAULT_EXECHOST_RE, "", "", id="no-node"),
        pytest.param(
            "RUNNING nid001", r"^(\S+) nid(\d+)$", r"node-\2", "node-001", id="expand-exp"
        ),
        pytest.param("RUNNING nid001", "", "", "", id="no-regex"),
    ],
)
def test_gethost(job_status, exechost_re, exp, expected):
    assert states.gethost(job_status, exechost_re, exp) == expected


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        pytest.param({"status": {"state": "COMPLETED", "exitCode": None}}, 0, id="completed"),
        pytest.param({"status": {"state": "FAILED", "exitCode": 3}}, 3, id="failed-code"),
        pytest.param({"status": {"state": "FAILED", "exitCode": None}}, 1, id="failed-nocode"),
        pytest.param({"status": {"state": "CANCELLED by 5"}}, 1, id="cancelled"),
        pytest.param(None, 0, id="no-job"),
    ],
)
def test_exit_status(job, expected):
    assert states.exit_status(job) == expected


def test_state_and_reason_of():
    job = {"status": {"state": ["RUNNING", "X"], "stateReason": "None"}}
    assert states.state_of(job) == "RUNNING"
    assert states.reason_of(job) == ""
    assert states.reason_of({"status": {"stateReason": "Priority"}}) == "Priority"


def test_expand_nodes_bad_hostlist_is_kept():
    assert states.expand_nodes("nid[001-") == ["nid[001-"]
    assert states.expand_nodes("None assigned") == []
