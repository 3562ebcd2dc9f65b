"""The ``browser`` fixture drives Debian's Chromium, JavaScript included."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<title>smoke</title>
<p id="out">static</p>
<script>document.getElementById("out").textContent = "rendered by " + (6 * 7);</script>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(PAGE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_chromium_renders_a_local_page_with_javascript(page, local_site):
    response = await page.goto(local_site)
    assert response is not None
    assert response.status == 200
    assert await page.title() == "smoke"
    # The script ran: the static text was replaced.
    assert await page.locator("#out").text_content() == "rendered by 42"
