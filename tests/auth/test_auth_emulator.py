"""The credentials drive pyfirecrest's AsyncFirecrest against the project's emulator.

The emulator's identity provider rotates refresh tokens and its FirecREST side
verifies the signed access tokens, like a Keycloak + FirecREST deployment.
"""

from __future__ import annotations

import pytest
from firecrest.v2 import AsyncFirecrest

from firecrestspawner import auth
from firecrestspawner.auth import AuthorizationCodeFlowAuth, SessionExpired


@pytest.fixture(autouse=True)
def _clear_caches():
    auth.clear_caches()
    yield
    auth.clear_caches()


async def test_user_credential_authenticates_firecrest_calls(emulator):
    rotated = []
    cred = AuthorizationCodeFlowAuth(
        emulator.client_id,
        emulator.client_secret,
        emulator.issue_refresh_token("alice"),
        emulator.token_url,
        on_rotate=rotated.append,
    )
    first_refresh = cred.refresh_token
    client = AsyncFirecrest(emulator.url, authorization=cred)
    try:
        systems = await client.systems()
        await client.systems()
    finally:
        await client.close_session()
    assert emulator.system in [s["name"] for s in systems]
    # one token for both calls; the emulator's IdP rotated the refresh token
    assert cred.token_requests == 1
    assert rotated == [cred.refresh_token]
    assert cred.refresh_token != first_refresh


async def test_service_account_authenticates_firecrest_calls(emulator):
    sa = auth.get_service_account_auth(
        emulator.client_id, emulator.client_secret, emulator.token_url
    )
    client = AsyncFirecrest(emulator.url, authorization=sa)
    try:
        systems = await client.systems()
    finally:
        await client.close_session()
    assert emulator.system in [s["name"] for s in systems]


async def test_revoked_session_surfaces_as_session_expired(emulator):
    token = emulator.issue_refresh_token("bob")
    emulator.admin.revoke(refresh_token=token)
    cred = AuthorizationCodeFlowAuth(
        emulator.client_id, emulator.client_secret, token, emulator.token_url
    )
    client = AsyncFirecrest(emulator.url, authorization=cred)
    try:
        with pytest.raises(SessionExpired) as info:
            await client.systems()
    finally:
        await client.close_session()
    assert token not in str(info.value)
