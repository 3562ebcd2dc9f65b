"""The job's end time: from FirecREST's job record into the state, the progress
messages, the spawner's public properties, and the job's environment (issue #15.3)."""

from __future__ import annotations

import subprocess
import time

import pytest

from firecrestspawner import singleuser
from firecrestspawner.jobs.progress import progress_event
from firecrestspawner.jobs.record import JobRecord, job_end_time, remaining_text
from firecrestspawner.remaining import RemainingTime

#: A state an earlier version saved (no ``end_time``).
OLD_STATE = {"job_id": "41", "job_status": "RUNNING nid001", "system": "cluster", "seen": True}


def running_job(start: float, limit: float | None, end: float | None = None) -> dict:
    """A job as FirecREST 2.5.6 reports it (``time`` in epoch seconds / seconds)."""
    return {
        "jobId": "41",
        "status": {"state": "RUNNING", "stateReason": "None"},
        "nodes": "nid001",
        "time": {"elapsed": 5, "start": start, "end": end, "suspended": 0, "limit": limit},
    }


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        pytest.param(
            {"start": 1000, "limit": 3600, "end": None}, 4600, id="sacct-start-plus-limit"
        ),
        pytest.param({"start": 1000, "limit": None, "end": 5000}, 5000, id="squeue-expected-end"),
        pytest.param({"start": 1000, "limit": None, "end": None}, 0, id="unlimited"),
        pytest.param({"start": None, "limit": 3600, "end": None}, 0, id="pending"),
        pytest.param({"start": "x", "limit": 3600}, 0, id="garbage"),
    ],
)
def test_end_time_from_the_firecrest_job(times, expected):
    assert job_end_time({"time": times}) == expected


def test_end_time_of_no_job_is_unknown():
    assert job_end_time(None) == 0
    assert job_end_time({"time": "soon"}) == 0


def test_end_time_is_saved_and_loaded_and_old_states_have_none():
    record = JobRecord(job_id="41", system="cluster")
    record.job = running_job(1_796_300_000, 7200)
    state = record.to_state()
    assert state["end_time"] == 1_796_307_200
    loaded = JobRecord.from_state(state)
    assert loaded.job is None
    assert loaded.ends_at == 1_796_307_200
    old = JobRecord.from_state(OLD_STATE)
    assert old.ends_at == 0
    assert "end_time" not in old.to_state()


def test_reset_and_a_new_job_forget_the_end():
    record = JobRecord.from_state({"job_id": "41", "system": "c", "end_time": 5000.0})
    record.ended = True
    record.reset()
    assert record.ends_at == 0
    record.end_time = 5000.0
    record.new_job(system="c", firecrest_url="u", profile="p", job_name="n")
    assert record.ends_at == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "ended"),
        (30, "less than a minute"),
        (7 * 60 + 59, "7 min"),
        (2 * 3600 + 5 * 60, "2 h 05 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_remaining_text(seconds, text):
    assert remaining_text(seconds) == text


@pytest.mark.parametrize("phase", ["queued", "waiting"])
def test_progress_names_the_end_once_the_job_runs(phase):
    start = time.time() - 60
    record = JobRecord(job_id="41", system="cluster", host="nid001", seen=True)
    record.job = running_job(start, 3600)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(start + 3600))
    event = progress_event(phase, record)
    assert event is not None
    assert f"Ends at {when} (its time limit)." in event[1]
    record.job = running_job(start, None)
    event = progress_event(phase, record)
    assert event is not None
    assert "Ends at" not in event[1]


class FakeSpawner(RemainingTime):
    def __init__(self, record: JobRecord, **kwargs):
        super().__init__(**kwargs)
        self.record = record


def test_spawner_properties_and_the_configurable_warning():
    record = JobRecord(job_id="41", system="cluster")
    record.job = running_job(time.time() - 60, 60 + 10 * 60 + 30)
    spawner = FakeSpawner(record, end_warning=15 * 60)
    assert spawner.firecrest_remaining == "10 min"
    assert spawner.firecrest_end_warning
    assert spawner.firecrest_end_iso.endswith("Z")
    assert not FakeSpawner(record, end_warning=5 * 60).firecrest_end_warning
    assert not FakeSpawner(record, end_warning=0).firecrest_end_warning
    record.ended = True
    assert spawner.firecrest_end_time == 0
    assert spawner.firecrest_remaining == ""


def test_end_warning_trait_is_documented_and_configurable():
    trait = RemainingTime.class_traits()["end_warning"]
    assert trait.metadata.get("config") is True
    assert trait.help


def _squeue(stdout: str, returncode: int = 0):
    calls = []

    def run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, returncode, stdout=stdout, stderr="")

    return run, calls


def test_singleuser_reads_the_end_from_squeue():
    run, calls = _squeue("2026-12-03T15:30:00\n")
    end = singleuser.slurm_end_time({"SLURM_JOB_ID": "123"}, run=run)
    assert end == int(time.mktime(time.strptime("2026-12-03T15:30:00", "%Y-%m-%dT%H:%M:%S")))
    cmd, kwargs = calls[0]
    assert cmd == ["squeue", "-h", "-j", "123", "-o", "%e"]
    assert kwargs["timeout"] > 0


@pytest.mark.parametrize(
    ("env", "stdout", "returncode"),
    [
        pytest.param({}, "2026-12-03T15:30:00", 0, id="not-in-slurm"),
        pytest.param({"SLURM_JOB_ID": "1; rm -rf /"}, "2026-12-03T15:30:00", 0, id="bad-id"),
        pytest.param({"SLURM_JOB_ID": "123"}, "N/A", 0, id="unknown"),
        pytest.param({"SLURM_JOB_ID": "123"}, "", 1, id="squeue-failed"),
    ],
)
def test_singleuser_end_is_unknown_without_a_slurm_answer(env, stdout, returncode):
    run, _ = _squeue(stdout, returncode)
    assert singleuser.slurm_end_time(env, run=run) == 0


def test_singleuser_end_when_squeue_is_missing_or_hangs():
    def missing(cmd, **kwargs):
        raise FileNotFoundError(cmd[0])

    def hangs(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    assert singleuser.slurm_end_time({"SLURM_JOB_ID": "1"}, run=missing) == 0
    assert singleuser.slurm_end_time({"SLURM_JOB_ID": "1"}, run=hangs) == 0


@pytest.mark.slurm
def test_singleuser_end_time_on_a_real_slurm(slurm):
    """``squeue -o %e`` of a running job with a 5 minute limit: its start + 5 min."""
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--time=5", "--job-name=fsp-remaining-test", "--wrap=sleep 60"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        for _ in range(600):  # bounded: the job must start within a minute
            start = subprocess.run(
                ["squeue", "-h", "-j", job_id, "-o", "%T %S"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.split()
            if start and start[0] == "RUNNING":
                break
            time.sleep(0.1)
        assert start, "the job left the queue"
        assert start[0] == "RUNNING", start
        started = time.mktime(time.strptime(start[1], "%Y-%m-%dT%H:%M:%S"))
        assert singleuser.slurm_end_time({"SLURM_JOB_ID": job_id}) == started + 5 * 60
    finally:
        subprocess.run(["scancel", job_id], timeout=30, check=False)
