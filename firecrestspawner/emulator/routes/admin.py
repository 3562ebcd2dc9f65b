"""``/_emulator/``: the admin API (faults, counters, request log, jobs, systems, tokens).

Every call needs ``Authorization: Bearer <admin_token>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..backends.base import BackendError
from ..faults import FaultRule
from .base import JSONHandler


class AdminHandler(JSONHandler):
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
        await self.emu.persist()
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
            await self.emu.persist()
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
        await self.emu.persist()
        self.write_json(200, {"revoked": n})


class AdminRotateKeyHandler(AdminHandler):
    """Fault: the identity provider signs with a new key (old access tokens answer 401)."""

    async def post(self) -> None:
        idp = self.emu.require(self.emu.idp)
        if self.emu.config.auth.jwks_url is not None:
            self.bad("FirecREST verifies with auth.jwks_url, not this identity provider")
            return
        try:
            idp.rotate_key()
        except ValueError as e:
            self.bad(str(e))
            return
        self.emu.require(self.emu.verifier).key_set = idp.key_set()
        await self.emu.persist()
        self.write_json(200, {"kid": idp.kid})
