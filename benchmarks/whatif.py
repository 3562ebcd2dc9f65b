"""What-if variants: our spawner with a proposed fix applied, to measure the fix.

Not a change of the package: each variant patches one thing for the duration
of one scenario, and ``docs/benchmarks.md`` names the fix it stands for.

* ``sharedtls``: every ``httpx.AsyncClient`` built with default TLS settings
  reuses one ``ssl.SSLContext`` instead of loading the CA bundle again
  (~20 ms of CPU on the event loop per client). Stands for: ``client.py``
  passing one shared context as pyfirecrest's ``verify`` and ``auth.py``
  keeping one ``httpx.AsyncClient`` per loop for token requests.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

import httpx._transports.default as httpx_default

VARIANTS = ("sharedtls", "fastpoll")

#: ``fastpoll``: start-up polling that does not back off past 1 s. With the
#: shared status cache the cost is one job list per system per second,
#: whatever the number of spawns. Stands for: ``startup_poll_max_interval``
#: defaulting to 1 s and ``_wait_until_running`` asking for data no older
#: than ``startup_poll_interval`` (today it accepts data as old as its
#: current, grown interval).
FASTPOLL_TRAITS = {"startup_poll_max_interval": 1.0}


@contextlib.contextmanager
def shared_tls() -> Iterator[None]:
    original = httpx_default.create_ssl_context
    shared: dict[tuple, ssl.SSLContext] = {}

    def create_ssl_context(verify=True, cert=None, trust_env=True):  # type: ignore[no-untyped-def]
        if isinstance(verify, ssl.SSLContext) or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        key = (verify, trust_env)
        if key not in shared:
            shared[key] = original(verify=verify, cert=cert, trust_env=trust_env)
        return shared[key]

    httpx_default.create_ssl_context = create_ssl_context
    try:
        yield
    finally:
        httpx_default.create_ssl_context = original


def variant(mode: str) -> contextlib.AbstractContextManager:
    """The patch of ``mode`` (``ours+sharedtls``, ``ours+sharedtls+fastpoll``), or nothing."""
    if "+sharedtls" in mode:
        return shared_tls()
    return contextlib.nullcontext()


def variant_traits(mode: str) -> dict:
    """Spawner traits of ``mode``'s variant."""
    return dict(FASTPOLL_TRAITS) if "+fastpoll" in mode else {}
