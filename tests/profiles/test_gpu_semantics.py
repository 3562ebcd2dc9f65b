"""Issue 14, finding 5: GPUs per node and GPUs per job have names nobody confuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.cli import main as cli_main
from firecrestspawner.profiles import ProfileError, load_profile_text

PROFILE = """\
systems: [{name: c, scheduler: %(scheduler)s}]
profiles:
  - id: gpu
    display_name: GPU
    system: c
    req: {nnodes: 2, %(name)s: 4}
"""


def _render(tmp_path: Path, capsys: pytest.CaptureFixture[str], scheduler: str, name: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE % {"scheduler": scheduler, "name": name}, encoding="utf-8")
    code = cli_main(["render", str(path), "--profile", "gpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_slurm_gpus_per_node_is_per_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _render(tmp_path, capsys, "slurm", "gpus_per_node")
    assert "#SBATCH --nodes=2\n" in script
    assert "#SBATCH --gpus-per-node=4\n" in script
    assert "--gpus=" not in script


def test_slurm_gpus_is_per_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _render(tmp_path, capsys, "slurm", "gpus")
    assert "#SBATCH --gpus=4\n" in script
    assert "--gpus-per-node" not in script


def test_pbs_gpus_per_node_goes_into_each_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _render(tmp_path, capsys, "pbs", "gpus_per_node")
    assert "#PBS -l select=2:ngpus=4\n" in script


def test_pbs_refuses_gpus_per_job_naming_gpus_per_node() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile_text(PROFILE % {"scheduler": "pbs", "name": "gpus"}, name="p.yaml")
    (problem,) = info.value.problems
    assert problem.path == "$.profiles[0].req.gpus"
    assert "write `gpus_per_node`" in problem.hint


def test_old_ngpus_keeps_working_with_a_warning_naming_the_new_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_profile_text(PROFILE % {"scheduler": "slurm", "name": "ngpus"}, name="p.yaml")
    (warning,) = loaded.warnings
    assert "`gpus_per_node`" in warning.hint
    assert "`gpus`" in warning.hint
    assert "#SBATCH --gpus=4\n" in _render(tmp_path, capsys, "slurm", "ngpus")


def test_gpus_and_gpus_per_node_together_are_refused() -> None:
    text = PROFILE % {"scheduler": "slurm", "name": "gpus_per_node"}
    text = text.replace("gpus_per_node: 4}", "gpus_per_node: 4, gpus: 8}")
    with pytest.raises(ProfileError, match="both `gpus`"):
        load_profile_text(text, name="p.yaml")
