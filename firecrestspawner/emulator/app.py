"""The emulator's HTTP server: FirecREST v2 routes, the IdP and the admin API.

One :class:`Emulator` holds the state (backends, IdP, faults, counters); the
tornado handlers in :mod:`.routes` (one module per FirecREST area, plus the
identity provider and the admin API) are thin. Route templates (``"GET
/compute/{system}/jobs"``) name endpoints in counters and fault rules.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, TypeVar

import tornado.web
from joserfc.errors import JoseError
from packaging.version import InvalidVersion, Version
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets

from .auth import TokenVerifier
from .backends import make_backend
from .backends.base import Backend
from .config import EmulatorConfig, FaultConfig
from .faults import FaultEngine
from .idp import IdentityProvider
from .routes import FirecrestNotFound, routes
from .state import Saver, StateFile, StateFileError

log = logging.getLogger("firecrestspawner.emulator")

_T = TypeVar("_T")


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
        #: Keeps the state file when ``state_file`` is set.
        self.saver: Saver | None = None
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
        state: dict[str, Any] = {}
        if self.config.state_file:
            store = StateFile(self.config.state_file)
            store.acquire()
            try:
                state = store.load() or {}
            except StateFileError:
                store.release()
                raise
            self.saver = Saver(store, self.snapshot)
        try:
            await self._start(state)
        except Exception:
            if self.saver is not None:
                self.saver.file.release()
            raise

    async def _start(self, state: dict[str, Any]) -> None:
        sockets = bind_sockets(self.config.port, self.config.host)
        self.port = sockets[0].getsockname()[1]
        try:
            self.idp = IdentityProvider(
                self.config.idp, issuer=f"{self.url}/idp", state=state.get("idp")
            )
        except (KeyError, TypeError, ValueError, JoseError) as e:
            raise self._bad_state("idp", e) from e
        if self.config.auth.jwks_url:
            key_set = await _fetch_jwks(self.config.auth.jwks_url)
        else:
            key_set = self.idp.key_set()
        self.verifier = TokenVerifier(self.config.auth, key_set)
        for system, job_id, t in state.get("submitted_at", []):
            self.submitted_at[(system, job_id)] = t
        saved_systems = state.get("systems", {})
        for system in self.config.systems:
            name = system.name.lower()
            backend = make_backend(system, self.fault_config)
            saved = saved_systems.get(name)
            if saved is not None and saved.get("backend") != backend.kind:
                log.warning(
                    "state of system %s was kept by the %s backend, not %s: not restored",
                    name,
                    saved.get("backend"),
                    backend.kind,
                )
                saved = None
            if self.saver is not None:
                backend.persistent = True
                backend.spool_root = Path(f"{self.saver.file.path}.spool")
                backend.on_change = self.saver.changed
            try:
                await backend.start(saved)
            except (KeyError, TypeError, ValueError) as e:
                raise self._bad_state(f"systems.{name}", e) from e
            self.backends[name] = backend
        if self.saver is not None:
            self.idp.on_change = self.saver.changed
            await self.saver.save(force=True)
        self.server = HTTPServer(make_app(self), max_body_size=64 * 1024 * 1024)
        self.server.add_sockets(sockets)
        log.info("FirecREST emulator listening on %s", self.url)

    def _bad_state(self, part: str, error: Exception) -> StateFileError:
        return StateFileError(
            f"state file {self.config.state_file} is not a valid emulator state "
            f"({part}: {type(error).__name__}: {error}); move it away to start with a fresh state"
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
        for backend in self.backends.values():
            await backend.stop()
        if self.saver is not None:
            await self.saver.close()

    async def persist(self) -> None:
        """Save the state file now if it changed (before an answer that must survive a crash)."""
        if self.saver is not None:
            await self.saver.save()

    def snapshot(self) -> dict[str, Any]:
        """Everything a restarted emulator needs (see :mod:`.state`), as JSON data."""
        recent = time.time() - 3600
        return {
            "saved_at": time.time(),
            "idp": self.require(self.idp).dump_state(),
            "systems": {
                name: {"backend": b.kind, **b.dump_state()} for name, b in self.backends.items()
            },
            "submitted_at": [[s, j, t] for (s, j), t in self.submitted_at.items() if t > recent],
        }

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


class _Application(tornado.web.Application):
    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        # FirecREST's middleware lower-cases the URL path (not the query).
        if not request.path.startswith(("/_emulator/", "/idp/")):
            request.path = request.path.lower()
        return super().find_handler(request, **kwargs)


def make_app(emu: Emulator) -> tornado.web.Application:
    a: dict[str, Any] = {}
    return _Application(
        [(pattern, handler, a) for pattern, handler in routes()],
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
