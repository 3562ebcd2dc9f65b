"""Host extraction hooks and the profile-mode hook."""

from __future__ import annotations

import pytest

from firecrestspawner import errors
from firecrestspawner.request import SpawnRequest, StateRegexes
from firecrestspawner.spawner import SlurmSpawner

from .conftest import new_spawner
from .test_lifecycle import SLEEPER, started, user_message

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("traits", "job_status", "expected"),
    [
        pytest.param({}, "RUNNING nid[003-004]", "nid003", id="hostlist-first-node"),
        pytest.param(
            {"node_name_template": "{}.cluster.example.org"},
            "RUNNING nid007",
            "nid007.cluster.example.org",
            id="node-name-template",
        ),
        pytest.param(
            {"state_exechost_re": r"^\S+ nid(\d+)$", "state_exechost_exp": r"node\1"},
            "RUNNING nid042",
            "node042",
            id="exechost-exp",
        ),
        pytest.param(
            {"custom_state_gethost": lambda spawner: f"custom-{spawner.job_status.split()[1]}"},
            "RUNNING nid001",
            "custom-nid001",
            id="custom-sync",
        ),
    ],
)
async def test_state_gethost(fcs_user, emulator, workroot, traits, job_status, expected):
    spawner = new_spawner(fcs_user, emulator, workroot, **traits)
    spawner.job_status = job_status
    assert await spawner.state_gethost() == expected


async def test_async_custom_state_gethost(fcs_user, emulator, workroot):
    async def gethost(spawner):
        return "async-host"

    spawner = new_spawner(fcs_user, emulator, workroot, custom_state_gethost=gethost)
    spawner.job_status = "RUNNING nid001"
    assert await spawner.state_gethost() == "async-host"


async def test_empty_host_fails_loudly_and_cancels(fcs_user, emulator, workroot):
    spawner = new_spawner(
        fcs_user, emulator, workroot, batch_script=SLEEPER, state_exechost_re=r"^NEVER (\S+)"
    )
    with pytest.raises(errors.HTTPError) as info:
        await spawner.start()
    assert "node could not be determined" in user_message(info.value)
    assert spawner.job_id
    assert isinstance(await spawner.poll(), int)


@pytest.mark.parametrize(
    ("job_status", "pending", "running", "unknown"),
    [
        pytest.param("PENDING", True, False, False, id="pending"),
        pytest.param("CONFIGURING nid1", True, False, False, id="configuring"),
        pytest.param("RUNNING nid1", False, True, False, id="running"),
        pytest.param("COMPLETING nid1", False, True, False, id="completing-regex"),
        pytest.param(
            "slurm_load_jobs error: Socket timed out on send/recv",
            False,
            False,
            True,
            id="unknown",
        ),
    ],
)
async def test_regex_state_methods(
    fcs_user, emulator, workroot, job_status, pending, running, unknown
):
    spawner = new_spawner(fcs_user, emulator, workroot)
    spawner.job_status = job_status
    assert spawner.state_ispending() is pending
    assert spawner.state_isrunning() is running
    assert spawner.state_isunknown() is unknown


class ProfileSpawner(SlurmSpawner):
    """Profile mode as the profiles engineer will build it: only a SpawnRequest."""

    async def resolve_profile_request(self):
        template = SLEEPER.replace("sleep 600", "echo marker={{ marker }}; sleep 600")
        return SpawnRequest(
            system=self.req_host,
            firecrest_url=self.firecrest_url,
            template=template,
            variables={"marker": "from-profile", "partition": "debug"},
            workdir=self._job_workdir(),
            regexes=StateRegexes(running=r"^RUNNING"),
            profile="gpu",
        )


async def test_profile_mode_hook_drives_the_spawn(fcs_user, emulator, workroot):
    spawner = new_spawner(fcs_user, emulator, workroot, cls=ProfileSpawner)
    await started(spawner)
    backend = emulator.emulator.backends[emulator.system]
    script = backend._jobs[spawner.job_id].record.script
    assert "marker=from-profile" in script
    assert spawner.get_state()["profile"] == "gpu"
    assert spawner.state_isrunning()
    spawner.job_status = "COMPLETING nid1"
    assert not spawner.state_isrunning()  # the profile's regex, not the trait
    await spawner.stop()
