"""The example profiles in the demo (``firecrestspawner demo --profiles-dir``), with and
without JavaScript (#14 "Done when").

The demo stack runs (JupyterHub, configurable-http-proxy, the FirecREST emulator with
the in-process scheduler) with the three files of ``profiles/examples/`` (their system
``workdir`` lines removed: the demo's users directory is the working directory). The
emulator reports per-user Slurm accounts and Unix groups in userinfo, as FirecREST does.
Jobs wait in the queue (a long queue delay): each test checks the script that was
submitted, on which system, and stops the server.

* Without JavaScript: the form is posted as a browser without scripts posts it (every
  field of every profile); the server keeps the chosen profile's active fields.
* With JavaScript (Debian's headless Chromium): choosing the system shows the options of
  that system only, the debug partition lowers the node limit, the advanced box shows
  the expert options; the spawn carries what was chosen.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firecrestspawner.demo import DemoOptions, DemoStack, free_port

pytestmark = [pytest.mark.timeout(600)]

EXAMPLES = Path(__file__).resolve().parents[2] / "profiles" / "examples"
PARTITIONS = ["normal", "debug", "shared", "priority", "bigmem", "staff"]
SERVICE_TOKEN = "examples-demo-admin-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, chp) -> Iterator[DemoStack]:
    base = tmp_path_factory.mktemp("examples-demo")
    profiles = base / "profiles"
    profiles.mkdir()
    for path in EXAMPLES.glob("*.yaml"):
        text = re.sub(r"(?m)^\s+workdir: .*\n", "", path.read_text(encoding="utf-8"))
        (profiles / path.name).write_text(text, encoding="utf-8")
    options = DemoOptions(
        port=free_port(),
        backend="local",
        base_dir=base / "demo",
        profiles_dir=profiles,
        service_token=SERVICE_TOKEN,
        system_overrides={
            "partitions": [{"name": n, "default": n == "normal"} for n in PARTITIONS],
            "accounts": {"ada": ["g152", "bigmem-2026"], "*": ["g999"]},
            "unix_groups": {"ada": ["hpcstaff"]},
            "queue_delay": 3600,
            "slots": 16,
        },
    )
    with DemoStack(options) as running:
        yield running


async def login(stack: DemoStack, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=stack.hub_url, timeout=60)
    await client.get("hub/login")
    r = await client.post(
        "hub/login",
        data={"username": name, "password": "any", "_xsrf": client.cookies.get("_xsrf")},
    )
    assert r.status_code == 302, r.text[:300]
    return client


async def post_form(client: httpx.AsyncClient, fields: dict[str, str]) -> httpx.Response:
    """The spawn form as a browser without JavaScript posts it."""
    r = await client.get("hub/spawn")
    assert r.status_code == 200, r.text[:300]
    start = r.text.index('id="spawn_form"') - 200
    action = re.search(r'<form[^>]*\baction="([^"]+)"', r.text[start:])
    assert action, "no spawn form"
    return await client.post(html.unescape(action.group(1)), data=fields)


async def api(stack: DemoStack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=f"{stack.hub_url}hub/api/",
        headers={"Authorization": f"token {SERVICE_TOKEN}"},
        timeout=60,
    ) as client:
        return await client.request(method, path, **kwargs)


def job_keys(stack: DemoStack, name: str) -> set[tuple[str, str]]:
    """(system, job id) of the user's jobs (job ids are per system)."""
    return {(j["system"], j["jobId"]) for j in stack.jobs() if j["user"] == name}


async def submitted(stack: DemoStack, name: str, before: set[tuple[str, str]]) -> tuple[dict, str]:
    """The user's job that is not in ``before``, and its script (read back as the user)."""
    deadline = time.monotonic() + 60
    while True:
        new = [j for j in stack.jobs() if j["user"] == name]
        new = [j for j in new if (j["system"], j["jobId"]) not in before]
        if new:
            break
        assert time.monotonic() < deadline, f"no job submitted for {name}"
        await asyncio.sleep(0.3)
    (job,) = new
    token = stack.admin("POST", "tokens", json={"username": name, "type": "access"})["token"]
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(
            f"{stack.emulator_url}/compute/{job['system']}/jobs/{job['jobId']}/metadata",
            headers={"Authorization": f"Bearer {token}"},
        )
    r.raise_for_status()
    return job, r.json()["jobs"][0]["script"]


async def stop(stack: DemoStack, name: str) -> None:
    r = await api(stack, "DELETE", f"users/{name}/server")
    assert r.status_code in (202, 204, 404), r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = await api(stack, "GET", f"users/{name}")
        if not r.json()["servers"]:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{name}'s server did not stop")


def directives(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith(("#SBATCH", "#PBS"))]


# ------------------------------------------------------------ without JavaScript


async def test_without_javascript_each_example_spawns_what_was_chosen(stack):
    client = await login(stack, "ada")
    try:
        page = (await client.get("hub/spawn")).text
        for profile in ("gc-gpu", "gc-cpu", "pbs-chunks", "ps-standard", "ps-bigmem", "ps-staff"):
            assert f'value="{profile}"' in page, profile
        # A browser without JavaScript posts every field of every card.
        every_field = dict(re.findall(r'name="([a-z0-9-]+\.[a-z_]+)" [^>]*value="([^"]*)"', page))
        cases = [
            (
                {
                    "profile": "gc-gpu",
                    "gc-gpu.system": "santis",
                    "gc-gpu.partition": "debug",
                    "gc-gpu.nnodes": "2",
                    "gc-gpu.runtime": "20",
                    "gc-gpu.icon_data": "true",
                    "gc-gpu.account": "g152",
                },
                "santis",
                [
                    "#SBATCH --partition=debug",
                    "#SBATCH --account=g152",
                    "#SBATCH --constraint=icon-data",
                    "#SBATCH --time=00:20:00",
                    "#SBATCH --nodes=2",
                    "#SBATCH --gpus-per-node=4",
                    "#SBATCH --uenv=prgenv-gnu/24.11:v1",
                ],
            ),
            (
                {
                    "profile": "pbs-chunks",
                    "pbs-chunks.queue": "gpu",
                    "pbs-chunks.gpus_per_node": "2",
                },
                "pbscluster",
                ["#PBS -q gpu", "#PBS -l select=1:ncpus=16:mpiprocs=1:mem=16gb:ngpus=2"],
            ),
            (
                {"profile": "ps-bigmem", "ps-bigmem.account": "bigmem-2026"},
                "hpc",
                ["#SBATCH --partition=bigmem", "#SBATCH --account=bigmem-2026"],
            ),
            (
                # The advanced box is not ticked: the expert fields, posted anyway, are ignored.
                {
                    "profile": "ps-standard",
                    "ps-standard.advanced": "false",
                    "ps-standard.qos": "debug",
                    "ps-standard.extra": "--exclusive",
                },
                "hpc",
                ["#SBATCH --partition=shared"],
            ),
        ]
        for fields, system, expected in cases:
            before = job_keys(stack, "ada")
            r = await post_form(client, {**every_field, **fields})
            assert r.status_code == 302, r.text[:500]
            job, script = await submitted(stack, "ada", before)
            assert job["system"] == system
            lines = directives(script)
            for line in expected:
                assert line in lines, (line, lines)
            if fields["profile"] == "ps-standard":
                assert not any("--qos" in x or "--exclusive" in x for x in lines), lines
            if fields["profile"] == "pbs-chunks":
                assert not any(x.startswith("#SBATCH") for x in lines), lines
            await stop(stack, "ada")
    finally:
        await client.aclose()


async def test_without_javascript_a_crafted_post_for_a_project_profile_is_refused(stack):
    client = await login(stack, "bob")  # holds only g999
    try:
        page = (await client.get("hub/spawn")).text
        assert 'value="ps-bigmem"' not in page
        assert 'value="ps-staff"' not in page
        before = job_keys(stack, "bob")
        r = await post_form(client, {"profile": "ps-bigmem"})
        assert r.status_code == 400
        assert "ps-bigmem" in r.text
        r = await post_form(client, {"profile": "ps-standard", "ps-standard.partition": "priority"})
        assert r.status_code == 400
        assert "partition" in r.text
        assert job_keys(stack, "bob") == before
    finally:
        await client.aclose()


# ------------------------------------------------------------ with JavaScript


@pytest.mark.browser
async def test_with_javascript_the_form_follows_the_system_and_the_toggle(stack, page):
    await page.goto(f"{stack.hub_url}hub/login")
    await page.fill("#username_input", "ada")
    await page.fill("#password_input", "any")
    await page.click("#login_submit")
    await page.wait_for_url(re.compile(r".*/hub/(spawn|home).*"))
    await page.goto(f"{stack.hub_url}hub/spawn")

    # (c) the advanced toggle shows the expert options.
    await page.check('input[name="profile"][value="ps-standard"]')
    qos = page.locator('select[name="ps-standard.qos"]')
    assert await qos.is_hidden()
    await page.check('input[name="ps-standard.advanced"][type=checkbox]')
    assert await qos.is_visible()
    assert await page.locator('input[name="ps-standard.extra"]').is_visible()
    # ada holds g152 (priority) and is in hpcstaff (the long QoS): both offered.
    assert await qos.locator('option[value="long"]').count() == 1

    # (a) the system picks the options and the names offered.
    await page.check('input[name="profile"][value="gc-gpu"]')
    icon = page.locator('input[name="gc-gpu.icon_data"][type=checkbox]')
    assert await icon.is_hidden()  # daint is preselected; the option is Santis-only
    nnodes = page.locator('input[name="gc-gpu.nnodes"]')
    assert await nnodes.get_attribute("max") == "16"
    await page.select_option('select[name="gc-gpu.system"]', "santis")
    assert await icon.is_visible()
    assert await nnodes.get_attribute("max") == "8"  # depends_on: {system: {santis: ...}}
    account = page.locator('select[name="gc-gpu.account"]')
    shown = await account.locator("option:not([hidden])").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('data-fcs-image'))"
    )
    assert set(shown) == {"santis"}
    await page.select_option('select[name="gc-gpu.partition"]', "debug")
    assert await nnodes.get_attribute("max") == "2"
    await icon.check()

    before = job_keys(stack, "ada")
    await page.click('#spawn_form [type="submit"]')
    await page.wait_for_url(re.compile(r".*/hub/spawn-pending/.*"))
    job, script = await submitted(stack, "ada", before)
    assert job["system"] == "santis"
    lines = directives(script)
    assert "#SBATCH --partition=debug" in lines
    assert "#SBATCH --time=00:30:00" in lines  # debug's default, set by the script
    assert "#SBATCH --constraint=icon-data" in lines
    await stop(stack, "ada")
