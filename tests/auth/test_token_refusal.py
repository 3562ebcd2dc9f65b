"""A 401 from FirecREST: the refused token is forgotten and the request repeated once.

Against the emulator, whose FirecREST side verifies the signed access tokens
like FirecREST 2.5.6. :func:`rotate_signing_key` makes its identity provider
sign with a new key that its FirecREST side trusts instead of the old one, as
after a key rotation at the site: every cached token is then refused (401
"Token's public key not found."). The credentials are the real ones
(refresh-token grant, client credentials) against the emulator's IdP.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from joserfc.jwk import KeySet

from firecrestspawner import auth
from firecrestspawner import client as fc
from firecrestspawner.auth import AuthError, AuthorizationCodeFlowAuth
from firecrestspawner.emulator.idp import signing_key
from firecrestspawner.errors import user_error

pytestmark = pytest.mark.timeout(120)

SETTINGS = fc.ClientSettings(read_attempts=2, backoff_initial=0.05, backoff_jitter=0.05)
_users = itertools.count()


@pytest.fixture(autouse=True)
async def _fresh():
    auth.clear_caches()
    yield
    auth.clear_caches()
    await fc.close_all()


@pytest.fixture
async def no_faults(emulator):
    yield
    await asyncio.to_thread(emulator.admin.reset_faults)


def rotate_signing_key(emulator) -> None:
    """The IdP signs with a new key; FirecREST trusts only the new one."""
    emu = emulator.emulator
    key = signing_key(None)
    emu.idp.key = key
    emu.verifier.key_set = KeySet([key])


def refused_requests(emulator, route: str) -> int:
    return sum(
        1
        for r in emulator.admin.requests()
        if r["status"] == 401 and r["route"] == route and r["method"] == "GET"
    )


def user_credential(emulator, name: str, **kw) -> AuthorizationCodeFlowAuth:
    return AuthorizationCodeFlowAuth(
        emulator.client_id,
        emulator.client_secret,
        emulator.issue_refresh_token(name),
        emulator.token_url,
        **kw,
    )


def user_client(emulator, cred) -> fc.FirecrestClient:
    return fc.get_client(emulator.url, f"user:{next(_users)}", cred, SETTINGS)


JOBS = "/compute/{system}/jobs"


async def test_user_token_refused_after_key_rotation_is_replaced_once(emulator):
    cred = user_credential(emulator, "rot-alice")
    client = user_client(emulator, cred)
    await client.jobs(emulator.system)
    assert cred.token_requests == 1
    emulator.admin.clear_requests()

    rotate_signing_key(emulator)
    assert await client.jobs(emulator.system) == []

    # The fault fired: FirecREST refused the cached token once...
    assert refused_requests(emulator, JOBS) == 1
    # ...which was forgotten, a new one fetched and the request repeated once.
    assert cred.token_requests == 2
    assert client.token_retries == 1
    await client.jobs(emulator.system)  # the new token is kept
    assert (cred.token_requests, client.token_retries) == (2, 1)


async def test_service_account_token_refused_after_key_rotation_is_replaced_once(emulator):
    sa = auth.get_service_account_auth(
        emulator.client_id, emulator.client_secret, emulator.token_url
    )
    client = fc.get_client(emulator.url, f"sa:{emulator.client_id}", sa, SETTINGS)
    await client.jobs(emulator.system, allusers=True)
    emulator.admin.clear_requests()

    rotate_signing_key(emulator)
    await client.jobs(emulator.system, allusers=True)
    assert refused_requests(emulator, JOBS) == 1
    assert sa.token_requests == 2
    assert client.token_retries == 1


async def test_a_burst_refused_together_fetches_one_new_token(emulator):
    cred = user_credential(emulator, "rot-burst")
    client = user_client(emulator, cred)
    await client.jobs(emulator.system)
    emulator.admin.clear_requests()

    rotate_signing_key(emulator)
    await asyncio.gather(*(client.jobs(emulator.system) for _ in range(8)))
    refused = refused_requests(emulator, JOBS)
    assert refused >= 1
    assert client.token_retries == refused
    # The refused token is forgotten only while it is still the cached one.
    assert cred.token_requests == 2


@pytest.mark.parametrize("method", ["submit_once"])
async def test_submit_refused_with_an_old_key_is_submitted_once(emulator, tmp_path, method):
    cred = user_credential(emulator, "rot-submit")
    client = user_client(emulator, cred)
    await client.jobs(emulator.system)
    rotate_signing_key(emulator)
    emulator.admin.clear_requests()
    name = f"fcs.rot.submit._.{method.replace('_', '')}"
    job_id = await getattr(client, method)(
        emulator.system,
        job_name=name,
        workdir=str(tmp_path),
        script=f"#!/bin/bash\n#SBATCH --job-name={name}\nsleep 1\n",
        env={},
    )
    posts = [
        r["status"]
        for r in emulator.admin.requests()
        if r["method"] == "POST" and r["route"] == JOBS
    ]
    assert posts == [401, 201]
    assert [j["jobId"] for j in await client.jobs_named(emulator.system, name)] == [job_id]


async def test_a_fresh_token_refused_too_is_a_firecrest_auth_failure(emulator, no_faults):
    cred = user_credential(emulator, "rot-never")
    client = user_client(emulator, cred)
    await asyncio.to_thread(
        emulator.admin.set_faults,
        rules=[{"route": f"GET {JOBS}", "status": 401, "message": "Token's public key not found."}],
    )
    with pytest.raises(fc.FirecrestAuthFailed, match="also a freshly issued one") as info:
        await client.jobs(emulator.system)
    (rule,) = (await asyncio.to_thread(emulator.admin.faults))["stats"]
    assert rule["fired"] == 2  # the request and its one repetition, no more
    assert cred.token_requests == 2
    error = info.value
    assert error.spawn_reason == "firecrest-auth"
    assert fc.http_status(error) == 401
    assert not fc.is_transient(error)
    assert "public key not found" in error.user_message
    assert "access token" in error.user_message


async def test_a_credential_that_cannot_renew_is_not_asked_twice(emulator, no_faults):
    class Fixed:
        def __init__(self, token: str) -> None:
            self.token = token

        async def auth_headers(self) -> dict[str, str]:
            return {"Authorization": f"Bearer {self.token}"}

    token = await asyncio.to_thread(emulator.issue_access_token, "rot-fixed")
    client = fc.get_client(emulator.url, "user:fixed", Fixed(token), SETTINGS)
    rotate_signing_key(emulator)
    emulator.admin.clear_requests()
    with pytest.raises(fc.FirecrestAuthFailed, match="cannot issue another one"):
        await client.jobs(emulator.system)
    assert refused_requests(emulator, JOBS) == 1
    assert client.token_retries == 0


# ------------------------------------------------------------ the true cause


class IdpOutage(httpx.AsyncBaseTransport):
    """The way to the emulator's identity provider, which can be switched off (503)."""

    def __init__(self) -> None:
        self.down = False
        self.refused = 0
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            return httpx.Response(503, json={"error": "temporarily_unavailable"})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def fallback(exc: BaseException):
    """What the spawner reports for a failed token upload that names no cause."""
    return user_error(
        exc,
        f"The server cannot start: the access file for the job could not be written ({exc}).",
        reason="token-file",
        status_code=500,
    )


async def test_identity_provider_down_during_the_upload_is_named(emulator, tmp_path):
    outage = IdpOutage()
    cred = user_credential(
        emulator, "idp-down", transport=outage, retry_attempts=2, retry_wait_initial=0.01
    )
    client = user_client(emulator, cred)
    outage.down = True
    with pytest.raises(AuthError) as info:
        await client.write_private_file(emulator.system, str(tmp_path / "d"), "x.token", "t")
    assert outage.refused == 2  # the fault fired, on every try of the grant
    assert not (tmp_path / "d").exists()
    error = fallback(info.value)
    assert error.reason == "identity-provider"
    assert "identity provider" in error.jupyterhub_message
    assert "access file" not in error.jupyterhub_message


async def test_firecrest_refusing_the_key_during_the_upload_is_named(emulator, tmp_path, no_faults):
    cred = user_credential(emulator, "key-refused")
    client = user_client(emulator, cred)
    await asyncio.to_thread(
        emulator.admin.set_faults,
        rules=[{"route": "*/ops/*", "status": 401, "message": "Token's public key not found."}],
    )
    with pytest.raises(fc.FirecrestAuthFailed) as info:
        await client.write_private_file(emulator.system, str(tmp_path / "d"), "x.token", "t")
    error = fallback(info.value)
    assert error.reason == "firecrest-auth"
    assert "FirecREST did not accept" in error.jupyterhub_message


async def test_a_refused_directory_is_a_file_access_failure(emulator, tmp_path, no_faults):
    cred = user_credential(emulator, "perm-denied")
    client = user_client(emulator, cred)
    target = tmp_path / "locked"
    denied = (
        "Remote process failed with exit status:1 and error message:"
        f"mkdir: cannot create directory '{target}': Permission denied"
    )
    await asyncio.to_thread(
        emulator.admin.set_faults,
        rules=[{"route": "POST */ops/mkdir", "status": 403, "message": denied}],
    )
    with pytest.raises(fc.FileAccessFailed) as info:
        await client.write_private_file(emulator.system, str(target), "x.token", "t")
    assert info.value.operation == "mkdir"
    error = fallback(info.value)
    assert error.reason == "token-file"
    assert "Permission denied" in error.jupyterhub_message
    assert str(target) in error.jupyterhub_message


def test_each_cause_has_its_own_reason():
    """The reasons a spawn error can carry for the four causes, all distinct."""
    answer = httpx.Response(
        401, json={"message": "m"}, request=httpx.Request("GET", "http://f7t/x")
    )
    from firecrest.FirecrestException import UnexpectedStatusException

    refused = UnexpectedStatusException([answer], 200)
    reasons = {
        "identity provider": AuthError("down").spawn_reason,
        "firecrest auth": fc.FirecrestAuthFailed("http://f7t", refused).spawn_reason,
        "scheduler": fc.SubmitRefused("j", refused).spawn_reason,
        "file access": fc.FileAccessFailed("upload", "/p", refused).spawn_reason,
        "session": auth.SessionExpired().spawn_reason,
    }
    assert reasons == {
        "identity provider": "identity-provider",
        "firecrest auth": "firecrest-auth",
        "scheduler": "submit-refused",
        "file access": "token-file",
        "session": "session_expired",
    }


class RateLimitedIdp(httpx.AsyncBaseTransport):
    """The first ``limited`` token requests answer 429 with a Retry-After."""

    def __init__(self, limited: int, retry_after: str) -> None:
        self.limited = limited
        self.retry_after = retry_after
        self.statuses: list[int] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if len(self.statuses) < self.limited:
            self.statuses.append(429)
            return httpx.Response(429, headers={"Retry-After": self.retry_after})
        response = await self._inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_the_token_endpoint_retry_after_is_honoured(emulator):
    idp = RateLimitedIdp(limited=1, retry_after="0.05")
    cred = user_credential(emulator, "idp-429", transport=idp, retry_attempts=2)
    client = user_client(emulator, cred)
    await client.jobs(emulator.system)
    assert idp.statuses == [429, 200]


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        pytest.param(auth._RetryableStatus(429, 2.0), 2.0, id="retry-after"),
        pytest.param(auth._RetryableStatus(503, 3600.0), auth.MAX_IDP_RETRY_AFTER, id="capped"),
        pytest.param(auth._RetryableStatus(503), True, id="backoff"),
        pytest.param(httpx.ConnectError("down"), True, id="transport"),
        pytest.param(ValueError("x"), False, id="other"),
    ],
)
def test_token_endpoint_retry_decision(exc, decision):
    assert auth._is_retryable(exc) == decision


async def test_firecrest_refusing_a_user_token_is_an_auth_error(emulator, no_faults):
    """So that stop() can act through the service account, as for an expired session."""
    cred = user_credential(emulator, "rot-auth-error")
    client = user_client(emulator, cred)
    await asyncio.to_thread(
        emulator.admin.set_faults, rules=[{"route": f"GET {JOBS}", "status": 401}]
    )
    with pytest.raises(AuthError) as info:
        await client.jobs(emulator.system)
    assert isinstance(info.value, fc.FirecrestAuthFailed)
    assert info.value.spawn_reason == "firecrest-auth"
