"""Table tests of the emulator's pure parsing helpers."""

from __future__ import annotations

import pytest

from firecrestspawner.emulator.backends.base import (
    expand_output_pattern,
    parse_sbatch_directives,
    parse_time_limit,
)
from firecrestspawner.emulator.backends.slurm import parse_scontrol_line
from firecrestspawner.emulator.faults import FaultEngine, FaultRule


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("5", 300, id="minutes"),
        pytest.param("0:01", 1, id="min:sec"),
        pytest.param("01:30:00", 5400, id="h:m:s"),
        pytest.param("1-0", 86400, id="days-hours"),
        pytest.param("2-03:04", 2 * 86400 + 3 * 3600 + 4 * 60, id="days-h:m"),
        pytest.param("1-00:00:05", 86405, id="days-h:m:s"),
        pytest.param("UNLIMITED", None, id="unlimited"),
        pytest.param("infinite", None, id="infinite"),
    ],
)
def test_parse_time_limit(value, seconds):
    assert parse_time_limit(value) == seconds


@pytest.mark.parametrize("value", ["", "abc", "1:2:3:4", "-5"])
def test_parse_time_limit_rejects(value):
    with pytest.raises(ValueError, match="Invalid time"):
        parse_time_limit(value)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            "#!/bin/bash\n#SBATCH --job-name=a b\n#SBATCH --time=5\n",
            {"job-name": "a", "time": "5"},
            id="long-equals",
        ),
        pytest.param(
            "#!/bin/bash\n#SBATCH -J name -t 1:00 -o out.%j\n",
            {"job-name": "name", "time": "1:00", "output": "out.%j"},
            id="short-options",
        ),
        pytest.param(
            "#!/bin/bash\n#SBATCH --partition debug # comment\n",
            {"partition": "debug"},
            id="long-space-comment",
        ),
        pytest.param(
            "#!/bin/bash\n\n# plain comment\n#SBATCH --error=e.txt\necho hi\n#SBATCH --time=9\n",
            {"error": "e.txt"},
            id="stops-at-first-command",
        ),
        pytest.param("#!/bin/bash\n#SBATCH --job-name='unterminated\n", {}, id="bad-quoting"),
    ],
)
def test_parse_sbatch_directives(script, expected):
    assert parse_sbatch_directives(script) == expected


def test_expand_output_pattern():
    assert (
        expand_output_pattern("%x-%j-%u-%N-%%-%q.out", "42", "nb", "alice", "n1")
        == "nb-42-alice-n1-%-%q.out"
    )


def test_parse_scontrol_line_keeps_spaces_in_values():
    line = (
        "JobId=7 JobName=my job UserId=alice(1001) JobState=RUNNING "
        "WorkDir=/home/alice/with space StdOut=/tmp/o NtasksPerN:B:S:C=0:0:*:* Socks/Node=*"
    )
    fields = parse_scontrol_line(line)
    assert fields["JobName"] == "my job"
    assert fields["WorkDir"] == "/home/alice/with space"
    assert fields["NtasksPerN:B:S:C"] == "0:0:*:*"
    assert fields["Socks/Node"] == "*"


def test_fault_engine_skip_times_and_route_globs():
    engine = FaultEngine([FaultRule(route="GET /compute/*", status=503, skip=1, times=2)], seed=1)
    decisions = [engine.decide("GET", "/compute/{system}/jobs", "u") for _ in range(5)]
    assert [d.status if d else None for d in decisions] == [None, 503, 503, None, None]
    assert engine.decide("POST", "/compute/{system}/jobs", "u") is None
    assert engine.stats()[0]["fired"] == 2


@pytest.mark.parametrize(
    ("rc", "stderr", "refused"),
    [
        pytest.param(0, "scancel: Terminating job 5\n", False, id="cancelled"),
        pytest.param(
            0,
            "scancel: Terminating job 5\n"
            "scancel: error: Kill job error on job id 5: "
            "Job/step already completing or completed\n",
            True,
            id="error-with-exit-0",
        ),
        pytest.param(1, "scancel: Terminating job 5\n", True, id="exit-1"),
    ],
)
async def test_cancel_judges_scancel_verbose_like_firecrest(monkeypatch, rc, stderr, refused):
    """The slurm backend judges ``scancel --verbose`` as FirecREST does (no Slurm needed:
    the commands are answered at the subprocess boundary)."""
    from firecrestspawner.emulator.backends.base import BackendError
    from firecrestspawner.emulator.backends.slurm import SlurmBackend
    from firecrestspawner.emulator.config import FaultConfig, SystemConfig

    backend = SlurmBackend(SystemConfig(backend="slurm", submit_as_user=False), FaultConfig())
    calls: list[list[str]] = []

    async def run(argv, *, stdin=None, env=None):
        calls.append(argv)
        if argv[0] == "scontrol":
            return (
                0,
                "JobId=5 JobName=x UserId=lou(20001) GroupId=lou(20001) JobState=RUNNING\n",
                "",
            )
        return rc, "", stderr

    monkeypatch.setattr(backend, "_run", run)
    if refused:
        with pytest.raises(BackendError) as info:
            await backend.cancel("lou", "5")
        assert info.value.status == 500
        assert info.value.message == (
            f"Unexpected Slurm command response. exit_status:{rc} std_err:{stderr}"
        )
    else:
        await backend.cancel("lou", "5")
    assert calls[-1][-3:] == ["scancel", "--verbose", "5"]
