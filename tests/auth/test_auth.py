"""Credentials against oauth2-mock-server, a third-party OAuth2 server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import pytest
from firecrest.v2 import AsyncFirecrest

from firecrestspawner import auth
from firecrestspawner.auth import (
    SESSION_EXPIRED_MESSAGE,
    AuthError,
    AuthorizationCodeFlowAuth,
    ServiceAccountAuth,
    SessionExpired,
    get_service_account_auth,
    user_auth,
)

from .conftest import CLIENT_ID, CLIENT_SECRET


class Clock:
    """Stand-in for the ``time`` module inside ``firecrestspawner.auth``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(auth, "time", c)
    return c


def make_cred(idp, token="rt-alice-0001", **kwargs) -> AuthorizationCodeFlowAuth:  # noqa: S107
    """A credential whose refresh token the IdP accepts."""
    idp.add_refresh_token(token)
    return AuthorizationCodeFlowAuth(CLIENT_ID, CLIENT_SECRET, token, idp.token_url, **kwargs)


def refreshes(idp) -> list[dict]:
    return [r for r in idp.requests() if r["grant_type"] == "refresh_token"]


def fake_jwt(exp: float) -> str:
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none'})}.{enc({'exp': exp, 'sub': 'alice'})}.sig"


async def test_token_is_cached_while_valid(idp):
    cred = make_cred(idp)
    first = await cred.get_access_token_async()
    headers = await cred.auth_headers()
    assert headers == {"Authorization": f"Bearer {first}"}
    assert await cred.get_access_token_async() == first
    assert len(refreshes(idp)) == 1
    assert refreshes(idp)[0]["refresh_token"] == "rt-alice-0001"


@pytest.mark.parametrize(
    ("elapsed", "expect_refresh"),
    [
        pytest.param(200, False, id="100s-left-cached"),
        pytest.param(245, True, id="55s-left-refreshed"),
        pytest.param(400, True, id="expired-refreshed"),
    ],
)
async def test_refresh_when_under_margin(idp, clock, elapsed, expect_refresh):
    idp.configure(expires_in=300)
    cred = make_cred(idp, min_token_validity=60)
    await cred.get_access_token_async()
    clock.offset = elapsed
    await cred.get_access_token_async()
    assert len(refreshes(idp)) == (2 if expect_refresh else 1)


async def test_jwt_exp_shortens_expires_in(idp):
    idp.configure(expires_in=300, jwt_expires_in=100)
    cred = make_cred(idp)
    await cred.get_access_token_async()
    assert cred.expires_at == pytest.approx(time.time() + 100, abs=5)


async def test_short_lived_token_is_not_refreshed_on_every_call(idp):
    idp.configure(expires_in=40)
    cred = make_cred(idp, min_token_validity=60)
    token = await cred.get_access_token_async()
    assert await cred.get_access_token_async() == token
    assert len(refreshes(idp)) == 1


async def test_concurrent_callers_share_one_refresh(idp):
    cred = make_cred(idp)
    tokens = await asyncio.gather(*(cred.get_access_token_async() for _ in range(25)))
    assert len(set(tokens)) == 1
    assert len(refreshes(idp)) == 1


async def test_rotated_refresh_token_is_used_and_reported(idp, clock):
    idp.configure(rotate=True)
    seen: list[str] = []

    async def on_rotate(new):
        seen.append(new)

    cred = make_cred(idp, on_rotate=on_rotate)
    await cred.get_access_token_async()
    assert len(seen) == 1
    assert cred.refresh_token == seen[0] != "rt-alice-0001"
    # The IdP invalidated the old token: the next refresh only works with the new one.
    clock.offset = 1000
    await cred.get_access_token_async()
    assert [r["refresh_token"] for r in refreshes(idp)] == ["rt-alice-0001", seen[0]]
    assert len(seen) == 2


def test_sync_on_rotate_is_called(idp):
    idp.configure(rotate=True)
    seen = []
    cred = make_cred(idp, on_rotate=seen.append)
    assert cred.get_access_token()
    assert seen == [cred.refresh_token]


async def test_no_rotation_keeps_refresh_token(idp, clock):
    seen = []
    cred = make_cred(idp, on_rotate=seen.append)
    await cred.get_access_token_async()
    clock.offset = 1000
    await cred.get_access_token_async()
    assert cred.refresh_token == "rt-alice-0001"
    assert seen == []


async def test_expired_session_gives_clear_message_without_token(idp, caplog):
    caplog.set_level(logging.DEBUG)
    token = "rt-secret-canary-1234567890"
    cred = AuthorizationCodeFlowAuth(CLIENT_ID, CLIENT_SECRET, token, idp.token_url)
    with pytest.raises(SessionExpired) as info:
        await cred.auth_headers()
    e = info.value
    assert "log in again" in str(e)
    assert e.status_code == 403
    assert e.jupyterhub_message == SESSION_EXPIRED_MESSAGE
    assert "invalid_grant" in e.log_message
    spawn_err = e.spawn_error()
    user_message = getattr(spawn_err, "jupyterhub_message", None) or spawn_err.message
    assert user_message == SESSION_EXPIRED_MESSAGE
    assert spawn_err.status_code == 403
    for text in (str(e), repr(e), e.log_message, repr(e.args), str(spawn_err)):
        assert token not in text
    assert all(token not in r.getMessage() for r in caplog.records)
    assert len(refreshes(idp)) == 1  # a refused token is not retried


def test_expired_session_raises_from_sync_api(idp):
    cred = AuthorizationCodeFlowAuth(CLIENT_ID, CLIENT_SECRET, "rt-unknown-000", idp.token_url)
    with pytest.raises(SessionExpired):
        cred.get_access_token()


async def test_wrong_client_secret_is_not_a_session_problem(idp):
    idp.add_refresh_token("rt-alice-0001")
    cred = AuthorizationCodeFlowAuth(CLIENT_ID, "wrong-secret", "rt-alice-0001", idp.token_url)
    with pytest.raises(AuthError) as info:
        await cred.get_access_token_async()
    assert not isinstance(info.value, SessionExpired)
    assert "invalid_client" in str(info.value)
    assert "wrong-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("failures", "succeeds", "requests"),
    [
        pytest.param(2, True, 3, id="recovers-after-two-503"),
        pytest.param(5, False, 3, id="gives-up-after-three-attempts"),
    ],
)
async def test_5xx_is_retried_a_bounded_number_of_times(idp, failures, succeeds, requests):
    idp.configure(fail_next=failures)
    cred = make_cred(idp, retry_attempts=3, retry_wait_initial=0.01, retry_wait_max=0.05)
    if succeeds:
        assert await cred.get_access_token_async()
    else:
        with pytest.raises(AuthError, match="did not answer after 3 attempts"):
            await cred.get_access_token_async()
    assert len(idp.requests()) == requests


@pytest.fixture
async def silent_server():
    """A TCP server that accepts connections and never answers."""
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/token", connections
    for w in connections:
        w.close()
    server.close()


@pytest.mark.timeout(15)
async def test_unresponsive_idp_is_bounded(silent_server):
    url, connections = silent_server
    cred = AuthorizationCodeFlowAuth(
        CLIENT_ID,
        CLIENT_SECRET,
        "rt-x-00000000",
        url,
        timeout=0.3,
        retry_attempts=2,
        retry_wait_initial=0.01,
    )
    with pytest.raises(AuthError, match="ReadTimeout"):
        await cred.get_access_token_async()
    assert len(connections) == 2


def test_sync_api_returns_none_when_idp_unreachable():
    cred = AuthorizationCodeFlowAuth(
        CLIENT_ID,
        CLIENT_SECRET,
        "rt-x-00000000",
        "http://127.0.0.1:9/token",
        timeout=0.5,
        retry_attempts=2,
        retry_wait_initial=0.01,
    )
    assert cred.get_access_token() is None


def test_documented_positional_constructor(idp):
    idp.add_refresh_token("rt-alice-0001")
    cred = AuthorizationCodeFlowAuth(CLIENT_ID, CLIENT_SECRET, "rt-alice-0001", idp.token_url)
    token = cred.get_access_token()
    assert token
    assert token.count(".") == 2
    cred.refresh_token = "rt-replaced-0002"
    assert cred.refresh_token == "rt-replaced-0002"


async def test_pyfirecrest_uses_auth_headers(idp):
    cred = make_cred(idp)
    client = AsyncFirecrest("http://127.0.0.1:9", authorization=cred)
    try:
        headers = await client._auth_headers()
    finally:
        await client.close_session()
    assert headers == {"Authorization": f"Bearer {await cred.get_access_token_async()}"}


async def test_service_account_is_cached_per_process(idp):
    sa = get_service_account_auth(CLIENT_ID, CLIENT_SECRET, idp.token_url)
    assert isinstance(sa, ServiceAccountAuth)
    assert get_service_account_auth(CLIENT_ID, CLIENT_SECRET, idp.token_url) is sa
    other = get_service_account_auth("other-client", CLIENT_SECRET, idp.token_url)
    assert other is not sa
    token = await sa.get_access_token_async()
    again = await get_service_account_auth(
        CLIENT_ID, CLIENT_SECRET, idp.token_url
    ).get_access_token_async()
    assert again == token
    assert [r["grant_type"] for r in idp.requests()] == ["client_credentials"]


# -- user_auth with a real JupyterHub user and encrypted auth_state ------------------


async def _user_auth(user, idp, **kwargs):
    return await user_auth(
        user,
        token_url=idp.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        min_token_validity=60,
        **kwargs,
    )


async def test_user_auth_writes_rotated_token_back(app, user, auth_state_enabled, idp):
    idp.configure(rotate=True)
    idp.add_refresh_token("rt-login-0001")
    await user.save_auth_state(
        {"refresh_token": "rt-login-0001", "access_token": "opaque", "groups": ["g1"]}
    )
    cred = await _user_auth(user, idp)
    await cred.get_access_token_async()
    state = await user.get_auth_state()
    assert state["refresh_token"] == cred.refresh_token != "rt-login-0001"
    assert state["access_token"] == "opaque"
    assert state["groups"] == ["g1"]
    # A second server of the same user shares the credential and its cache.
    assert await _user_auth(user, idp) is cred
    assert len(refreshes(idp)) == 1


async def test_user_auth_ignores_token_it_already_rotated(app, user, auth_state_enabled, idp):
    idp.configure(rotate=True)
    idp.add_refresh_token("rt-login-0002")
    await user.save_auth_state({"refresh_token": "rt-login-0002"})
    cred = await _user_auth(user, idp)
    await cred.get_access_token_async()
    rotated = cred.refresh_token
    # auth_state read before the write-back landed still holds the old token
    await user.save_auth_state({"refresh_token": "rt-login-0002"})
    assert (await _user_auth(user, idp)).refresh_token == rotated


async def test_user_auth_adopts_token_of_new_login(app, user, auth_state_enabled, idp, clock):
    idp.add_refresh_token("rt-login-0003")
    await user.save_auth_state({"refresh_token": "rt-login-0003"})
    cred = await _user_auth(user, idp)
    await cred.get_access_token_async()
    idp.revoke("rt-login-0003")
    idp.add_refresh_token("rt-login-0004")
    await user.save_auth_state({"refresh_token": "rt-login-0004"})
    assert await _user_auth(user, idp) is cred
    assert cred.refresh_token == "rt-login-0004"
    await cred.get_access_token_async()
    assert refreshes(idp)[-1]["refresh_token"] == "rt-login-0004"


async def test_user_auth_uses_login_access_token(app, user, auth_state_enabled, idp):
    login_token = fake_jwt(time.time() + 300)
    await user.save_auth_state({"refresh_token": "rt-login-0005", "access_token": login_token})
    cred = await _user_auth(user, idp)
    assert await cred.get_access_token_async() == login_token
    assert idp.requests() == []


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(None, id="no-auth-state"),
        pytest.param({"access_token": "x"}, id="no-refresh-token"),
        pytest.param({"refresh_token": ""}, id="empty-refresh-token"),
    ],
)
async def test_user_auth_without_refresh_token_is_expired_session(
    app, user, auth_state_enabled, idp, state
):
    await user.save_auth_state(state)
    with pytest.raises(SessionExpired, match="log in again"):
        await _user_auth(user, idp)


async def test_user_auth_revoked_session(app, user, auth_state_enabled, idp, caplog):
    caplog.set_level(logging.DEBUG)
    await user.save_auth_state({"refresh_token": "rt-revoked-canary-0006"})
    cred = await _user_auth(user, idp)
    with pytest.raises(SessionExpired) as info:
        await cred.auth_headers()
    assert "rt-revoked-canary-0006" not in str(info.value)
    assert all("rt-revoked-canary-0006" not in r.getMessage() for r in caplog.records)


async def test_user_auth_survives_authenticator_rotating_the_token(
    app, user, auth_state_enabled, idp, clock
):
    """OAuthenticator refreshed (and rotated) the token behind our back."""
    idp.configure(rotate=True)
    idp.add_refresh_token("rt-login-0007")
    await user.save_auth_state({"refresh_token": "rt-login-0007"})
    cred = await _user_auth(user, idp)
    await cred.get_access_token_async()
    ours = cred.refresh_token
    # the authenticator's own refresh, with the token it last saw (ours, written back)
    other = AuthorizationCodeFlowAuth(CLIENT_ID, CLIENT_SECRET, ours, idp.token_url)
    await other.get_access_token_async()
    assert other.refresh_token != ours
    await user.save_auth_state({"refresh_token": other.refresh_token})
    # our next refresh is refused with `ours`, then retried with the newer token
    clock.offset = 1000
    await cred.get_access_token_async()
    used = [r["refresh_token"] for r in refreshes(idp)]
    assert used[-2:] == [ours, other.refresh_token]
    assert (await user.get_auth_state())["refresh_token"] == cred.refresh_token


async def test_no_token_in_any_log_record(app, user, auth_state_enabled, idp, clock, caplog):
    """Refresh, rotation, write-back and expiry at DEBUG: no token in any record."""
    caplog.set_level(logging.DEBUG)
    idp.configure(rotate=True)
    idp.add_refresh_token("rt-canary-login-0008")
    await user.save_auth_state({"refresh_token": "rt-canary-login-0008"})
    cred = await _user_auth(user, idp)
    secrets = {"rt-canary-login-0008", await cred.get_access_token_async(), cred.refresh_token}
    clock.offset = 1000
    secrets.add(await cred.get_access_token_async())
    secrets.add(cred.refresh_token)
    idp.revoke(cred.refresh_token)
    clock.offset = 2000
    with pytest.raises(SessionExpired):
        await cred.get_access_token_async()
    assert len(secrets) >= 4  # access tokens minted in the same second are equal
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # httpx and the hub did log
    for secret in secrets:
        assert secret not in logged


async def test_sync_api_in_event_loop_warns(idp, caplog):
    cred = make_cred(idp)
    assert cred.get_access_token()  # works (blocking), but says it should not be used here
    assert any("blocks the running event loop" in r.getMessage() for r in caplog.records)


async def test_clock_skewed_jwt_exp_does_not_cause_a_refresh_storm(idp, clock):
    """The hub's clock runs 10 minutes ahead: the JWT looks expired, expires_in does not."""
    idp.configure(expires_in=300)
    clock.offset = 600
    cred = make_cred(idp)
    token = await cred.get_access_token_async()
    assert await cred.get_access_token_async() == token
    assert len(refreshes(idp)) == 1
