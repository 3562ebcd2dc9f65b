"""Label values of the metrics stay bounded (route templates, a fixed set of reasons)."""

from __future__ import annotations

import asyncio

import pytest

from firecrestspawner import metrics
from firecrestspawner.errors import spawn_error
from firecrestspawner.firecrest_errors import SubmitRefused


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/compute/daint/jobs", "/compute/{system}/jobs"),
        ("/compute/daint/jobs/123456", "/compute/{system}/jobs/{job_id}"),
        ("/compute/daint/jobs/123456_7/metadata", "/compute/{system}/jobs/{job_id}/metadata"),
        ("/filesystem/daint/ops/stat", "/filesystem/{system}/ops/stat"),
        ("/status/daint/userinfo", "/status/{system}/userinfo"),
        ("/status/systems", "/status/systems"),
        ("/api/v2/compute/daint/jobs/42", "/compute/{system}/jobs/{job_id}"),
        ("/compute/daint/jobs/x%20y.token", "/compute/{system}/jobs/{param}"),
    ],
)
def test_endpoint_is_a_route_template(path, template):
    assert metrics.endpoint_template("/api/v2", path) == template


def test_failure_reason_is_from_the_fixed_set():
    assert metrics.failure_reason(asyncio.CancelledError()) == "cancelled"
    err = spawn_error("m", reason="job-ended", log_message=None, status_code=500)
    assert metrics.failure_reason(err) == "job-ended"
    odd = spawn_error("m", reason="made-up", log_message=None, status_code=500)
    assert metrics.failure_reason(odd) == "other"
    assert metrics.failure_reason(RuntimeError("boom")) == "other"
    assert SubmitRefused.spawn_reason in metrics.FAILURE_REASONS


def test_every_reason_raised_in_the_package_is_in_the_set():
    import pathlib
    import re

    root = pathlib.Path(metrics.__file__).parent
    used = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'reason="([a-z_-]+)"', text))
        used |= set(re.findall(r'spawn_reason = "([a-z_-]+)"', text))
    assert used <= metrics.FAILURE_REASONS, used - metrics.FAILURE_REASONS


def test_spawn_timer_observes_three_phases_only_when_ready():
    from prometheus_client import REGISTRY

    def count(phase):
        labels = {"phase": phase, "profile": "p-timer", "system": "s"}
        value = REGISTRY.get_sample_value(
            "firecrestspawner_spawn_phase_duration_seconds_count", labels
        )
        return value or 0

    timer = metrics.SpawnTimer()
    for phase in ("submitting", "queued", "waiting", "failed"):
        timer.phase(phase, "p-timer", "s")
    assert count("submit") == 0
    for phase in ("submitting", "queued", "waiting", "ready"):
        timer.phase(phase, "p-timer", "s")
    assert [count(p) for p in ("submit", "queue", "server_start")] == [1, 1, 1]


def test_dashboard_queries_only_declared_series():
    import json
    import pathlib
    import re

    path = pathlib.Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"firecrestspawner_[a-z_]+", e)}
    declared = set(metrics.series())
    suffixes = ("_bucket", "_count", "_sum", "_total")
    for name in used:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        assert name in declared or base in declared, name
    assert {n.removesuffix("_total") for n in used} >= {"firecrestspawner_spawn_failures"}


def test_every_series_is_in_the_operations_table():
    import pathlib

    text = (pathlib.Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for name, metric in metrics.series().items():
        full = name + "_total" if metric._type == "counter" else name
        assert f"| `{full}` |" in text, full
