"""A credential refreshed for a long time keeps the redaction registry bounded.

The token requests are answered by the emulator's identity provider
(``IdentityProvider.grant``: refresh-token validation and rotation, RS256
access tokens), called in-process through an httpx transport: the credential's
real refresh path runs, only the socket is left out (10,000 HTTP round trips
would take minutes on CI's two cores).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx

from firecrestspawner.auth import SUPERSEDED_KEPT, AuthorizationCodeFlowAuth
from firecrestspawner.emulator.config import IdpClient, IdpConfig
from firecrestspawner.emulator.idp import IdentityProvider, IdpError
from firecrestspawner.redact import REDACTED, redact, registry

REFRESHES = 10_000


class IdpTransport(httpx.AsyncBaseTransport):
    """Hands each token request to the emulator's identity provider, in-process."""

    def __init__(self, idp: IdentityProvider) -> None:
        self.idp = idp
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        form = dict(parse_qsl((await request.aread()).decode()))
        try:
            body = self.idp.grant(form, request.headers.get("Authorization"))
        except IdpError as e:
            return httpx.Response(e.status, json=e.body())
        return httpx.Response(200, content=json.dumps(body).encode())


async def test_registry_stays_bounded_over_10000_refreshes():
    # Access tokens that expire at once: every call takes the refresh path.
    idp = IdentityProvider(IdpConfig(access_token_lifetime=0, rotate_refresh_tokens=True))
    client_id, client = next(iter(idp.config.clients.items()))
    transport = IdpTransport(idp)
    cred = AuthorizationCodeFlowAuth(
        client_id,
        client.secret,
        idp.issue_refresh_token("alice", client_id=client_id),
        "http://idp.invalid/token",
        transport=transport,
    )
    before = len(registry)  # other tests' secrets, and this credential's three
    seen_access: list[str] = []
    seen_refresh: list[str] = []
    for i in range(REFRESHES):
        seen_refresh.append(cred.refresh_token)
        seen_access.append(await cred.get_access_token_async())
        if i % 1000 == 0:
            assert len(registry) <= before + 1, i
    assert transport.requests == REFRESHES
    assert len(set(seen_access)) == REFRESHES  # each call got a new token
    assert len(set(seen_refresh)) == REFRESHES  # and the IdP rotated the refresh token
    assert len(registry) <= before + 1  # access token, refresh token, client secret: one each
    assert len(cred._superseded) == SUPERSEDED_KEPT

    current_access, current_refresh = seen_access[-1], cred.refresh_token
    assert current_access in registry
    assert current_refresh in registry
    assert client.secret in registry
    assert redact(f"grant with {current_refresh}!") == f"grant with {REDACTED}!"
    # Replaced tokens are no longer registered (the refresh tokens were opaque:
    # nothing else would redact them), the one before the current included.
    assert not any(t in registry for t in seen_access[:-1])
    assert not any(t in registry for t in seen_refresh)
    assert redact(f"old {seen_refresh[-1]}") == f"old {seen_refresh[-1]}"


async def test_a_dropped_credential_forgets_its_secrets():
    secret = "a-client-secret-of-this-test-only"
    idp = IdentityProvider(
        IdpConfig(access_token_lifetime=0, clients={"dropped": IdpClient(secret=secret)})
    )
    client_id = "dropped"
    cred = AuthorizationCodeFlowAuth(
        client_id,
        secret,
        idp.issue_refresh_token("bob", client_id=client_id),
        "http://idp.invalid/token",
        transport=IdpTransport(idp),
    )
    access = await cred.get_access_token_async()
    refresh = cred.refresh_token
    assert access in registry
    assert refresh in registry
    assert secret in registry
    del cred  # CPython frees it at once; its finaliser forgets its secrets
    assert access not in registry
    assert refresh not in registry
    assert secret not in registry
