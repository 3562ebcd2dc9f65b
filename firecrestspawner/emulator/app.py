"""The emulator's HTTP server: FirecREST v2 routes, the IdP and the admin API.

One :class:`Emulator` holds the state (backends, IdP, faults, counters); the
tornado handlers below are thin. Route templates (``"GET
/compute/{system}/jobs"``) name endpoints in counters and fault rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections import Counter, deque
from typing import Any, ClassVar, TypeVar

import tornado.web
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets

from . import filesystem as fs
from .auth import AuthError, TokenVerifier
from .backends import make_backend
from .backends.base import (
    TIMEOUT_MESSAGE,
    Backend,
    BackendError,
    JobRequest,
    identity,
    slurm_error,
)
from .config import EmulatorConfig, FaultConfig
from .faults import Fault, FaultEngine, FaultRule
from .idp import IdentityProvider, IdpError
from .models import ChmodIn, MkdirIn, PathIn, SubmitIn, validation_detail, validation_fields

log = logging.getLogger("firecrestspawner.emulator")

_T = TypeVar("_T")
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


class Counters:
    """Requests per endpoint, per user and per (user, endpoint); IdP grants."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.endpoints: Counter[str] = Counter()
        self.users: Counter[str] = Counter()
        self.user_endpoints: dict[str, Counter[str]] = {}
        self.statuses: Counter[str] = Counter()
        self.grants: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoints": dict(self.endpoints),
            "users": dict(self.users),
            "user_endpoints": {u: dict(c) for u, c in self.user_endpoints.items()},
            "statuses": dict(self.statuses),
            "idp_grants": dict(self.grants),
            "total": sum(self.endpoints.values()),
        }


class Emulator:
    """The emulator's state and server; start() and stop() on one event loop."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.backends: dict[str, Backend] = {}
        self.faults = FaultEngine(self.config.faults.rules, self.config.faults.seed)
        self.fault_config: FaultConfig = self.config.faults.model_copy(deep=True)
        self.counters = Counters()
        self.requests: deque[dict[str, Any]] = deque(maxlen=self.config.request_log_size)
        self.submitted_at: dict[tuple[str, str], float] = {}
        self.idp: IdentityProvider | None = None
        self.verifier: TokenVerifier | None = None
        self.server: HTTPServer | None = None
        self.port = 0
        self.started = time.time()

    # -- lifecycle ----------------------------------------------------------
    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        sockets = bind_sockets(self.config.port, self.config.host)
        self.port = sockets[0].getsockname()[1]
        self.idp = IdentityProvider(self.config.idp, issuer=f"{self.url}/idp")
        if self.config.auth.jwks_url:
            key_set = await _fetch_jwks(self.config.auth.jwks_url)
        else:
            key_set = self.idp.key_set()
        self.verifier = TokenVerifier(self.config.auth, key_set)
        for system in self.config.systems:
            backend = make_backend(system, self.fault_config)
            await backend.start()
            self.backends[system.name.lower()] = backend
        self.server = HTTPServer(make_app(self), max_body_size=64 * 1024 * 1024)
        self.server.add_sockets(sockets)
        log.info("FirecREST emulator listening on %s", self.url)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
        for backend in self.backends.values():
            await backend.stop()

    # -- faults ---------------------------------------------------------------
    def set_faults(self, update: dict[str, Any]) -> None:
        """Change quirks and rules; keys not given keep their value."""
        merged = self.fault_config.model_dump()
        merged.update(update)
        new = FaultConfig.model_validate(merged)
        for name in FaultConfig.model_fields:
            if name != "rules":
                setattr(self.fault_config, name, getattr(new, name))
        self.fault_config.rules = new.rules
        if "rules" in update:
            self.faults.set_rules(new.rules)
        if "seed" in update and new.seed is not None:
            self.faults = FaultEngine(new.rules, new.seed)

    def reset_faults(self) -> None:
        self.set_faults(self.config.faults.model_dump())

    def visible(self, system: str, job_id: str, now: float | None = None) -> bool:
        delay = self.fault_config.visibility_delay
        if delay <= 0:
            return True
        t = self.submitted_at.get((system, job_id))
        return t is None or (time.time() if now is None else now) - t >= delay

    @staticmethod
    def require(value: _T | None) -> _T:
        """A component that exists once start() has run."""
        if value is None:
            raise RuntimeError("the emulator is not started")
        return value

    def api_version_at_least(self, version: str) -> bool:
        try:
            return Version(self.config.app_version) >= Version(version)
        except InvalidVersion:
            return True  # development builds ("2.x.x") have everything


async def _fetch_jwks(url: str) -> Any:
    import httpx
    from joserfc.jwk import KeySet

    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(url)
        resp.raise_for_status()
        return KeySet.import_key_set(resp.json())


# -- base handlers --------------------------------------------------------------------


class _JSONHandler(tornado.web.RequestHandler):
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


class FirecrestHandler(_JSONHandler):
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


# -- status ---------------------------------------------------------------------


class LivenessHandler(FirecrestHandler):
    route = "/status/liveness/"
    needs_auth = False

    async def get(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        self.reply(
            200,
            {
                "healthcheckRuns": {s.name: now for s in self.emu.config.systems},
                "lastUpdate": int(time.time() * 1000),
            },
        )


class SystemsHandler(FirecrestHandler):
    route = "/status/systems"

    async def get(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        systems = []
        for s in self.emu.config.systems:
            systems.append(
                {
                    "name": s.name,
                    "ssh": {
                        "host": s.node_name,
                        "port": 22,
                        "proxyHost": None,
                        "proxyPort": None,
                        "maxClients": 100,
                        "timeout": {
                            "connection": 5,
                            "login": 5,
                            "commandExecution": int(s.command_timeout),
                            "idleTimeout": 60,
                            "keepAlive": 5,
                        },
                    },
                    "scheduler": {
                        "type": "slurm",
                        "version": s.scheduler_version,
                        "connectionMode": s.connection_mode,
                        "apiUrl": None,
                        "apiVersion": None,
                        "timeout": 10,
                    },
                    "servicesHealth": [
                        {
                            "serviceType": "scheduler",
                            "healthy": s.healthy,
                            "lastChecked": now,
                            "latency": 0.01,
                            "message": None if s.healthy else "scheduler unavailable",
                        },
                        {
                            "serviceType": "ssh",
                            "healthy": s.healthy,
                            "lastChecked": now,
                            "latency": 0.01,
                            "message": None,
                        },
                        *(
                            {
                                "serviceType": "filesystem",
                                "healthy": s.healthy,
                                "lastChecked": now,
                                "latency": 0.01,
                                "message": None,
                                "path": f.path,
                            }
                            for f in s.file_systems
                        ),
                    ],
                    "probing": {
                        "intervalCheck": 120,
                        "services": {
                            "scheduler": {"timeout": 10},
                            "ssh": {"timeout": 5},
                            "filesystem": {"timeout": 5},
                        },
                    },
                    "lastHealthCheck": now,
                    "fileSystems": [
                        {
                            "path": f.path,
                            "dataType": f.data_type,
                            "defaultWorkDir": f.default_work_dir,
                        }
                        for f in s.file_systems
                    ],
                    "dataOperation": {
                        "max_ops_file_size": s.max_ops_file_size,
                        "datatransfer_jobs_directives": [],
                        "data_transfer": None,
                    },
                }
            )
        self.reply(200, {"systems": systems})


class SystemStatusHandler(FirecrestHandler):
    route = "/status/{system}/{kind}"

    def _template(self) -> str:
        kind = self.path_args[1] if len(self.path_args) > 1 else "{kind}"
        return f"{self.request.method} /status/{{system}}/{kind}"

    async def prepare(self) -> None:
        self.route = self._template().split(" ", 1)[1]
        await super().prepare()

    async def get(self, system: str, kind: str) -> None:
        backend = self.backend(system)
        if kind == "userinfo":
            self.reply(200, await backend.userinfo(self.user or ""))
        elif kind == "partitions":
            show_hidden = self.query_bool("show_hidden")
            if show_hidden is None:
                return
            self.reply(200, {"partitions": await backend.partitions(show_hidden)})
        elif kind == "reservations":
            self.reply(200, {"reservations": await backend.reservations()})
        else:
            self.reply(200, {"nodes": await backend.nodes()})


# -- compute --------------------------------------------------------------------------


class JobsHandler(FirecrestHandler):
    route = "/compute/{system}/jobs"

    async def get(self, system: str) -> None:
        backend = self.backend(system)
        allusers = self.query_bool("allusers")
        if allusers is None:
            return
        account = self.get_query_argument("account", None)
        # ``name`` arrives in 2.6.0; older servers ignore the unknown query key.
        name = (
            self.get_query_argument("name", None)
            if self.emu.api_version_at_least("2.6.0")
            else None
        )
        records = await backend.list_jobs(self.user or "", allusers)
        now = time.time()
        sysname = system.lower()
        jobs = [
            r.to_model(now)
            for r in records
            if (account is None or r.account == account)
            and (name is None or r.name == name)
            and self.emu.visible(sysname, r.job_id, now)
        ]
        self.reply(200, {"jobs": jobs})

    async def post(self, system: str) -> None:
        backend = self.backend(system)
        try:
            body = SubmitIn.model_validate(self.json_body())
        except ValueError as e:
            if isinstance(e, ValidationError):
                self.validation_error(validation_fields(e), validation_detail(e))
            else:
                self.validation_error(
                    [{"location": "body", "name": "body", "message": "JSON decode error"}]
                )
            return
        job = body.job
        if job.script is None and job.script_path is None:
            # The real server runs sbatch with nothing on stdin: sbatch waits
            # for a script until the SSH command timeout.
            await self.wait_for_stdin(backend)
            return
        if isinstance(job.env, list):
            # The real SSH backend calls env.items(): a list is a server error.
            raise BackendError(500, "'list' object has no attribute 'items'")
        request = JobRequest(**job.model_dump())
        job_id = await backend.submit(self.user or "", request)
        self.emu.submitted_at[(system.lower(), job_id)] = time.time()
        self.reply(201, {"jobId": job_id})


class JobHandler(FirecrestHandler):
    route = "/compute/{system}/jobs/{job_id}"

    async def get(self, system: str, job_id: str) -> None:
        record = await self.visible_job(system, job_id)
        if record is not None:
            self.reply(200, {"jobs": [record.to_model()]})

    async def delete(self, system: str, job_id: str) -> None:
        backend = self.backend(system)
        if not self.check_job_id(job_id):
            return
        if not job_id.isdigit():
            raise slurm_error(1, f"scancel: error: Invalid job id {job_id}\n")
        await backend.cancel(self.user or "", job_id)
        self.reply(204)


class JobMetadataHandler(FirecrestHandler):
    route = "/compute/{system}/jobs/{job_id}/metadata"

    async def get(self, system: str, job_id: str) -> None:
        record = await self.visible_job(system, job_id)
        if record is not None:
            self.reply(200, {"jobs": [record.to_metadata()]})


# -- filesystem ---------------------------------------------------------------------------


class OpsHandler(FirecrestHandler):
    route = "/filesystem/{system}/ops/{op}"

    def _template(self) -> str:
        op = self.path_args[1] if len(self.path_args) > 1 else "{op}"
        return f"{self.request.method} /filesystem/{{system}}/ops/{op}"

    async def prepare(self) -> None:
        self.route = self._template().split(" ", 1)[1]
        await super().prepare()

    def _path(self, system: str, raw: str | None) -> str | None:
        if raw is None:
            self.validation_error(
                [{"location": "query", "name": "path", "message": "Field required"}]
            )
            return None
        return fs.check_path(raw, system, self.backend(system).system.file_systems)

    def _max(self, system: str) -> int:
        return self.backend(system).system.max_ops_file_size

    async def get(self, system: str, op: str) -> None:
        self.backend(system)
        path = self._path(system, self.get_query_argument("path", None))
        if path is None:
            return
        if op in ("tail", "head"):
            ok1, lines = self.query_int("lines")
            if not ok1:
                return
            ok2, nbytes = self.query_int("bytes")
            if not ok2:
                return
            skip = self.query_bool("skipHeading" if op == "tail" else "skipTrailing")
            if skip is None:
                return
            if op == "tail":
                out = await asyncio.to_thread(fs.tail, path, lines, nbytes, skip, self._max(system))
            else:
                out = await asyncio.to_thread(fs.head, path, lines, nbytes, skip, self._max(system))
            self.reply(200, {"output": out})
        elif op == "view":
            ok1, size = self.query_int("size")
            ok2, offset = self.query_int("offset")
            if not (ok1 and ok2):
                return
            text = await asyncio.to_thread(fs.view, path, size, offset, self._max(system))
            self.reply(200, {"output": text})
        elif op == "ls":
            hidden = self.query_bool("showHidden")
            if hidden is None:
                return
            self.reply(200, {"output": await asyncio.to_thread(fs.ls, path, hidden)})
        elif op == "stat":
            deref = self.query_bool("dereference")
            if deref is None:
                return
            self.reply(200, {"output": await asyncio.to_thread(fs.stat, path, deref)})
        else:
            raise tornado.web.HTTPError(405)

    async def post(self, system: str, op: str) -> None:
        self.backend(system)
        if op == "mkdir":
            body = self._body(MkdirIn)
            if body is None:
                return
            path = self._path(system, body.source_path)
            if path is None:
                return
            out = await asyncio.to_thread(fs.mkdir, path, body.parent, self.owner())
            self.reply(201, {"output": out})
        elif op == "upload":
            path = self._path(system, self.get_query_argument("path", None))
            if path is None:
                return
            files = self.request.files.get("file")
            if not files:
                self.validation_error(
                    [{"location": "body", "name": "file", "message": "Field required"}]
                )
                return
            upload = files[0]
            if not upload.body:
                # The server pipes nothing to its decoder, which waits for input.
                await self.wait_for_stdin(self.backend(system))
                return
            await asyncio.to_thread(
                fs.upload, path, upload.filename, upload.body, self.owner(), self._max(system)
            )
            self.reply(204)
        else:
            raise tornado.web.HTTPError(405)

    async def delete(self, system: str, op: str) -> None:
        self.backend(system)
        if op != "rm":
            raise tornado.web.HTTPError(405)
        path = self._path(system, self.get_query_argument("path", None))
        if path is None:
            return
        roots = [f.path for f in self.backend(system).system.file_systems]
        await asyncio.to_thread(fs.rm, path, roots)
        self.reply(204)

    async def put(self, system: str, op: str) -> None:
        self.backend(system)
        if op != "chmod":
            raise tornado.web.HTTPError(405)
        body = self._body(ChmodIn)
        if body is None:
            return
        path = self._path(system, body.source_path)
        if path is None:
            return
        self.reply(200, {"output": await asyncio.to_thread(fs.chmod, path, body.mode)})

    def _body(self, model: type[PathIn]) -> Any:
        try:
            return model.model_validate(self.json_body())
        except ValidationError as e:
            self.validation_error(validation_fields(e), validation_detail(e))
        except ValueError:
            self.validation_error(
                [{"location": "body", "name": "body", "message": "JSON decode error"}]
            )
        return None


class FirecrestNotFound(FirecrestHandler):
    route = "(unknown)"
    needs_auth = False

    async def prepare(self) -> None:
        self.emu.counters.endpoints[self._template()] += 1
        if not self._bad_tracing_header():
            self.error(404, "Not Found")


# -- identity provider -------------------------------------------------------------------------


class TokenHandler(_JSONHandler):
    async def post(self) -> None:
        idp = self.emu.require(self.emu.idp)
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        try:
            body = idp.grant(form, self.request.headers.get("Authorization"))
        except IdpError as e:
            self.emu.counters.grants[f"{form.get('grant_type', '(none)')} error"] += 1
            self.write_json(e.status, e.body())
            return
        self.emu.counters.grants[form.get("grant_type", "")] += 1
        self.set_header("Cache-Control", "no-store")
        self.write_json(200, body)


class JwksHandler(_JSONHandler):
    async def get(self) -> None:
        idp = self.emu.require(self.emu.idp)
        self.write_json(200, idp.jwks())


class OidcConfigHandler(_JSONHandler):
    async def get(self) -> None:
        idp = self.emu.require(self.emu.idp)
        base = f"{self.emu.url}/idp"
        self.write_json(
            200,
            {
                "issuer": idp.issuer,
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "grant_types_supported": ["client_credentials", "refresh_token", "password"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )


# -- admin ------------------------------------------------------------------------------------------


class AdminHandler(_JSONHandler):
    def prepare(self) -> None:
        import hmac

        header = self.request.headers.get("Authorization", "")
        expected = f"Bearer {self.emu.config.admin_token}"
        if not hmac.compare_digest(header.encode(), expected.encode()):
            self.write_json(401, {"message": "admin token required"})

    def bad(self, message: str) -> None:
        self.write_json(400, {"message": message})


class AdminFaultsHandler(AdminHandler):
    def _state(self) -> dict[str, Any]:
        data = self.emu.fault_config.model_dump()
        data["stats"] = self.emu.faults.stats()
        return data

    async def get(self) -> None:
        self.write_json(200, self._state())

    async def put(self) -> None:
        try:
            self.emu.set_faults(self.json_body())
        except (ValueError, ValidationError) as e:
            self.bad(str(e))
            return
        self.write_json(200, self._state())

    async def post(self) -> None:
        """Append one rule."""
        try:
            rule = FaultRule.model_validate(self.json_body())
        except (ValueError, ValidationError) as e:
            self.bad(str(e))
            return
        rules = [*self.emu.fault_config.rules, rule]
        self.emu.set_faults({"rules": [r.model_dump() for r in rules]})
        self.write_json(200, self._state())

    async def delete(self) -> None:
        self.emu.reset_faults()
        self.write_json(200, self._state())


class AdminCountersHandler(AdminHandler):
    async def get(self) -> None:
        self.write_json(200, self.emu.counters.as_dict())

    async def delete(self) -> None:
        self.emu.counters.reset()
        if self.emu.idp is not None:
            self.emu.idp.grant_counts.clear()
        self.write_json(200, self.emu.counters.as_dict())


class AdminRequestsHandler(AdminHandler):
    async def get(self) -> None:
        self.write_json(200, list(self.emu.requests))

    async def delete(self) -> None:
        self.emu.requests.clear()
        self.write_json(200, [])


class AdminJobsHandler(AdminHandler):
    async def get(self) -> None:
        out = []
        for name, backend in self.emu.backends.items():
            for record in backend.all_jobs():
                model = record.to_model()
                model["system"] = name
                model["standardOutput"] = record.standard_output
                model["standardError"] = record.standard_error
                out.append(model)
        self.write_json(200, out)


class AdminNodeFailHandler(AdminHandler):
    async def post(self, system: str, job_id: str) -> None:
        backend = self.emu.backends.get(system.lower())
        if backend is None:
            self.write_json(404, {"message": "System not found"})
            return
        try:
            await backend.node_fail(job_id)
        except BackendError as e:
            self.write_json(e.status, {"message": e.message})
            return
        self.write_json(200, {"jobId": job_id, "state": "NODE_FAIL"})


class AdminSystemHandler(AdminHandler):
    """Read or change a system at run time (health, queue, capacity, node name...)."""

    CHANGEABLE = frozenset(
        {
            "healthy",
            "queue_delay",
            "slots",
            "node_name",
            "retention",
            "completing_time",
            "kill_wait",
            "operators",
        }
    )

    def _system(self, name: str) -> Any:
        backend = self.emu.backends.get(name.lower())
        if backend is None:
            self.write_json(404, {"message": "System not found"})
        return backend

    async def get(self, name: str) -> None:
        backend = self._system(name)
        if backend is not None:
            self.write_json(200, backend.system.model_dump(mode="json"))

    async def put(self, name: str) -> None:
        backend = self._system(name)
        if backend is None:
            return
        changes = self.json_body()
        unknown = set(changes) - self.CHANGEABLE
        if unknown:
            self.bad(f"cannot change {sorted(unknown)}; changeable: {sorted(self.CHANGEABLE)}")
            return
        try:
            for key, value in changes.items():
                setattr(backend.system, key, value)
        except ValidationError as e:
            self.bad(str(e))
            return
        backend.wake()
        self.write_json(200, backend.system.model_dump(mode="json"))


class AdminTokensHandler(AdminHandler):
    async def post(self) -> None:
        idp = self.emu.require(self.emu.idp)
        body = self.json_body()
        username = body.get("username")
        if not isinstance(username, str) or not username:
            self.bad("username is required")
            return
        kind = body.get("type", "refresh")
        lifetime = body.get("lifetime")
        if kind == "refresh":
            token = idp.issue_refresh_token(
                username, client_id=body.get("client_id"), lifetime=lifetime
            )
            self.write_json(200, {"token": token})
        elif kind == "access":
            token, ttl = idp.issue_access_token(
                username,
                lifetime=lifetime,
                claims=body.get("claims") or {},
                omit_username=bool(body.get("omit_username")),
            )
            self.write_json(200, {"token": token, "expires_in": ttl})
        else:
            self.bad("type must be 'refresh' or 'access'")


class AdminRevokeHandler(AdminHandler):
    async def post(self) -> None:
        idp = self.emu.require(self.emu.idp)
        body = self.json_body()
        n = idp.revoke(username=body.get("username"), token=body.get("refresh_token"))
        self.write_json(200, {"revoked": n})


class _Application(tornado.web.Application):
    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        # FirecREST's middleware lower-cases the URL path (not the query).
        if not request.path.startswith(("/_emulator/", "/idp/")):
            request.path = request.path.lower()
        return super().find_handler(request, **kwargs)


def make_app(emu: Emulator) -> tornado.web.Application:
    a: dict[str, Any] = {}
    sys_ = r"([^/]+)"
    routes = [
        (r"/status/liveness/?", LivenessHandler, a),
        (r"/status/systems/?", SystemsHandler, a),
        (rf"/status/{sys_}/(userinfo|partitions|reservations|nodes)/?", SystemStatusHandler, a),
        (rf"/compute/{sys_}/jobs/?", JobsHandler, a),
        (rf"/compute/{sys_}/jobs/([^/]+)/metadata/?", JobMetadataHandler, a),
        (rf"/compute/{sys_}/jobs/([^/]+)/?", JobHandler, a),
        (
            rf"/filesystem/{sys_}/ops/(tail|head|view|ls|stat|mkdir|chmod|upload|rm)/?",
            OpsHandler,
            a,
        ),
        (r"/idp/token", TokenHandler, a),
        (r"/idp/jwks", JwksHandler, a),
        (r"/idp/\.well-known/openid-configuration", OidcConfigHandler, a),
        (r"/_emulator/faults", AdminFaultsHandler, a),
        (r"/_emulator/counters", AdminCountersHandler, a),
        (r"/_emulator/requests", AdminRequestsHandler, a),
        (r"/_emulator/jobs", AdminJobsHandler, a),
        (r"/_emulator/jobs/([^/]+)/([^/]+)/node_fail", AdminNodeFailHandler, a),
        (r"/_emulator/systems/([^/]+)", AdminSystemHandler, a),
        (r"/_emulator/tokens", AdminTokensHandler, a),
        (r"/_emulator/revoke", AdminRevokeHandler, a),
    ]
    return _Application(
        routes,
        default_handler_class=FirecrestNotFound,
        default_handler_args=a,
        log_function=_log_request,
        emu=emu,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # Paths and status only: query strings may carry paths, never tokens, but
    # headers do, so they are never logged.
    log.debug(
        "%s %s %s %.1fms",
        handler.get_status(),
        handler.request.method,
        handler.request.path,
        1000 * handler.request.request_time(),
    )
