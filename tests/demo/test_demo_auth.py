"""DemoAuthenticator: any valid user name logs in with real tokens from the identity provider."""

from __future__ import annotations

import httpx
import pytest

from firecrestspawner.demo_auth import DemoAuthenticator
from firecrestspawner.emulator.config import EmulatorConfig, IdpConfig
from firecrestspawner.emulator.testing import running_emulator


def authenticator(emu, **overrides) -> DemoAuthenticator:
    settings = {
        "token_url": emu.token_url,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        **overrides,
    }
    return DemoAuthenticator(**settings)


async def test_login_stores_a_working_refresh_token(emulator):
    auth = authenticator(emulator)
    assert auth.enable_auth_state
    result = await auth.authenticate(None, {"username": "ada", "password": "anything"})
    assert result is not None
    assert result["name"] == "ada"
    state = result["auth_state"]
    assert state["expires_at"] > 0
    # The refresh token is real: the IdP grants a new access token for it.
    r = httpx.post(
        emulator.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": state["refresh_token"],
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert r.status_code == 200
    # ... and FirecREST accepts the access token from the login.
    r = httpx.get(
        f"{emulator.url}/status/systems",
        headers={"Authorization": f"Bearer {state['access_token']}"},
    )
    assert r.status_code == 200


@pytest.mark.parametrize("name", ["", "Root Admin", "a;b", "x" * 40, "1abc"])
async def test_invalid_user_names_are_refused_without_asking_the_idp(emulator, name):
    before = emulator.admin.counters()["idp_grants"].get("password", 0)
    result = await authenticator(emulator).authenticate(None, {"username": name, "password": ""})
    assert result is None
    assert emulator.admin.counters()["idp_grants"].get("password", 0) == before


async def test_refused_by_the_idp_means_no_login():
    config = EmulatorConfig(idp=IdpConfig(dev_mode=False, users={"ada": "right"}))
    with running_emulator(config) as emu:
        auth = authenticator(emu)
        assert await auth.authenticate(None, {"username": "ada", "password": "wrong"}) is None
        assert await auth.authenticate(None, {"username": "ada", "password": "right"}) is not None


async def test_unreachable_idp_means_no_login(emulator):
    auth = authenticator(emulator, token_url="http://127.0.0.1:9/idp/token", request_timeout=2.0)
    assert await auth.authenticate(None, {"username": "ada", "password": "x"}) is None
