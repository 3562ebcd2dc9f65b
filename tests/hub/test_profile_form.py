"""Profile mode in a real JupyterHub: the form, and one validator on every
path into a spawn (form POST, ``opt-`` links, REST, saved options).

Spawns run the real SlurmSpawner against the FirecREST emulator; the job is
``sleep`` (no server ever answers), so the tests check what was submitted and
stop the pending spawn.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from bs4 import BeautifulSoup
from jupyterhub.tests.utils import api_request, async_requests, get_page, public_host
from tornado.httputil import url_concat

from .conftest import write_profiles

pytestmark = pytest.mark.timeout(120)


# ----------------------------------------------------------------- helpers


async def spawn_page(app, cookies, path: str = "spawn", **params: str):
    r = await get_page(url_concat(path, params) if params else path, app, cookies=cookies)
    return r, BeautifulSoup(r.text, "html.parser")


async def post_form(app, cookies, fields: dict[str, Any], path: str = "spawn"):
    """POST the spawn form the way a browser does (action URL carries _xsrf)."""
    r, soup = await spawn_page(app, cookies, path)
    r.raise_for_status()
    action = soup.find("form", id="spawn_form")["action"]
    return await async_requests.post(
        public_host(app) + action,
        cookies=cookies,
        data=fields,
        allow_redirects=False,
        headers={"Sec-Fetch-Mode": "navigate"},
    )


async def wait_for_job(spawner, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not spawner.job_id:
        if time.monotonic() > deadline:
            raise AssertionError(f"no job submitted for {spawner._log_name}")
        await asyncio.sleep(0.1)
    return spawner.job_id


def emulator_job(emu, job_id: str) -> dict[str, Any]:
    return next(j for j in emu.admin.jobs() if j["jobId"] == job_id)


async def stop_server(app, user, server_name: str = "") -> None:
    path = (
        ("users", user.name, "servers", server_name)
        if server_name
        else ("users", user.name, "server")
    )
    await api_request(app, *path, method="delete")
    spawner = user.spawners[server_name]
    deadline = time.monotonic() + 30
    while spawner.active:
        if time.monotonic() > deadline:
            raise AssertionError(f"{spawner._log_name} did not stop")
        await asyncio.sleep(0.1)


def jobs_of(emu, name: str) -> list[dict[str, Any]]:
    return [j for j in emu.admin.jobs() if j["user"] == name]


def error_text(soup) -> str:
    node = soup.select_one(".spawn-error-msg")
    return node.get_text(" ", strip=True) if node else ""


# ----------------------------------------------------------------- the form


async def test_form_shows_the_profiles_of_the_users_groups(app, use_spawner, make_user):
    _, alice_cookies = await make_user("fa-alice")
    _, gina_cookies = await make_user("fa-gina", groups=("gpu-users",))

    r, soup = await spawn_page(app, alice_cookies)
    assert r.status_code == 200
    radios = soup.select("form#spawn_form input[name=profile]")
    assert [x["value"] for x in radios] == ["cpu"]

    r, soup = await spawn_page(app, gina_cookies)
    assert r.status_code == 200
    radios = soup.select("form#spawn_form input[name=profile]")
    assert [x["value"] for x in radios] == ["cpu", "gpu"]
    assert soup.find("input", attrs={"value": "cpu"}).has_attr("checked")  # the default profile
    # Cluster-derived accounts came from FirecREST with the user's token.
    accounts = soup.find("select", attrs={"name": "gpu.account"})
    assert [o["value"] for o in accounts.find_all("option")] == ["proj-x", "proj-y"]
    assert not soup.select(".fcs-note")


async def test_hostile_profile_texts_render_as_text(app, use_spawner, make_user):
    _, cookies = await make_user("mallory")
    r, soup = await spawn_page(app, cookies)
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    assert "<img src=x" not in r.text
    assert "<svg" not in r.text
    label = soup.find("label", attrs={"for": "fcs-p2"})
    assert label.get_text() == '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


async def test_firecrest_down_form_renders_with_fallback_and_note(
    app, use_spawner, make_user, hub_emulator
):
    _, cookies = await make_user("fa-down", groups=("gpu-users",))
    hub_emulator.admin.set_faults(rules=[{"route": "GET /status/*", "status": 503}])
    r, soup = await spawn_page(app, cookies)
    assert r.status_code == 200
    accounts = soup.find("select", attrs={"name": "gpu.account"})
    assert [o["value"] for o in accounts.find_all("option")] == ["fallback-account"]
    notes = " ".join(n.get_text() for n in soup.select(".fcs-note"))
    # Reads are retried (bounded), so a failing FirecREST usually hits the form's time bound.
    assert "FirecREST" in notes
    assert "showing the site's default list" in notes


async def test_firecrest_slow_form_renders_with_fallback_and_note(
    app, use_spawner, make_user, hub_emulator
):
    _, cookies = await make_user("fa-slow", groups=("gpu-users",))
    hub_emulator.admin.set_faults(
        rules=[{"route": "GET /status/*", "status": 503, "delay": 5, "times": 1}]
    )
    r, soup = await spawn_page(app, cookies)
    assert r.status_code == 200
    accounts = soup.find("select", attrs={"name": "gpu.account"})
    assert [o["value"] for o in accounts.find_all("option")] == ["fallback-account"]
    notes = " ".join(n.get_text() for n in soup.select(".fcs-note"))
    assert "did not answer within 0.5 s" in notes


# ----------------------------------------------------------------- form POST


async def test_form_post_with_xsrf_spawns_the_chosen_profile(
    app, use_spawner, make_user, hub_emulator
):
    user, cookies = await make_user("fp-alice")
    fields = {
        "profile": "cpu",
        "cpu.partition": "debug",
        "cpu.runtime": "00:30:00",
        "cpu.nnodes": "2",
        "cpu.use_reservation": "false",
        "cpu.reservation": "course",  # inactive (box unticked): ignored
        "gpu.ngpus": "4",  # another profile's field: ignored
    }
    r = await post_form(app, cookies, fields)
    assert r.status_code == 302, r.text
    assert "spawn-pending" in r.headers["Location"]
    spawner = user.spawner
    job_id = await wait_for_job(spawner)
    # Validated and typed; the other profile's field, the inactive reservation
    # and _xsrf are not kept.
    assert spawner.user_options == {
        "profile": "cpu",
        "partition": "debug",
        "runtime": "00:30:00",
        "nnodes": 2,
        "use_reservation": False,
    }
    state = spawner.get_state()
    assert state["profile"] == "cpu"
    assert state["system"] == "cluster"
    assert state["firecrest_url"] == hub_emulator.url
    job = emulator_job(hub_emulator, job_id)
    assert job["partition"] == "debug"
    await stop_server(app, user)


async def test_form_post_without_xsrf_is_refused(app, use_spawner, make_user, hub_emulator):
    user, cookies = await make_user("fp-noxsrf")
    r = await async_requests.post(
        public_host(app) + app.hub.base_url + "spawn",
        cookies=cookies,
        data={"profile": "cpu"},
        allow_redirects=False,
        headers={"Sec-Fetch-Mode": "navigate"},
    )
    assert r.status_code == 403
    assert not user.spawner.active
    assert jobs_of(hub_emulator, "fp-noxsrf") == []


async def test_form_post_with_invalid_value_shows_the_field(
    app, use_spawner, make_user, hub_emulator
):
    _, cookies = await make_user("fp-bad")
    r = await post_form(app, cookies, {"profile": "cpu", "cpu.nnodes": "99"})
    assert r.status_code == 400
    soup = BeautifulSoup(r.text, "html.parser")
    assert "nnodes" in error_text(soup)
    # The form is shown again with the error.
    assert soup.select("form#spawn_form input[name=profile]")
    assert jobs_of(hub_emulator, "fp-bad") == []


async def test_form_after_a_refused_value_keeps_the_other_choices(
    app, use_spawner, make_user, hub_emulator
):
    _, cookies = await make_user("fp-keep")
    fields = {"profile": "cpu", "cpu.partition": "debug", "cpu.runtime": "00:45:00"}
    r = await post_form(app, cookies, {**fields, "cpu.nnodes": "99"})
    assert r.status_code == 400
    soup = BeautifulSoup(r.text, "html.parser")
    assert "nnodes" in error_text(soup)
    # The refused field is back to its default, the others are as the user sent them.
    selected = soup.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)
    assert selected["value"] == "debug"
    assert soup.find("input", attrs={"name": "cpu.runtime"})["value"] == "00:45:00"
    assert soup.find("input", attrs={"name": "cpu.nnodes"})["value"] != "99"
    # Only that one render: the next visit shows the defaults again.
    _, again = await spawn_page(app, cookies)
    default = again.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)
    assert default is None or default["value"] != "debug"
    assert jobs_of(hub_emulator, "fp-keep") == []


# ----------------------------------------------------------------- REST


async def test_rest_spawn_with_invalid_options_is_400_naming_the_field(
    app, use_spawner, make_user, hub_emulator
):
    user, _ = await make_user("rest-bad")
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "cpu", "partition": "nope"}),
    )
    assert r.status_code == 400
    assert "partition" in r.json()["message"]
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "cpu", "cmd": "rm -rf ~"}),
    )
    assert r.status_code == 400
    assert "cmd" in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []


async def test_rest_options_are_stored_as_validated(app, use_spawner, make_user, hub_emulator):
    """A REST body is stored as sent by JupyterHub; the spawn keeps only what was validated."""
    user, _ = await make_user("rest-canonical")
    body = {"profile": "cpu", "partition": "debug", "nnodes": "2", "_xsrf": "x", "reservation": "c"}
    r = await api_request(app, "users", user.name, "server", method="post", data=json.dumps(body))
    assert r.status_code in (201, 202), r.text
    await wait_for_job(user.spawner)
    expected = {
        "profile": "cpu",
        "partition": "debug",
        "runtime": "01:00:00",
        "nnodes": 2,
        "use_reservation": False,
    }
    r = await api_request(app, "users", user.name)
    assert r.json()["servers"][""]["user_options"] == expected
    assert user.spawner.user_options == expected
    await stop_server(app, user)


async def test_rest_spawn_with_valid_options(app, use_spawner, make_user, hub_emulator):
    user, _ = await make_user("rest-ok", groups=("gpu-users",))
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "gpu", "ngpus": "4"}),
    )
    assert r.status_code in (201, 202), r.text
    job = emulator_job(hub_emulator, await wait_for_job(user.spawner))
    assert job["partition"] == "gpu"  # the profile's fixed value
    assert job["account"] == "proj-x"  # the default from the user's FirecREST accounts
    # What came from the cluster or was typed is known, so the renderer checks it;
    # only the administrator's shell fragments go in unchecked.
    request = await user.spawner.resolve_profile_request()
    assert "account" in request.user_set  # from the user's FirecREST accounts
    assert "partition" not in request.user_set  # the profile's fixed value
    assert not {"account", "ngpus", "partition"} & request.trusted()
    # After a hub restart a fresh spawner gets the profile's state regexes back.
    state = user.spawner.get_state()
    assert (state["profile"], state["system"]) == ("gpu", "cluster")
    # A new server of the user: JupyterHub 6 names the call, 5.4 creates it on get.
    create = getattr(user, "get_or_create_spawner", None)
    fresh = create("restarted", "restarted") if create else user.get_spawner("restarted")
    assert not fresh.job_id
    fresh.load_state(state)
    fresh.job_status = "SUSPENDED 127.0.0.1"
    assert fresh.state_ispending()
    assert fresh.host == "cluster"  # the system of the job, for site hooks
    await stop_server(app, user)


# ----------------------------------------------------------------- opt- links


async def test_links_are_refused_unless_the_site_allows_them(
    app, use_spawner, make_user, hub_emulator
):
    user, cookies = await make_user("link-off")
    r, soup = await spawn_page(app, cookies, **{"opt-profile": "cpu"})
    assert r.status_code == 400
    assert "link" in error_text(soup)
    assert not user.spawner.active
    assert jobs_of(hub_emulator, user.name) == []


async def test_link_with_value_outside_the_allowed_set_is_refused(
    app, use_spawner, make_user, hub_emulator
):
    use_spawner(allow_link_spawn=True)
    user, cookies = await make_user("link-bad")
    r, soup = await spawn_page(
        app, cookies, **{"opt-profile": "cpu", "opt-partition": "evil; rm -rf /"}
    )
    assert r.status_code == 400
    assert "partition" in error_text(soup)
    # The refused value is echoed in the message: as text.
    r, soup = await spawn_page(
        app, cookies, **{"opt-profile": "cpu", "opt-partition": "<img src=x onerror=alert(7)>"}
    )
    assert r.status_code == 400
    assert "<img src=x onerror=alert(7)>" in error_text(soup)
    assert "<img src=x" not in r.text
    r, soup = await spawn_page(app, cookies, **{"opt-profile": "cpu", "opt-prologue": "x"})
    assert r.status_code == 400
    assert "prologue" in error_text(soup)
    assert not user.spawner.active
    assert jobs_of(hub_emulator, user.name) == []


async def test_valid_link_spawns(app, use_spawner, make_user, hub_emulator):
    use_spawner(allow_link_spawn=True)
    user, cookies = await make_user("link-ok")
    r = await get_page(
        url_concat("spawn", {"opt-profile": "cpu", "opt-partition": "debug"}),
        app,
        cookies=cookies,
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    job = emulator_job(hub_emulator, await wait_for_job(user.spawner))
    assert job["partition"] == "debug"
    await stop_server(app, user)


# ----------------------------------------------------------------- group restriction


async def test_group_restricted_profile_is_refused_on_every_path(
    app, use_spawner, make_user, hub_emulator
):
    use_spawner(allow_link_spawn=True)
    user, cookies = await make_user("outsider")
    # form POST (crafted: the form does not offer it)
    r = await post_form(app, cookies, {"profile": "gpu", "gpu.ngpus": "1"})
    assert r.status_code == 400
    assert "profile" in error_text(BeautifulSoup(r.text, "html.parser"))
    # opt- link
    r, soup = await spawn_page(app, cookies, **{"opt-profile": "gpu"})
    assert r.status_code == 400
    assert "profile" in error_text(soup)
    # REST
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "gpu"}),
    )
    assert r.status_code == 400
    assert "profile" in r.json()["message"]
    # saved options (as left by an earlier spawn or a PATCH), re-used by an option-less start
    user.spawner.orm_spawner.user_options = {"profile": "gpu"}
    app.db.commit()
    r = await api_request(app, "users", user.name, "server", method="post")
    assert r.status_code == 400
    assert "profile" in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []


async def test_saved_options_invalid_after_a_profile_change_are_refused(
    app, use_spawner, make_user, hub_emulator, workdir, tmp_path
):
    directory = tmp_path / "changing"
    site = write_profiles(directory, hub_emulator, workdir)
    use_spawner(directory)
    user, _ = await make_user("saved")
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "cpu", "partition": "debug"}),
    )
    assert r.status_code in (201, 202), r.text
    await wait_for_job(user.spawner)
    await stop_server(app, user)
    assert user.spawner.orm_spawner.user_options["partition"] == "debug"

    # The site removes the debug partition from the profile.
    text = site.read_text().replace("          debug: {display_name: Debug (30 min)}\n", "")
    assert text != site.read_text()
    site.write_text(text)

    before = len(jobs_of(hub_emulator, user.name))
    r = await api_request(app, "users", user.name, "server", method="post")
    assert r.status_code == 400
    message = r.json()["message"]
    assert "partition" in message
    assert "choose again" in message
    assert len(jobs_of(hub_emulator, user.name)) == before
    # The form no longer preselects the stale choice and says why.
    _, cookies = await make_user("saved")
    _, soup = await spawn_page(app, cookies)
    notes = " ".join(n.get_text() for n in soup.select(".fcs-note"))
    assert "previous choices are no longer valid" in notes
    selected = soup.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)
    assert selected["value"] == "normal"


async def test_previous_valid_choices_are_preselected(app, use_spawner, make_user):
    user, cookies = await make_user("remember")
    user.spawner.orm_spawner.user_options = {"profile": "cpu", "partition": "debug", "nnodes": "3"}
    app.db.commit()
    _, soup = await spawn_page(app, cookies)
    selected = soup.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)
    assert selected["value"] == "debug"
    assert soup.find("input", attrs={"name": "cpu.nnodes"})["value"] == "3"
    assert "nodes: 3" in soup.select_one(".fcs-summary-text").get_text()


# ----------------------------------------------------------------- named servers


async def test_named_servers_with_different_profiles(app, use_spawner, make_user, hub_emulator):
    user, _ = await make_user("named", groups=("gpu-users",))
    for server, options in (
        ("cpu-one", {"profile": "cpu", "partition": "debug"}),
        ("gpu-one", {"profile": "gpu", "ngpus": "1"}),
    ):
        r = await api_request(
            app,
            "users",
            user.name,
            "servers",
            server,
            method="post",
            data=json.dumps(options),
        )
        assert r.status_code in (201, 202), r.text
    cpu_job = emulator_job(hub_emulator, await wait_for_job(user.spawners["cpu-one"]))
    gpu_job = emulator_job(hub_emulator, await wait_for_job(user.spawners["gpu-one"]))
    assert (cpu_job["partition"], gpu_job["partition"]) == ("debug", "gpu")
    assert user.spawners["cpu-one"].get_state()["profile"] == "cpu"
    assert user.spawners["gpu-one"].get_state()["profile"] == "gpu"
    await stop_server(app, user, "cpu-one")
    await stop_server(app, user, "gpu-one")


async def test_admin_sees_the_target_users_profiles_escaped(
    app, use_spawner, make_user, admin_user
):
    """/hub/spawn/<user> for an admin: the target's visibility, and no stored XSS."""
    await make_user("mallory")
    admin_cookies = await app.login_user(admin_user.name)
    r, soup = await spawn_page(app, admin_cookies, "spawn/mallory")
    assert r.status_code == 200
    radios = soup.select("form#spawn_form input[name=profile]")
    assert [x["value"] for x in radios] == ["cpu", "hostile"]
    assert "<script>alert(1)" not in r.text
    assert "<img src=x" not in r.text
