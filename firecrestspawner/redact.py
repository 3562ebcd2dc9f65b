"""One place that scrubs secrets from text that may reach a log or a user.

Secrets are registered as they are minted or read (:func:`register_secret`)
and removed from any text passed through :func:`redact`. Bearer headers,
JWT-shaped strings and ``token=``/``secret=`` parameters are scrubbed even when
they were never registered.

**A bounded registry.** A secret registered with an ``owner`` (a credential's
access token, its refresh token, the service account's secret) replaces the
owner's previous one, which is forgotten: a token refreshed every few minutes
for months occupies one entry. Secrets without an owner, and a hub with more
live owners than :data:`DEFAULT_MAX_SECRETS`, are bounded by a least recently
registered eviction (anonymous secrets go first).

**Cheap to call.** :func:`redact` does not look at every registered secret: it
splits the text into runs of token characters (one C regex pass) and looks up
the last :data:`MIN_SECRET_LENGTH` characters of every position of each run in
a dictionary of the secrets' tails, so its cost depends on the text, not on
the number of secrets (``benchmarks/redact_bench.py``). Secrets with other
characters (rare: a hand-written client secret) are checked one by one.

**At the logging boundary.** :func:`install_redaction` puts a
:class:`RedactingFilter` on a logger and in front of its handlers, so that
every record of that logger and of its descendants is redacted before any
handler formats it. The package's logger (``firecrestspawner``) has it from
import on; the spawner installs it on the hub's logger. Code that logs does
not call :func:`redact`; code that puts text anywhere else (an error shown to
the user, an exception message, a file, stderr) does.

Standard library only: the job-side ``firecrestspawner-singleuser`` imports it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

REDACTED = "[redacted]"

#: Shorter values are never registered (they would redact ordinary words).
MIN_SECRET_LENGTH = 8

#: Hard cap on registered secrets (a safety net: owners keep the count low).
DEFAULT_MAX_SECRETS = 4096

_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HEADER_RE = re.compile(r"(?i)\b(authorization:?\s*(?:bearer|token)\s+)\S+")
_PARAM_RE = re.compile(
    r"(?i)((?:access_token|refresh_token|api_token|client_secret|token|password)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
)

# RFC 6750 b64token characters plus "=": what tokens and generated secrets are made of.
_TOKEN_CHARS = "A-Za-z0-9._~+/=-"  # noqa: S105 - a character class
_TOKEN_RE = re.compile(f"[{_TOKEN_CHARS}]+")
_RUN_RE = re.compile(f"[{_TOKEN_CHARS}]{{{MIN_SECRET_LENGTH},}}")
_K = MIN_SECRET_LENGTH
#: A run at least this many times longer than the count of token-like secrets is
#: searched for each secret directly instead of through its ``_K``-grams.
_DIRECT_RATIO = 32

_ANONYMOUS = object()


class SecretRegistry:
    """Secrets to redact: at most one per owner, at most ``max_size`` in all."""

    def __init__(self, max_size: int = DEFAULT_MAX_SECRETS) -> None:
        self.max_size = max(1, int(max_size))
        self._lock = threading.Lock()
        # value -> its holders (owners, or _ANONYMOUS); order = least recently registered first
        self._values: OrderedDict[str, set[Hashable]] = OrderedDict()
        # anonymous values, least recently registered first (evicted before owned ones)
        self._anonymous: OrderedDict[str, None] = OrderedDict()
        self._owners: dict[Hashable, str] = {}
        # last _K characters -> token-like values ending so; tuples, replaced, never mutated
        self._tails: dict[str, tuple[str, ...]] = {}
        # values with characters outside _TOKEN_CHARS, longest first
        self._others: tuple[str, ...] = ()

    # -- changes (under the lock) ---------------------------------------------

    def register(self, value: str | None, owner: Hashable | None = None) -> None:
        """Remember ``value``; with ``owner``, forget the owner's previous value.

        ``register(None, owner=x)`` only forgets ``x``'s value.
        """
        with self._lock:
            if owner is not None:
                previous = self._owners.get(owner)
                if previous is not None and previous != value:
                    self._release(previous, owner)
                    del self._owners[owner]
            if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
                return
            holder = _ANONYMOUS if owner is None else owner
            holders = self._values.get(value)
            if holders is None:
                self._values[value] = {holder}
                self._add_index(value)
            else:
                holders.add(holder)
                self._values.move_to_end(value)
            if owner is None:
                self._anonymous[value] = None
                self._anonymous.move_to_end(value)
            else:
                self._owners[owner] = value
            while len(self._values) > self.max_size:
                self._evict_one()

    def forget(self, value: str | None) -> None:
        """Forget ``value`` whoever registered it."""
        with self._lock:
            holders = self._values.get(value or "")
            if holders is None:
                return
            for holder in holders:
                if holder is not _ANONYMOUS:
                    self._owners.pop(holder, None)
            self._drop(value or "")

    def forget_owner(self, owner: Hashable) -> None:
        """Forget the value ``owner`` registered (kept if others hold it too)."""
        self.register(None, owner=owner)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._anonymous.clear()
            self._owners.clear()
            self._tails.clear()
            self._others = ()

    def _release(self, value: str, holder: Hashable) -> None:
        holders = self._values.get(value)
        if holders is None:
            return
        holders.discard(holder)
        if not holders:
            self._drop(value)

    def _drop(self, value: str) -> None:
        del self._values[value]
        self._anonymous.pop(value, None)
        self._remove_index(value)

    def _evict_one(self) -> None:
        if self._anonymous:
            value, _ = self._anonymous.popitem(last=False)
            holders = self._values[value]
            holders.discard(_ANONYMOUS)
            if holders:  # also owned: stays, as an owned value
                return
        else:
            value = next(iter(self._values))
            for holder in self._values[value]:
                self._owners.pop(holder, None)
        self._drop(value)

    def _add_index(self, value: str) -> None:
        if _TOKEN_RE.fullmatch(value):
            tail = value[-_K:]
            self._tails[tail] = (*self._tails.get(tail, ()), value)
        else:
            self._others = tuple(sorted((*self._others, value), key=len, reverse=True))

    def _remove_index(self, value: str) -> None:
        if _TOKEN_RE.fullmatch(value):
            tail = value[-_K:]
            rest = tuple(v for v in self._tails.get(tail, ()) if v != value)
            if rest:
                self._tails[tail] = rest
            else:
                self._tails.pop(tail, None)
        else:
            self._others = tuple(v for v in self._others if v != value)

    # -- reading (no lock: tuples are replaced, dictionary lookups are atomic) --

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def owned_by(self, owner: Hashable) -> str | None:
        return self._owners.get(owner)

    def find(self, text: str) -> list[str]:
        """The registered secrets that occur in ``text``, longest first."""
        found: set[str] = set()
        tails = self._tails
        if tails:
            values = self._values
            token_values = len(values) - len(self._others)
            for run in _RUN_RE.findall(text):
                if run in values:
                    found.add(run)
                    continue
                if token_values * _DIRECT_RATIO <= len(run):
                    # A long run (a URL with a long value) and few secrets: one
                    # substring search per secret (C) beats one slice per character.
                    found.update(v for vs in list(tails.values()) for v in vs if v in run)
                    continue
                grams = {run[i : i + _K] for i in range(len(run) - _K + 1)}
                for gram in [g for g in grams if g in tails]:
                    for value in tails.get(gram, ()):
                        if value in run:
                            found.add(value)
        for value in self._others:
            if value in text:
                found.add(value)
        return sorted(found, key=len, reverse=True)

    def redact(self, text: object) -> str:
        out = str(text)
        for secret in self.find(out):
            out = out.replace(secret, REDACTED)
        # Each pattern runs only when its literal part is there: the same result
        # at a third of the cost. (Non-ASCII text always runs them: the regex
        # engine's case-insensitive matching knows equivalences like i and dotless i.)
        if "eyJ" in out:
            out = _JWT_RE.sub(REDACTED, out)
        lower = out.lower() if out.isascii() else None
        if lower is None or "authorization" in lower:
            out = _HEADER_RE.sub(lambda m: m.group(1) + REDACTED, out)
        if lower is None or "token" in lower or "client_secret" in lower or "password" in lower:
            out = _PARAM_RE.sub(lambda m: m.group(1) + REDACTED, out)
        return out


#: The process's registry.
registry = SecretRegistry()


def register_secret(value: str | None, owner: Hashable | None = None) -> None:
    """Remember a secret so that :func:`redact` removes it from any text.

    ``owner`` names what the secret belongs to (e.g. ``(credential, "access")``):
    registering a new value for the same owner forgets the previous one.
    """
    registry.register(value, owner)


def forget_secret(value: str | None) -> None:
    registry.forget(value)


def forget_owners(owners: Iterable[Hashable]) -> None:
    """Forget the values of ``owners`` (e.g. when a credential is dropped)."""
    for owner in owners:
        registry.forget_owner(owner)


def redact(text: object) -> str:
    """Return ``text`` as a string with every known secret replaced."""
    return registry.redact(text)


# ------------------------------------------------------------------ logging

_MARK = "_firecrestspawner_redacted"
_LAST_RESORT_MARK = "_firecrestspawner_last_resort"
_formatter = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Redact, in place, a record's message, arguments, traceback and stack."""
    if getattr(record, _MARK, False):
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string must not hide the secret
        message = f"{record.msg!s} {record.args!r}"
    clean = redact(message)
    if clean != message:
        record.msg = clean
        record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = _formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    setattr(record, _MARK, True)


class RedactingFilter(logging.Filter):
    """Redacts every record it sees (message with its arguments, traceback); drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingHandler(logging.Handler):
    """First handler of a logger: redacts records of its descendants in place.

    A logger's filters see only the records logged on that very logger;
    records of ``firecrestspawner.client`` reach the ``firecrestspawner``
    logger's handlers, not its filters. This handler emits nothing; when it is
    the only handler on a record's way up, it hands the record to
    :data:`logging.lastResort`, as Python does for a logger without handlers.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)

    def handle(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        last_resort = logging.lastResort
        if (
            last_resort is not None
            and record.levelno >= last_resort.level
            and not getattr(record, _LAST_RESORT_MARK, False)
            and not _has_real_handler(record.name)
        ):
            setattr(record, _LAST_RESORT_MARK, True)
            last_resort.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() emits
        pass


def _has_real_handler(name: str) -> bool:
    logger = logging.Logger.manager.loggerDict.get(name)
    current: logging.Logger | None = logger if isinstance(logger, logging.Logger) else None
    if current is None:
        return True  # unknown origin: do as if someone will print it
    while current is not None:
        if any(not isinstance(h, _RedactingHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


_install_lock = threading.Lock()


def install_redaction(logger: logging.Logger | logging.LoggerAdapter) -> None:
    """Redact every record of ``logger`` and of its descendant loggers; idempotent.

    Adds a :class:`RedactingFilter` to the logger (its own records) and a
    redacting pass-through handler in front of its handlers (records that
    descendant loggers propagate to it).
    """
    target = logger.logger if isinstance(logger, logging.LoggerAdapter) else logger
    if not isinstance(target, logging.Logger):  # pragma: no cover - a LoggerAdapter of an adapter
        return
    with _install_lock:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
        if not any(isinstance(h, _RedactingHandler) for h in target.handlers):
            target.handlers.insert(0, _RedactingHandler())


__all__ = [
    "DEFAULT_MAX_SECRETS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "RedactingFilter",
    "SecretRegistry",
    "forget_owners",
    "forget_secret",
    "install_redaction",
    "redact",
    "redact_record",
    "register_secret",
    "registry",
]
