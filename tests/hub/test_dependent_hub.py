"""Dependent and expert options in a real JupyterHub (#14.2, #14.3): one validator on every path.

A value a dependent rule refuses, and a scheduler option outside the
allow-list, are a 400 naming the field on the form path, the ``opt-`` path
and the REST path; nothing is submitted. An allowed scheduler option reaches
the submitted script as its own directive line.
"""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from jupyterhub.tests.utils import api_request, async_requests, get_page
from tornado.httputil import url_concat

from .conftest import write_profiles
from .test_profile_form import (
    emulator_job,
    error_text,
    jobs_of,
    post_form,
    spawn_page,
    stop_server,
    wait_for_job,
)

pytestmark = pytest.mark.timeout(120)

PROFILES = """
version: 1
firecrest_url: http://firecrest.invalid
systems:
  - name: cluster
    scheduler: slurm
    workdir: /tmp/fcs-test-workdir
profiles:
  - id: dep
    display_name: Dependent
    system: cluster
    default: true
    options:
      - id: partition
        display_name: Partition
        kind: choice
        choices:
          normal: {display_name: Normal}
          debug: {display_name: Debug}
      - id: runtime
        display_name: Time limit
        kind: duration
        max: "04:00:00"
        default: "01:00:00"
        depends_on:
          partition:
            debug: {max: "30", default: "20"}
      - id: extra
        display_name: Extra Slurm options
        kind: scheduler_options
        allow:
          --comment: {value: "[a-z]+"}
          --exclusive: {}
"""


@pytest.fixture
def dep_dir(tmp_path, hub_emulator, workdir):
    write_profiles(tmp_path / "profiles", hub_emulator, workdir, PROFILES)
    return tmp_path / "profiles"


async def test_form_refuses_a_value_the_rule_forbids_naming_the_field(
    app, use_spawner, make_user, hub_emulator, dep_dir
):
    use_spawner(dep_dir)
    user, cookies = await make_user("dep-form")
    r, soup = await spawn_page(app, cookies)
    rules = soup.find(attrs={"data-fcs-option": "runtime"}).find(class_="fcs-rules")
    assert rules.get_text() == (
        "Depends on Partition: debug: up to 30 min, default 20 min. Otherwise: up to 4 h, default 1 h."
    )
    fields = {"profile": "dep", "dep.partition": "debug", "dep.runtime": "01:00:00"}
    r = await post_form(app, cookies, fields)
    assert r.status_code == 400
    text = error_text(BeautifulSoup(r.text, "html.parser"))
    assert "runtime" in text
    assert "while partition is debug" in text
    r = await post_form(app, cookies, {**fields, "dep.runtime": "20", "dep.extra": "--wrap=x"})
    assert r.status_code == 400
    assert "extra" in error_text(BeautifulSoup(r.text, "html.parser"))
    assert jobs_of(hub_emulator, user.name) == []


async def test_links_and_rest_refuse_alike(app, use_spawner, make_user, hub_emulator, dep_dir):
    use_spawner(dep_dir, allow_link_spawn=True)
    user, cookies = await make_user("dep-link")
    link = {"opt-profile": "dep", "opt-partition": "debug", "opt-runtime": "45"}
    r, soup = await spawn_page(app, cookies, **link)
    assert r.status_code == 400
    assert "runtime" in error_text(soup)
    r, soup = await spawn_page(app, cookies, **{"opt-profile": "dep", "opt-extra": "--hold"})
    assert r.status_code == 400
    assert "extra" in error_text(soup)
    body = {"profile": "dep", "partition": "debug", "runtime": "45"}
    r = await api_request(app, "users", user.name, "server", method="post", data=json.dumps(body))
    assert r.status_code == 400
    assert "runtime" in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []


async def test_allowed_values_spawn_with_the_rule_default_and_the_directives(
    app, use_spawner, make_user, hub_emulator, dep_dir
):
    use_spawner(dep_dir, allow_link_spawn=True)
    user, cookies = await make_user("dep-ok")
    link = {"opt-profile": "dep", "opt-partition": "debug", "opt-extra": "--comment=hi --exclusive"}
    r = await get_page(url_concat("spawn", link), app, cookies=cookies, allow_redirects=False)
    assert r.status_code == 302, r.text
    job = emulator_job(hub_emulator, await wait_for_job(user.spawner))
    assert job["partition"] == "debug"
    options = user.spawner.user_options
    assert options["runtime"] == "00:20:00"  # the rule's default
    assert options["extra"] == "--comment=hi --exclusive"
    token = hub_emulator.issue_access_token(user.name)
    r = await async_requests.get(
        f"{hub_emulator.url}/compute/cluster/jobs/{job['jobId']}/metadata",
        headers={"Authorization": f"Bearer {token}"},
    )
    script = r.json()["jobs"][0]["script"]
    lines = script.splitlines()
    assert "#SBATCH --comment=hi" in lines
    assert "#SBATCH --exclusive" in lines
    assert "#SBATCH --time=00:20:00" in lines
    await stop_server(app, user)
