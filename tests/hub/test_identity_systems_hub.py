"""Visibility by cluster identity and multi-system profiles in a real JupyterHub (#14.1, #14.4).

The FirecREST emulator reports per-user Slurm accounts and Unix groups in
userinfo, as the real server does. A user without the account cannot reach a
project-restricted profile by any path (form POST, ``opt-`` link, REST, saved
options); when userinfo cannot be read the profile is hidden and refused with
the reason; a multi-system profile submits to the system the user chose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from jupyterhub.tests.utils import api_request

from firecrestspawner.emulator.config import EmulatorConfig, PartitionConfig, SystemConfig
from firecrestspawner.emulator.testing import RunningEmulator, running_emulator

from .conftest import write_profiles
from .test_profile_form import (
    error_text,
    jobs_of,
    post_form,
    spawn_page,
    stop_server,
    wait_for_job,
)

pytestmark = pytest.mark.timeout(120)

PROFILES = """
firecrest_url: set-by-write_profiles
systems:
  - {name: cluster, workdir: /tmp/fcs-test-workdir}
  - {name: daint, display_name: Daint, workdir: /tmp/fcs-test-workdir}
  - {name: eiger, display_name: Eiger, workdir: /tmp/fcs-test-workdir}
defaults:
  srun: ""
profiles:
  - id: open
    display_name: Everyone
    system: daint
    default: true
    options:
      - id: memory
        kind: choice
        display_name: Memory
        choices:
          8G: {display_name: 8 GB}
          500G: {display_name: 500 GB (project g152), accounts: [g152]}
      - id: exclusive
        kind: boolean
        display_name: Whole node (Unix group csstaff)
        unix_groups: [csstaff]
        req: options
        true_value: --exclusive
  - id: g152-large
    display_name: Large memory (project g152)
    system: daint
    accounts: [g152]
    req: {memory: 64G}
  - id: staff-unix
    display_name: Staff (Unix group csstaff)
    system: daint
    unix_groups: [csstaff]
  - id: both
    display_name: Daint or Eiger
    systems: [daint, eiger]
    options:
      - id: partition
        kind: cluster_choice
        source: partitions
        display_name: Partition
      - id: runtime
        kind: duration
        display_name: Time limit
        max: "1:00:00"
        default: "30"
"""


@pytest.fixture(scope="module")
def hub_emulator() -> Iterator[RunningEmulator]:
    systems = [
        SystemConfig(name="cluster", node_name="127.0.0.1", slots=16),
        SystemConfig(
            name="daint",
            node_name="127.0.0.1",
            slots=16,
            partitions=[PartitionConfig(name="normal", default=True), PartitionConfig(name="gpu")],
            accounts={"id-alice": ["g152"], "*": ["g999"]},
            unix_groups={"id-alice": ["csstaff"]},
        ),
        SystemConfig(
            name="eiger",
            node_name="127.0.0.1",
            slots=16,
            partitions=[PartitionConfig(name="cpu", default=True)],
            accounts={"*": ["g999"]},
        ),
    ]
    with running_emulator(EmulatorConfig(systems=systems)) as emu:
        yield emu


@pytest.fixture(scope="module")
def profiles_dir(tmp_path_factory, hub_emulator, workdir) -> Path:
    directory = tmp_path_factory.mktemp("identity-profiles")
    write_profiles(directory, hub_emulator, workdir, PROFILES)
    return directory


@pytest.fixture(autouse=True)
def identity_timeout(use_spawner):
    """A bound the first userinfo read (token grant + request) meets on a loaded machine:
    within it, what the cluster says decides; past it, the form fails closed (tested below)."""
    use_spawner(profile_form_timeout=10)


def job_of(emu, user, job_id: str) -> dict:
    """The user's job (job ids are per system: two systems both have a job 1)."""
    (job,) = [j for j in jobs_of(emu, user.name) if j["jobId"] == job_id]
    return job


def offered(soup) -> list[str]:
    return [i["value"] for i in soup.select("input.fcs-profile-radio")]


async def test_the_form_shows_what_the_cluster_says_the_user_holds(app, use_spawner, make_user):
    _, alice = await make_user("id-alice")
    _, bob = await make_user("id-bob")
    _, soup = await spawn_page(app, alice)
    assert offered(soup) == ["open", "g152-large", "staff-unix", "both"]
    memory = soup.find("select", attrs={"name": "open.memory"})
    assert [o["value"] for o in memory.find_all("option")] == ["8G", "500G"]
    assert soup.find("input", attrs={"name": "open.exclusive", "type": "checkbox"}) is not None
    _, soup = await spawn_page(app, bob)
    assert offered(soup) == ["open", "both"]


async def test_a_user_without_the_account_is_refused_on_every_path(
    app, use_spawner, make_user, hub_emulator
):
    use_spawner(allow_link_spawn=True, profile_form_timeout=10)
    user, cookies = await make_user("id-bob")
    # form POST (crafted: the form does not offer it)
    r = await post_form(app, cookies, {"profile": "g152-large"})
    assert r.status_code == 400
    assert "g152-large" in error_text(BeautifulSoup(r.text, "html.parser"))
    # opt- link
    r, soup = await spawn_page(app, cookies, **{"opt-profile": "g152-large"})
    assert r.status_code == 400
    assert "g152-large" in error_text(soup)
    # REST, also for the Unix-group profile
    for profile in ("g152-large", "staff-unix"):
        r = await api_request(
            app, "users", user.name, "server", method="post", data=json.dumps({"profile": profile})
        )
        assert r.status_code == 400
        assert profile in r.json()["message"]
    # saved options re-used by an option-less start
    user.spawner.orm_spawner.user_options = {"profile": "g152-large"}
    app.db.commit()
    r = await api_request(app, "users", user.name, "server", method="post")
    assert r.status_code == 400
    assert "g152-large" in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []


async def test_restricted_choices_and_options_are_refused_on_link_and_rest_paths(
    app, use_spawner, make_user, hub_emulator
):
    use_spawner(allow_link_spawn=True, profile_form_timeout=10)
    user, cookies = await make_user("id-bob")
    _, soup = await spawn_page(app, cookies)
    memory = soup.find("select", attrs={"name": "open.memory"})
    assert [o["value"] for o in memory.find_all("option")] == ["8G"]
    assert soup.find(attrs={"name": "open.exclusive"}) is None
    for field, query in (
        ("memory", {"opt-profile": "open", "opt-memory": "500G"}),
        ("exclusive", {"opt-profile": "open", "opt-exclusive": "true"}),
    ):
        r, soup = await spawn_page(app, cookies, **query)
        assert r.status_code == 400
        assert field in error_text(soup)
        body = {k.removeprefix("opt-"): v for k, v in query.items()}
        r = await api_request(
            app, "users", user.name, "server", method="post", data=json.dumps(body)
        )
        assert r.status_code == 400
        assert field in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []


async def test_the_account_holder_spawns_the_restricted_profile(
    app, use_spawner, make_user, hub_emulator
):
    user, _ = await make_user("id-alice")
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "g152-large"}),
    )
    assert r.status_code in (201, 202), r.text
    job = job_of(hub_emulator, user, await wait_for_job(user.spawner))
    assert job["system"] == "daint"
    await stop_server(app, user)


async def test_unreadable_userinfo_hides_and_refuses_and_the_form_says_why(
    app, use_spawner, make_user, hub_emulator
):
    # The site's bound (short here): a spawn must be refused well within the hub's
    # slow_spawn_timeout, so the REST answer is the 400 itself.
    use_spawner(profile_form_timeout=0.5)
    user, cookies = await make_user("id-alice")
    before = len(jobs_of(hub_emulator, user.name))
    hub_emulator.admin.set_faults(rules=[{"route": "GET /status/*userinfo*", "status": 503}])
    r, soup = await spawn_page(app, cookies)
    assert r.status_code == 200
    assert "g152-large" not in offered(soup)
    assert "staff-unix" not in offered(soup)
    assert "open" in offered(soup)
    notes = " ".join(n.get_text() for n in soup.select(".fcs-note"))
    assert "projects and Unix groups on daint could not be read" in notes
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "g152-large"}),
    )
    assert r.status_code == 400
    message = r.json()["message"]
    assert "g152-large" in message
    assert "cannot be read from FirecREST now" in message
    assert "try again later" in message
    # The same answer as for an id that does not exist: asking confirms nothing.
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "no-such-profile"}),
    )
    assert r.status_code == 400
    unknown = r.json()["message"]
    assert message.replace("g152-large", "ID") == unknown.replace("no-such-profile", "ID")
    assert len(jobs_of(hub_emulator, user.name)) == before


async def test_multi_system_rest_spawn_goes_to_the_chosen_system(
    app, use_spawner, make_user, hub_emulator
):
    user, _ = await make_user("ms-rest")
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "both", "system": "eiger"}),
    )
    assert r.status_code in (201, 202), r.text
    job = job_of(hub_emulator, user, await wait_for_job(user.spawner))
    assert job["system"] == "eiger"
    assert job["partition"] == "cpu"  # eiger's partition, read from eiger
    state = user.spawner.get_state()
    assert state["system"] == "eiger"
    assert user.spawner.user_options == {
        "profile": "both",
        "system": "eiger",
        "partition": "cpu",
        "runtime": "00:30:00",
    }
    await stop_server(app, user)


async def test_multi_system_form_post_without_javascript(app, use_spawner, make_user, hub_emulator):
    user, cookies = await make_user("ms-form")
    _, soup = await spawn_page(app, cookies)
    systems = soup.find("select", attrs={"name": "both.system"})
    assert [o["value"] for o in systems.find_all("option")] == ["daint", "eiger"]
    partitions = soup.find("select", attrs={"name": "both.partition"})
    assert [(o["value"], o["data-fcs-image"]) for o in partitions.find_all("option")] == [
        ("normal", "daint"),
        ("gpu", "daint"),
        ("cpu", "eiger"),
    ]
    # Without JavaScript every field is posted; a partition of the other system is refused.
    fields = {"profile": "both", "both.system": "eiger", "both.partition": "gpu"}
    r = await post_form(app, cookies, {**fields, "both.runtime": "20"})
    assert r.status_code == 400
    assert "partition" in error_text(BeautifulSoup(r.text, "html.parser"))
    r = await post_form(
        app, cookies, {**fields, "both.partition": "cpu", "both.runtime": "20", "open.x": "1"}
    )
    assert r.status_code == 302, r.text
    job = job_of(hub_emulator, user, await wait_for_job(user.spawner))
    assert job["system"] == "eiger"
    await stop_server(app, user)
