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
import time
from collections.abc import Awaitable
from typing import Any

import httpx
from firecrest.tracing import ensure_correlation_id
from firecrest.v2 import AsyncFirecrest

from . import metrics
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


_TLS_READY: set[bool | str] = set()


async def tls_ready(verify: bool | str = True) -> None:
    """Build the shared TLS contexts (``verify`` and the default) in a thread, once.

    Loading the CA bundle costs 20-200 ms of CPU; the first spawn after a hub
    start would otherwise block the event loop (every other spawn's requests
    and the hub's pages) for that long.
    """
    for value in {True, verify}:
        if value is False or value in _TLS_READY:
            continue
        await asyncio.to_thread(tls_context, value)
        _TLS_READY.add(value)


class VersionSafeAsyncFirecrest(AsyncFirecrest):
    """pyfirecrest's client, without re-pinning from a non-release ``F7T-AppVersion``.

    pyfirecrest reads the header of every response and sets its API version
    from anything ``packaging`` parses: ``2`` or ``2.5`` would pin an old API,
    after which ``allusers``, ``account``, partitions and reservations raise
    ``NotImplementedOnAPIversion``. Only a release ``X.Y.Z`` may set it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session = self._instrumented_session()

    def _instrumented_session(self) -> httpx.AsyncClient:
        base = httpx.URL(self._firecrest_url).path
        transport = MeteredTransport(httpx.AsyncHTTPTransport(verify=self._verify), base)
        return httpx.AsyncClient(verify=self._verify, transport=transport)

    async def create_new_session(self) -> None:
        if not self._session.is_closed:
            await self._session.aclose()
        self._session = self._instrumented_session()

    async def upload_small(
        self, system_name: str, directory: str, filename: str, content: bytes
    ) -> None:
        """``upload`` of a small file from memory: one request, no local file.

        pyfirecrest's ``upload`` takes a path: a local copy of a token file,
        written and read back through threads (~1.5 ms of CPU per spawn).
        This sends the same request it makes for a file under
        ``MAX_DIRECT_UPLOAD_SIZE``.
        """
        if len(content) >= self.MAX_DIRECT_UPLOAD_SIZE:
            raise ValueError(f"{filename}: {len(content)} bytes is too large for a direct upload")
        # Like pyfirecrest's own methods: the caller's correlation id, or a new one.
        with ensure_correlation_id():
            resp = await self._post_request(
                endpoint=f"/filesystem/{system_name}/ops/upload",
                params={"path": directory},
                files={"file": (filename, content)},
            )
        self._check_response(resp, 204)

    def _update_api_version_from_response(self, response: httpx.Response) -> None:
        header = response.headers.get("f7t-appversion")
        if header is not None and release_version(header) is None:
            return
        super()._update_api_version_from_response(response)


class MeteredTransport(httpx.AsyncBaseTransport):
    """Counts and times every request to FirecREST (:mod:`firecrestspawner.metrics`).

    The one place all of pyfirecrest's requests go out; the endpoint label is
    the route template, never the raw path.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, base_path: str):
        self.inner = inner
        self.base_path = base_path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = metrics.endpoint_template(self.base_path, request.url.path)
        start = time.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TimeoutException:
            metrics.observe_request(
                request.method, endpoint, time.monotonic() - start, None, "timeout"
            )
            raise
        except httpx.TransportError:
            metrics.observe_request(
                request.method, endpoint, time.monotonic() - start, None, "network"
            )
            raise
        metrics.observe_request(
            request.method, endpoint, time.monotonic() - start, response.status_code
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


__all__ = [
    "MeteredTransport",
    "SwappableAuth",
    "VersionSafeAsyncFirecrest",
    "tls_context",
    "tls_ready",
]
