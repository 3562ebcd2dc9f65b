"""User-facing spawn errors that work on JupyterHub 5.x and 6.x.

JupyterHub 6 has :class:`jupyterhub.spawner.SpawnException`; 5.x only knows
``HTTPError`` carrying ``jupyterhub_message`` / ``jupyterhub_html_message``.
Everything in this package raises :func:`spawn_error` so the two stay in one place.

Failures below the spawner (client, auth) raise a :class:`SpawnFailure`: an
ordinary exception that knows its cause (``spawn_reason``) and the user's
message, so that the spawner turns it into the spawn error as it is
(:meth:`SpawnFailure.spawn_error`, or :func:`user_error` with a fallback for
anything else) instead of guessing the cause from where it was caught.

Reasons (the ``reason`` of the spawn error, a short label for metrics and
tests): ``identity-provider`` (no access token: the identity provider did not
answer or refused the hub's client), ``session_expired`` (the user's login is
no longer accepted), ``firecrest-auth`` (FirecREST refused the access token
or its key, also after one fresh token), ``submit-refused`` (the scheduler
refused the job), ``token-file`` (a file could not be written or read: path,
permission), ``configuration`` (the site's configuration is wrong).
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


class SpawnFailure(Exception):
    """A failure whose cause the user should read, carrying its ``spawn_reason``.

    ``str()`` is the detail for the hub's log (never a token); ``user_message``
    is what the user reads. Subclasses set ``spawn_reason`` and
    ``status_code``; the attribute is not called ``reason`` because
    :class:`tornado.web.HTTPError` and :class:`~firecrestspawner.client.SubmitRefused`
    already use that name for something else.
    """

    spawn_reason: str = "spawn-failed"
    status_code: int = 500

    def __init__(
        self,
        log_message: str,
        *,
        user_message: str = "",
        spawn_reason: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(log_message)
        self.user_message = user_message or log_message
        if spawn_reason is not None:
            self.spawn_reason = spawn_reason
        if status_code is not None:
            self.status_code = status_code

    def spawn_error(self) -> HTTPError:
        """The user-facing spawn error (``SpawnException`` on JupyterHub 6)."""
        return spawn_error(
            self.user_message,
            reason=self.spawn_reason,
            log_message=str(self),
            status_code=self.status_code,
        )


IDP_UNAVAILABLE_MESSAGE = (
    "The server cannot start: the identity provider (the login service) is not answering, "
    "so no access to the cluster could be obtained. Please try again in a few minutes."
)
IDP_REFUSED_MESSAGE = (
    "The server cannot start: the identity provider (the login service) refused the hub's "
    "request for access to the cluster. Please contact the administrators."
)


class AuthError(SpawnFailure):
    """The credential did not work: no token could be obtained (IdP unreachable,
    misconfigured client...), or FirecREST refused it (the subclass
    :class:`~firecrestspawner.client.FirecrestAuthFailed`).

    Its spawn reason is ``identity-provider``; ``str()`` is the detail for the
    hub's log (never a token), ``user_message`` what the user reads. Defined
    here so that the client's failures can be one too; importable from
    :mod:`firecrestspawner.auth` as before.
    """

    spawn_reason = "identity-provider"
    status_code = 503

    def __init__(self, detail: str, *, user_message: str = IDP_UNAVAILABLE_MESSAGE, **kw: Any):
        super().__init__(detail, user_message=user_message, **kw)


def user_error(
    exc: BaseException,
    message: str,
    *,
    reason: str,
    log_message: str | None = None,
    status_code: int = 400,
) -> HTTPError:
    """``exc``'s own spawn error when it names its cause, else the one described.

    For an ``except Exception`` that reports a step's failure: a
    :class:`SpawnFailure` (identity provider down, FirecREST refused the
    token...) keeps its reason instead of being reported as the step's.
    """
    if isinstance(exc, SpawnFailure):
        return exc.spawn_error()
    return spawn_error(message, reason=reason, log_message=log_message, status_code=status_code)


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
