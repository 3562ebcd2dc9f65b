"""The development identity provider and how FirecREST's side checks its tokens."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from firecrestspawner.emulator.config import AuthConfig, EmulatorConfig, IdpConfig
from firecrestspawner.emulator.testing import running_emulator


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_client_credentials(emulator):
    r = httpx.post(
        emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    c = claims(body["access_token"])
    assert c["preferred_username"] == emulator.client_id
    assert c["exp"] - c["iat"] == 300
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    jwks = httpx.get(emulator.jwks_url).json()
    assert header["kid"] == jwks["keys"][0]["kid"]
    # HTTP Basic client authentication works too.
    r = httpx.post(
        emulator.token_url,
        data={"grant_type": "client_credentials"},
        auth=(emulator.client_id, emulator.client_secret),
    )
    assert r.status_code == 200


def test_client_credentials_wrong_secret(emulator):
    r = httpx.post(
        emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": "wrong",
        },
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_refresh_token_rotation_and_revocation(emulator):
    refresh = emulator.issue_refresh_token("alice")
    r = httpx.post(
        emulator.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert r.status_code == 200
    body = r.json()
    assert claims(body["access_token"])["preferred_username"] == "alice"
    rotated = body["refresh_token"]
    assert rotated != refresh
    # The used refresh token is spent.
    r = httpx.post(
        emulator.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    # Revoking the user's tokens ends the session ("session expired" in the hub).
    assert emulator.admin.revoke(username="alice") >= 1
    r = httpx.post(
        emulator.token_url, data={"grant_type": "refresh_token", "refresh_token": rotated}
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_expired_refresh_token(emulator):
    refresh = emulator.admin.issue_refresh_token("bob", lifetime=-1)
    r = httpx.post(
        emulator.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_password_grant_dev_mode(emulator):
    r = httpx.post(
        emulator.token_url,
        data={"grant_type": "password", "username": "carol", "password": "anything"},
    )
    assert r.status_code == 200
    assert claims(r.json()["access_token"])["preferred_username"] == "carol"
    assert r.json()["refresh_token"]


def test_password_grant_with_users_and_no_dev_mode():
    config = EmulatorConfig(idp=IdpConfig(dev_mode=False, users={"dave": "pw"}))
    with running_emulator(config) as emu:
        ok = {"grant_type": "password", "username": "dave", "password": "pw"}
        ok.update(client_id=emu.client_id, client_secret=emu.client_secret)
        assert httpx.post(emu.token_url, data=ok).status_code == 200
        bad = dict(ok, password="nope")
        assert httpx.post(emu.token_url, data=bad).status_code == 401
        stranger = dict(ok, username="eve")
        assert httpx.post(emu.token_url, data=stranger).status_code == 401


def test_unsupported_grant(emulator):
    r = httpx.post(emulator.token_url, data={"grant_type": "implicit"})
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")


def test_grant_counters(emulator):
    emulator.admin.reset_counters()
    httpx.post(
        emulator.token_url, data={"grant_type": "password", "username": "x", "password": "y"}
    )
    httpx.post(emulator.token_url, data={"grant_type": "implicit"})
    grants = emulator.admin.counters()["idp_grants"]
    assert grants == {"password": 1, "implicit error": 1}


def test_configurable_lifetime_and_min_ttl():
    config = EmulatorConfig(
        idp=IdpConfig(access_token_lifetime=20), auth=AuthConfig(min_token_ttl=10)
    )
    with running_emulator(config) as emu:
        r = httpx.post(
            emu.token_url,
            data={"grant_type": "password", "username": "fred", "password": "x"},
        )
        token = r.json()["access_token"]
        assert r.json()["expires_in"] == 20
        r = httpx.get(f"{emu.url}/status/systems", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        short = emu.issue_access_token("fred", lifetime=5)
        r = httpx.get(f"{emu.url}/status/systems", headers={"Authorization": f"Bearer {short}"})
        assert r.status_code == 401
        assert r.json()["message"] == "Access token expires too soon (less than 10s remaining)."


def test_external_jwks():
    """FirecREST side trusts another provider's JWKS, and only that one."""
    with running_emulator() as issuer:
        config = EmulatorConfig(auth=AuthConfig(jwks_url=issuer.jwks_url))
        with running_emulator(config) as emu:
            foreign = issuer.issue_access_token("gina")
            r = httpx.get(
                f"{emu.url}/status/systems", headers={"Authorization": f"Bearer {foreign}"}
            )
            assert r.status_code == 200
            assert r.headers["F7T-AuthUsername"] == "gina"
            own = emu.issue_access_token("gina")
            r = httpx.get(f"{emu.url}/status/systems", headers={"Authorization": f"Bearer {own}"})
            assert r.status_code == 401
            assert r.json()["message"] == "Token's public key not found."


@pytest.mark.parametrize("claim", ["sub", "preferred_username"])
def test_username_claim(claim):
    config = EmulatorConfig(auth=AuthConfig(username_claim=claim))
    with running_emulator(config) as emu:
        token = emu.issue_access_token("hank", claims={"sub": "hank-sub"})
        r = httpx.get(f"{emu.url}/status/systems", headers={"Authorization": f"Bearer {token}"})
        assert r.headers["F7T-AuthUsername"] == ("hank-sub" if claim == "sub" else "hank")


def test_signing_key_file_is_shared_and_survives_restarts(tmp_path):
    """Two emulators given one key file publish one key: FirecREST, which reads
    the JWKS once at its start, accepts tokens from both and after a restart."""
    key_file = tmp_path / "signing-key.json"
    config = EmulatorConfig(idp=IdpConfig(signing_key_file=str(key_file)))
    with running_emulator(config) as first:
        token = first.issue_access_token("fsp-alice")
        first_jwks = httpx.get(first.jwks_url).json()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "d" not in first_jwks["keys"][0], "the JWKS must not publish the private key"
    with running_emulator(config) as second:
        assert httpx.get(second.jwks_url).json() == first_jwks
        # The second emulator's FirecREST side accepts the first one's token.
        r = httpx.get(f"{second.url}/status/systems", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    with running_emulator(EmulatorConfig()) as other:
        assert httpx.get(other.jwks_url).json() != first_jwks
