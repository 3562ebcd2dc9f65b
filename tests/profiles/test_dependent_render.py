"""`firecrestspawner render` with dependent and expert options, compared to expected scripts.

The scripts in ``tests/profiles/expected/`` were checked by eye: the debug
partition's time limit and node count come from ``depends_on``, and each
expert option is a directive line of its own (``#SBATCH``, ``#PBS``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "expected"
SPAWN = ["--user", "alice", "--job-name", "fcs.hub.alice._.abc", "--cmd", "jupyterhub-singleuser"]


def render(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "firecrestspawner", "render", *args, *SPAWN],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    ("expected", "args"),
    [
        (
            "multi-system-debug-expert.sh",
            [
                "profiles/multi-system.yaml",
                "--profile=daint-gpu",
                "--cluster=accounts=g1",
                "--set=partition=debug",
                "--set=extra=--constraint=gpu --exclusive --mem 64G",
                "--workdir=/users/alice",
            ],
        ),
        (
            "pbs-expert.sh",
            [
                "tests/profiles/valid/dependent-expert.yaml",
                "--profile=pbs-expert",
                "--set=extra=-l place=excl -l place=shared",
                "--workdir=/home/alice",
            ],
        ),
    ],
)
def test_render_matches_the_expected_script(expected: str, args: list[str]) -> None:
    result = render(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXPECTED / expected).read_text(encoding="utf-8")


def test_render_refuses_what_the_rule_forbids_naming_the_field() -> None:
    result = render(
        "profiles/multi-system.yaml",
        "--profile=daint-gpu",
        "--cluster=accounts=g1",
        "--set=partition=debug",
        "--set=nnodes=2",
    )
    assert result.returncode != 0
    assert "nnodes: 2 is outside the allowed range 1 to 1 (while partition is debug)" in (
        result.stderr
    )
    result = render(
        "profiles/multi-system.yaml",
        "--profile=daint-gpu",
        "--cluster=accounts=g1",
        "--set=extra=--partition=debug",
    )
    assert result.returncode != 0
    assert "extra: '--partition' is not allowed" in result.stderr
