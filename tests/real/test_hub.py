"""The whole life cycle through a real JupyterHub with the real FirecREST 2.5.6 in the path.

JupyterHub + configurable-http-proxy + this spawner (profile mode) talk to the
real server, which submits over SSH as the user's own Unix account to the real
Slurm with accounting; ``jupyterhub-singleuser`` runs as that account (not
root) from the world-readable job environment made by ``scripts/setup.sh``.
The emulator serves only as the identity provider, with the signing key the
server trusts. Tests run in file order and share one hub.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firecrestspawner import client as fc
from firecrestspawner.demo import CLIENT_ID, DemoOptions, DemoStack, free_port
from firecrestspawner.reaper import Reaper, ReapSettings
from tests.e2e.conftest import E2EHub, browser_login, job_line, wait_for
from tests.fixtures.firecrest_server import JOB_ENV, SERVICE_ACCOUNT, RealFirecrest
from tests.real.conftest import TokenAuth

HERE = Path(__file__).resolve().parent
HUB_ID = "real"

pytestmark = [pytest.mark.real_firecrest, pytest.mark.slurm, pytest.mark.timeout(600)]


def sacct(job_id: str, fields: str = "State,ExitCode,Account,User") -> list[str]:
    """The job's own sacct line (not its steps), split on ``|``."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", job_id, f"--format={fields}"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return lines[0].split("|") if lines else []


def processes_of(user: str) -> list[str]:
    out = subprocess.run(
        ["ps", "-u", user, "-o", "args="], capture_output=True, text=True, check=False
    )
    return out.stdout.splitlines()


@pytest.fixture(scope="module")
def real_hub(
    real_firecrest: RealFirecrest, slurm: Any, chp: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[E2EHub]:
    token = secrets.token_hex(24)
    cmd = [str(JOB_ENV / "bin" / "firecrestspawner-singleuser"),
           str(JOB_ENV / "bin" / "jupyterhub-singleuser")]  # fmt: skip
    options = DemoOptions(
        port=free_port(),
        backend="local",  # the emulator's own scheduler is not used: FirecREST is real
        profiles_dir=HERE / "profiles",
        base_dir=tmp_path_factory.mktemp("real-hub"),
        cleanup_servers=False,
        service_token=token,
        firecrest_url=real_firecrest.url,
        signing_key_file=real_firecrest.signing_key_file,
        service_account_username=SERVICE_ACCOUNT,
        extra_config=f"""
        c.FirecRESTSpawnerBase.hub_id = {HUB_ID!r}
        c.FirecRESTSpawnerBase.workdir = "/home/{{username}}/jupyter"
        c.Spawner.cmd = {cmd!r}
        c.Spawner.args = []
        c.JupyterHub.log_level = "DEBUG"
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
        """,
    )
    stack = DemoStack(options)
    stack.start()
    try:
        yield E2EHub(stack, token)
    finally:
        stack.stop()


async def test_jupyterlab_in_the_browser_as_the_users_own_account(real_hub: E2EHub, page):
    name = "fsp-alice"
    async with real_hub.stopped_after(name):
        await browser_login(page, real_hub.url, name)
        await page.goto(f"{real_hub.url}hub/spawn/{name}")
        await page.check('input[name="profile"][value="notebook"]')
        await page.select_option('select[name="notebook.partition"]', "normal")
        await page.click('#spawn_form [type="submit"]')
        await page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=240_000)
        await page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)

        job_id = await real_hub.job_id(name)
        line = job_line(job_id)
        assert line is not None
        assert line.startswith("RUNNING"), line
        assert line.endswith(" normal"), line
        # Slurm ran the job as fsp-alice, with her default account, and the
        # server process belongs to her, not to root.
        state, _, account, user = sacct(job_id)
        assert (state, account, user) == ("RUNNING", "proj-a", name)
        assert any("jupyterhub-singleuser" in p for p in processes_of(name)), processes_of(name)
        # The token file was read and removed by the wrapper.
        token_dir = Path(f"/home/{name}/jupyter/.firecrestspawner")
        assert not [p for p in token_dir.glob("*") if p.is_file()], list(token_dir.iterdir())

        r = await real_hub.proxied_api(name)
        assert r.status_code == 200, r.text
        assert "version" in r.json()

        await real_hub.stop(name, job_id)
        assert job_line(job_id) is None
        assert sacct(job_id)[0].startswith("CANCELLED")


async def test_rest_spawn_with_a_choice_and_stop_leaves_squeue_empty(real_hub: E2EHub):
    name = "fsp-bob"
    async with real_hub.stopped_after(name):
        session = await real_hub.login(name)
        await session.aclose()
        r = await real_hub.spawn(name, {"profile": "notebook", "partition": "debug"})
        assert r.status_code in (201, 202), r.text
        events = await real_hub.progress(name)
        assert events[-1].get("ready") is True, events
        job_id = await real_hub.job_id(name)
        assert any(job_id in e.get("message", "") for e in events), events
        line = job_line(job_id)
        assert line is not None
        assert line.endswith(" debug"), line
        assert sacct(job_id)[2:] == ["proj-b", name]
        r = await real_hub.proxied_api(name)
        assert r.status_code == 200, r.text
        await real_hub.stop(name, job_id)
        assert not [
            j for j in subprocess.run(
                ["squeue", "-h", "-u", name, "-o", "%j"], capture_output=True, text=True,
                check=True,
            ).stdout.split() if j.startswith(f"fcs.{HUB_ID}.")
        ]  # fmt: skip


async def test_a_job_exiting_3_fails_the_spawn_naming_failed_and_the_code(real_hub: E2EHub):
    name = "fsp-carol"
    async with real_hub.stopped_after(name):
        session = await real_hub.login(name)
        await session.aclose()
        r = await real_hub.spawn(name, {"profile": "broken"})
        assert r.status_code in (201, 202), r.text
        events = await real_hub.progress(name)
        final = events[-1]
        assert final.get("failed") is True, events
        message = final.get("message", "")
        assert "FAILED" in message, message
        assert re.search(r"exit code 3\b", message), message
        assert "real: module load jupyter failed: no such module" in message, message
        server = await real_hub.server(name)
        assert server is None or not server["ready"]


async def test_the_reaper_cancels_an_orphan_as_the_service_account(
    real_hub: E2EHub, real_firecrest: RealFirecrest
):
    """A job named like this hub's that no server owns is cancelled, others are kept."""
    alice = fc.FirecrestClient(
        real_firecrest.url, TokenAuth(real_firecrest, "fsp-alice"), fc.ClientSettings()
    )
    orphan_name = f"fcs.{HUB_ID}.fsp-alice.gone.{uuid.uuid4().hex[:8]}"
    other_name = f"not-a-hub-job-{uuid.uuid4().hex[:8]}"
    ids = []
    try:
        for job_name in (orphan_name, other_name):
            ids.append(
                await alice.submit_once(
                    real_firecrest.system,
                    job_name=job_name,
                    workdir="/home/fsp-alice",
                    script=f"#!/bin/bash\n#SBATCH --job-name={job_name}\n#SBATCH --output=/dev/null\nsleep 300\n",
                    env={},
                )
            )
        orphan_id, other_id = ids
        await wait_for(lambda: job_line(orphan_id), 60, "the orphan to be listed")
        reaper = Reaper(
            ReapSettings(
                firecrest_url=real_firecrest.url,
                systems=[real_firecrest.system],
                client_id=CLIENT_ID,
                client_secret=real_hub.stack.client_secret,
                token_url=real_hub.stack.token_url,
                hub_api_url=f"{real_hub.url}hub/api",
                hub_api_token=real_hub.service_token,
                hub_id=HUB_ID,
                min_age=0,
            )
        )
        report = await reaper.run_once()
        assert not report.errors, report.errors
        assert [d.job_id for d in report.cancelled] == [orphan_id], report.as_dict()
        await wait_for(lambda: job_line(orphan_id) is None, 60, "the orphan to be cancelled")
        assert job_line(other_id) is not None
    finally:
        for job_id in ids:
            subprocess.run(["scancel", job_id], capture_output=True, check=False)
        await alice.close()
