"""What FirecREST's answers mean: error classes and their classification.

Split from :mod:`firecrestspawner.client` (which re-exports every name here).
Each failure a user may read is a :class:`~firecrestspawner.errors.SpawnFailure`
naming its cause in ``spawn_reason``: FirecREST refused the credential
(:class:`FirecrestAuthFailed`, ``firecrest-auth``), the scheduler refused the
job (:class:`SubmitRefused`, ``submit-refused``), a file could not be written
(:class:`FileAccessFailed`, ``token-file``), the system is unknown
(:class:`SystemNotFound`, ``configuration``). The identity provider's
failures are :class:`firecrestspawner.auth.AuthError` (``identity-provider``).
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
import uuid

import httpx
from firecrest.FirecrestException import FirecrestException
from packaging.version import InvalidVersion, Version

from .errors import AuthError, SpawnFailure
from .redact import redact

#: Statuses after which a read may be repeated.
TRANSIENT_STATUSES = frozenset({408, 424, 429, 500, 502, 503, 504})
#: Statuses that prove the server did not act on the request.
NOT_PROCESSED_STATUSES = frozenset({429, 502, 503})
#: Longest error text kept from FirecREST (whole multi-line messages otherwise).
MAX_ERROR_CHARS = 1000
#: Namespace of the correlation ids derived from job names
#: (``uuid5(NAMESPACE_URL, "urn:firecrestspawner:correlation-id")``).
CORRELATION_NAMESPACE = uuid.UUID("8e355920-ceb4-5d51-9cf2-9563ca979ab1")

_RELEASE_RE = re.compile(r"\d+\.\d+\.\d+")
#: FirecREST's wrapper around a scheduler command's failure.
_UNEXPECTED_RE = re.compile(
    r"Unexpected Slurm command response\.\s*exit_status:\s*(-?\d+)\s*std_err:", re.IGNORECASE
)
#: sbatch's own words when it refuses a job (it then exits non-zero, no job).
_SBATCH_REFUSAL_RE = re.compile(
    r"(?im)^\s*sbatch:\s*(?:error:|fatal:|unrecognized option|invalid option)"
    r"|Batch job submission failed"
)
#: Exit statuses of a command that was killed or timed out: sbatch may have run.
_KILLED_STATUSES = frozenset({124, 137, 143})
#: Lines that only say what a command is doing (``scancel --verbose``).
_CHATTER_RE = re.compile(
    r"^(?:\w+:\s*)?(?:Terminating (?:job|step)|Signal \d+ to (?:job|step)|Sending signal)\b",
    re.IGNORECASE,
)


class CancelNotAccepted(Exception):
    """A cancel answered 404/500: the job ended already, or the scheduler refused.

    Not retried; the caller confirms with a GET which one it was.
    """

    def __init__(self, cause: BaseException):
        super().__init__(describe(cause))
        self.cause = cause
        self.message = error_message(cause)


class SystemNotFound(SpawnFailure):
    """FirecREST does not know the system (404 "System not found").

    A configuration error (the spawner's ``req_host`` or a profile's system),
    never evidence that a job ended.
    """

    spawn_reason = "configuration"

    def __init__(self, system: str, url: str, cause: BaseException | None = None):
        super().__init__(
            f"FirecREST at {url} has no system named {system!r} "
            "(check req_host or the profile's system)",
            user_message=f"The server cannot start: the cluster {system!r} is not known to "
            "FirecREST. Please contact the administrators.",
        )
        self.system = system
        self.url = url
        self.cause = cause


class SubmitRefused(SpawnFailure):
    """The scheduler refused the job (invalid partition, option, account, limit...).

    Definite: no job exists, so the submit is neither repeated nor looked up.
    ``reason`` is the scheduler's own text, redacted, informative line first
    (the spawn error's label is ``spawn_reason``, ``submit-refused``).
    """

    spawn_reason = "submit-refused"
    status_code = 400

    def __init__(self, job_name: str, cause: BaseException):
        self.job_name = job_name
        self.cause = cause
        self.reason = error_message(cause)
        super().__init__(
            f"sbatch refused job {job_name}: {self.reason}",
            user_message=f"The batch job was refused by the scheduler:\n{self.reason}",
        )


class FirecrestAuthFailed(AuthError):
    """FirecREST refused the access token (401, or 403 "Not authenticated").

    Raised after one retry with a fresh token: the identity provider issues
    tokens FirecREST does not accept (a signing key FirecREST does not know, a
    clock or audience mismatch), which only the site can fix. ``cause`` is
    FirecREST's answer; :func:`http_status` and :func:`error_message` read it.
    An :class:`~firecrestspawner.auth.AuthError` (the credential did not
    work), so a stop may fall back to the service account.
    """

    spawn_reason = "firecrest-auth"
    status_code = 503

    def __init__(self, url: str, cause: BaseException, *, identity: str = "", retried: bool = True):
        self.url = url
        self.cause = cause
        self.identity = identity
        detail = error_message(cause)
        who = f" of {identity}" if identity else ""
        again = (
            ", also a freshly issued one"
            if retried
            else " (the credential cannot issue another one)"
        )
        super().__init__(
            f"FirecREST at {url} refused the access token{who} "
            f"(HTTP {http_status(cause)}: {detail}){again}",
            user_message="The server cannot start: FirecREST did not accept the login's "
            f"access token ({detail}). Please try again later or contact the administrators.",
        )


class FileAccessFailed(SpawnFailure):
    """A file operation was refused (permission, missing or invalid path, size).

    ``operation`` is what was attempted (``mkdir``, ``chmod``, ``upload``),
    ``path`` where; the message is FirecREST's (the command's error).
    """

    spawn_reason = "token-file"

    def __init__(self, operation: str, path: str, cause: BaseException):
        self.operation = operation
        self.path = path
        self.cause = cause
        detail = error_message(cause)
        super().__init__(
            f"{operation} of {path} failed: {describe(cause)}",
            user_message="The server cannot start: the access file for the job could not be "
            f"written in {path} ({detail}).",
        )


class SubmitOutcomeUnknown(Exception):
    """Submit failed ambiguously and the job could not be looked up.

    A job named ``job_name`` may exist; the caller should keep the name so that
    stop() can still find and cancel it.
    """

    def __init__(self, job_name: str, cause: BaseException):
        super().__init__(f"submission of job {job_name} has an unknown outcome: {describe(cause)}")
        self.job_name = job_name
        self.cause = cause


# ----------------------------------------------------------------- errors


def _answer(exc: BaseException) -> BaseException:
    """The answer behind :class:`FirecrestAuthFailed`, which stands for it."""
    if isinstance(exc, FirecrestAuthFailed) and isinstance(exc.cause, FirecrestException):
        return exc.cause
    return exc


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a FirecREST error, None for transport errors."""
    exc = _answer(exc)
    if isinstance(exc, FirecrestException):
        with contextlib.suppress(IndexError, AttributeError):
            return int(exc.responses[-1].status_code)
    return None


def _raw_message(exc: BaseException) -> str:
    """FirecREST's ``message`` as sent (unredacted: never log or show it as is)."""
    exc = _answer(exc)
    if isinstance(exc, FirecrestException):
        with contextlib.suppress(Exception):
            body = exc.responses[-1].json()
            return str(body.get("message") or "")
    return ""


def informative_text(text: str) -> str:
    """Multi-line scheduler output with the line that says what went wrong first.

    ``scancel --verbose`` prints ``scancel: Terminating job N`` before its
    error, and FirecREST prefixes the command's stderr with
    ``Unexpected Slurm command response. exit_status:N std_err:``. Lines
    naming an error come first, then the other lines, then progress chatter
    and FirecREST's prefix; nothing is dropped but blank lines.
    """
    header = ""
    m = _UNEXPECTED_RE.search(text)
    if m:
        header = f"{text[: m.start()]}{m.group(0)}".strip()
        header = header.removesuffix("std_err:").strip()
        text = text[m.end() :]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    chatter = [line for line in lines if line not in errors and _CHATTER_RE.match(line)]
    rest = [line for line in lines if line not in errors and line not in chatter]
    ordered = errors + rest + chatter + ([header] if header else [])
    return "\n".join(ordered)


def error_message(exc: BaseException) -> str:
    """FirecREST's whole ``message`` (or the exception text), redacted and bounded.

    Multi-line: the informative line first (see :func:`informative_text`).
    """
    text = _raw_message(exc) or str(exc) or type(exc).__name__
    text = redact(informative_text(text))
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1].rstrip() + "\u2026"
    return text


def describe(exc: BaseException) -> str:
    status = http_status(exc)
    prefix = f"HTTP {status}" if status is not None else type(exc).__name__
    return f"{prefix}: {error_message(exc)}"


def _message_is(exc: BaseException, status: int, expected: str) -> bool:
    if http_status(exc) != status:
        return False
    return _raw_message(exc).strip().rstrip(".").lower() == expected.lower()


def is_not_found(exc: BaseException) -> bool:
    """Any 404 (a job, a file, a system or a path): see the two checks below."""
    return http_status(exc) == 404


def is_job_not_found(exc: BaseException) -> bool:
    """A 404 "Job not found" (with or without period): the job is gone or not yet listed."""
    return _message_is(exc, 404, "Job not found")


def is_file_missing(exc: BaseException) -> bool:
    """A 404 from a file operation whose command said "No such file or directory"."""
    return http_status(exc) == 404 and "no such file or directory" in _raw_message(exc).lower()


def is_system_not_found(exc: BaseException) -> bool:
    """A 404 "System not found": the system name is wrong (configuration)."""
    return _message_is(exc, 404, "System not found")


#: FirecREST's answers that refuse the credential itself (see firecrest-v2.md §1).
_AUTH_403_MESSAGES = frozenset({"not authenticated", "inactive authentication"})


def is_auth_refused(exc: BaseException) -> bool:
    """FirecREST refused the access token: any 401, or a 403 "Not authenticated".

    Older FastAPI releases answer a missing or unusable header with 403; a 403
    for a file (permission) or a job (a QOS limit) is not about the token.
    """
    status = http_status(exc)
    if status == 401:
        return True
    return status == 403 and _raw_message(exc).strip().rstrip(".").lower() in _AUTH_403_MESSAGES


def bearer_token(exc: BaseException) -> str | None:
    """The access token the refused request carried (to forget exactly that one)."""
    exc = _answer(exc)
    if not isinstance(exc, FirecrestException):
        return None
    with contextlib.suppress(Exception):
        header = exc.responses[-1].request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
    return None


def sbatch_refusal(exc: BaseException) -> str | None:
    """sbatch's error text when FirecREST says sbatch refused the job, else None.

    FirecREST answers a failed ``sbatch`` with 500 ``Unexpected Slurm command
    response. exit_status:N std_err:...``. A non-zero exit with sbatch's own
    error words means no job was created; a killed or timed-out command
    (124, 137, 143) or any other 500 keeps the outcome unknown. A 403 that is
    not about the token is a Slurm QOS or association limit hit at sbatch:
    refused as well.
    """
    if http_status(exc) == 403 and not is_auth_refused(exc):
        return _raw_message(exc) or "Forbidden"
    if http_status(exc) != 500:
        return None
    message = _raw_message(exc)
    m = _UNEXPECTED_RE.search(message)
    if m is None:
        return None
    status = int(m.group(1))
    if status == 0 or status in _KILLED_STATUSES:
        return None
    stderr = message[m.end() :]
    if not _SBATCH_REFUSAL_RE.search(stderr):
        return None
    return stderr


def correlation_id_for(job_name: str) -> str:
    """The ``X-Correlation-ID`` of a job's requests: a UUID derived from its name.

    FirecREST accepts only UUIDs there (anything else: 400, empty body);
    deriving it from the name lets the server's logs be matched to a job.
    """
    return str(uuid.uuid5(CORRELATION_NAMESPACE, job_name))


def release_version(text: str | None) -> Version | None:
    """The version in ``F7T-AppVersion`` when it is a release ``X.Y.Z``, else None.

    Builds from FirecREST's main branch answer ``2.x.x`` (which pyfirecrest's
    ``server_version()`` turns into ``2``); ``2``, ``2.5``, ``dev`` or an empty
    header say nothing about which features exist and must never pin an old API.
    """
    text = (text or "").strip()
    if not _RELEASE_RE.fullmatch(text):
        return None
    try:
        return Version(text)
    except InvalidVersion:  # pragma: no cover - the pattern is a valid version
        return None


def is_transient(exc: BaseException) -> bool:
    """True for errors worth repeating an idempotent request for."""
    if isinstance(exc, httpx.TransportError):  # timeouts, resets, dropped connections
        return True
    return http_status(exc) in TRANSIENT_STATUSES


def is_unprocessed(exc: BaseException) -> bool:
    """True when the request provably never reached FirecREST's backend."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return True
    return http_status(exc) in NOT_PROCESSED_STATUSES


def retry_after(exc: BaseException) -> float | None:
    """Seconds from ``Retry-After`` (or ``RateLimit-Reset``) of a 429, if any."""
    if not isinstance(exc, FirecrestException) or http_status(exc) != 429:
        return None
    headers = exc.responses[-1].headers
    value = headers.get("Retry-After") or headers.get("RateLimit-Reset")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


__all__ = [
    "CORRELATION_NAMESPACE",
    "MAX_ERROR_CHARS",
    "NOT_PROCESSED_STATUSES",
    "TRANSIENT_STATUSES",
    "CancelNotAccepted",
    "FileAccessFailed",
    "FirecrestAuthFailed",
    "SubmitOutcomeUnknown",
    "SubmitRefused",
    "SystemNotFound",
    "bearer_token",
    "correlation_id_for",
    "describe",
    "error_message",
    "http_status",
    "informative_text",
    "is_auth_refused",
    "is_file_missing",
    "is_job_not_found",
    "is_not_found",
    "is_system_not_found",
    "is_transient",
    "is_unprocessed",
    "release_version",
    "retry_after",
    "sbatch_refusal",
]
