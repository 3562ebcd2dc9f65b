"""User-facing spawn errors that work on JupyterHub 5.x and 6.x.

JupyterHub 6 has :class:`jupyterhub.spawner.SpawnException`; 5.x only knows
``HTTPError`` carrying ``jupyterhub_message`` / ``jupyterhub_html_message``.
Everything in this package raises :func:`spawn_error` so the two stay in one place.
"""

from __future__ import annotations

import html
from typing import Any

from tornado.web import HTTPError

_SpawnException: Any
try:  # JupyterHub >= 6
    from jupyterhub.spawner import SpawnException as _SpawnException
except ImportError:  # pragma: no cover - JupyterHub 5.x
    _SpawnException = None


def as_html(message: str) -> str:
    """Plain text as HTML: escaped, line breaks kept (log tails are multi-line)."""
    return html.escape(message).replace("\n", "<br>\n")


class _LegacySpawnError(HTTPError):
    """HTTPError with the attributes JupyterHub 5 shows on the spawn page."""

    def __init__(self, message: str, *, reason: str, log_message: str | None, status_code: int):
        # JupyterHub 5's API answers with ``log_message % args``: the user's
        # message goes there (tornado escapes its ``%``); the detail for the
        # hub's log is kept beside it.
        super().__init__(status_code, message)
        self.jupyterhub_message = message
        self.jupyterhub_html_message = as_html(message)
        self.log_detail = log_message or message
        self.reason = reason


def spawn_error(
    message: str,
    *,
    reason: str,
    log_message: str | None = None,
    status_code: int = 400,
) -> HTTPError:
    """Build the exception to raise for a failure the user should read.

    ``message`` is plain text shown to the user (it is escaped wherever it is
    turned into HTML); ``reason`` is a short machine label used in metrics.
    """
    if _SpawnException is not None:
        exc = _SpawnException(
            message, reason=reason, log_message=log_message or "", status_code=status_code
        )
        # JupyterHub 6.1.1 builds the spawn page's failure event with
        # utils.format_exception(), which reads only these attributes and
        # otherwise shows str(exc): the log message, not the user's message.
        exc.jupyterhub_message = message
        exc.jupyterhub_html_message = as_html(message)
        return exc
    return _LegacySpawnError(
        message, reason=reason, log_message=log_message, status_code=status_code
    )
