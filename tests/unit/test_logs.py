"""The package's records go through the hub's logger; stamina's retries are summarised."""

from __future__ import annotations

import io
import logging

import pytest
import stamina
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

from firecrestspawner import logs
from firecrestspawner.logs import RetrySummary, attach_to_hub_log, install_retry_summary
from firecrestspawner.redact import REDACTED, registry

SECRET = "hub0log0secret0" + "ef" * 10


@pytest.fixture
def hub_log():
    """A logger set up as JupyterHub sets up its application logger."""
    stream = io.StringIO()
    logger = logging.getLogger("test_logs.JupyterHub")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    hooks = get_on_retry_hooks()
    yield logger, stream
    logs.detach_from_hub_log()
    logger.removeHandler(handler)
    set_on_retry_hooks(hooks)
    registry.forget(SECRET)


def test_package_records_reach_the_hub_log_in_its_format(hub_log):
    hub, stream = hub_log
    client_log = logging.getLogger("firecrestspawner.client")
    client_log.info("Adopted job %s", "42")  # before: lost (no handler, WARNING by default)
    assert stream.getvalue() == ""
    attach_to_hub_log(hub)
    attach_to_hub_log(logging.LoggerAdapter(hub, {}))  # idempotent
    registry.register(SECRET)
    client_log.info("Adopted job %s", "43")
    client_log.debug("not at the hub's level")
    hub.warning("spawner line with %s", SECRET)
    client_log.warning("client line with %s", SECRET)
    assert stream.getvalue().splitlines() == [
        "[INFO firecrestspawner.client] Adopted job 43",
        f"[WARNING test_logs.JupyterHub] spawner line with {REDACTED}",
        f"[WARNING firecrestspawner.client] client line with {REDACTED}",
    ]


def test_the_package_follows_the_hub_level(hub_log):
    hub, stream = hub_log
    attach_to_hub_log(hub)
    hub.setLevel(logging.DEBUG)
    logging.getLogger("firecrestspawner.auth").debug("now visible")
    assert "now visible" in stream.getvalue()


class Unavailable(Exception):
    status_code = 503


def _failing_call(summary: RetrySummary, failures: int, wait: float) -> int:
    calls = 0
    for attempt in stamina.retry_context(
        on=Unavailable, attempts=failures + 1, wait_initial=wait, wait_max=wait, wait_jitter=0
    ):
        with attempt:
            calls += 1
            if calls <= failures:
                raise Unavailable("hub answered 503")
    return calls


def test_retries_are_counted_and_a_slow_call_logged_once(hub_log, caplog):
    summary = install_retry_summary(RetrySummary(slow_after=0.05, summary_every=3600))
    caplog.set_level(logging.DEBUG)
    assert _failing_call(summary, failures=2, wait=0.001) == 3  # quick: counted, not logged
    assert _failing_call(summary, failures=6, wait=0.02) == 7  # slow from the 3rd retry on
    assert summary.counts == {"HTTP 503": 8}
    assert summary.slow_calls == 1
    lines = [r.getMessage() for r in caplog.records]
    assert not any("stamina" in line for line in lines)
    assert len(lines) == 1
    assert lines[0].startswith("Slow call: 3 attempts failed, retrying in 0.0 s")
    assert lines[0].endswith("last: hub answered 503")


def test_a_summary_line_at_most_every_interval(caplog):
    now = [0.0]
    summary = RetrySummary(slow_after=1e9, summary_every=60, clock=lambda: now[0])
    details = stamina.instrumentation.RetryDetails(
        name="<context block>",
        args=(),
        kwargs={},
        retry_num=1,
        wait_for=0.1,
        waited_so_far=0.0,
        caused_by=TimeoutError("slow"),
    )
    caplog.set_level(logging.INFO)
    for t in (1, 2, 30):
        now[0] = t
        summary(details)
    assert caplog.records == []
    now[0] = 61
    summary(details)
    summary(details)
    assert [r.getMessage() for r in caplog.records] == [
        "4 retries in the last 61 s: TimeoutError x4"
    ]


def test_install_keeps_other_hooks_and_drops_staminas_logging(hub_log):
    def counter(details):  # e.g. the Prometheus hook
        pass

    set_on_retry_hooks(None)  # stamina's defaults: logging (and Prometheus when installed)
    defaults = get_on_retry_hooks()
    assert any(h.__module__ == "stamina.instrumentation._logging" for h in defaults)
    set_on_retry_hooks([*defaults, counter])
    first = install_retry_summary()
    assert install_retry_summary() is first
    hooks = get_on_retry_hooks()
    assert sum(isinstance(h, RetrySummary) for h in hooks) == 1
    assert counter in hooks
    assert not any(
        getattr(h, "__module__", "").startswith(
            ("stamina.instrumentation._logging", "stamina.instrumentation._structlog")
        )
        for h in hooks
    )
    kept = [h for h in defaults if "prometheus" in getattr(h, "__module__", "")]
    assert all(h in hooks for h in kept)


@pytest.mark.parametrize(
    ("exc", "label"),
    [
        pytest.param(Unavailable(), "HTTP 503", id="status_code"),
        pytest.param(TimeoutError(), "TimeoutError", id="class"),
    ],
)
def test_retry_cause(exc, label):
    assert logs.retry_cause(exc) == label
