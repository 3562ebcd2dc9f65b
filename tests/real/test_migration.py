"""A site's configuration in the existing firecrestspawner's style spawns unchanged.

The hub configuration below is written the way the existing project's Helm
chart (f7t4jhub) configures its spawner: everything on ``c.Spawner``, no
``profiles_dir``, ``cmd`` as one string, an HTML ``options_form`` with an
``options_from_form`` callable, a ``batch_script`` that indexes form values
(``{{ runtime[0] }}``, ``{% if reservation_custom[0] %}``, ``account is
string``), FirecREST and the service account from environment variables. It
runs against the real FirecREST 2.5.6 and the test bed's Slurm, as the users'
own Unix accounts.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.demo import CLIENT_ID, DemoOptions, DemoStack, free_port
from tests.e2e.conftest import E2EHub, browser_login, job_line
from tests.fixtures.firecrest_server import JOB_ENV, SERVICE_ACCOUNT, RealFirecrest

pytestmark = [pytest.mark.real_firecrest, pytest.mark.slurm, pytest.mark.timeout(600)]

FORM = """
<div class="form-group">
  <label for="reservation">Reservation (optional)</label>
  <input type="text" class="form-control" name="reservation" id="reservation">
</div>
<div class="form-group">
  <label for="reservation_custom">Custom reservation (optional)</label>
  <input type="text" class="form-control" name="reservation_custom" id="reservation_custom">
</div>
<div class="form-group">
  <label for="account">Account</label>
  <select class="form-control" name="account" id="account">
    <option value="">default</option>
    <option value="proj-a">proj-a</option>
    <option value="proj-b">proj-b</option>
  </select>
</div>
<div class="form-group">
  <label for="nnodes">Nodes</label>
  <select class="form-control" name="nnodes" id="nnodes"><option value="1">1</option></select>
</div>
<div class="form-group">
  <label for="runtime">Job duration</label>
  <select class="form-control" name="runtime" id="runtime">
    <option value="1:00:00">1 hour</option>
    <option value="2:00:00">2 hours</option>
  </select>
</div>
"""

BATCH_SCRIPT = """#!/bin/bash

#SBATCH --job-name=spawner-jupyterhub
#SBATCH --get-user-env

{% if partition  %}#SBATCH --partition={{partition}}{% endif %}
{% if runtime    %}#SBATCH --time={{runtime[0]}}{% endif %}
{% if nnodes     %}#SBATCH --nodes={{nnodes[0]}}{% endif %}
{% if reservation_custom[0] %}
#SBATCH --reservation={{reservation_custom[0]}}
{% elif reservation[0] %}
#SBATCH --reservation={{reservation[0]}}
{% endif %}
{% if account is string %}
#SBATCH --account={{account}}
{% else %}
#SBATCH --account={{account[0]}}
{% endif %}
{% if options    %}#SBATCH {{options}}{% endif %}

export JUPYTERHUB_OAUTH_ACCESS_SCOPES=$(echo $JUPYTERHUB_OAUTH_ACCESS_SCOPES | base64 --decode)
export JUPYTERHUB_OAUTH_SCOPES=$(echo $JUPYTERHUB_OAUTH_SCOPES | base64 --decode)

set -euo pipefail

trap 'echo SIGTERM received' TERM
{{prologue}}
{% if srun %}{{srun}}{% endif %} {{cmd}}
echo "jupyterhub-singleuser ended gracefully"
{{epilogue}}
"""


def site_config(port: int) -> str:
    """The spawner section of a chart-style jupyterhub_config.py."""
    cmd = f"{JOB_ENV}/bin/firecrestspawner-singleuser {JOB_ENV}/bin/jupyterhub-singleuser"
    return textwrap.dedent(
        f"""
        def spawner_options_form(formdata, spawner):
            reservation = formdata.get("reservation", [""])[0].strip()
            if not reservation:
                formdata["reservation"] = [spawner.req_reservation]
            return formdata

        c.JupyterHub.spawner_class = "firecrestspawner.spawner.SlurmSpawner"
        c.Spawner.polling_with_service_account = True
        c.Spawner.req_host = "cluster"
        c.Spawner.req_reservation = ""
        c.Spawner.req_partition = "normal"
        c.Spawner.req_srun = ""
        c.Spawner.node_name_template = "{{}}"
        c.Spawner.workdir = "/home"
        c.Spawner.batch_script = {BATCH_SCRIPT!r}
        c.Spawner.custom_state_gethost = None
        c.Spawner.cmd = {cmd!r}
        c.Spawner.http_timeout = 300
        c.Spawner.options_form = {FORM!r}
        c.Spawner.options_from_form = spawner_options_form
        c.Spawner.poll_interval = 30
        c.Spawner.port = {port}
        c.Spawner.start_timeout = 300
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
        """
    )


def batch_script_of(job_id: str) -> str:
    out = subprocess.run(
        ["scontrol", "write", "batch_script", job_id, "-"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return out.stdout


def directives(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.startswith("#SBATCH")]


@pytest.fixture(scope="module")
def chart_hub(
    real_firecrest: RealFirecrest, slurm: Any, chp: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[E2EHub, int]]:
    token = secrets.token_hex(24)
    port = free_port()
    stack = DemoStack(
        DemoOptions(
            port=free_port(),
            backend="local",  # the emulator only issues tokens: FirecREST is real
            base_dir=tmp_path_factory.mktemp("chart-hub"),
            cleanup_servers=False,
            service_token=token,
            firecrest_url=real_firecrest.url,
            signing_key_file=real_firecrest.signing_key_file,
            service_account_username=SERVICE_ACCOUNT,
            spawner_config=site_config(port),
            hub_env={
                "FIRECREST_URL": real_firecrest.url,
                "SA_CLIENT_ID": CLIENT_ID,
                "SA_AUTH_TOKEN_URL": "",  # set below, once the demo's IdP URL is known
            },
        )
    )
    stack.options.hub_env["SA_AUTH_TOKEN_URL"] = stack.token_url
    stack.options.hub_env["SA_CLIENT_SECRET"] = stack.client_secret
    stack.start()
    try:
        yield E2EHub(stack, token), port
    finally:
        stack.stop()


@pytest.fixture
def reservation() -> Iterator[str]:
    """An active reservation for the test users (the node is theirs while it lasts)."""
    name = "fsp-chart"
    subprocess.run(
        ["scontrol", "create", "reservation", f"ReservationName={name}", "StartTime=now",
         "Duration=60", "Users=fsp-alice,fsp-bob", "Nodes=ALL", "Flags=IGNORE_JOBS"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(
            ["scontrol", "delete", f"ReservationName={name}"],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip


async def test_form_spawn_carries_the_users_choices_into_the_sites_script(
    chart_hub, page, reservation
):
    hub, port = chart_hub
    name = "fsp-alice"
    async with hub.stopped_after(name):
        await browser_login(page, hub.url, name)
        await page.goto(f"{hub.url}hub/spawn/{name}")
        await page.select_option('select[name="runtime"]', "2:00:00")
        await page.select_option('select[name="account"]', "proj-b")
        await page.fill('input[name="reservation_custom"]', reservation)
        await page.click('#spawn_form [type="submit"]')
        await page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=240_000)
        await page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)

        job_id = await hub.job_id(name)
        lines = directives(batch_script_of(job_id))
        assert "#SBATCH --time=2:00:00" in lines, lines
        assert "#SBATCH --account=proj-b" in lines, lines
        assert f"#SBATCH --reservation={reservation}" in lines, lines
        assert "#SBATCH --partition=normal" in lines, lines
        # The hub's own job name comes last, so it can find the job again.
        assert lines[-1].startswith("#SBATCH --job-name=fcs.jupyterhub.fsp-alice."), lines
        assert job_line(job_id).startswith("RUNNING")
        # c.Spawner.port is honoured: the server listens where the site said.
        server = await hub.server(name)
        assert server is not None
        assert server["url"] == f"/user/{name}/"
        state = server["state"]
        assert int(state["port"]) == port, state

        await hub.stop(name, job_id)
        assert job_line(job_id) is None


async def test_rest_spawn_with_the_existing_docs_body(chart_hub):
    """The body the existing project's docs send: lists, directly as user_options."""
    hub, _ = chart_hub
    name = "fsp-bob"
    async with hub.stopped_after(name):
        session = await hub.login(name)
        await session.aclose()
        r = await hub.api(
            "POST",
            f"users/{name}/server",
            json={"reservation": [""], "account": ["proj-b"], "runtime": ["00:10:00"]},
        )
        assert r.status_code in (201, 202), r.text
        events = await hub.progress(name)
        assert events[-1].get("ready") is True, events
        job_id = await hub.job_id(name)
        lines = directives(batch_script_of(job_id))
        assert "#SBATCH --time=00:10:00" in lines, lines
        assert "#SBATCH --account=proj-b" in lines, lines
        assert not [line for line in lines if line.startswith("#SBATCH --reservation")], lines
        r = await hub.proxied_api(name)
        assert r.status_code == 200, r.text
        await hub.stop(name, job_id)


async def test_a_refused_option_names_the_field_and_starts_nothing(chart_hub):
    hub, _ = chart_hub
    name = "fsp-bob"
    session = await hub.login(name)
    await session.aclose()
    before = subprocess.run(
        ["squeue", "-h", "-u", name, "-o", "%i"], capture_output=True, text=True, check=True
    ).stdout
    r = await hub.api(
        "POST", f"users/{name}/server", json={"runtime": ["1:00:00 --uid=0"], "account": ["proj-b"]}
    )
    if r.status_code in (201, 202):
        events = await hub.progress(name)
        message = events[-1].get("message", "")
        assert events[-1].get("failed") is True, events
    else:
        message = r.text
        assert r.status_code == 400, r.text
    assert "runtime" in message, message
    after = subprocess.run(
        ["squeue", "-h", "-u", name, "-o", "%i"], capture_output=True, text=True, check=True
    ).stdout
    assert after == before
    assert Path(f"/home/{name}").exists()
