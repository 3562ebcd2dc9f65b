"""The example profiles of ``profiles/examples/`` (#14 "Done when"): they validate, and
``firecrestspawner render`` gives the scripts checked in under ``tests/profiles/expected/``.

The scripts were checked by eye: (a) the multi-system GPU centre submits to the chosen
system with that system's projects, the debug partition's limits (``depends_on``), GPUs
per node and the uenv image and view; (b) the PBS site writes one ``select`` chunk
statement and a ``place`` statement, with GPUs only in the gpu queue; (c) the
project-restricted profile needs the account, and the expert options appear only with
the advanced box ticked. The form paths (with and without JavaScript) are in
tests/demo/test_examples_demo.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "profiles" / "examples"
EXPECTED = Path(__file__).resolve().parent / "expected"
SPAWN = ["--user", "alice", "--job-name", "fcs.hub.alice._.abc", "--cmd", "jupyterhub-singleuser"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "firecrestspawner", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_the_three_examples_exist_and_validate_as_ci_checks_them() -> None:
    names = sorted(p.name for p in EXAMPLES.iterdir())
    assert names == ["gpu-centre.yaml", "pbs-select.yaml", "project-site.yaml"]
    result = run("validate", "profiles/examples/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 file(s) valid" in result.stdout
    # scripts/test.sh (CI) checks this directory besides profiles/.
    assert "firecrestspawner validate profiles/ profiles/examples/" in (
        ROOT / "scripts" / "test.sh"
    ).read_text(encoding="utf-8")


CASES = [
    (
        "example-gpu-santis-debug.sh",
        [
            "profiles/examples/gpu-centre.yaml",
            "--profile=gc-gpu",
            "--set=system=santis",
            "--set=partition=debug",
            "--set=icon_data=true",
            "--cluster=accounts=g152,s1234",
            "--set=account=s1234",
            "--set=uenv=pytorch/v2.6.0:v1",
        ],
    ),
    (
        "example-gpu-daint.sh",
        [
            "profiles/examples/gpu-centre.yaml",
            "--profile=gc-gpu",
            "--cluster=accounts=g152",
            "--set=nnodes=8",
            "--set=uenv_view=modules",
        ],
    ),
    (
        "example-eiger-debug.sh",
        [
            "profiles/examples/gpu-centre.yaml",
            "--profile=gc-cpu",
            "--cluster=partitions=normal,debug",
            "--cluster=accounts=g152",
            "--set=partition=debug",
        ],
    ),
    (
        "example-pbs-gpu.sh",
        [
            "profiles/examples/pbs-select.yaml",
            "--profile=pbs-chunks",
            "--set=queue=gpu",
            "--set=nnodes=2",
            "--set=gpus_per_node=4",
            "--set=ncpus=64",
            "--set=mpiprocs=4",
            "--set=memory=250gb",
            "--set=place=scatter:excl",
            "--cluster=accounts=p100",
            "--set=account=p100",
        ],
    ),
    (
        "example-pbs-short.sh",
        [
            "profiles/examples/pbs-select.yaml",
            "--profile=pbs-chunks",
            "--set=queue=short",
            "--set=gpus_per_node=4",  # not the gpu queue: ignored (when)
        ],
    ),
    (
        "example-project-bigmem.sh",
        [
            "profiles/examples/project-site.yaml",
            "--profile=ps-bigmem",
            "--account=bigmem-2026",
            "--cluster=accounts=bigmem-2026,g999",
        ],
    ),
    (
        "example-project-advanced.sh",
        [
            "profiles/examples/project-site.yaml",
            "--profile=ps-standard",
            "--account=g152",
            "--set=partition=priority",
            "--set=advanced=true",
            "--set=qos=debug",
            "--set=extra=--exclusive --constraint=amd",
            "--cluster=accounts=g152",
            "--cluster=reservations=course",
            "--set=reservation=course",
        ],
    ),
]


@pytest.mark.parametrize(("expected", "args"), CASES, ids=[c[0] for c in CASES])
def test_render_matches_the_expected_script(expected: str, args: list[str]) -> None:
    result = run("render", *args, *SPAWN)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXPECTED / expected).read_text(encoding="utf-8")


def test_the_chosen_system_is_the_request_host() -> None:
    args = ["profiles/examples/gpu-centre.yaml", "--profile=gc-gpu", "--set=system=santis"]
    result = run("render", *args, "--cluster=accounts=g152", "--show-request", *SPAWN)
    assert result.returncode == 0, result.stderr
    assert "# system: santis" in result.stderr
    assert "# req_host = 'santis'" in result.stderr


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        pytest.param(
            ["gpu-centre.yaml", "--profile=gc-gpu", "--set=partition=debug", "--set=nnodes=3"],
            "nnodes: 3 is outside the allowed range 1 to 2 (while partition is debug)",
            id="debug-partition-node-limit",
        ),
        pytest.param(
            ["gpu-centre.yaml", "--profile=gc-gpu", "--set=system=santis", "--set=nnodes=9"],
            "nnodes: 9 is outside the allowed range 1 to 8 (while system is santis)",
            id="santis-node-limit",
        ),
        pytest.param(
            ["gpu-centre.yaml", "--profile=gc-gpu", "--set=system=eiger"],
            "system: 'eiger' is not a system of profile 'gc-gpu'",
            id="system-not-offered",
        ),
        pytest.param(
            ["project-site.yaml", "--profile=ps-bigmem", "--account=g999"],
            "profile: unknown profile 'ps-bigmem'",
            id="project-restricted-profile",
        ),
        pytest.param(
            ["project-site.yaml", "--profile=ps-standard", "--set=partition=priority"],
            "partition: 'priority' is not allowed",
            id="project-restricted-choice",
        ),
        pytest.param(
            ["project-site.yaml", "--profile=ps-standard", "--set=advanced=true", "--set=qos=long"],
            "qos: 'long' is not allowed",
            id="unix-group-restricted-choice",
        ),
        pytest.param(
            ["pbs-select.yaml", "--profile=pbs-chunks", "--set=queue=short", "--set=nnodes=2"],
            "nnodes: 2 is outside the allowed range 1 to 1 (while queue is short)",
            id="pbs-short-queue-one-chunk",
        ),
    ],
)
def test_render_refuses_what_the_examples_forbid(args: list[str], refusal: str) -> None:
    file, *rest = args
    result = run("render", f"profiles/examples/{file}", "--cluster=accounts=g152", *rest, *SPAWN)
    assert result.returncode == 1
    assert refusal in result.stderr


def test_the_reference_compares_the_format_with_the_peers_and_readme_links_resolve() -> None:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    section = doc.split("## Compared with KubeSpawner, batchspawner and Open OnDemand", 1)[1]
    header = next(line for line in section.splitlines() if line.startswith("| feature |"))
    for peer in ("KubeSpawner `profile_list`", "batchspawner forms", "Open OnDemand `form.yml`"):
        assert peer in header
    assert "how to translate" in header
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 10  # one row per feature, after the header
    for title in ("From a KubeSpawner", "From a batchspawner form", "From an Open OnDemand"):
        assert f"### {title}" in section
    # The three sources of visibility, side by side.
    assert "## Who sees what: JupyterHub groups, Slurm accounts, Unix groups" in doc
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {
        "#" + "".join(c for c in h.lower().replace(" ", "-") if c.isalnum() or c in "-_")
        for h in (line.lstrip("#").strip() for line in doc.splitlines() if line.startswith("## "))
    }
    for link in set(re.findall(r"docs/profiles\.md(#[\w-]+)", readme)):
        assert link in anchors, link
