"""``POST /hub/api/firecrestspawner``: the job reports its port, and nothing else.

The job does not know its port before it runs on a node, so
``firecrestspawner-singleuser`` picks a free one and posts ``{"port": N}``
here with the server's API token. The upstream handler (copied from
batchspawner) set *every* JSON key as an attribute of the spawner, and the
token lives in the user's job environment: a mass-assignment hole (``cmd``,
``batch_script``, ``firecrest_url``...). This one:

* authenticates with the ``Authorization: token ...`` header only;
* finds the one spawner of the token's user whose ``api_token`` equals the
  caller's token (constant-time comparison) and which is starting and waiting
  for a port (``spawner.waiting_for_port``);
* accepts exactly ``{"port": <int in 1..65535>}``, once per spawn;
* touches no spawner attribute: it calls the spawner's public
  ``report_port(port)`` (which hands it to the spawn's :class:`PortWaiter`),
  and ``start()`` decides what to do with it.

Anything else is answered 400, 403 or 409 and changes nothing. A report of
port 0, which only the existing project's wrapper sends, ends the spawn at once
with a message that says what to upgrade.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

from jupyterhub import apihandlers
from jupyterhub.apihandlers.base import APIHandler
from tornado import web

API_PATH = r"/api/firecrestspawner"
MAX_BODY = 1024
PORT_MIN = 1
PORT_MAX = 65535


#: What a job running the existing project's wrapper shows: it takes the port
#: from ``JUPYTERHUB_SERVICE_URL`` (0 with this hub) and cannot read the token file.
LEGACY_WRAPPER_HINT = (
    "The job runs an older firecrestspawner-singleuser (from the existing "
    "firecrestspawner) that {problem}. Upgrade firecrestspawner in the job's "
    "environment, or {setting}."
)


class PortReportError(Exception):
    """A report arrived that shows the spawn cannot succeed; the message says why."""


class PortWaiter:
    """One spawn's rendezvous between ``start()`` and the port handler.

    Created by the spawner in ``start()`` (``self.port_waiter = PortWaiter()``, public: the handler reads it);
    ``port = await waiter.wait(timeout)`` returns the reported port or raises
    ``TimeoutError``; ``waiter.close()`` in a ``finally``. Accepts one report.

    A report (of a port, or one that fails) proves that the job runs:
    ``reported_at`` is its ``time.monotonic()``, so that the spawner can read
    the job's state from a request made after it (the job's host always
    comes from FirecREST, never from the report).
    """

    def __init__(self) -> None:
        self._future: asyncio.Future[int] | None = None
        self._closed = False
        self.port: int | None = None
        #: ``time.monotonic()`` of the report (a port, or a failing one); None before.
        self.reported_at: float | None = None

    def _get_future(self) -> asyncio.Future[int]:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    @property
    def open(self) -> bool:
        """True while a report is expected: not yet reported, not closed."""
        return not self._closed and self.port is None

    def report(self, port: int) -> bool:
        """Deliver ``port``; False (and nothing changes) unless the waiter is open."""
        if not self.open:
            return False
        self.port = port
        self.reported_at = time.monotonic()
        future = self._get_future()
        if not future.done():
            future.set_result(port)
        return True

    async def wait(self, timeout: float | None) -> int:
        """The reported port; ``TimeoutError`` after ``timeout`` seconds."""
        if self.port is not None:
            return self.port
        if self._closed:
            raise RuntimeError("PortWaiter is closed")
        return await asyncio.wait_for(asyncio.shield(self._get_future()), timeout)

    def reported(self) -> int | None:
        """The reported port, None while none came; raises :class:`PortReportError`
        after a report that cannot work."""
        if self.port is not None:
            return self.port
        future = self._future
        if future is not None and future.done() and not future.cancelled():
            error = future.exception()
            if error is not None:
                raise error
        return None

    def fail(self, message: str) -> bool:
        """End the wait with :class:`PortReportError` (a report that cannot work)."""
        if not self.open:
            return False
        self.reported_at = time.monotonic()
        future = self._get_future()
        if not future.done():
            future.set_exception(PortReportError(message))
        self._closed = True
        return True

    def close(self) -> None:
        """No more reports accepted (call when start() ends, however it ends)."""
        self._closed = True
        if self._future is not None and not self._future.done():
            self._future.cancel()


class PortReporting:
    """What the handler calls on a spawner: ``waiting_for_port`` and ``report_port()``.

    A spawner that waits for the job's port mixes this in and, in ``start()``,
    sets ``self.port_waiter = PortWaiter()`` and closes it in a ``finally``.
    """

    port_waiter: PortWaiter | None = None

    @property
    def waiting_for_port(self) -> bool:
        """True while ``start()`` accepts a port report."""
        return self.port_waiter is not None and self.port_waiter.open

    def report_port(self, port: int | None, *, problem: str = "") -> bool:
        """The job reports its port; False (nothing changes) if no start waits for one.

        ``port=None`` with ``problem`` ends the wait with that message (a
        wrapper that cannot work).
        """
        waiter = self.port_waiter
        if waiter is None:
            return False
        if port is None:
            return waiter.fail(problem or "the job could not report a port")
        return waiter.report(port)


def parse_port_report(body: bytes) -> int:
    """The port from a request body, or ``HTTPError(400)``. Pure; no side effects."""
    if len(body) > MAX_BODY:
        raise web.HTTPError(400, "Request body too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPError(400, "Request body must be JSON") from None
    if not isinstance(data, dict) or set(data) != {"port"}:
        raise web.HTTPError(400, 'Request body must be exactly {"port": <integer>}')
    port = data["port"]
    if not isinstance(port, int) or isinstance(port, bool):
        raise web.HTTPError(400, "port must be an integer")
    if port == 0:
        raise LegacyPortReport()
    if not PORT_MIN <= port <= PORT_MAX:
        raise web.HTTPError(400, f"port must be between {PORT_MIN} and {PORT_MAX}")
    return port


class LegacyPortReport(web.HTTPError):
    """``{"port": 0}``: the existing project's wrapper, started by a hub that left the port to the job."""

    def __init__(self) -> None:
        super().__init__(
            400, "port 0: an older firecrestspawner-singleuser reported the hub's port"
        )


def _same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class FirecRESTSpawnerAPIHandler(APIHandler):
    """Receives the port chosen by the job; accepts nothing but ``{"port": int}``."""

    def _find_spawner(self, token: str) -> Any:
        user = self.current_user
        spawners = getattr(user, "spawners", None)
        if not spawners:
            return None
        found = None
        for spawner in list(spawners.values()):
            api_token = getattr(spawner, "api_token", None)
            # compare every candidate: no early exit that times the match
            if api_token and _same_token(api_token, token):
                found = spawner
        return found

    async def post(self) -> None:
        # The caller proves itself with the server's own API token in the
        # header (compared with the spawners' tokens below), never a cookie.
        token = self.get_auth_token()
        if not token:
            # The existing project's wrapper sends an empty token when the hub
            # delivers it in a file: say so in the hub's log (the job cannot
            # be told which spawn it is; the spawner notices the unread file).
            self.log.warning(
                "A port report without an API token from %s: %s",
                self.request.remote_ip,
                LEGACY_WRAPPER_HINT.format(
                    problem="cannot read the API token file",
                    setting="set c.FirecRESTSpawnerBase.api_token_delivery = 'env'",
                ),
            )
            raise web.HTTPError(403, "A server API token in the Authorization header is required")
        if self.current_user is None:
            raise web.HTTPError(403)
        try:
            port: int | None = parse_port_report(self.request.body)
        except LegacyPortReport:
            port = None
        spawner = self._find_spawner(token)
        if spawner is None:
            raise web.HTTPError(403, "This token does not belong to a server")
        # start() opens the waiter and closes it however it ends: an open
        # waiter is the proof that this server is starting and waits.
        report = getattr(spawner, "report_port", None)
        if not callable(report) or not getattr(spawner, "waiting_for_port", False):
            raise web.HTTPError(409, "This server is not waiting for a port")
        label = f"{self.current_user.name}:{getattr(spawner, 'name', '')}"
        if port is None:
            message = LEGACY_WRAPPER_HINT.format(
                problem="takes its port from the hub (port 0 here)",
                setting="set c.Spawner.port to the fixed port the old hub used",
            )
            report(None, problem=message)
            self.log.warning("Server %s: %s", label, message)
            raise web.HTTPError(400, message)
        if not report(port):
            raise web.HTTPError(409, "This server is not waiting for a port")
        self.log.info("Server %s reported port %d", label, port)
        self.set_status(200)
        # As JupyterHub's own API handlers answer (a dict would make tornado
        # add "; charset=UTF-8" to the content type).
        self.write(json.dumps({"port": port}))


def register_api_handler() -> None:
    """Add the handler to JupyterHub's API handlers (idempotent).

    JupyterHub reads ``jupyterhub.apihandlers.default_handlers`` when it builds
    its web application, so this must run before the hub initialises; the
    spawner module calls it when imported.
    """
    handlers = apihandlers.default_handlers
    if any(entry[1] is FirecRESTSpawnerAPIHandler for entry in handlers):
        return
    handlers.append((API_PATH, FirecRESTSpawnerAPIHandler))


__all__ = [
    "API_PATH",
    "LEGACY_WRAPPER_HINT",
    "FirecRESTSpawnerAPIHandler",
    "PortReportError",
    "PortReporting",
    "PortWaiter",
    "parse_port_report",
    "register_api_handler",
]
