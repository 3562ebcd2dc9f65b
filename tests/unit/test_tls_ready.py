"""The shared TLS context is built in a thread, never on the hub's event loop (issue 17)."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import certifi

from firecrestspawner import pyfirecrest_adapter as adapter


async def test_the_tls_context_is_built_off_the_event_loop_once(tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    built_in: list[threading.Thread] = []
    original = ssl.create_default_context

    def recording(*args, **kwargs):
        built_in.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", recording)
    await adapter.tls_ready(str(bundle))
    assert built_in, "the context for this CA bundle was built"
    assert threading.main_thread() not in built_in
    context = adapter.tls_context(str(bundle))  # cached: no new build
    assert isinstance(context, ssl.SSLContext)
    count = len(built_in)
    await adapter.tls_ready(str(bundle))
    assert len(built_in) == count
