"""The fault suite's hub-log check refuses what it names and accepts the proxy's records."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_log

HUB = "[I 2026-12-03 13:47:12.583 JupyterHub cancelling:31] Cancelling job 12 on local"
CHP = (
    "2026-12-03T13:38:17.811Z [ConfigProxy] error: Failed to get custom error page: Error\n"
    "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1611:16) {\n"
    "  errno: -111,\n"
    "}"
)


def test_hub_and_proxy_records_pass():
    assert_clean_log(f"{HUB}\n{CHP}\n{HUB}\n    continued message line\n")


@pytest.mark.parametrize(
    "bad",
    [
        "stamina.retry_scheduled",  # a bare library line
        "[W 2026-12-03 13:47:12.583 stamina instrumentation:1] stamina.retry_scheduled",
        "Traceback (most recent call last):",
        "WARNING: printed without timestamp",
    ],
)
def test_bare_library_lines_and_tracebacks_fail(bad: str):
    with pytest.raises(AssertionError):
        assert_clean_log(f"{HUB}\n{bad}\n{HUB}\n")
