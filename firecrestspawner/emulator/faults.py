"""Fault injection: which request gets which failure.

A rule matches requests by route template (``fnmatch`` on ``"METHOD
/template"``, e.g. ``"POST /compute/{system}/jobs"`` or ``"GET /status/*"``)
and optionally by user, and decides an effect:

``error``
    answer ``status`` (ApiResponseError body) without doing anything;
``error_after``
    do the work (e.g. create the job), then answer ``status`` - the response
    is "lost", as with FirecREST's SSH timeout (408) after sbatch succeeded;
``drop`` / ``drop_after``
    close the connection without an answer, before / after doing the work;
``latency``
    answer normally after ``delay`` seconds (``delay`` also adds to the others).

``sequence`` scripts successive matching requests instead: each item is a
status code (``error``), ``"ok"``, ``"drop"``, ``"drop_after"`` or
``"after:<status>"``; after the last item the rule stops firing.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Effect = Literal["error", "error_after", "drop", "drop_after", "latency"]

DEFAULT_MESSAGES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    408: "Command execution timeout limit exceeded.",
    413: "Output too large",
    424: "Error connecting to the remote system.",
    429: "Too Many Requests",
    500: "Error executing Slurm command.",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route: str = "*"
    user: str | None = None
    effect: Effect = "error"
    status: int = 500
    message: str | None = None
    #: Seconds for the ``Retry-After`` header (sent with any status if set;
    #: defaults to 1 for 429).
    retry_after: int | None = None
    delay: float = 0.0
    probability: float = 1.0
    #: Fire at most this many times (None: always).
    times: int | None = None
    #: Let the first N matching requests through.
    skip: int = 0
    sequence: list[int | str] | None = None

    @field_validator("sequence")
    @classmethod
    def _check_sequence(cls, value: list[int | str] | None) -> list[int | str] | None:
        for item in value or []:
            if isinstance(item, int):
                continue
            if item in ("ok", "drop", "drop_after"):
                continue
            if item.startswith("after:") and item[6:].isdigit():
                continue
            if item.isdigit():
                continue
            raise ValueError(f"unknown sequence item {item!r}")
        return value


@dataclass(frozen=True)
class Fault:
    """What to do with one request."""

    effect: Effect
    status: int = 500
    message: str = ""
    retry_after: int | None = None
    delay: float = 0.0

    @property
    def before(self) -> bool:
        """True if the work must not be done."""
        return self.effect in ("error", "drop")

    @property
    def drops(self) -> bool:
        return self.effect in ("drop", "drop_after")


class FaultEngine:
    """Holds the rules and their counters; one per emulator, used on its loop."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self.set_rules(rules or [])

    def set_rules(self, rules: list[FaultRule]) -> None:
        self.rules = list(rules)
        self._matches = [0] * len(self.rules)
        self._fired = [0] * len(self.rules)

    def stats(self) -> list[dict]:
        return [
            {"rule": r.model_dump(), "matches": m, "fired": f}
            for r, m, f in zip(self.rules, self._matches, self._fired, strict=True)
        ]

    def decide(self, method: str, route: str, user: str | None) -> Fault | None:
        """The fault for this request, or None; the first rule that fires wins."""
        key = f"{method} {route}"
        for i, rule in enumerate(self.rules):
            if not fnmatch.fnmatchcase(key, rule.route) and not fnmatch.fnmatchcase(
                route, rule.route
            ):
                continue
            if rule.user is not None and rule.user != user:
                continue
            self._matches[i] += 1
            n = self._matches[i]
            if n <= rule.skip:
                continue
            if rule.times is not None and self._fired[i] >= rule.times:
                continue
            if rule.sequence is not None:
                index = n - rule.skip - 1
                if index >= len(rule.sequence):
                    continue
                fault = _from_sequence_item(rule, rule.sequence[index])
                if fault is None:
                    return None  # an explicit "ok" in the script
            else:
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                fault = _make(rule, rule.effect, rule.status)
            self._fired[i] += 1
            return fault
        return None


def _make(rule: FaultRule, effect: Effect, status: int) -> Fault:
    retry_after = rule.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    return Fault(
        effect=effect,
        status=status,
        message=rule.message or DEFAULT_MESSAGES.get(status, "Error"),
        retry_after=retry_after,
        delay=rule.delay,
    )


def _from_sequence_item(rule: FaultRule, item: int | str) -> Fault | None:
    if isinstance(item, int) or item.isdigit():
        return _make(rule, "error", int(item))
    if item == "ok":
        return None
    if item in ("drop", "drop_after"):
        return _make(rule, item, rule.status)  # type: ignore[arg-type]
    return _make(rule, "error_after", int(item[6:]))
