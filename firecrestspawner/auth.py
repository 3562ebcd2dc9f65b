"""Access tokens for FirecREST: refresh-token grant, client credentials, caches.

pyfirecrest's ``AsyncFirecrest`` awaits ``authorization.auth_headers()`` before
every request, so everything here is asynchronous (httpx), cached until less
than ``min_token_validity`` seconds are left, and refreshed by at most one
request in flight per credential. FirecREST refuses tokens with less than 30 s
left, hence the 60 s default margin.

* :class:`AuthorizationCodeFlowAuth`: a user's credential, from the refresh
  token OAuthenticator keeps in ``auth_state``. The documented class of the
  existing firecrestspawner, with the same constructor and ``get_access_token()``.
* :class:`ServiceAccountAuth`: the hub's client-credentials grant, one per hub
  process and identity (:func:`get_service_account_auth`).
* :func:`user_auth`: the one credential per user that all of the user's
  spawners share, written back to ``auth_state`` when the IdP rotates the
  refresh token.

No token ever appears in an exception message or a log line. Each credential
registers its secrets for redaction under its own owner keys, so a refreshed
token replaces the previous one in the registry instead of adding to it, and a
credential that is dropped forgets its secrets.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import stamina
from tornado.web import HTTPError

from . import metrics
from .errors import IDP_REFUSED_MESSAGE, IDP_UNAVAILABLE_MESSAGE, AuthError
from .pyfirecrest_adapter import tls_context
from .redact import forget_owners, redact, register_secret

log = logging.getLogger(__name__)

SESSION_EXPIRED_MESSAGE = (
    "Your login session has expired: log out and log in again to start or stop servers."
)

RotateCallback = Callable[[str], "Awaitable[None] | None"]

#: How many replaced refresh tokens a credential remembers (as digests), so
#: that a stale ``auth_state`` is never adopted again.
SUPERSEDED_KEPT = 256


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class SessionExpired(AuthError, HTTPError):
    """The identity provider no longer accepts the user's refresh token.

    An ``HTTPError(403)`` whose ``jupyterhub_message`` JupyterHub shows to the
    user (as the existing firecrestspawner did); :meth:`spawn_error` gives the
    ``SpawnException`` to raise from ``start()``. Never carries a token.
    """

    spawn_reason = "session_expired"

    def __init__(self, detail: str = "") -> None:
        self.detail = redact(detail)
        log_message = "login session expired" + (f" ({self.detail})" if self.detail else "")
        HTTPError.__init__(self, 403, log_message)
        self.jupyterhub_message = SESSION_EXPIRED_MESSAGE
        self.html_message = SESSION_EXPIRED_MESSAGE
        self.user_message = SESSION_EXPIRED_MESSAGE

    def __str__(self) -> str:
        return SESSION_EXPIRED_MESSAGE + (f" ({self.detail})" if self.detail else "")

    def spawn_error(self) -> HTTPError:
        """The user-facing spawn error (``SpawnException`` on JupyterHub 6)."""
        from .errors import spawn_error

        return spawn_error(
            SESSION_EXPIRED_MESSAGE,
            reason="session_expired",
            log_message=self.log_message,
            status_code=403,
        )


#: Longest wait for the token endpoint's ``Retry-After`` between two tries (seconds).
MAX_IDP_RETRY_AFTER = 10.0


class _RetryableStatus(Exception):
    """A 5xx/429 answer from the token endpoint (retried, after its Retry-After if any)."""

    def __init__(self, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(f"token endpoint answered HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying (we only schedule refreshes)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None


def _error_code(response: httpx.Response) -> str:
    """The OAuth2 ``error`` code of a failed token response (never the body)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 64:
        return f"HTTP {response.status_code} {code}"
    return f"HTTP {response.status_code}"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _is_retryable(exc: Exception) -> bool | float:
    """Retry transport errors and 5xx/429; a ``Retry-After`` sets the wait (capped)."""
    if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_IDP_RETRY_AFTER)
    return isinstance(exc, (_RetryableStatus, httpx.TransportError))


class _OAuthTokenAuth:
    """Shared machinery: token cache, one refresh in flight, bounded retries."""

    grant_type = ""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str,
        *,
        min_token_validity: float = 60.0,
        timeout: float = 10.0,
        retry_attempts: int = 3,
        retry_wait_initial: float = 0.2,
        retry_wait_max: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Owner keys of this credential's secrets in the redaction registry
        # (not the credential itself: the registry must not keep it alive).
        tag = object()
        self._secret_owners = {kind: (tag, kind) for kind in ("access", "refresh", "client")}
        weakref.finalize(self, forget_owners, tuple(self._secret_owners.values()))
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url
        self.min_token_validity = float(min_token_validity)
        self.timeout = float(timeout)
        self.retry_attempts = max(1, int(retry_attempts))
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        #: The httpx transport of the asynchronous token requests (None: the
        #: network; tests inject one at this boundary).
        self.transport = transport
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._sync_lock = threading.Lock()
        self._warned_sync = False
        #: Number of token requests sent (for tests and metrics).
        self.token_requests = 0

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        register_secret(value, owner=self._secret_owners["client"])
        self._client_secret = value

    # -- cache -----------------------------------------------------------------

    def _margin(self) -> float:
        # A token that lives less than twice the margin would be refreshed on
        # every call; keep at least half of its lifetime usable.
        if self._lifetime > 0:
            return min(self.min_token_validity, self._lifetime / 2)
        return self.min_token_validity

    def _cached(self) -> str | None:
        if self._access_token and self._expires_at - time.time() > self._margin():
            return self._access_token
        return None

    def _store(self, access_token: str, expires_in: Any) -> None:
        now = time.time()
        candidates = []
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            candidates.append(now + float(expires_in))
        exp = jwt_expiry(access_token)
        if exp is not None and (exp > now or not candidates):
            # An `exp` already past while `expires_in` says valid is clock skew
            # between hub and IdP: trusting it would refresh on every call.
            candidates.append(exp)
        expires_at = min(candidates) if candidates else now  # unknown: use once
        register_secret(access_token, owner=self._secret_owners["access"])
        self._access_token = access_token
        self._expires_at = expires_at
        self._lifetime = max(0.0, expires_at - now)

    def set_access_token(self, access_token: str, expires_at: float | None = None) -> None:
        """Seed the cache with a token obtained elsewhere (e.g. at login)."""
        exp = expires_at if expires_at is not None else jwt_expiry(access_token)
        if exp is None:
            return
        register_secret(access_token, owner=self._secret_owners["access"])
        self._access_token = access_token
        self._expires_at = exp
        self._lifetime = max(0.0, exp - time.time())

    @property
    def expires_at(self) -> float:
        """Wall-clock time when the cached access token expires (0 if none)."""
        return self._expires_at if self._access_token else 0.0

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached access token (e.g. after FirecREST answered 401).

        With ``token``, only if that is still the cached one: of many requests
        refused with the same token, the first makes the next call fetch a new
        token and the others then use it instead of discarding it again.
        """
        if token is not None and token != self._access_token:
            return
        self._access_token = None
        self._expires_at = 0.0

    # -- grant -----------------------------------------------------------------

    def _grant_data(self) -> dict[str, str]:
        raise NotImplementedError

    def _rejected(self, response: httpx.Response) -> Exception:
        """The exception for a 4xx answer (not retried)."""
        return AuthError(
            f"identity provider refused the {self.grant_type} grant for client "
            f"{self.client_id!r}: {_error_code(response)}",
            user_message=IDP_REFUSED_MESSAGE,
            status_code=500,
        )

    def _handle_success(self, body: dict[str, Any]) -> None:
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError("identity provider answered without an access_token")
        self._store(token, body.get("expires_in"))

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableStatus(response.status_code, _retry_after_seconds(response))
        if response.status_code != 200:
            metrics.idp_grant(self.grant_type, False)
            raise self._rejected(response)
        try:
            body = response.json()
        except ValueError:
            raise AuthError("identity provider answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise AuthError("identity provider answered with invalid JSON")
        metrics.idp_grant(self.grant_type, True)
        return body

    def _retrying(self):
        return stamina.retry_context(
            on=_is_retryable,
            attempts=self.retry_attempts,
            timeout=None,  # bounded by attempts x timeout + waits
            wait_initial=self.retry_wait_initial,
            wait_max=self.retry_wait_max,
            wait_jitter=self.retry_wait_initial,
        )

    def _unreachable(self, exc: Exception) -> AuthError:
        reason = redact(str(exc) or type(exc).__name__)
        metrics.idp_grant(self.grant_type, False)
        return AuthError(
            f"identity provider at {self.token_url} did not answer after "
            f"{self.retry_attempts} attempts: {type(exc).__name__}: {reason}"
        )

    async def _request_async(self) -> dict[str, Any]:
        self.token_requests += 1
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, verify=tls_context(), transport=self.transport
            ) as client:
                async for attempt in self._retrying():
                    with attempt:
                        response = await client.post(self.token_url, data=self._grant_data())
                        return self._check(response)
        except (_RetryableStatus, httpx.TransportError) as e:
            raise self._unreachable(e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_sync(self) -> dict[str, Any]:
        self.token_requests += 1
        try:
            with httpx.Client(timeout=self.timeout, verify=tls_context()) as client:
                for attempt in self._retrying():
                    with attempt:
                        response = client.post(self.token_url, data=self._grant_data())
                        return self._check(response)
        except (_RetryableStatus, httpx.TransportError) as e:
            raise self._unreachable(e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _after_refresh(self, body: dict[str, Any]) -> None:
        self._handle_success(body)

    async def _recover_session(self) -> bool:
        """After a refused grant: True if retrying once may succeed."""
        return False

    def _after_refresh_sync(self, body: dict[str, Any]) -> None:
        self._handle_success(body)

    # -- public ----------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    async def get_access_token_async(self) -> str:
        """A valid access token; refreshes (once, for all waiters) if needed."""
        token = self._cached()
        if token:
            return token
        async with self._get_lock():
            token = self._cached()
            if token:
                return token
            try:
                body = await self._request_async()
            except SessionExpired:
                if not await self._recover_session():
                    raise
                body = await self._request_async()
            await self._after_refresh(body)
            if self._access_token is None:  # pragma: no cover - set by _handle_success
                raise AuthError("identity provider answered without an access_token")
            return self._access_token

    async def auth_headers(self) -> dict[str, str]:
        """The headers pyfirecrest's ``AsyncFirecrest`` sends with each request."""
        return {"Authorization": f"Bearer {await self.get_access_token_async()}"}

    def get_access_token(self) -> str | None:
        """Synchronous variant kept for compatibility (pyfirecrest's sync client).

        Blocks on HTTP: never call it from the hub's event loop, use
        :meth:`auth_headers` / :meth:`get_access_token_async` there. Returns
        None when no token can be obtained, as documented upstream; an expired
        session raises :class:`SessionExpired`.
        """
        token = self._cached()
        if token:
            return token
        if _loop_running() and not self._warned_sync:
            self._warned_sync = True
            log.warning(
                "%r: the synchronous get_access_token() blocks the running event loop; "
                "use `await auth_headers()` / `await get_access_token_async()`",
                self,
            )
        with self._sync_lock:
            token = self._cached()
            if token:
                return token
            try:
                self._after_refresh_sync(self._request_sync())
            except SessionExpired:
                raise
            except AuthError as e:
                log.warning("Could not obtain an access token: %s", e)
                return None
            return self._access_token

    def __repr__(self) -> str:
        return f"<{type(self).__name__} client_id={self.client_id!r} token_url={self.token_url!r}>"


class AuthorizationCodeFlowAuth(_OAuthTokenAuth):
    """A user's FirecREST credential from an OAuth2 refresh token.

    Parameters as in the existing firecrestspawner: ``client_id``,
    ``client_secret``, ``refresh_token``, ``token_url``. ``refresh_token`` is a
    mutable attribute. When the IdP rotates the refresh token, the new one
    replaces it and ``on_rotate(new_token)`` (sync or async) is called, so the
    caller can persist it. A refused refresh token raises :class:`SessionExpired`,
    unless ``reload_refresh_token()`` (async) returns a newer one (someone else,
    e.g. OAuthenticator's own refresh, rotated it): then it is adopted and the
    grant retried once.
    """

    grant_type = "refresh_token"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_url: str,
        *,
        min_token_validity: float = 60.0,
        timeout: float = 10.0,
        on_rotate: RotateCallback | None = None,
        reload_refresh_token: Callable[[], Awaitable[str | None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            client_id,
            client_secret,
            token_url,
            min_token_validity=min_token_validity,
            timeout=timeout,
            **kwargs,
        )
        self.refresh_token = refresh_token
        self.on_rotate = on_rotate
        self.reload_refresh_token = reload_refresh_token
        #: Digests of the refresh tokens this credential replaced (never adopted
        #: again), the most recent :data:`SUPERSEDED_KEPT` only.
        self._superseded: OrderedDict[bytes, None] = OrderedDict()

    @property
    def refresh_token(self) -> str:
        return self._refresh_token

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        register_secret(value, owner=self._secret_owners["refresh"])
        self._refresh_token = value

    def _supersede(self, token: str) -> None:
        self._superseded[_digest(token)] = None
        while len(self._superseded) > SUPERSEDED_KEPT:
            self._superseded.popitem(last=False)

    def _grant_data(self) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def _rejected(self, response: httpx.Response) -> Exception:
        # invalid_grant (RFC 6749 5.2) is an expired, revoked or unknown refresh
        # token; invalid_client is a hub misconfiguration, not the user's session.
        code = _error_code(response)
        if response.status_code in (400, 401) and "invalid_client" not in code:
            return SessionExpired(f"identity provider answered {code}")
        return super()._rejected(response)

    def _rotate(self, body: dict[str, Any]) -> str | None:
        new = body.get("refresh_token")
        if isinstance(new, str) and new and new != self.refresh_token:
            self._supersede(self.refresh_token)
            self.refresh_token = new
            return new
        return None

    async def _after_refresh(self, body: dict[str, Any]) -> None:
        self._handle_success(body)
        new = self._rotate(body)
        if new and self.on_rotate is not None:
            try:
                result = self.on_rotate(new)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:  # noqa: BLE001 - the new token is in memory; report, go on
                log.warning("Could not persist the rotated refresh token: %s", e)

    async def _recover_session(self) -> bool:
        if self.reload_refresh_token is None:
            return False
        try:
            fresh = await self.reload_refresh_token()
        except Exception as e:  # noqa: BLE001 - the refusal is what the caller sees
            log.warning("Could not reload the refresh token: %s", e)
            return False
        return bool(fresh) and self.adopt_refresh_token(fresh or "")

    def _after_refresh_sync(self, body: dict[str, Any]) -> None:
        self._handle_success(body)
        new = self._rotate(body)
        if new and self.on_rotate is not None:
            result = self.on_rotate(new)
            if inspect.isawaitable(result):
                # Cannot await here; the caller of the sync API gets the token anyway.
                close = getattr(result, "close", None)
                if close:
                    close()
                log.warning("on_rotate is async; the sync get_access_token() cannot await it")

    def adopt_refresh_token(self, refresh_token: str) -> bool:
        """Take a refresh token from ``auth_state`` unless this credential replaced it.

        Returns True if it was adopted (a new login), False if it is the current
        one or one this credential already rotated away.
        """
        if not refresh_token or refresh_token == self.refresh_token:
            return False
        if _digest(refresh_token) in self._superseded:
            return False
        self.refresh_token = refresh_token
        self.invalidate()
        return True


class ServiceAccountAuth(_OAuthTokenAuth):
    """The hub's own credential (client-credentials grant), for polling and cancel."""

    grant_type = "client_credentials"

    def _grant_data(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


_service_accounts: dict[tuple[str, str], ServiceAccountAuth] = {}
_user_credentials: dict[tuple[str, str, str], AuthorizationCodeFlowAuth] = {}


def get_service_account_auth(
    client_id: str,
    client_secret: str,
    token_url: str,
    **kwargs: Any,
) -> ServiceAccountAuth:
    """The shared :class:`ServiceAccountAuth` of this hub process for (token_url, client_id)."""
    key = (token_url, client_id)
    auth = _service_accounts.get(key)
    if auth is None:
        auth = _service_accounts[key] = ServiceAccountAuth(
            client_id, client_secret, token_url, **kwargs
        )
    elif auth.client_secret != client_secret:
        auth.client_secret = client_secret
        auth.invalidate()
    return auth


async def user_auth(
    user: Any,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    min_token_validity: float = 60.0,
    timeout: float = 10.0,
) -> AuthorizationCodeFlowAuth:
    """The credential of a JupyterHub ``user`` (shared by all their servers).

    Reads the refresh token from ``await user.get_auth_state()`` (key
    ``refresh_token``, as OAuthenticator stores it) and, when the IdP rotates
    it, writes the new one back to ``auth_state`` (that key only). If the IdP
    refuses the token because the authenticator refreshed (and rotated) it in
    the meantime, the newer one is read from ``auth_state`` and used. A missing
    auth_state or refresh token raises :class:`SessionExpired`.
    """
    auth_state = await user.get_auth_state()
    refresh_token = (auth_state or {}).get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise SessionExpired("no refresh token in auth_state")
    key = (token_url, client_id, user.name)
    cred = _user_credentials.get(key)
    if cred is None:

        async def save_rotated(new_token: str) -> None:
            state = await user.get_auth_state() or {}
            state["refresh_token"] = new_token
            await user.save_auth_state(state)

        async def reload() -> str | None:
            state = await user.get_auth_state() or {}
            token = state.get("refresh_token")
            return token if isinstance(token, str) else None

        cred = AuthorizationCodeFlowAuth(
            client_id,
            client_secret,
            refresh_token,
            token_url,
            min_token_validity=min_token_validity,
            timeout=timeout,
            on_rotate=save_rotated,
            reload_refresh_token=reload,
        )
        _seed_access_token(cred, auth_state)
        _user_credentials[key] = cred
    else:
        if cred.adopt_refresh_token(refresh_token):
            _seed_access_token(cred, auth_state)
        if cred.client_secret != client_secret:
            cred.client_secret = client_secret
        cred.min_token_validity = float(min_token_validity)
        cred.timeout = float(timeout)
    return cred


def _seed_access_token(cred: AuthorizationCodeFlowAuth, auth_state: dict[str, Any]) -> None:
    """Use the login's access token, if it is a JWT, to save the first refresh."""
    token = auth_state.get("access_token")
    if not isinstance(token, str) or not token:
        return
    expires_at = auth_state.get("expires_at")
    if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool):
        expires_at = None
    cred.set_access_token(token, expires_at)


def forget_user(name: str) -> None:
    """Drop cached credentials of a user (e.g. on logout)."""
    for key in [k for k in _user_credentials if k[2] == name]:
        del _user_credentials[key]


def clear_caches() -> None:
    """Forget every cached credential (tests, hub shutdown)."""
    _service_accounts.clear()
    _user_credentials.clear()


__all__ = [
    "IDP_REFUSED_MESSAGE",
    "IDP_UNAVAILABLE_MESSAGE",
    "SESSION_EXPIRED_MESSAGE",
    "AuthError",
    "AuthorizationCodeFlowAuth",
    "ServiceAccountAuth",
    "SessionExpired",
    "clear_caches",
    "forget_user",
    "get_service_account_auth",
    "jwt_expiry",
    "user_auth",
]
