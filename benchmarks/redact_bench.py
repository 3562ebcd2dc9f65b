"""Cost of one ``redact()`` call against the number of registered secrets.

``python -m benchmarks.redact_bench [N ...]`` registers N JWT-shaped access
tokens (one shared header, as one identity provider issues them) plus one
opaque 32-character token, then times ``redact()`` on a typical 110-character
log line without a secret, the same line with the opaque token, and with a
bearer header carrying a registered JWT. ``--legacy`` times the previous
algorithm (every secret checked with ``in``, the set sorted on every call)
for comparison.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import timeit
from collections.abc import Callable

from firecrestspawner.redact import REDACTED, SecretRegistry

LINE = (
    "Job 12345 of alice (server 'gpu') is RUNNING on nid001234:45678 after 12.3 s; "
    "state kept in the hub database"
)
_HEADER = (
    base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k" * 40}).encode())
    .decode()
    .rstrip("=")
)


def jwt(i: int) -> str:
    claims = {
        "exp": 1_700_000_000 + i,
        "sub": f"user{i}",
        "preferred_username": f"user{i}",
        "scope": "openid profile offline_access",
        "jti": secrets.token_hex(16),
    }
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{_HEADER}.{payload}.{secrets.token_urlsafe(256)}"


class LegacyRegistry:
    """The algorithm before issue 16: a set, sorted and scanned on every call."""

    _JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
    _HEADER_RE = re.compile(r"(?i)\b(authorization:?\s*(?:bearer|token)\s+)\S+")
    _PARAM_RE = re.compile(
        r"(?i)((?:access_token|refresh_token|api_token|client_secret|token|password)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
    )

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def register(self, value: str) -> None:
        self._secrets.add(value)

    def redact(self, text: object) -> str:
        out = str(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in out:
                out = out.replace(secret, REDACTED)
        out = self._JWT_RE.sub(REDACTED, out)
        out = self._HEADER_RE.sub(lambda m: m.group(1) + REDACTED, out)
        return self._PARAM_RE.sub(lambda m: m.group(1) + REDACTED, out)


def per_call(fn: Callable[[], object], budget: float = 0.3) -> float:
    """Seconds per call: best of 3 runs of about ``budget`` seconds each."""
    number = 1
    while timeit.timeit(fn, number=number) < budget / 10:
        number *= 10
    return min(timeit.repeat(fn, number=number, repeat=3)) / number


def measure(n: int, legacy: bool) -> dict[str, float]:
    reg: SecretRegistry | LegacyRegistry = LegacyRegistry() if legacy else SecretRegistry(n + 10)
    tokens = [jwt(i) for i in range(n)]
    for i, token in enumerate(tokens):
        if isinstance(reg, SecretRegistry):
            reg.register(token, owner=("access", i))
        else:
            reg.register(token)
    opaque = secrets.token_hex(16)
    reg.register(opaque)
    cases = {
        "clean": LINE,
        "opaque": f"{LINE} token {opaque}",
        "bearer-jwt": f"{LINE} Authorization: Bearer {tokens[0]}",
    }
    for text in cases.values():  # every case finds what it must
        assert opaque not in reg.redact(text)
        assert tokens[0] not in reg.redact(text)
    return {name: per_call(lambda t=text: reg.redact(t)) for name, text in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="*", type=int, default=[10, 100, 1000, 10000])
    parser.add_argument("--legacy", action="store_true", help="time the previous algorithm")
    args = parser.parse_args()
    label = "legacy" if args.legacy else "current"
    for n in args.n:
        r = measure(n, args.legacy)
        print(
            f"{label:8} N={n + 1:>6}  clean {r['clean'] * 1e6:8.1f} us   "
            f"opaque token {r['opaque'] * 1e6:8.1f} us   bearer JWT {r['bearer-jwt'] * 1e6:8.1f} us"
        )


if __name__ == "__main__":
    main()
