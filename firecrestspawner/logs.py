"""The package's logging inside a hub: the hub's logger and format, retries summarised.

* :func:`attach_to_hub_log` makes the ``firecrestspawner`` logger a child of
  JupyterHub's application logger, as JupyterHub does with tornado's and
  oauthlib's loggers: every record of the package's modules (for example the
  INFO "Adopted job" of ``firecrestspawner.client``) then goes through the
  hub's handlers, with its timestamp, level and format, at the hub's log level
  (unless a level was set for ``firecrestspawner``). It also installs redaction
  on the hub's logger (the spawner's ``self.log``) and the retry summary.
* :class:`RetrySummary` replaces stamina's own instrumentation, which logs
  a bare ``stamina.retry_scheduled`` line for every retry: it counts retries
  by cause, logs one WARNING when a call has been retrying for
  ``slow_after`` seconds, and an INFO summary of the counts at most every
  ``summary_every`` seconds. A call that gives up raises to its caller, which
  reports it once (stamina calls no hook then).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from .redact import install_redaction

PACKAGE_LOGGER = "firecrestspawner"

log = logging.getLogger(__name__)


def _as_logger(logger: logging.Logger | logging.LoggerAdapter) -> logging.Logger:
    inner = logger.logger if isinstance(logger, logging.LoggerAdapter) else logger
    if not isinstance(inner, logging.Logger):  # pragma: no cover - an adapter of an adapter
        raise TypeError(f"not a logger: {logger!r}")
    return inner


def attach_to_hub_log(app_log: logging.Logger | logging.LoggerAdapter) -> None:
    """Send the package's records through the hub's logger; idempotent.

    Call once with the spawner's ``self.log`` (JupyterHub's application
    logger). Also redacts every record of the hub's logger and installs the
    retry summary.
    """
    hub = _as_logger(app_log)
    package = logging.getLogger(PACKAGE_LOGGER)
    install_redaction(hub)
    install_redaction(package)
    install_retry_summary()
    if hub is package or package.parent is hub:
        return
    package.parent = hub
    package.propagate = True
    # The level stays NOTSET (the hub's) unless someone set one; setLevel
    # also clears the level caches of every logger, stale after a new parent.
    package.setLevel(package.level)


def detach_from_hub_log() -> None:
    """Undo :func:`attach_to_hub_log`'s re-parenting (tests, hub shutdown)."""
    package = logging.getLogger(PACKAGE_LOGGER)
    if package.parent is not logging.root:
        package.parent = logging.root
        package.setLevel(package.level)


# ------------------------------------------------------------------ retries


def retry_cause(exc: BaseException) -> str:
    """A short label for what caused a retry: ``HTTP 503`` or the exception's class."""
    code = getattr(exc, "status_code", None)
    if not isinstance(code, int):
        code = getattr(getattr(exc, "response", None), "status_code", None)
    if not isinstance(code, int):
        responses = getattr(exc, "responses", None)
        if isinstance(responses, list) and responses:
            code = getattr(responses[-1], "status_code", None)
    return f"HTTP {code}" if isinstance(code, int) else type(exc).__name__


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class RetrySummary:
    """A stamina on-retry hook: counts, one line per slow call, periodic summary."""

    def __init__(
        self,
        *,
        slow_after: float = 10.0,
        summary_every: float = 600.0,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slow_after = slow_after
        self.summary_every = summary_every
        self.log = logger or log
        self.clock = clock
        self._lock = threading.Lock()
        #: Retries since start, by cause.
        self.counts: Counter[str] = Counter()
        #: Calls that became slow since start.
        self.slow_calls = 0
        self._window: Counter[str] = Counter()
        self._window_start = clock()

    def __call__(self, details: RetryDetails) -> None:
        cause = retry_cause(details.caused_by)
        waited = details.waited_so_far + details.wait_for
        slow = details.waited_so_far < self.slow_after <= waited
        with self._lock:
            self.counts[cause] += 1
            self._window[cause] += 1
            if slow:
                self.slow_calls += 1
            now = self.clock()
            summary = None
            if now - self._window_start >= self.summary_every:
                summary = (now - self._window_start, self._window)
                self._window = Counter()
                self._window_start = now
        if slow:
            name = "" if details.name.startswith("<") else f" {details.name}"
            self.log.warning(
                "Slow call%s: %d attempts failed, retrying in %.1f s (%.1f s of waiting so far); last: %s",
                name,
                details.retry_num,
                details.wait_for,
                details.waited_so_far,
                _first_line(details.caused_by),
            )
        if summary is not None:
            seconds, window = summary
            self.log.info(
                "%d retries in the last %.0f s: %s",
                sum(window.values()),
                seconds,
                ", ".join(f"{cause} x{n}" for cause, n in window.most_common()),
            )


_summary: RetrySummary | None = None
_summary_lock = threading.Lock()


def install_retry_summary(summary: RetrySummary | None = None) -> RetrySummary:
    """Make ``summary`` (default: one per process) stamina's only logging hook; idempotent.

    stamina's own logging hooks (standard library and structlog) are removed;
    other hooks (Prometheus counters) are kept.
    """
    global _summary
    with _summary_lock:
        if summary is None:
            summary = _summary or RetrySummary()
        _summary = summary
        hooks = [
            hook
            for hook in get_on_retry_hooks()
            if not isinstance(hook, RetrySummary)
            and not getattr(hook, "__module__", "").startswith(
                ("stamina.instrumentation._logging", "stamina.instrumentation._structlog")
            )
        ]
        set_on_retry_hooks([*hooks, summary])
        return summary


__all__ = [
    "PACKAGE_LOGGER",
    "RetrySummary",
    "attach_to_hub_log",
    "detach_from_hub_log",
    "install_retry_summary",
    "retry_cause",
]
