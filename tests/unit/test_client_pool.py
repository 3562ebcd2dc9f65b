"""One pyfirecrest client per (loop, URL, identity), with timeouts and bounded retries."""

from __future__ import annotations

import httpx
import pytest
from firecrest.FirecrestException import UnexpectedStatusException

from firecrestspawner import client as fc


class Auth:
    def __init__(self, token):
        self.token = token

    async def auth_headers(self):
        return {"Authorization": f"Bearer {self.token}"}


async def test_clients_are_shared_per_identity_and_take_new_credentials():
    settings = fc.ClientSettings(request_timeout=7, connect_timeout=3)
    a = fc.get_client("http://f7t/", "user:alice", Auth("one"), settings)
    b = fc.get_client("http://f7t", "user:alice", Auth("two"), settings)
    c = fc.get_client("http://f7t", "user:bob", Auth("three"), settings)
    assert a is b
    assert a is not c
    assert await a._auth.auth_headers() == {"Authorization": "Bearer two"}
    assert isinstance(a.raw.timeout, httpx.Timeout)
    assert a.raw.timeout.read == 7
    assert a.raw.timeout.connect == 3
    assert a.raw.num_retries_rate_limit == 0  # our retry policy, bounded
    await fc.close_all()
    d = fc.get_client("http://f7t", "user:alice", Auth("four"), settings)
    assert d is not a


def _error(status, headers=None):
    request = httpx.Request("GET", "http://f7t/x")
    response = httpx.Response(
        status, json={"message": f"m{status}"}, headers=headers, request=request
    )
    return UnexpectedStatusException([response], 200)


@pytest.mark.parametrize(
    ("exc", "transient", "unprocessed"),
    [
        pytest.param(_error(500), True, False, id="500"),
        pytest.param(_error(503), True, True, id="503"),
        pytest.param(_error(408), True, False, id="408"),
        pytest.param(_error(429), True, True, id="429"),
        pytest.param(_error(404), False, False, id="404"),
        pytest.param(_error(401), False, False, id="401"),
        pytest.param(httpx.ReadTimeout("t"), True, False, id="read-timeout"),
        pytest.param(httpx.ConnectError("c"), True, True, id="connect"),
        pytest.param(httpx.RemoteProtocolError("dropped"), True, False, id="dropped"),
    ],
)
def test_error_classes(exc, transient, unprocessed):
    assert fc.is_transient(exc) is transient
    assert fc.is_unprocessed(exc) is unprocessed


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "3"}, 3.0, id="seconds"),
        pytest.param({"RateLimit-Reset": "2"}, 2.0, id="ratelimit-reset"),
        pytest.param({}, None, id="none"),
    ],
)
def test_retry_after(headers, expected):
    assert fc.retry_after(_error(429, headers)) == expected


def test_error_message_is_redacted():
    exc = _error(500)
    exc.responses[-1]._content = b'{"message": "bad token=abcdefghijkl123"}'
    assert "abcdefghijkl123" not in fc.error_message(exc)
    assert fc.describe(exc).startswith("HTTP 500")


async def test_retry_hook_honours_and_caps_retry_after():
    settings = fc.ClientSettings(max_retry_after=5)
    client = fc.get_client("http://f7t-hook", "sa:x", Auth("t"), settings)
    assert client._retry_hook(_error(429, {"Retry-After": "2"})) == 2.0
    assert client._retry_hook(_error(429, {"Retry-After": "100"})) == 5.0
    assert client._retry_hook(_error(503)) is True
    assert client._retry_hook(_error(404)) is False
    await fc.close_all()
