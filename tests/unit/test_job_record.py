"""The spawn's job as one record: state keys, orphans, one reset (pure)."""

from __future__ import annotations

import time

import pytest

from firecrestspawner.jobs.record import MAX_ORPHANS, JobRecord, Orphan

#: A state as firecrestspawner fc6b957 (before the job record) saved it for a
#: running server with a left-over job: every key this version must read.
OLD_STATE = {
    "job_id": "41",
    "job_status": "RUNNING nid001",
    "system": "cluster",
    "firecrest_url": "https://firecrest.example.org",
    "job_name": "fcs.jupyterhub.alice._.0123456789ab",
    "host": "nid001",
    "port": 45678,
    "profile": "cpu",
    "submitted_at": 1796300000.5,
    "log_path": "/home/alice/fcs.jupyterhub.alice._.0123456789ab.log",
    "token_file": "/home/alice/.firecrestspawner/fcs.jupyterhub.alice._.0123456789ab.token",
    "seen": True,
    "orphans": [
        {
            "job_id": "40",
            "system": "cluster",
            "firecrest_url": "https://firecrest.example.org",
            "job_name": "fcs.jupyterhub.alice._.aaaaaaaaaaaa",
        }
    ],
}


def test_a_state_of_the_previous_version_loads_and_saves_unchanged():
    record = JobRecord.from_state(OLD_STATE)
    assert (record.job_id, record.system, record.port, record.seen) == (
        "41",
        "cluster",
        45678,
        True,
    )
    assert record.orphans == [
        Orphan(
            "40", "cluster", "https://firecrest.example.org", "fcs.jupyterhub.alice._.aaaaaaaaaaaa"
        )
    ]
    assert record.to_state() == OLD_STATE


@pytest.mark.parametrize(
    ("state", "seen"),
    [
        pytest.param({"job_id": "7"}, True, id="only-job-id"),
        pytest.param({"job_id": "7", "job_status": "PENDING "}, True, id="legacy-with-status"),
        pytest.param({"job_id": "7", "submitted_at": time.time()}, False, id="submitted-unseen"),
        pytest.param({}, True, id="empty"),
    ],
)
def test_states_with_few_keys(state, seen):
    record = JobRecord.from_state(state)
    assert record.job_id == state.get("job_id", "")
    assert record.seen is seen
    assert record.orphans == []


def test_bad_values_do_not_break_loading():
    record = JobRecord.from_state(
        {"job_id": 5, "port": "x", "submitted_at": "y", "orphans": [{"job_id": "1"}, "junk", None]}
    )
    assert (record.job_id, record.port, record.submitted_at) == ("5", 0, 0.0)
    assert record.orphans == []  # an orphan without a system cannot be cancelled


def test_reset_keeps_orphans_and_makes_the_unended_job_one():
    record = JobRecord.from_state(OLD_STATE)
    record.reset()
    state = record.to_state()
    assert set(state) == {"orphans"}
    assert [o["job_id"] for o in state["orphans"]] == ["40", "41"]


def test_reset_forgets_an_ended_job():
    record = JobRecord.from_state(OLD_STATE)
    record.ended = True
    record.reset()
    assert [o.job_id for o in record.orphans] == ["40"]
    assert (record.job_id, record.job, record.ended) == ("", None, False)


def test_a_name_a_lost_submit_may_have_used_survives_reset():
    record = JobRecord(system="cluster", firecrest_url="u", job_name="fcs.h.bob._.1")
    record.submit_unknown = True
    assert record.to_state()["submit_unknown"] is True
    assert JobRecord.from_state(record.to_state()).submit_unknown
    record.reset()
    [orphan] = record.orphans
    assert (orphan.job_id, orphan.job_name) == ("", "fcs.h.bob._.1")
    assert orphan.recorded_at > 0
    again = JobRecord.from_state(record.to_state())
    assert again.orphans == record.orphans


def test_orphans_are_unique_and_bounded():
    record = JobRecord()
    for i in range(MAX_ORPHANS + 5):
        record.add_orphan(Orphan(str(i), "cluster", "u", f"n{i}"))
        record.add_orphan(Orphan(str(i), "cluster", "u", f"n{i}"))
    assert len(record.orphans) == MAX_ORPHANS
    assert record.orphans[0].job_id == "5"  # the oldest went first
    # The same job by name is the same orphan.
    record.add_orphan(Orphan("", "cluster", "u", "n24"))
    assert len(record.orphans) == MAX_ORPHANS


def test_the_notice_survives_reset_until_shown():
    record = JobRecord(job_id="3", system="cluster", notice="job 3 was cancelled")
    record.ended = True
    record.reset()
    assert record.to_state() == {"notice": "job 3 was cancelled"}
