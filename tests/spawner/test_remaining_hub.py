"""A real hub shows a running server's remaining time on its home page (issue #15.3).

The hub renders its home page with the shipped ``templates/hub`` first in its
template path (what ``c.JupyterHub.template_paths`` does, and what the demo
configures); the server runs in an emulator job with a 30 minute time limit.
"""

from __future__ import annotations

import time
from unittest import mock

import pytest
from bs4 import BeautifulSoup
from jinja2 import ChoiceLoader, FileSystemLoader
from jupyterhub.tests.utils import api_request, get_page

from firecrestspawner.remaining import HUB_TEMPLATES

from .test_hub import configured, server_model, wait_for

pytestmark = pytest.mark.timeout(180)


def with_shipped_templates(app):
    """The hub's Jinja environment with ``HUB_TEMPLATES`` first, as ``template_paths`` sets it."""
    env = app.tornado_settings["jinja2_env"]
    return mock.patch.object(
        env, "loader", ChoiceLoader([FileSystemLoader(HUB_TEMPLATES), env.loader])
    )


async def test_home_page_shows_the_remaining_time_of_a_running_server(
    app, fcs_user, emulator, workroot
):
    cls = configured(emulator, workroot, req_runtime="00:30:00", end_warning=45 * 60)
    name = fcs_user.name
    with mock.patch.dict(app.tornado_settings, {"spawner_class": cls}), with_shipped_templates(app):
        cookies = await app.login_user(name)
        # The login replaced auth_state: give the user a FirecREST refresh token again.
        token = emulator.issue_refresh_token(name)
        await app.users[name].save_auth_state({"refresh_token": token})
        r = await get_page("home", app, cookies=cookies)
        assert r.status_code == 200
        assert "firecrestspawner-remaining" not in r.text  # nothing runs yet

        r = await api_request(app, "users", name, "server", method="post")
        assert r.status_code in (201, 202), r.text

        async def ready():
            model = await server_model(app, name)
            return model if model and model.get("ready") else None

        model = await wait_for(ready)
        spawner = app.users[name].spawner
        end = model["state"]["end_time"]  # saved state, from FirecREST's job record
        job = emulator.admin.jobs()
        started = next(j for j in job if j["jobId"] == spawner.job_id)["time"]["start"]
        assert end == started + 30 * 60
        # The progress the user read named the end.
        assert any("Ends at" in e["message"] for e in spawner._progress.events)

        r = await get_page("home", app, cookies=cookies)
        assert r.status_code == 200
        soup = BeautifulSoup(r.text, "html.parser")
        row = soup.select_one("#firecrestspawner-remaining tr.firecrestspawner-remaining-row")
        assert row is not None, r.text
        cell = row.select_one("td.firecrestspawner-remaining").get_text(" ", strip=True)
        minutes = int(cell.split(" min")[0])
        assert 25 <= minutes <= 30, cell
        # 30 min left < end_warning (45 min): the page warns.
        assert "ends soon" in cell
        assert "table-warning" in row["class"]
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))
        assert row.select_one("time")["datetime"] == iso
        assert spawner.api_token not in r.text

        r = await api_request(app, "users", name, "server", method="delete")
        assert r.status_code in (202, 204), r.text

        async def stopped():
            return (await server_model(app, name)) is None

        await wait_for(stopped)
        r = await get_page("home", app, cookies=cookies)
        assert "firecrestspawner-remaining-row" not in r.text
