"""One pyfirecrest client per (loop, URL, identity), with timeouts and bounded retries."""

from __future__ import annotations

import httpx
import pytest
from firecrest.FirecrestException import UnexpectedStatusException

from firecrestspawner import client as fc
from firecrestspawner.retry import RetryAfterGate


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


def test_retry_after_gate_honours_and_caps_retry_after():
    now = [100.0]
    gate = RetryAfterGate(cap=5, clock=lambda: now[0])
    assert gate.note(_error(429, {"Retry-After": "2"})) == 2.0
    assert gate.remaining() == 2.0
    assert gate.note(_error(429, {"Retry-After": "100"})) == 5.0  # capped
    assert gate.remaining() == 5.0
    assert gate.note(_error(503)) is None  # no Retry-After: the gate is unchanged
    now[0] += 4
    assert gate.remaining() == 1.0
    now[0] += 2
    assert gate.remaining() == 0.0


async def test_each_client_has_a_gate_capped_by_its_settings():
    client = fc.get_client(
        "http://f7t-hook", "sa:x", Auth("t"), fc.ClientSettings(max_retry_after=5)
    )
    assert client.gate.note(_error(429, {"Retry-After": "100"})) == 5.0
    await fc.close_all()


def _error_with(status, message):
    request = httpx.Request("GET", "http://f7t/x")
    response = httpx.Response(status, json={"message": message}, request=request)
    return UnexpectedStatusException([response], 200)


SCANCEL_DENIED = (
    "Unexpected Slurm command response. exit_status:1 std_err:scancel: Terminating job 43\n"
    "scancel: error: Kill job error on job id 43: Access/permission denied\n"
)
SCANCEL_DONE = (
    "Unexpected Slurm command response. exit_status:0 std_err:scancel: Terminating job 5\n"
    "scancel: error: Kill job error on job id 5: Job/step already completing or completed"
)
SBATCH_PARTITION = (
    "Unexpected Slurm command response. exit_status:1 std_err:"
    "sbatch: error: invalid partition specified: nosuch\n"
    "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
)


@pytest.mark.parametrize(
    ("message", "lines"),
    [
        pytest.param(
            SCANCEL_DENIED,
            [
                "scancel: error: Kill job error on job id 43: Access/permission denied",
                "scancel: Terminating job 43",
                "Unexpected Slurm command response. exit_status:1",
            ],
            id="scancel-verbose",
        ),
        pytest.param(
            SCANCEL_DONE,
            [
                (
                    "scancel: error: Kill job error on job id 5: "
                    "Job/step already completing or completed"
                ),
                "scancel: Terminating job 5",
                "Unexpected Slurm command response. exit_status:0",
            ],
            id="scancel-exit-0",
        ),
        pytest.param(
            SBATCH_PARTITION,
            [
                "sbatch: error: invalid partition specified: nosuch",
                "sbatch: error: Batch job submission failed: Invalid partition name specified",
                "Unexpected Slurm command response. exit_status:1",
            ],
            id="sbatch-two-errors",
        ),
        pytest.param(
            "line one\nline two with the Error\n\nline three",
            ["line two with the Error", "line one", "line three"],
            id="error-line-first",
        ),
        pytest.param("Job not found.", ["Job not found."], id="one-line"),
    ],
)
def test_error_message_keeps_every_line_informative_first(message, lines):
    assert fc.error_message(_error_with(500, message)).split("\n") == lines


def test_error_message_is_redacted_on_every_line_and_bounded():
    secret = "token=abcdefghijkl123"
    text = "scancel: Terminating job 1\n" + "x" * 2000 + f"\nscancel: error: {secret}"
    message = fc.error_message(_error_with(500, text))
    assert message.startswith("scancel: error: token=")
    assert "abcdefghijkl123" not in message
    assert len(message) == fc.MAX_ERROR_CHARS
    assert message.endswith("\u2026")


@pytest.mark.parametrize(
    ("status", "message", "job_gone", "system_missing"),
    [
        pytest.param(404, "Job not found.", True, False, id="job-get"),
        pytest.param(404, "Job not found", True, False, id="job-delete-rest"),
        pytest.param(404, "System not found", False, True, id="system"),
        pytest.param(404, "Not Found", False, False, id="wrong-url"),
        pytest.param(500, "Job not found.", False, False, id="not-a-404"),
    ],
)
def test_only_job_not_found_means_gone(status, message, job_gone, system_missing):
    exc = _error_with(status, message)
    assert fc.is_job_not_found(exc) is job_gone
    assert fc.is_system_not_found(exc) is system_missing


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        pytest.param(500, SBATCH_PARTITION, True, id="invalid-partition"),
        pytest.param(
            500,
            "Unexpected Slurm command response. exit_status:1 std_err:"
            "sbatch: error: Batch job submission failed: "
            "Invalid account or account/partition combination specified\n",
            True,
            id="invalid-account",
        ),
        pytest.param(
            500,
            "Unexpected Slurm command response. exit_status:1 std_err:"
            "sbatch: error: This does not look like a batch script.  The first\n"
            "sbatch: error: line must start with #! followed by the path to an interpreter.\n",
            True,
            id="not-a-batch-script",
        ),
        pytest.param(
            500,
            "Unexpected Slurm command response. exit_status:255 std_err:"
            "sbatch: unrecognized option '--nosuch=1'\n"
            'Try "sbatch --help" for more information\n',
            True,
            id="unrecognized-option",
        ),
        pytest.param(
            500,
            "Unexpected Slurm command response. exit_status:0 std_err:sbatch: error: x",
            False,
            id="exit-0",
        ),
        pytest.param(
            500,
            "Unexpected Slurm command response. exit_status:124 std_err:sbatch: error: x",
            False,
            id="timed-out",
        ),
        pytest.param(500, "Error executing Slurm command.", False, id="other-500"),
        pytest.param(500, SCANCEL_DENIED, False, id="not-sbatch"),
        pytest.param(408, "Command execution timeout limit exceeded.", False, id="408"),
        pytest.param(400, SBATCH_PARTITION, False, id="not-a-500"),
        pytest.param(
            403,
            "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
            "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy",
            True,
            id="403-qos-limit",
        ),
        pytest.param(403, "Not authenticated", False, id="403-no-token"),
        pytest.param(401, "Access token expired", False, id="401"),
    ],
)
def test_sbatch_refusal(status, message, refused):
    assert (fc.sbatch_refusal(_error_with(status, message)) is not None) is refused


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        pytest.param(401, "Token's public key not found.", True, id="401-key"),
        pytest.param(401, "Access token expires too soon (less than 30s remaining).", True,
                     id="401-ttl"),
        pytest.param(403, "Not authenticated", True, id="403-old-fastapi"),
        pytest.param(403, "Remote process failed ... Permission denied", False, id="403-file"),
        pytest.param(403, "Job violates accounting/QOS policy", False, id="403-qos"),
        pytest.param(404, "Job not found.", False, id="404"),
    ],
)  # fmt: skip
def test_auth_refusal(status, message, refused):
    assert fc.is_auth_refused(_error_with(status, message)) is refused


def test_correlation_id_is_a_uuid5_of_the_job_name():
    import uuid

    name = "fcs.jupyterhub.alice..0123abcd"
    cid = fc.correlation_id_for(name)
    assert uuid.UUID(cid).version == 5
    assert cid == fc.correlation_id_for(name)
    assert cid != fc.correlation_id_for(name + "x")
    assert cid == str(uuid.uuid5(fc.CORRELATION_NAMESPACE, name))


@pytest.mark.parametrize(
    ("text", "version"),
    [
        pytest.param("2.5.6", "2.5.6", id="release"),
        pytest.param(" 2.6.0 ", "2.6.0", id="spaces"),
        pytest.param("2", None, id="major-only"),
        pytest.param("2.5", None, id="not-full"),
        pytest.param("2.x.x", None, id="dev-build"),
        pytest.param("dev", None, id="word"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_release_version(text, version):
    got = fc.release_version(text)
    assert (str(got) if got is not None else None) == version


@pytest.mark.parametrize("header", ["2", "2.5", "2.x.x", "dev", ""])
async def test_response_header_never_pins_a_non_release_version(header):
    """pyfirecrest re-reads F7T-AppVersion on every response; "2" would pin API 2."""
    from packaging.version import Version

    client = fc.get_client("http://f7t-version", "sa:v", Auth("t"), fc.ClientSettings())
    try:
        raw = client.raw
        default = raw._api_version
        assert default >= Version("2.6.0")

        def seen(value):
            raw._update_api_version_from_response(
                httpx.Response(200, headers={"F7T-AppVersion": value})
            )

        seen(header)
        assert raw._api_version == default
        seen("2.5.6")  # a release is taken
        assert raw._api_version == Version("2.5.6")
        seen(header)  # and kept
        assert raw._api_version == Version("2.5.6")
    finally:
        await fc.close_all()


@pytest.mark.parametrize(
    ("configured", "pinned"),
    [
        pytest.param("2.5.6", "2.5.6", id="release"),
        pytest.param("2", None, id="major-only"),
        pytest.param("2.x.x", None, id="dev-build"),
    ],
)
async def test_configured_api_version_pins_only_a_release(configured, pinned):
    from packaging.version import Version

    settings = fc.ClientSettings(api_version=configured)
    client = fc.get_client("http://f7t-configured", "sa:c", Auth("t"), settings)
    try:
        got = await client.ensure_version()  # configured: no request is made
        assert (str(got) if got is not None else None) == pinned
        assert client.raw._api_version_explicit is (pinned is not None)
        assert client.raw._api_version >= Version(pinned or "2.6.0")
    finally:
        await fc.close_all()
