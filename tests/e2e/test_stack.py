"""The whole stack on real components: JupyterHub + configurable-http-proxy + our spawner
+ FirecREST emulator + a real Slurm + a real jupyterhub-singleuser, with headless Chromium.

Tests run in file order and share one hub; each uses its own user. The last
test checks that no job of this hub is left in Slurm.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pytest

from .conftest import (
    HUB_ID,
    RECORD_PROGRESS_JS,
    E2EHub,
    browser_login,
    job_line,
    recorded_progress,
    screenshot_path,
    squeue,
    wait_for,
)

#: A job that takes the whole test node, so that the next one queues.
FILL_NODE = ["sbatch", "--parsable", "--exclusive", "-N1", "-J", "e2e-filler", "-o", "/dev/null"]

pytestmark = [pytest.mark.e2e, pytest.mark.slurm, pytest.mark.timeout(600)]


async def test_rest_spawn_with_profile_reaches_server_through_proxy_and_stop_cancels_job(
    e2e_hub: E2EHub,
):
    name = "e2e-rest"
    async with e2e_hub.stopped_after(name):
        session = await e2e_hub.login(name)  # the demo authenticator stores a refresh token
        await session.aclose()

        r = await e2e_hub.spawn(name, {"profile": "notebook", "partition": "normal"})
        assert r.status_code in (201, 202), r.text
        events = await e2e_hub.progress(name)
        assert events[-1].get("ready") is True, events
        job_id = await e2e_hub.job_id(name)
        messages = [e.get("message", "") for e in events]
        # The spawner's own progress messages, between the hub's first and last.
        assert any(job_id in m for m in messages), messages

        line = job_line(job_id)
        assert line is not None
        assert line.startswith("RUNNING"), line
        assert line.endswith(" normal"), line  # the profile option reached sbatch

        r = await e2e_hub.proxied_api(name)
        assert r.status_code == 200, r.text
        assert "version" in r.json()

        await e2e_hub.stop(name, job_id)
        r = await e2e_hub.proxied_api(name)
        assert r.status_code != 200 or "version" not in r.text


async def test_browser_form_spawn_shows_progress_and_opens_jupyterlab(
    e2e_hub: E2EHub, page, tmp_path
):
    name = "e2e-form"
    async with e2e_hub.stopped_after(name):
        await page.context.add_init_script(RECORD_PROGRESS_JS)
        await browser_login(page, e2e_hub.url, name)
        await page.goto(f"{e2e_hub.url}hub/spawn/{name}")
        await page.check('input[name="profile"][value="notebook"]')
        await page.select_option('select[name="notebook.partition"]', "debug")
        await page.screenshot(path=screenshot_path(tmp_path, "spawn-form.png"), full_page=True)

        await page.click('#spawn_form [type="submit"]')
        await page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=240_000)
        await page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        await page.wait_for_timeout(1500)  # let Lab paint its launcher for the screenshot
        await page.screenshot(path=screenshot_path(tmp_path, "jupyterlab.png"))

        job_id = await e2e_hub.job_id(name)
        shown = await recorded_progress(page)
        # The spawn page showed the spawner's messages about the batch job.
        assert any(job_id in text for text in shown), shown
        line = job_line(job_id)
        assert line is not None
        assert line.endswith(" debug"), line

        await e2e_hub.stop(name, job_id)


async def test_failing_job_shows_reason_and_log_tail_on_spawn_page(e2e_hub: E2EHub, page):
    name = "e2e-broken"
    async with e2e_hub.stopped_after(name):
        await browser_login(page, e2e_hub.url, name)
        await page.goto(f"{e2e_hub.url}hub/spawn/{name}")
        await page.check('input[name="profile"][value="broken"]')
        await page.click('#spawn_form [type="submit"]')
        await page.wait_for_url(re.compile(rf".*/hub/spawn-pending/{name}.*"))

        message = page.locator("#progress-message")
        await page.locator("#progress-bar.bg-danger").wait_for(timeout=240_000)
        text = await message.text_content() or ""
        # The reason (the job ended, with its state) and the tail of the job's log.
        assert re.search(r"Job \d+ ended .*state [A-Z_]+", text), text
        assert "e2e: module load jupyter failed: no such module" in text, text

        server = await e2e_hub.server(name)
        assert server is None or not server["ready"]
        assert not [line for line in squeue("-o", "%j") if line.startswith(f"fcs.{HUB_ID}.{name}.")]


async def test_pending_job_stays_pending_while_queue_is_full_and_page_says_why(
    e2e_hub: E2EHub, page
):
    name = "e2e-queued"
    async with e2e_hub.stopped_after(name):
        filler = subprocess.run(
            [*FILL_NODE, "--wrap", "sleep 600"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        try:
            await wait_for(
                lambda: (job_line(filler) or "").startswith("RUNNING"), 60, "the filler job to run"
            )
            await browser_login(page, e2e_hub.url, name)
            r = await e2e_hub.spawn(name, {"profile": "notebook", "partition": "debug"})
            assert r.status_code in (201, 202), r.text
            await page.goto(f"{e2e_hub.url}hub/spawn-pending/{name}")

            # The page says why the job waits: Slurm's reason for the pending job.
            waiting = page.locator("#progress-message", has_text="Resources")
            await waiting.wait_for(timeout=120_000)
            job_id = await e2e_hub.job_id(name)
            line = job_line(job_id)
            assert line is not None
            assert line.startswith("PENDING Resources"), line

            # It stays pending while the node is full (several poll rounds).
            await asyncio.sleep(15)
            line = job_line(job_id)
            assert line is not None
            assert line.startswith("PENDING"), line
            server = await e2e_hub.server(name)
            assert server is not None
            assert not server["ready"]
            assert server["pending"] == "spawn"

            # Free the node: the same spawn goes on and becomes ready.
            subprocess.run(["scancel", filler], check=True, timeout=30)
            await e2e_hub.wait_ready(name)
            r = await e2e_hub.proxied_api(name)
            assert r.status_code == 200
            await e2e_hub.stop(name, job_id)
        finally:
            subprocess.run(["scancel", filler], check=False, timeout=30)


async def test_hub_restart_keeps_server_reachable_and_stoppable(e2e_hub: E2EHub):
    name = "e2e-restart"
    async with e2e_hub.stopped_after(name):
        session = await e2e_hub.login(name)
        await session.aclose()
        r = await e2e_hub.spawn(name, {"profile": "notebook"})
        assert r.status_code in (201, 202), r.text
        await e2e_hub.wait_ready(name)
        job_id = await e2e_hub.job_id(name)

        e2e_hub.stack.stop_hub()  # SIGTERM; cleanup_servers is False
        line = job_line(job_id)
        assert line is not None
        assert line.startswith("RUNNING"), line

        e2e_hub.stack.start_hub()
        server = await e2e_hub.wait_ready(name, timeout=120)
        assert server["state"]["job_id"] == job_id
        r = await e2e_hub.proxied_api(name)
        assert r.status_code == 200, r.text

        await e2e_hub.stop(name, job_id)


def test_no_job_of_this_hub_is_left_in_slurm(slurm):
    jobs = squeue("-o", "%i %j %T")
    ours = [j for j in jobs if j.split()[1].startswith(f"fcs.{HUB_ID}.") or "e2e-filler" in j]
    assert ours == []
    if os.environ.get("CI") == "true":
        # CI runs one suite at a time on its own Slurm: nothing at all is left.
        assert jobs == []
