"""Metrics: a real JupyterHub's ``/metrics`` during a spawn and a failed spawn (emulator).

Counters are process-wide, so each check compares a scrape after the event
with one before it.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from jupyterhub.tests.utils import api_request, async_requests, auth_header, public_url
from prometheus_client.parser import text_string_to_metric_families

from firecrestspawner import metrics
from firecrestspawner.spawner import SlurmSpawner

from .conftest import spawner_traits
from .test_hub import configured, server_model, wait_for

pytestmark = pytest.mark.timeout(180)

Samples = dict[tuple[str, frozenset], float]


async def scrape(app) -> Samples:
    # The hub's own /metrics, through the proxy, with an admin's token.
    r = await async_requests.get(
        public_url(app, path="hub/metrics"), headers=auth_header(app.db, "admin")
    )
    assert r.status_code == 200, r.text
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def matching(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= k[1]}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(matching(samples, name, **labels).values())


async def test_metrics_of_a_spawn_and_a_failed_spawn(app, fcs_user, emulator, workroot):
    system = emulator.system
    name = fcs_user.name
    before = await scrape(app)

    # ---- a spawn that succeeds, past one 503 on the job list (retried)
    emulator.admin.set_faults(rules=[{"route": "GET /compute/*/jobs", "status": 503, "times": 1}])
    cls = configured(emulator, workroot)
    with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (201, 202), r.text

        async def ready():
            model = await server_model(app, name)
            return model if model and model.get("ready") else None

        try:
            await wait_for(ready)
        finally:
            emulator.admin.reset_faults()
        job_id = app.users[name].spawner.job_id
        during = await scrape(app)
        r = await api_request(app, "users", name, "server", method="delete")
        assert r.status_code in (202, 204), r.text
        await wait_for(lambda: _none(server_model(app, name)))

    phases = "firecrestspawner_spawn_phase_duration_seconds_count"
    for phase in ("submit", "queue", "server_start"):
        labels = {"phase": phase, "profile": "classic", "system": system}
        assert total(during, phases, **labels) == total(before, phases, **labels) + 1, phase
    # FirecREST requests by route template: the submit, and job reads by id.
    requests = "firecrestspawner_firecrest_requests_total"
    submit = {"method": "POST", "endpoint": "/compute/{system}/jobs", "status": "201"}
    assert total(during, requests, **submit) == total(before, requests, **submit) + 1
    assert total(during, requests, method="GET") > total(before, requests, method="GET")
    latency = "firecrestspawner_firecrest_request_duration_seconds_count"
    assert total(during, latency, method="POST", endpoint="/compute/{system}/jobs") >= 1
    endpoints = {dict(k)["endpoint"] for k in matching(during, requests)}
    assert not [e for e in endpoints if job_id in e or system in e], endpoints
    assert all(re.fullmatch(r"[A-Za-z0-9_{}/-]*", e) for e in endpoints), endpoints
    errors = "firecrestspawner_firecrest_request_errors_total"
    listing = {"method": "GET", "endpoint": "/compute/{system}/jobs", "status": "503"}
    assert total(during, errors, **listing) == total(before, errors, **listing) + 1
    assert total(during, requests, **listing) == total(before, requests, **listing) + 1
    # The identity provider granted tokens; the status cache served this system.
    grants = "firecrestspawner_idp_token_grants_total"
    assert total(during, grants) > total(before, grants)
    assert matching(during, "firecrestspawner_status_cache_age_seconds", system=system)

    # ---- a spawn that fails: the job ends before the server starts
    quitter = "#!/bin/bash\n#SBATCH --job-name={{ job_name }}\nexit 3\n"
    traits = spawner_traits(emulator, workroot, batch_script=quitter)

    class FailingSpawner(SlurmSpawner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**traits, **kwargs})

    failures = "firecrestspawner_spawn_failures_total"
    ended = {"reason": "job-ended", "profile": "classic", "system": system}
    with mock.patch.dict(app.tornado_settings, {"spawner_class": FailingSpawner}):
        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (202, 500), r.text
        spawner = app.users[name].spawner

        async def failed():
            return not spawner.pending and (await server_model(app, name)) is None

        await wait_for(failed, timeout=60)
    after = await scrape(app)
    assert total(after, failures, **ended) == total(during, failures, **ended) + 1
    assert {dict(k)["reason"] for k in matching(after, failures)} <= metrics.FAILURE_REASONS
    # A failed spawn observes no phase durations of its own.
    labels = {"phase": "server_start", "profile": "classic", "system": system}
    assert total(after, phases, **labels) == total(during, phases, **labels)
    # Every documented series is on /metrics.
    names = {k[0] for k in after}
    for declared in metrics.series():
        assert any(n.startswith(declared) for n in names), declared


async def _none(coro):
    return (await coro) is None
