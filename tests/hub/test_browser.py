"""The spawn form in a real headless Chromium (Debian's), served by a real hub.

Playwright's async API runs on the test's event loop, which is also the
hub's, so the hub keeps serving while the browser waits. The browser is
Debian's ``chromium`` (never ``playwright install``); outside CI a missing
Chromium skips, in CI it fails (see ``tests/fixtures/browser.py``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from jupyterhub.tests.utils import api_request, public_host, public_url

from tests.fixtures.browser import CHROMIUM_ARGS, INSTALL_HINT, chromium_path
from tests.fixtures.chp import skip_or_fail

from .conftest import write_profiles

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "img" / "spawn-form.png"


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[object]:
    executable = chromium_path()
    if executable is None:
        skip_or_fail(f"Chromium not found: {INSTALL_HINT}")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def browser_page(chromium, app, cookies):
    """A fresh browser context logged in with the hub cookies of ``cookies``."""
    context = await chromium.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(30_000)
    host = public_host(app)
    await context.add_cookies(
        [{"name": c.name, "value": c.value, "url": host + (c.path or "/")} for c in cookies]
    )
    return context, await context.new_page()


async def wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.1)


async def test_dependent_options_in_chromium_and_the_spawn_carries_them(
    app, use_spawner, make_user, hub_emulator, chromium
):
    user, cookies = await make_user("browser-gina", groups=("gpu-users",))
    context, page = await browser_page(chromium, app, cookies)
    try:
        await page.goto(public_url(app) + "hub/spawn")
        assert urlparse(page.url).path.endswith("/hub/spawn")
        # The default profile is selected; the other profile's options are hidden.
        assert await page.locator("#fcs-p1").is_checked()
        assert await page.locator("select[name='cpu.partition']").is_visible()
        assert await page.locator("select[name='gpu.ngpus']").is_hidden()
        # A dependent option appears only when its rule holds.
        reservation = page.locator("select[name='cpu.reservation']")
        assert await reservation.is_hidden()
        assert await page.locator(".fcs-when-hint").first.is_hidden()
        await page.get_by_label("Use a reservation").check()
        assert await reservation.is_visible()
        await reservation.select_option("hackathon")
        await page.get_by_label("Partition").select_option("debug")
        await page.get_by_label("Nodes").fill("2")
        summary = page.locator("[data-fcs-profile=cpu] .fcs-summary-text")
        assert "nodes: 2" in await summary.text_content()
        assert "partition: debug" in await summary.text_content()
        # Switching profiles swaps the visible options.
        await page.get_by_label("GPU node").check()
        assert await page.locator("select[name='gpu.ngpus']").is_visible()
        assert await page.locator("select[name='cpu.partition']").is_hidden()
        # A uenv image offers only its own views.
        views = page.locator("select[name='gpu.uenv_view']")
        assert await views.input_value() == "default"
        await page.locator("select[name='gpu.uenv']").select_option("pytorch/v2.6.0:v1")
        assert await views.input_value() == "torch"
        enabled = await views.locator("option:not([disabled])").evaluate_all(
            "options => options.map(o => o.value)"
        )
        assert enabled == ["torch"]
        assert (
            "image: pytorch/v2.6.0:v1"
            in await page.locator("[data-fcs-profile=gpu] .fcs-summary-text").text_content()
        )
        await page.get_by_label("CPU node").check()
        assert await reservation.is_visible()
        # Unticking hides the dependent option again (and it is not sent).
        await page.get_by_label("Use a reservation").uncheck()
        assert await reservation.is_hidden()
        await page.get_by_label("Use a reservation").check()
        await page.locator("#spawn_form button[type=submit]").click()
        await page.wait_for_url("**/spawn-pending/**")
    finally:
        await context.close()

    await wait_for(lambda: bool(user.spawner.job_id))
    r = await api_request(app, "users", user.name)
    r.raise_for_status()
    options = r.json()["servers"][""]["user_options"]
    assert options == {
        "profile": "cpu",
        "partition": "debug",
        "runtime": "01:00:00",
        "nnodes": 2,
        "use_reservation": True,
        "reservation": "hackathon",
    }
    job = next(j for j in hub_emulator.admin.jobs() if j["jobId"] == user.spawner.job_id)
    assert job["partition"] == "debug"
    await api_request(app, "users", user.name, "server", method="delete")
    await wait_for(lambda: not user.spawner.active)


async def test_screenshot_of_the_form_from_the_shipped_profiles(
    app, use_spawner, make_user, hub_emulator, workdir, tmp_path, chromium
):
    """Renders the shipped multi-system profiles; the picture in the README.

    Writes ``docs/img/spawn-form.png`` only with ``FCS_UPDATE_SCREENSHOT=1``
    (so test runs leave the checkout clean); otherwise a temporary file.
    """
    target = SCREENSHOT if os.environ.get("FCS_UPDATE_SCREENSHOT") == "1" else tmp_path / "form.png"
    shipped = REPO / "profiles" / "multi-system.yaml"
    if not shipped.exists():
        pytest.fail("profiles/multi-system.yaml is missing")
    text = shipped.read_text()
    directory = tmp_path / "shipped"
    write_profiles(directory, hub_emulator, workdir, text)
    # Wait for the live cluster lists here: the picture should show them.
    use_spawner(directory, profile_form_timeout=10)
    _, cookies = await make_user("screenshot", groups=("gpu-users", "csstaff"))
    context, page = await browser_page(chromium, app, cookies)
    try:
        await page.goto(public_url(app) + "hub/spawn")
        assert await page.locator("input[name=profile]").count() >= 2
        assert await page.locator(".fcs-note").count() == 0
        target.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(target), full_page=True)
    finally:
        await context.close()
    assert target.stat().st_size > 10_000


PATTERN_PROFILES = """\
version: 1
firecrest_url: http://firecrest.invalid
systems:
  - name: cluster
    workdir: /tmp/fcs-test-workdir
profiles:
  - id: text
    display_name: Text options
    system: cluster
    default: true
    options:
      - id: tag
        display_name: Tag
        kind: text
        req: constraint
        pattern: "[a-z0-9-]*"       # the browser cannot compile this (v flag)
      - id: label
        display_name: Label
        kind: text
        req: qos
        pattern: '[a-z0-9\\-]*'       # the same, written so the browser reads it alike
"""


async def test_a_pattern_the_browser_cannot_compile_is_left_to_the_server(
    app, use_spawner, make_user, hub_emulator, workdir, tmp_path, chromium
):
    directory = tmp_path / "patterns"
    write_profiles(directory, hub_emulator, workdir, PATTERN_PROFILES)
    use_spawner(directory)
    user, cookies = await make_user("browser-pattern")
    context, page = await browser_page(chromium, app, cookies)
    try:
        await page.goto(public_url(app) + "hub/spawn")
        tag = page.locator("input[name='text.tag']")
        label = page.locator("input[name='text.label']")
        # Only the browser-safe pattern reaches the page.
        assert await tag.get_attribute("pattern") is None
        assert await label.get_attribute("pattern") == "[a-z0-9\\-]*"

        # The browser checks the safe one itself: the form is not sent.
        await label.fill("Bad Label")
        assert await label.evaluate("e => e.validity.patternMismatch")
        await page.locator("#spawn_form button[type=submit]").click()
        await asyncio.sleep(0.5)
        assert urlparse(page.url).path.endswith("/hub/spawn")
        assert not user.spawner.active
        await label.fill("ok-1")

        # No browser check on the other: the form is sent, and the server refuses it.
        await tag.fill("Not Valid!")
        assert await tag.evaluate("e => e.validity.valid")
        await page.locator("#spawn_form button[type=submit]").click()
        error = page.locator(".spawn-error-msg")
        await error.wait_for()
        text = await error.text_content()
        assert "tag" in text
        assert "does not match the required pattern" in text
    finally:
        await context.close()
    assert not user.spawner.active
    assert [j for j in hub_emulator.admin.jobs() if j["user"] == user.name] == []
