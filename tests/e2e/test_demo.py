"""``firecrestspawner demo`` as a user runs it: the shipped demo profile, any user name,
JupyterLab as a batch job; Ctrl-C stops everything and cancels the jobs it started."""

from __future__ import annotations

import html
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firecrestspawner.demo import DemoOptions, DemoStack, free_port

from .conftest import (
    RECORD_PROGRESS_JS,
    browser_login,
    job_line,
    recorded_progress,
    screenshot_path,
    squeue,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def form_spawn(client: httpx.AsyncClient, name: str, data: dict[str, str]) -> None:
    """Submit the spawn form like a browser: action URL with _xsrf, form fields."""
    r = await client.get(f"hub/spawn/{name}")
    assert r.status_code == 200, r.text[:500]
    match = re.search(
        r'<form[^>]*\baction="([^"]+)"', r.text[r.text.index('id="spawn_form"') - 200 :]
    )
    assert match, "no spawn form"
    r = await client.post(html.unescape(match.group(1)), data=data)
    assert r.status_code == 302, r.text[:500]
    assert f"/hub/spawn-pending/{name}" in r.headers["location"]


async def test_demo_with_in_process_backend_serves_jupyterlab(chp, page, tmp_path):
    """A new user logs in with any name, picks the demo profile and gets JupyterLab."""
    options = DemoOptions(port=free_port(), backend="local", base_dir=tmp_path / "demo")
    with DemoStack(options) as stack:
        name = "ada"
        await page.context.add_init_script(RECORD_PROGRESS_JS)
        started = time.monotonic()
        await browser_login(page, stack.hub_url, name)
        await page.goto(f"{stack.hub_url}hub/spawn/{name}")
        await page.check('input[name="profile"][value="notebook"]')
        await page.screenshot(path=screenshot_path(tmp_path, "demo-spawn-form.png"), full_page=True)
        await page.click('#spawn_form [type="submit"]')
        await page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=240_000)
        await page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        # A figure for the README, not an assertion (see it with `pytest -rP`).
        print(
            f"demo, in-process scheduler: login to JupyterLab in {time.monotonic() - started:.1f} s"
        )
        await page.wait_for_timeout(1500)
        news = page.get_by_role("button", name="No", exact=True)  # Lab's news prompt
        if await news.count():
            await news.first.click()
            await page.wait_for_timeout(1000)
        await page.screenshot(path=screenshot_path(tmp_path, "demo-jupyterlab.png"))

        shown = await recorded_progress(page)
        jobs = stack.jobs()
        assert [j["user"] for j in jobs] == [name]
        assert jobs[0]["status"]["state"] == "RUNNING"
        assert any(str(jobs[0]["jobId"]) in text for text in shown), shown
        # The home page shows the server's remaining time: the notebook profile's
        # default limit is 1 hour (#15.3).
        await page.goto(f"{stack.hub_url}hub/home")
        cell = page.locator("#firecrestspawner-remaining td.firecrestspawner-remaining")
        remaining = (await cell.first.inner_text()).strip()
        assert re.fullmatch(r"(59|[1-5]\d) min|1 h 00 min", remaining), remaining
        end = stack.jobs()[0]["time"]
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end["start"] + end["limit"]))
        shown_end = page.locator("#firecrestspawner-remaining time").first
        assert await shown_end.get_attribute("datetime") == iso
        # The production token path: the refresh token came from the IdP at login.
        grants = stack.admin("GET", "counters")["idp_grants"]
        assert grants.get("password") == 1, grants
    # Leaving the stack (what Ctrl-C does) cancelled the job before stopping the emulator.
    assert "Cancelling job" in stack.hub_log.read_text()


@pytest.mark.slurm
async def test_demo_command_on_slurm_and_ctrl_c_cancels_its_jobs(slurm, chp, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firecrestspawner",
            "demo",
            "--port",
            str(port),
            "--backend",
            "slurm",
            "--base-dir",
            str(tmp_path / "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "JupyterHub is ready" in line:
                break
        assert any("JupyterHub is ready" in line for line in output), "".join(output)
        url = f"http://127.0.0.1:{port}/"

        name = "grace"
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await client.get("hub/login")
            r = await client.post(
                "hub/login",
                data={"username": name, "password": "x", "_xsrf": client.cookies.get("_xsrf")},
            )
            assert r.status_code == 302
            await form_spawn(client, name, {"profile": "quick"})

            async def lab() -> bool:
                r = await client.get(f"user/{name}/lab", follow_redirects=True)
                return r.status_code == 200 and "JupyterLab" in r.text

            await wait_for(lab, 240, "JupyterLab of the demo user", 2.0)

        jobs = [line.split() for line in squeue("-o", "%i %j")]
        mine = [jid for jid, jname in jobs if jname.startswith(f"fcs.demo.{name}.")]
        assert len(mine) == 1, jobs

        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        rest, _ = proc.communicate(timeout=180)
        output.append(rest)
        assert proc.returncode == 0, "".join(output)
        assert "Stopped." in rest
        assert job_line(mine[0]) is None, f"job {mine[0]} still in squeue"
    finally:
        if proc.poll() is None:  # the demo's own clean-up first: its children are not ours
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    assert not Path(tmp_path / "demo" / "hub" / "jupyterhub.pid").exists()
