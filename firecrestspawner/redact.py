"""One place that scrubs secrets from text that may reach a log or a user.

Tokens are registered as they are minted or read (``register_secret``) and
removed from any text passed through :func:`redact`. Bearer headers, JWT-shaped
strings and ``token=``/``secret=`` parameters are scrubbed even when they were
never registered.
"""

from __future__ import annotations

import re
import threading

REDACTED = "[redacted]"

_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HEADER_RE = re.compile(r"(?i)\b(authorization:?\s*(?:bearer|token)\s+)\S+")
_PARAM_RE = re.compile(
    r"(?i)((?:access_token|refresh_token|api_token|client_secret|token|password)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` removes it from any text."""
    if value and len(value) >= 8:
        with _lock:
            _secrets.add(value)


def forget_secret(value: str | None) -> None:
    with _lock:
        _secrets.discard(value or "")


def redact(text: object) -> str:
    """Return ``text`` as a string with every known secret replaced."""
    out = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, REDACTED)
    out = _JWT_RE.sub(REDACTED, out)
    out = _HEADER_RE.sub(lambda m: m.group(1) + REDACTED, out)
    out = _PARAM_RE.sub(lambda m: m.group(1) + REDACTED, out)
    return out


__all__ = ["REDACTED", "forget_secret", "redact", "register_secret"]
