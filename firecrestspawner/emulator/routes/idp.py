"""``/idp/``: the development identity provider's token endpoint, JWKS and discovery."""

from __future__ import annotations

from ..idp import IdpError
from .base import JSONHandler


class TokenHandler(JSONHandler):
    async def post(self) -> None:
        idp = self.emu.require(self.emu.idp)
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        try:
            body = idp.grant(form, self.request.headers.get("Authorization"))
        except IdpError as e:
            self.emu.counters.grants[f"{form.get('grant_type', '(none)')} error"] += 1
            await self.emu.persist()
            self.write_json(e.status, e.body())
            return
        # A refresh token answered (or rotated away) is one a restart knows.
        await self.emu.persist()
        self.emu.counters.grants[form.get("grant_type", "")] += 1
        self.set_header("Cache-Control", "no-store")
        self.write_json(200, body)


class JwksHandler(JSONHandler):
    async def get(self) -> None:
        idp = self.emu.require(self.emu.idp)
        self.write_json(200, idp.jwks())


class OidcConfigHandler(JSONHandler):
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
