"""The emulator's routes, one module per area, and the table that maps URLs to them.

``status``, ``compute`` and ``filesystem`` are FirecREST's own areas; ``idp``
is the development identity provider and ``admin`` the ``/_emulator/`` API;
``base`` holds what every FirecREST route does before and after its work.
"""

from __future__ import annotations

import tornado.web

from .admin import (
    AdminCountersHandler,
    AdminFaultsHandler,
    AdminJobsHandler,
    AdminNodeFailHandler,
    AdminRequestsHandler,
    AdminRevokeHandler,
    AdminRotateKeyHandler,
    AdminSystemHandler,
    AdminTokensHandler,
)
from .base import FirecrestHandler, FirecrestNotFound, JSONHandler
from .compute import JobHandler, JobMetadataHandler, JobsHandler
from .filesystem import OpsHandler
from .idp import JwksHandler, OidcConfigHandler, TokenHandler
from .status import LivenessHandler, SystemsHandler, SystemStatusHandler

__all__ = ["FirecrestHandler", "FirecrestNotFound", "JSONHandler", "routes"]

_SYSTEM = r"([^/]+)"


def routes() -> list[tuple[str, type[tornado.web.RequestHandler]]]:
    """(URL pattern, handler) of every route; paths arrive lower-cased (but ``/idp/``, admin)."""
    s = _SYSTEM
    return [
        (r"/status/liveness/?", LivenessHandler),
        (r"/status/systems/?", SystemsHandler),
        (rf"/status/{s}/(userinfo|partitions|reservations|nodes)/?", SystemStatusHandler),
        (rf"/compute/{s}/jobs/?", JobsHandler),
        (rf"/compute/{s}/jobs/([^/]+)/metadata/?", JobMetadataHandler),
        (rf"/compute/{s}/jobs/([^/]+)/?", JobHandler),
        (rf"/filesystem/{s}/ops/(tail|head|view|ls|stat|mkdir|chmod|upload|rm)/?", OpsHandler),
        (r"/idp/token", TokenHandler),
        (r"/idp/jwks", JwksHandler),
        (r"/idp/\.well-known/openid-configuration", OidcConfigHandler),
        (r"/_emulator/faults", AdminFaultsHandler),
        (r"/_emulator/counters", AdminCountersHandler),
        (r"/_emulator/requests", AdminRequestsHandler),
        (r"/_emulator/jobs", AdminJobsHandler),
        (r"/_emulator/jobs/([^/]+)/([^/]+)/node_fail", AdminNodeFailHandler),
        (r"/_emulator/systems/([^/]+)", AdminSystemHandler),
        (r"/_emulator/tokens", AdminTokensHandler),
        (r"/_emulator/revoke", AdminRevokeHandler),
        (r"/_emulator/rotate_key", AdminRotateKeyHandler),
    ]
