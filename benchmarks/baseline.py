"""The baseline: our spawner with the shared status cache and token caching off.

This is how the existing firecrestspawner behaves: every ``poll()`` of every
server sends its own FirecREST request for its job, and every FirecREST
request is preceded by a token request to the identity provider. Everything
else (client pool, retries, start() logic) is the same code, so the ratios
measure exactly the two switches.

Each spawner has its own HTTP client (the existing firecrestspawner creates
one per call); the first use costs one TLS context, later polls reuse it.

Switched off by overriding the spawner's two private client factories
(``_user_client``, ``_service_client``) and the job controller's ``observe``
(``controller_class``): the spawner has no public switch for them. If the spawner's internals change, the CI run in
``tests/benchmarks`` fails, so this stays honest.
"""

from __future__ import annotations

import time
from typing import Any

from firecrestspawner import client as fc
from firecrestspawner import status as status_cache
from firecrestspawner.auth import AuthorizationCodeFlowAuth, ServiceAccountAuth, SessionExpired
from firecrestspawner.jobs import JobController
from firecrestspawner.spawner import SlurmSpawner


class _NoCache:
    """Mixin: a new token for every request, concurrent (no shared refresh)."""

    async def get_access_token_async(self) -> str:
        body = await self._request_async()  # type: ignore[attr-defined]
        token = body.get("access_token")
        self._handle_success(body)  # type: ignore[attr-defined]
        return str(token)


class NoCacheServiceAccountAuth(_NoCache, ServiceAccountAuth):
    pass


class NoCacheUserAuth(_NoCache, AuthorizationCodeFlowAuth):
    pass


_service_accounts: dict[tuple[str, str], NoCacheServiceAccountAuth] = {}


class BaselineController(JobController):
    """Job control without the shared status cache."""

    async def observe(self, max_age: float, since: float | None = None) -> status_cache.Observation:
        """One request for this job, every time (no cache, no sharing: always fresh)."""
        r = self.record
        try:
            if self.access.poll_with_service and self.access.service is not None:
                client = await self.access.service(r.firecrest_url)
            else:
                client = await self.user_client()
            job: Any = await client.job(r.system, r.job_id)
        except Exception as e:  # noqa: BLE001 - a failure is "unknown", as in the real spawner
            return status_cache.Observation(None, time.monotonic(), e)
        return status_cache.Observation(job, time.monotonic())


class BaselineSpawner(SlurmSpawner):
    """SlurmSpawner without the shared status cache and without token caching."""

    controller_class = BaselineController

    def _url(self, url: str) -> str:
        return url or self.record.firecrest_url or self.firecrest_url

    async def _user_client(self, url: str = "") -> fc.FirecrestClient:
        cred = getattr(self, "_baseline_auth", None)
        if cred is None:
            state = await self.user.get_auth_state() or {}
            token = state.get("refresh_token")
            if not token:
                self.access_token_is_valid = False
                raise SessionExpired("no refresh token in auth_state")
            cred = NoCacheUserAuth(self.client_id, self.client_secret, token, self.token_url)
            self._baseline_auth = cred
        self.access_token_is_valid = True
        return fc.get_client(
            self._url(url), f"baseline-user:{self.user.name}", cred, self._client_settings()
        )

    async def _service_client(self, url: str = "") -> fc.FirecrestClient:
        key = (self.service_account_token_url, self.service_account_client_id)
        cred = _service_accounts.get(key)
        if cred is None:
            cred = _service_accounts[key] = NoCacheServiceAccountAuth(
                self.service_account_client_id,
                self.service_account_client_secret,
                self.service_account_token_url,
            )
        # One client per spawner, as the existing firecrestspawner makes its own
        # client per call: N polls never queue in one shared connection pool.
        return fc.get_client(
            self._url(url),
            f"baseline-sa:{self.service_account_client_id}:{self.user.name}:{self.name}",
            cred,
            self._client_settings(),
        )


def reset() -> None:
    _service_accounts.clear()
