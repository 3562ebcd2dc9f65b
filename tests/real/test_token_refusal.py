"""A token the real FirecREST 2.5.6 refuses is replaced once, for users and the service account.

FirecREST refuses an access token with less than 30 s left (401 "Access token
expires too soon"). A credential told to accept such a token (``min_token_validity``
below 30 s, as a misconfigured site would) sends it; the client must forget it,
fetch a new one from the identity provider and repeat the request once.
"""

from __future__ import annotations

import asyncio

import pytest

from firecrestspawner import auth
from firecrestspawner import client as fc
from tests.real.conftest import SETTINGS

pytestmark = pytest.mark.real_firecrest

ALICE = "fsp-alice"


@pytest.fixture(autouse=True)
async def _fresh():
    auth.clear_caches()
    yield
    auth.clear_caches()
    await fc.close_all()


async def _refused_then_replaced(
    real_firecrest, cred, identity: str, username: str, *, allusers: bool
) -> None:
    nearly_expired = await asyncio.to_thread(
        real_firecrest.idp.issue_access_token, username, lifetime=20
    )
    cred.set_access_token(nearly_expired)
    client = fc.get_client(real_firecrest.url, identity, cred, SETTINGS)
    jobs = await client.jobs(real_firecrest.system, allusers=allusers)
    assert isinstance(jobs, list)
    # The fault fired (FirecREST refused the seeded token), the token was
    # replaced by one grant and the request repeated once.
    assert client.token_retries == 1
    assert cred.token_requests == 1
    assert cred._access_token != nearly_expired


async def test_a_user_token_refused_by_firecrest_is_replaced_once(real_firecrest):
    cred = auth.AuthorizationCodeFlowAuth(
        real_firecrest.sa_client_id,  # the hub's client at the identity provider
        real_firecrest.sa_client_secret,
        await asyncio.to_thread(real_firecrest.idp.issue_refresh_token, ALICE),
        real_firecrest.token_url,
        min_token_validity=1,
    )
    await _refused_then_replaced(real_firecrest, cred, f"user:{ALICE}", ALICE, allusers=False)


async def test_a_service_account_token_refused_by_firecrest_is_replaced_once(real_firecrest):
    sa_id = real_firecrest.sa_client_id
    sa = auth.ServiceAccountAuth(
        sa_id, real_firecrest.sa_client_secret, real_firecrest.token_url, min_token_validity=1
    )
    await _refused_then_replaced(real_firecrest, sa, f"sa:{sa_id}", sa_id, allusers=True)
