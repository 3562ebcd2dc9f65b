"""Prometheus metrics of the spawner, on the hub's own ``/metrics``.

Every series is declared here, in prometheus_client's default registry, as
JupyterHub declares its own (:mod:`jupyterhub.metrics`): the hub's
``/metrics`` handler serves them with no configuration. The reaper is a
separate process; its counters live in that process (see
:func:`orphan_cancelled`), and reach Prometheus only if it exposes them.

Label values are bounded: ``profile`` and ``system`` come from the
configuration, ``reason`` from :data:`FAILURE_REASONS`, ``endpoint`` is a route
template of FirecREST's API (:func:`endpoint_template`, never a raw path with a
job id or a file name), ``status`` is the HTTP code or one of
``timeout``/``network``.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "firecrestspawner"

#: Seconds; spawns wait in queues for minutes to hours.
PHASE_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, float("inf"))
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))

#: Every ``reason`` label of :data:`SPAWN_FAILURES` (anything else counts as ``other``).
FAILURE_REASONS = frozenset(
    {
        "cancel-failed",
        "cancel-refused",
        "cancelled",
        "configuration",
        "firecrest-auth",
        "identity-provider",
        "invalid-options",
        "job-ended",
        "legacy-wrapper",
        "no-host",
        "port-timeout",
        "script-rejected",
        "session_expired",
        "start-timeout",
        "submit-failed",
        "submit-refused",
        "submit-unknown",
        "system-not-found",
        "token-file",
        "other",
    }
)

SPAWN_PHASE_DURATION = Histogram(
    f"{PREFIX}_spawn_phase_duration_seconds",
    "Time a successful spawn spent in each phase: submit (until FirecREST returned the "
    "job id), queue (until the job ran), server_start (until the server reported its port)",
    ["phase", "profile", "system"],
    buckets=PHASE_BUCKETS,
)
SPAWN_FAILURES = Counter(
    f"{PREFIX}_spawn_failures_total",
    "Failed spawns by reason (the spawn error's reason)",
    ["reason", "profile", "system"],
)
FIRECREST_REQUESTS = Counter(
    f"{PREFIX}_firecrest_requests_total",
    "HTTP requests to FirecREST by method, endpoint (route template) and status "
    "(HTTP code, or timeout/network when no answer came)",
    ["method", "endpoint", "status"],
)
FIRECREST_ERRORS = Counter(
    f"{PREFIX}_firecrest_request_errors_total",
    "FirecREST requests that failed: 5xx, 429, timeout or network error",
    ["method", "endpoint", "status"],
)
FIRECREST_LATENCY = Histogram(
    f"{PREFIX}_firecrest_request_duration_seconds",
    "Time from sending a FirecREST request to its response headers (or its failure)",
    ["method", "endpoint"],
    buckets=REQUEST_BUCKETS,
)
IDP_GRANTS = Counter(
    f"{PREFIX}_idp_token_grants_total",
    "Access tokens obtained from the identity provider, by grant (client_credentials, "
    "refresh_token)",
    ["grant"],
)
IDP_FAILURES = Counter(
    f"{PREFIX}_idp_token_failures_total",
    "Failed token requests to the identity provider, by grant",
    ["grant"],
)
STATUS_CACHE_AGE = Gauge(
    f"{PREFIX}_status_cache_age_seconds",
    "Age of the job list the status cache last served, per system",
    ["system"],
)
ORPHANS_FOUND = Counter(
    f"{PREFIX}_orphans_found_total",
    "Jobs recorded as orphans (a cancel that failed, a lost submit's name); "
    "source=spawner in the hub, source=reaper in the reaper's process",
    ["source"],
)
ORPHANS_CANCELLED = Counter(
    f"{PREFIX}_orphans_cancelled_total",
    "Orphans cancelled or confirmed gone",
    ["source"],
)

SPAWN_PHASES = {"queued": "submit", "waiting": "queue", "ready": "server_start"}
GRANTS = ("client_credentials", "refresh_token")

for _grant in GRANTS:  # present from the start, for dashboards and alerts
    IDP_GRANTS.labels(grant=_grant)
    IDP_FAILURES.labels(grant=_grant)
for _source in ("spawner", "reaper"):
    ORPHANS_FOUND.labels(source=_source)
    ORPHANS_CANCELLED.labels(source=_source)


# ----------------------------------------------------------------- spawns


def _profile(profile: str) -> str:
    return profile or "classic"


class SpawnTimer:
    """The phases of one spawn, observed when it is ready (see :data:`SPAWN_PHASES`)."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        self._since = 0.0

    def phase(self, phase: str, profile: str, system: str) -> None:
        now = time.monotonic()
        if phase == "submitting":
            self.durations = {}
        elif phase in SPAWN_PHASES and self._since:
            self.durations[SPAWN_PHASES[phase]] = now - self._since
        self._since = now
        if phase == "ready":
            for name, seconds in self.durations.items():
                SPAWN_PHASE_DURATION.labels(
                    phase=name, profile=_profile(profile), system=system or "none"
                ).observe(seconds)
            self.durations = {}
            self._since = 0.0


def failure_reason(error: BaseException) -> str:
    """The bounded ``reason`` label of a failed spawn's exception."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    name = type(error).__name__
    if name == "SystemNotFound":
        return "system-not-found"
    if name == "OptionError":
        return "invalid-options"
    reason = getattr(error, "reason", None) or getattr(error, "spawn_reason", None)
    if isinstance(reason, str) and reason in FAILURE_REASONS:
        return reason
    return "other"


def spawn_failed(error: BaseException, profile: str, system: str) -> None:
    SPAWN_FAILURES.labels(
        reason=failure_reason(error), profile=_profile(profile), system=system or "none"
    ).inc()


# ----------------------------------------------------------------- FirecREST

_JOB_ID = re.compile(r"^[0-9]+(_[0-9]+)?$")
#: Fixed path parts (``jobs``, ``ops``, ``stat``) kept as they are.
_KNOWN = re.compile(r"^[a-z][a-z_-]{0,30}$")


def endpoint_template(base_path: str, path: str) -> str:
    """FirecREST's route template of ``path``: systems, job ids and anything else variable
    replaced (``/compute/{system}/jobs/{job_id}``)."""
    base = base_path.rstrip("/")
    if base and path.startswith(base):
        path = path[len(base) :]
    parts = [p for p in path.split("/") if p]
    out: list[str] = []
    for i, part in enumerate(parts[:6]):
        if i == 1 and (
            parts[0] in ("compute", "filesystem")
            or (parts[0] == "status" and part not in ("systems", "liveness"))
        ):
            out.append("{system}")
        elif _JOB_ID.match(part):
            out.append("{job_id}")
        elif _KNOWN.match(part):
            out.append(part)
        else:
            out.append("{param}")
    return "/" + "/".join(out)


def _status_label(status: int) -> str:
    return str(status) if 100 <= status < 600 else "other"


def observe_request(
    method: str, endpoint: str, seconds: float, status: int | None, error: str = ""
) -> None:
    """One FirecREST request: ``status`` None with ``error`` timeout/network when unanswered."""
    label = error or _status_label(status or 0)
    FIRECREST_REQUESTS.labels(method=method, endpoint=endpoint, status=label).inc()
    FIRECREST_LATENCY.labels(method=method, endpoint=endpoint).observe(seconds)
    if error or (status is not None and (status >= 500 or status == 429)):
        FIRECREST_ERRORS.labels(method=method, endpoint=endpoint, status=label).inc()


# ----------------------------------------------------------------- the rest


def idp_grant(grant: str, ok: bool) -> None:
    grant = grant if grant in GRANTS else "other"
    (IDP_GRANTS if ok else IDP_FAILURES).labels(grant=grant).inc()


def status_cache_age(system: str, seconds: float) -> None:
    STATUS_CACHE_AGE.labels(system=system or "none").set(max(0.0, seconds))


def orphan_found(source: str = "spawner") -> None:
    ORPHANS_FOUND.labels(source=source).inc()


def orphan_cancelled(source: str = "spawner") -> None:
    """An orphan cancelled or gone; the reaper counts in its own process (``source=reaper``)."""
    ORPHANS_CANCELLED.labels(source=source).inc()


def series() -> dict[str, Any]:
    """Every declared metric by name (docs and tests)."""
    return {
        m._name: m
        for m in (
            SPAWN_PHASE_DURATION,
            SPAWN_FAILURES,
            FIRECREST_REQUESTS,
            FIRECREST_ERRORS,
            FIRECREST_LATENCY,
            IDP_GRANTS,
            IDP_FAILURES,
            STATUS_CACHE_AGE,
            ORPHANS_FOUND,
            ORPHANS_CANCELLED,
        )
    }


__all__ = [
    "FAILURE_REASONS",
    "SpawnTimer",
    "endpoint_template",
    "failure_reason",
    "idp_grant",
    "observe_request",
    "orphan_cancelled",
    "orphan_found",
    "series",
    "spawn_failed",
    "status_cache_age",
]
