"""The demo's authenticator: any user name logs in, with real tokens in ``auth_state``.

It stands in for OAuthenticator in the demo and the end-to-end tests. It does
not check passwords itself: it asks the identity provider (the emulator's
development IdP accepts any password) for tokens with the OAuth password grant
and keeps them in ``auth_state`` under the keys OAuthenticator uses
(``access_token``, ``refresh_token``, ``expires_at``). The spawner then takes
the production path: refresh-token grants, rotation written back to
``auth_state``. Not for production: the password grant is deprecated and
sends the user's password to the hub.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from jupyterhub.auth import Authenticator
from traitlets import Float, Unicode, default

from .redact import register_secret


class DemoAuthenticator(Authenticator):
    """Log in any user name; obtain the user's FirecREST tokens with the password grant."""

    token_url = Unicode(
        "",
        help="""Token endpoint of the identity provider (the emulator's ``/idp/token``).

        The spawner's ``token_url`` defaults to this value.
        """,
    ).tag(config=True)

    client_id = Unicode(
        "", help="""OAuth client id for the password and refresh-token grants."""
    ).tag(config=True)

    client_secret = Unicode("", help="""OAuth client secret of ``client_id``.""").tag(config=True)

    request_timeout = Float(
        10.0, help="""Timeout (seconds) of the token request made at login."""
    ).tag(config=True)

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        # The refresh token is the point of this authenticator.
        return True

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        return True

    @default("username_pattern")
    def _username_pattern_default(self) -> str:
        # Names that are valid Unix user names and job-name parts.
        return r"^[a-z][a-z0-9_-]{0,31}$"

    @default("username_regex")
    def _username_regex_default(self) -> re.Pattern[str]:
        # JupyterHub compiles the pattern only when it is set, not for a default.
        return re.compile(self.username_pattern)

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        username = self.normalize_username(data.get("username", ""))
        if not username or not self.validate_username(username):
            self.log.warning("Demo login refused: invalid user name")
            return None
        form = {
            "grant_type": "password",
            "username": username,
            "password": data.get("password", ""),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "openid",
        }
        try:
            async with httpx.AsyncClient(timeout=self.request_timeout) as client:
                resp = await client.post(self.token_url, data=form)
        except httpx.HTTPError as e:
            self.log.error("Demo login of %s: token endpoint unreachable (%s)", username, type(e))
            return None
        if resp.status_code != 200:
            self.log.warning("Demo login of %s refused by the IdP (%s)", username, resp.status_code)
            return None
        body = resp.json()
        access_token = body.get("access_token")
        refresh_token = body.get("refresh_token")
        if not isinstance(access_token, str) or not isinstance(refresh_token, str):
            self.log.error("Demo login of %s: the IdP answered without tokens", username)
            return None
        # One entry per user in the redaction registry: a new login replaces the last.
        register_secret(access_token, owner=("demo-login", username, "access"))
        register_secret(refresh_token, owner=("demo-login", username, "refresh"))
        expires_in = body.get("expires_in")
        auth_state: dict[str, Any] = {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "token_type": body.get("token_type", "Bearer"),
        }
        if isinstance(expires_in, (int, float)):
            auth_state["expires_at"] = time.time() + expires_in
        return {"name": username, "auth_state": auth_state}
