"""Bearer-token verification the way FirecREST 2.5.6 does it.

RS256 signature against a JWKS (key picked by ``kid``), ``exp``, no audience
check, the user name from a configurable claim, and the ``min_token_ttl``
rule: a token with less than 30 s left is refused.
"""

from __future__ import annotations

import time

from joserfc import errors, jwt
from joserfc.jwk import KeySet

from .config import AuthConfig

NOT_AUTHENTICATED = "Not authenticated"
INVALID = "Access token is invalid."
EXPIRED = "Access token expired"
NO_KEY = "Token's public key not found."


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TokenVerifier:
    def __init__(self, config: AuthConfig, key_set: KeySet) -> None:
        self.config = config
        self.key_set = key_set

    def username(self, authorization: str | None) -> str:
        """The user a request's Authorization header authenticates; raises AuthError."""
        if not authorization:
            raise AuthError(401, NOT_AUTHENTICATED)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, NOT_AUTHENTICATED)
        try:
            claims = jwt.decode(token.strip(), self.key_set, algorithms=["RS256"]).claims
        except errors.InvalidKeyIdError as e:
            raise AuthError(401, NO_KEY) from e
        except (errors.JoseError, ValueError, TypeError, KeyError) as e:
            raise AuthError(401, INVALID) from e
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise AuthError(401, INVALID)
        left = exp - time.time()
        if left <= 0:
            raise AuthError(401, EXPIRED)
        ttl = self.config.min_token_ttl
        if left < ttl:
            raise AuthError(401, f"Access token expires too soon (less than {ttl}s remaining).")
        name = claims.get(self.config.username_claim)
        if not isinstance(name, str) or not name:
            raise AuthError(
                400, f"Authentication token '{self.config.username_claim}' claim is missing"
            )
        return name
