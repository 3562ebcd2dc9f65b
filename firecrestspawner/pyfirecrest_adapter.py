"""How this package drives pyfirecrest: credential, TLS and API version.

Split from :mod:`firecrestspawner.client` (which re-exports :func:`tls_context`):
the pieces between pyfirecrest's ``AsyncFirecrest`` and this package's
credentials, with no retry or error policy of their own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ssl
from collections.abc import Awaitable
from typing import Any

import httpx
from firecrest.v2 import AsyncFirecrest

from .firecrest_errors import release_version

# ----------------------------------------------------------------- auth


class SwappableAuth:
    """Lets a pooled client pick up a new credential object for its identity."""

    def __init__(self, auth: Any):
        self.current = auth

    def invalidate(self, token: str | None) -> bool:
        """Make the credential forget ``token``; False if it cannot give a new one.

        A credential of :mod:`firecrestspawner.auth` forgets the token only if
        it still holds it (another request may have replaced it already).
        """
        fn = getattr(self.current, "invalidate", None)
        if fn is None:
            return False
        try:
            takes_token = "token" in inspect.signature(fn).parameters
        except (TypeError, ValueError):  # pragma: no cover - a builtin
            takes_token = False
        if takes_token:
            fn(token=token)
        else:
            fn()
        return True

    async def auth_headers(self) -> dict[str, str]:
        fn = getattr(self.current, "auth_headers", None)
        if fn is None:
            token = await asyncio.to_thread(self.current.get_access_token)
            return {"Authorization": f"Bearer {token}"}
        headers = fn()
        if asyncio.iscoroutine(headers) or isinstance(headers, Awaitable):
            headers = await headers
        return dict(headers)


# ----------------------------------------------------------------- TLS


@functools.lru_cache(maxsize=8)
def tls_context(verify: bool | str = True) -> ssl.SSLContext | bool:
    """One TLS context per ``verify`` setting, shared by every HTTP client of the hub.

    Building a context loads the CA bundle, about 20 ms of CPU on the event
    loop; doing it per client or per token request stalls a spawn storm.
    """
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context()


class VersionSafeAsyncFirecrest(AsyncFirecrest):
    """pyfirecrest's client, without re-pinning from a non-release ``F7T-AppVersion``.

    pyfirecrest reads the header of every response and sets its API version
    from anything ``packaging`` parses: ``2`` or ``2.5`` would pin an old API,
    after which ``allusers``, ``account``, partitions and reservations raise
    ``NotImplementedOnAPIversion``. Only a release ``X.Y.Z`` may set it.
    """

    def _update_api_version_from_response(self, response: httpx.Response) -> None:
        header = response.headers.get("f7t-appversion")
        if header is not None and release_version(header) is None:
            return
        super()._update_api_version_from_response(response)


__all__ = ["SwappableAuth", "VersionSafeAsyncFirecrest", "tls_context"]
