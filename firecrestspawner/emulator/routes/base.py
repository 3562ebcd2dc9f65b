"""What every route shares: JSON answers, and FirecREST's request pipeline.

:class:`FirecrestHandler` does, for each FirecREST request and in the real
server's order: the tracing-header check, authentication, counters, fault
injection, then the route's work; errors become ``ApiResponseError`` bodies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import tornado.web

from ..auth import AuthError
from ..backends.base import TIMEOUT_MESSAGE, Backend, BackendError, identity
from ..faults import Fault

if TYPE_CHECKING:
    from ..app import Emulator

JOB_ID_PATTERN = re.compile(r"^[a-zA-Z0-9]+$")
#: Headers FirecREST's tracing middleware accepts only as UUIDs.
TRACING_HEADERS = ("X-Request-ID", "X-Correlation-ID")
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}

#: Routes whose commands run together: FirecREST reports any failure of theirs as this.
_WRAPPED_COMMAND_ERRORS = frozenset(
    {
        "GET /compute/{system}/jobs",
        "GET /compute/{system}/jobs/{job_id}",
        "GET /compute/{system}/jobs/{job_id}/metadata",
    }
)


class JSONHandler(tornado.web.RequestHandler):
    """A JSON API handler with the emulator at hand (``self.emu``)."""

    @property
    def emu(self) -> Emulator:
        return self.application.settings["emu"]

    def json_body(self) -> Any:
        if not self.request.body:
            return {}
        return json.loads(self.request.body)

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def check_xsrf_cookie(self) -> None:  # an API, no cookies
        return


class FirecrestHandler(JSONHandler):
    """Common FirecREST behaviour: headers, auth, counters, faults, error bodies."""

    route: str = ""
    needs_auth: ClassVar[bool] = True

    user: str | None = None
    fault: Fault | None = None

    def set_default_headers(self) -> None:
        self.set_header("F7T-AppVersion", self.emu.config.app_version)
        self.set_header("F7T-Timestamp", dt.datetime.now(dt.timezone.utc).isoformat())
        rid = self.request.headers.get("X-Request-ID") or str(uuid.uuid4())
        self.set_header("X-Request-ID", rid)
        cid = self.request.headers.get("X-Correlation-ID")
        if cid:
            self.set_header("X-Correlation-ID", cid)

    def error(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "error",
        data: dict[str, Any] | None = None,
        caused_by: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        for k, v in (headers or {}).items():
            self.set_header(k, v)
        if self.user:
            self.set_header("F7T-AuthUsername", self.user)
        self.write_json(
            status,
            {
                "errorType": error_type,
                "message": message,
                "causedBy": caused_by,
                "data": data,
                "user": self.user,
            },
        )

    def validation_error(self, fields: list[dict[str, Any]], detail: str = "") -> None:
        """400 ``errorType: validation``; ``detail`` names the full locations, as
        FirecREST's message (pydantic's own text) does."""
        self.error(
            400,
            f"{len(fields)} validation error(s): " + (detail or json.dumps(fields)),
            error_type="validation",
            data={"fields": fields},
        )

    def _template(self) -> str:
        return f"{self.request.method} {self.route}"

    def _bad_tracing_header(self) -> bool:
        """Refuse a non-UUID tracing header as the real server's outermost middleware does.

        starlette-context answers 400 with an empty body and none of
        FirecREST's headers, before authentication.
        """
        for name in TRACING_HEADERS:
            value = self.request.headers.get(name)
            if value is None:
                continue
            try:
                uuid.UUID(value)
            except ValueError:
                for header in ("F7T-AppVersion", "F7T-Timestamp", *TRACING_HEADERS):
                    self.clear_header(header)
                self.set_status(400)
                self.finish()
                return True
        return False

    async def prepare(self) -> None:
        self.emu.counters.endpoints[self._template()] += 1
        if self._bad_tracing_header():
            return
        if self.needs_auth:
            try:
                self.user = self.emu.require(self.emu.verifier).username(
                    self.request.headers.get("Authorization")
                )
            except AuthError as e:
                self.error(e.status, e.message)
                return
            self.set_header("F7T-AuthUsername", self.user)
            self.emu.counters.users[self.user] += 1
            self.emu.counters.user_endpoints.setdefault(self.user, Counter())[self._template()] += 1
        fault = self.emu.faults.decide(self.request.method or "GET", self.route, self.user)
        if fault is None:
            return
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.effect == "latency":
            return
        if fault.before:
            self.apply_fault(fault)
            return
        self.fault = fault

    def apply_fault(self, fault: Fault) -> None:
        if fault.drops:
            self.drop_connection()
            return
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        self.error(fault.status, fault.message, headers=headers)

    def drop_connection(self) -> None:
        """Close the TCP connection without an answer."""
        self._record(0)
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.close()
        self._finished = True

    def reply(self, status: int, body: Any = None) -> None:
        """The success answer, unless a fault says the response gets lost."""
        if self.fault is not None and not self.fault.before:
            self.apply_fault(self.fault)
            return
        if body is None:
            self.set_status(status)
            self.finish()
        else:
            self.write_json(status, body)

    def on_finish(self) -> None:
        self._record(self.get_status())

    def _record(self, status: int) -> None:
        if getattr(self, "_recorded", False):
            return
        self._recorded = True
        self.emu.counters.statuses[f"{self._template()} {status}"] += 1
        self.emu.requests.append(
            {
                "time": time.time(),
                "method": self.request.method,
                "path": self.request.path,
                "route": self.route,
                "user": self.user,
                "status": status,
                "request_id": self.request.headers.get("X-Request-ID"),
                "correlation_id": self.request.headers.get("X-Correlation-ID"),
                "body": self._logged_body(),
            }
        )

    def _logged_body(self) -> Any:
        """The JSON request body for the request log, with ``env`` values redacted."""
        if self.request.method not in ("POST", "PUT") or not self.request.body:
            return None
        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            return None
        try:
            body = json.loads(self.request.body)
        except ValueError:
            return None
        job = body.get("job") if isinstance(body, dict) else None
        if isinstance(job, dict) and isinstance(job.get("env"), dict):
            job["env"] = dict.fromkeys(job["env"], "<redacted>")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, BackendError):
            self.error(exc.status, exc.message, error_type=exc.error_type)
            return
        if isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            self.error(status_code, exc.log_message or self._reason)
            return
        self.error(status_code, "Internal server error" if status_code >= 500 else self._reason)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BackendError):
            return
        super().log_exception(typ, value, tb)

    # -- helpers ----------------------------------------------------------------
    def backend(self, system: str) -> Backend:
        backend = self.emu.backends.get(system.lower())
        if backend is None:
            raise BackendError(404, "System not found")
        if self.user is not None and not backend.has_ssh_credentials(self.user):
            raise BackendError(500, self._no_credentials_message())
        return backend

    def _no_credentials_message(self) -> str:
        """What FirecREST 2.5.6 answers, per endpoint, for a user it has no SSH key for.

        Measured: reads that run several commands at once wrap the failure;
        cluster listings show the exception's text; submit, cancel and file
        operations show its args, as the exception has no message attribute.
        """
        text = f"No SSH credentials found for user:{self.user}"
        template = self._template()
        if template in _WRAPPED_COMMAND_ERRORS or (
            self.request.method == "GET" and self.request.path.split("/")[-1] == "userinfo"
        ):
            return "Error executing Slurm command."
        if self.request.method == "GET" and self.request.path.startswith("/status/"):
            return text
        return repr((text,))

    def query_bool(self, name: str, default: bool = False) -> bool | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.validation_error(
            [{"location": "query", "name": name, "message": "Input should be a valid boolean"}]
        )
        return None

    def query_int(self, name: str) -> tuple[bool, int | None]:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return True, None
        try:
            return True, int(raw)
        except ValueError:
            self.validation_error(
                [{"location": "query", "name": name, "message": "Input should be a valid integer"}]
            )
            return False, None

    def check_job_id(self, job_id: str) -> bool:
        if JOB_ID_PATTERN.match(job_id):
            return True
        self.validation_error(
            [
                {
                    "location": "path",
                    "name": "job_id",
                    "message": "String should match pattern '^[a-zA-Z0-9]+$'",
                }
            ]
        )
        return False

    async def visible_job(self, system: str, job_id: str) -> Any:
        """The job record, or None after a 400 reply; 404 while it is not yet visible."""
        backend = self.backend(system)
        if not self.check_job_id(job_id):
            return None
        if not job_id.isdigit():
            # Passes the path pattern, but sacct refuses it: the server's 500.
            raise BackendError(500, "Error executing Slurm command.")
        if not self.emu.visible(system.lower(), job_id):
            raise BackendError(404, "Job not found.")
        return await backend.get_job(self.user or "", job_id)

    async def wait_for_stdin(self, backend: Backend) -> None:
        """A command that waits for input that never comes: 408 after ``stdin_wait``."""
        await asyncio.sleep(backend.system.stdin_wait)
        raise BackendError(408, TIMEOUT_MESSAGE)

    def owner(self) -> tuple[int, int] | None:
        ident = identity(self.user or "")
        return (ident.uid, ident.gid) if ident.exists else None


class FirecrestNotFound(FirecrestHandler):
    route = "(unknown)"
    needs_auth = False

    async def prepare(self) -> None:
        self.emu.counters.endpoints[self._template()] += 1
        if not self._bad_tracing_header():
            self.error(404, "Not Found")
