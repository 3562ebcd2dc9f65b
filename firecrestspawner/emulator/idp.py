"""A small development identity provider: RS256 JWTs, a JWKS, three grants.

Not a general OAuth server: just enough of Keycloak's token endpoint for the
spawner, the demo and the tests (``client_credentials``, ``refresh_token``
with rotation, and ``password`` for the demo authenticator).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from .config import IdpConfig


class IdpError(Exception):
    """An OAuth error answer (RFC 6749 section 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class RefreshRecord:
    username: str
    client_id: str | None
    expires_at: float


def _digest(token: str) -> str:
    """How a refresh token is remembered: a leaked state file holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_key() -> RSAKey:
    return RSAKey.generate_key(
        2048, parameters={"kid": uuid.uuid4().hex[:16], "use": "sig", "alg": "RS256"}
    )


def signing_key(path: str | None) -> RSAKey:
    """The key in ``path`` (a private JWK), creating the file 0600 if missing.

    Several emulators (a test's and a demo hub's) then sign with one key that a
    FirecREST server, which reads its JWKS once at start, keeps trusting.
    """
    if path is None:
        return _new_key()
    try:
        with open(path, encoding="utf-8") as f:
            return RSAKey.import_key(json.load(f))
    except FileNotFoundError:
        pass
    key = _new_key()
    # Written whole under a temporary name, then linked into place: a reader
    # never sees half a key, and of two emulators starting together one wins.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".key-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(key.as_dict(private=True), f)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return signing_key(path)
    finally:
        os.unlink(tmp)
    return key


class IdentityProvider:
    def __init__(
        self,
        config: IdpConfig,
        issuer: str = "http://127.0.0.1/idp",
        state: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.issuer = config.issuer or issuer
        state = state or {}
        if config.signing_key_file is not None or "key" not in state:
            self.key = signing_key(config.signing_key_file)
        else:
            self.key = RSAKey.import_key(state["key"])
        #: Refresh tokens by their SHA-256 digest.
        self._refresh: dict[str, RefreshRecord] = {}
        now = time.time()
        for digest, record in (state.get("refresh_tokens") or {}).items():
            if record["expires_at"] > now:
                self._refresh[digest] = RefreshRecord(**record)
        self.grant_counts: Counter[str] = Counter()
        #: Called after the refresh tokens changed (the emulator saves its state).
        self.on_change: Callable[[], None] = lambda: None

    def dump_state(self) -> dict[str, Any]:
        """The key (unless it lives in ``signing_key_file``) and the refresh tokens' digests."""
        out: dict[str, Any] = {
            "refresh_tokens": {
                d: asdict(r) for d, r in self._refresh.items() if r.expires_at > time.time()
            },
        }
        if self.config.signing_key_file is None:
            out["key"] = self.key.as_dict(private=True)
        return out

    # -- keys ------------------------------------------------------------

    def rotate_key(self) -> None:
        """Sign with a new key from now on; tokens signed with the old one are refused.

        A fault for tests (a site rotating its signing key): clients holding a
        cached access token get a 401 and must fetch a new token.
        """
        if self.config.signing_key_file is not None:
            raise ValueError("the signing key lives in signing_key_file: rotate that file instead")
        self.key = _new_key()
        self.on_change()

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def key_set(self) -> KeySet:
        return KeySet([self.key])

    # -- issuing -----------------------------------------------------------
    def issue_access_token(
        self,
        username: str,
        *,
        client_id: str | None = None,
        lifetime: int | None = None,
        claims: dict[str, Any] | None = None,
        omit_username: bool = False,
    ) -> tuple[str, int]:
        """Sign an access token; returns (token, lifetime in seconds)."""
        lifetime = self.config.access_token_lifetime if lifetime is None else lifetime
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": username,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "typ": "Bearer",
            "azp": client_id or "firecrest-emulator",
            "scope": "openid profile",
        }
        if not omit_username:
            payload["preferred_username"] = username
        payload.update(claims or {})
        token = jwt.encode({"alg": "RS256", "kid": self.kid, "typ": "JWT"}, payload, self.key)
        return token, lifetime

    def issue_refresh_token(
        self, username: str, *, client_id: str | None = None, lifetime: int | None = None
    ) -> str:
        lifetime = self.config.refresh_token_lifetime if lifetime is None else lifetime
        token = secrets.token_urlsafe(32)
        self._refresh[_digest(token)] = RefreshRecord(username, client_id, time.time() + lifetime)
        self.on_change()
        return token

    def revoke(self, *, username: str | None = None, token: str | None = None) -> int:
        """Invalidate refresh tokens by value or by user; returns how many."""
        wanted = _digest(token) if token is not None else None
        victims = [
            d
            for d, rec in self._refresh.items()
            if d == wanted or (username is not None and rec.username == username)
        ]
        for d in victims:
            del self._refresh[d]
        if victims:
            self.on_change()
        return len(victims)

    def _token_response(
        self, username: str, client_id: str | None, *, refresh: bool
    ) -> dict[str, Any]:
        access, lifetime = self.issue_access_token(username, client_id=client_id)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": "openid profile",
        }
        if refresh:
            body["refresh_token"] = self.issue_refresh_token(username, client_id=client_id)
            body["refresh_expires_in"] = self.config.refresh_token_lifetime
        return body

    # -- the token endpoint --------------------------------------------------
    def grant(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        """Answer a token request (form fields, Authorization header); raises IdpError."""
        grant_type = form.get("grant_type", "")
        self.grant_counts[grant_type or "(none)"] += 1
        client_id, client_secret = _client_credentials(form, authorization)
        if grant_type == "client_credentials":
            client = self.config.clients.get(client_id or "")
            if client is None or not hmac.compare_digest(client.secret, client_secret or ""):
                raise IdpError(
                    401, "invalid_client", "Invalid client or Invalid client credentials"
                )
            return self._token_response(client.username or str(client_id), client_id, refresh=False)
        self._check_optional_client(client_id, client_secret)
        if grant_type == "refresh_token":
            value = form.get("refresh_token", "")
            digest = _digest(value)
            record = self._refresh.get(digest)
            if record is None:
                raise IdpError(400, "invalid_grant", "Invalid refresh token")
            if record.expires_at < time.time():
                del self._refresh[digest]
                self.on_change()
                raise IdpError(400, "invalid_grant", "Token is not active")
            if self.config.rotate_refresh_tokens:
                del self._refresh[digest]
                self.on_change()
            body = self._token_response(
                record.username,
                client_id or record.client_id,
                refresh=self.config.rotate_refresh_tokens,
            )
            if not self.config.rotate_refresh_tokens:
                body["refresh_token"] = value
                body["refresh_expires_in"] = max(0, int(record.expires_at - time.time()))
            return body
        if grant_type == "password":
            username = form.get("username", "")
            password = form.get("password", "")
            expected = self.config.users.get(username)
            ok = bool(username) and (
                (expected is not None and hmac.compare_digest(expected, password))
                or (expected is None and self.config.dev_mode)
            )
            if not ok:
                raise IdpError(401, "invalid_grant", "Invalid user credentials")
            return self._token_response(username, client_id, refresh=True)
        raise IdpError(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type!r}")

    def _check_optional_client(self, client_id: str | None, secret: str | None) -> None:
        if client_id and client_id in self.config.clients and secret is not None:
            if not hmac.compare_digest(self.config.clients[client_id].secret, secret):
                raise IdpError(
                    401, "invalid_client", "Invalid client or Invalid client credentials"
                )
            return
        if not self.config.dev_mode and (not client_id or client_id not in self.config.clients):
            raise IdpError(401, "invalid_client", "Invalid client or Invalid client credentials")


def _client_credentials(
    form: dict[str, str], authorization: str | None
) -> tuple[str | None, str | None]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
            cid, _, secret = decoded.partition(":")
            return cid, secret
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")
