"""Partition limits from FirecREST (#14.3): what the real 2.5.6 server reports, and the emulator.

FirecREST's ``/status/{system}/partitions`` reports a partition's name, state,
``cpus`` (TotalCPUs) and ``totalNodes``, and no time limit (its
``scontrol`` parser reads no ``MaxTime``): a profile's ``cluster_max`` can
use the first two, time limits are written in ``depends_on``. The emulator,
run against the same Slurm, must report the same values, and the spawner's
reading of the answer gives the limits the validator enforces.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from firecrestspawner.cluster import partitions_to_choices
from firecrestspawner.profiles import ProfileSet
from firecrestspawner.profiles.choices import ClusterChoices
from firecrestspawner.profiles.loader import load_profile_text
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options
from tests.fixtures.firecrest_server import SYSTEM, RealFirecrest

from .test_differential import ALICE, emulator_twin  # noqa: F401 - the fixture

pytestmark = [pytest.mark.real_firecrest, pytest.mark.slurm, pytest.mark.timeout(600)]


async def _partitions(url: str, token: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(
            f"{url}/status/{SYSTEM}/partitions", headers={"Authorization": f"Bearer {token}"}
        )
    assert r.status_code == 200, r.text
    return sorted(r.json()["partitions"], key=lambda p: p["name"])


def _slurm_nodes() -> dict[str, int]:
    out = subprocess.run(
        ["scontrol", "show", "-o", "partitions"], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
        found[fields["PartitionName"]] = int(fields["TotalNodes"])
    return found


async def test_real_server_and_emulator_report_the_same_partition_limits(
    real_firecrest: RealFirecrest,
    emulator_twin,  # noqa: F811 - the fixture imported above
) -> None:
    token = real_firecrest.idp.issue_access_token(ALICE, lifetime=300)
    real = await _partitions(real_firecrest.url, token)
    emulated = await _partitions(emulator_twin.url, token)
    assert real == emulated
    assert {p["name"]: p["totalNodes"] for p in real} == _slurm_nodes()
    for p in real:
        assert set(p) == {"name", "partition", "cpus", "totalNodes"}  # no time limit

    choices = partitions_to_choices(real)
    profile = f"""
systems: [{{name: {SYSTEM}}}]
profiles:
  - id: p
    display_name: P
    system: {SYSTEM}
    options:
      - {{id: partition, kind: cluster_choice, source: partitions, display_name: Partition}}
      - id: nnodes
        kind: integer
        display_name: Nodes
        min: 1
        max: 64
        cluster_max: {{option: partition, limit: nodes}}
"""
    ps = ProfileSet(load_profile_text(profile, name="real.yaml").profiles)
    cluster = (ClusterChoices("partitions", SYSTEM, choices),)
    user = UserInfo(ALICE)
    first = choices[0]
    nodes = first.limit("nodes")
    assert nodes is not None
    vo = validate_options(
        ps, {"partition": first.value, "nnodes": nodes}, user=user, cluster=cluster
    )
    assert vo.req["nnodes"] == str(nodes)
    with pytest.raises(OptionError) as info:
        validate_options(
            ps, {"partition": first.value, "nnodes": nodes + 1}, user=user, cluster=cluster
        )
    assert info.value.field == "nnodes"
    assert f"partition {first.value} has {nodes} nodes" in info.value.message
