"""Hostile values through expert scheduler options (#14.2): refused by name, or inert.

The allow-list here is as permissive as an administrator can make it (value
pattern ``.*``), so only the inert-word rule and the parser stand between the
corpus and the directives. Every value is either refused with an
:class:`OptionError` naming the field, or adds exactly the one directive it
names: as the project's port of ``sbatch``'s tokenizer reads it and, in the
slurm-marked test, as real ``sbatch`` reads it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileSet
from firecrestspawner.profiles.directives import slurm_directives
from firecrestspawner.profiles.loader import load_profile_text
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options

from .corpus import HOSTILE_JSON, hostile_values
from .test_directive_injection import _sbatch_found, _split

PROFILE = """
systems: [{name: cluster}]
profiles:
  - id: p
    display_name: P
    system: cluster
    options:
      - id: extra
        kind: scheduler_options
        display_name: Extra
        allow:
          --comment: {value: ".*", repeatable: true}
          --exclusive: {}
"""
PS = ProfileSet(load_profile_text(PROFILE, name="expert.yaml").profiles)
USER = UserInfo("alice")
SPAWN = {"cmd": "jupyterhub-singleuser", "job_name": "fcs.alice.1", "workdir": "/home/alice"}
BASE = slurm_directives(validate_options(PS, {}, user=USER).render_script(**SPAWN))


def _outcome(text: str) -> list[list[str]] | None:
    """The directives ``sbatch`` would read (by the port), or None when refused by name."""
    try:
        vo = validate_options(PS, {"extra": text}, user=USER)
    except OptionError as e:
        refused_field = e.field
    else:
        return slurm_directives(vo.render_script(**SPAWN))
    assert refused_field == "extra", text
    return None


def _cases() -> list[str]:
    values = hostile_values()
    return [f"--comment={v}" for v in values] + [f"--comment {v}" for v in values] + values


def test_hostile_values_are_refused_by_name_or_add_exactly_their_directive() -> None:
    accepted = 0
    for text in _cases():
        found = _outcome(text)  # any exception but OptionError fails the test (a 500)
        if found is None:
            continue
        accepted += 1
        vo = validate_options(PS, {"extra": text}, user=USER)
        extra = [line for line in found if line not in BASE]
        assert len(found) == len(BASE) + len(extra), text
        assert all(len(line) == 1 and line[0].startswith("--comment=") for line in extra), text
        assert [line[0] for line in extra] == [w for w in vo.values["extra"].split(" ") if w], text
    assert accepted >= 20


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_accepted_expert_values_read_the_same_in_real_sbatch(slurm) -> None:
    if shutil.which("sbatch") is None or os.geteuid() != 0:
        pytest.skip("needs sbatch and root (to run it as a test user)")
    accepted: list[tuple[str, str]] = []
    for text in _cases():
        try:
            vo = validate_options(PS, {"extra": text}, user=USER)
        except OptionError:
            continue
        if vo.values["extra"]:
            accepted.append((text, vo.values["extra"]))
    assert len(accepted) >= 20
    with tempfile.TemporaryDirectory(prefix="fsp-sbatch-") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        lines = ["#!/bin/bash"]
        for i, (_, normalised) in enumerate(accepted):
            lines.append(f"#SBATCH --comment=fcsep{i}")
            lines += [f"#SBATCH {item}" for item in normalised.split(" ")]
        lines += [f"#SBATCH --comment=fcsep{len(accepted)}", "echo ok", ""]
        found, err = _sbatch_found("\n".join(lines), tmp_path)
    per_case = _split(found, len(accepted))
    assert per_case is not None, err[-2000:]
    changed = [
        text
        for (text, normalised), args in zip(accepted, per_case, strict=True)
        if args != normalised.split(" ")
    ]
    assert changed == []


#: A time limit whose bound depends on the partition (the hub-level counterpart,
#: test_hub_expert_hostile.py, sends a sample of the corpus; here every value).
DEPENDENT = """
systems: [{name: cluster}]
profiles:
  - id: p
    display_name: P
    system: cluster
    options:
      - id: partition
        display_name: Partition
        kind: choice
        choices: {normal: {display_name: normal}, debug: {display_name: debug}}
      - id: runtime
        display_name: Time limit
        kind: duration
        max: "04:00:00"
        default: "01:00:00"
        depends_on:
          partition:
            debug: {max: "30"}
"""


def _seconds(duration: str) -> int:
    days, _, rest = duration.rpartition("-")
    h, m, s = (int(x) for x in rest.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def test_hostile_time_limits_under_a_dependent_bound_are_refused_by_name_or_within_it() -> None:
    profiles = ProfileSet(load_profile_text(DEPENDENT, name="dependent.yaml").profiles)
    accepted = 0
    wrong_field = []
    for value in [*hostile_values(), *HOSTILE_JSON, "30", "0:29:59", "45", "1-00:00:00"]:
        raw = {"partition": "debug", "runtime": value}
        try:
            vo = validate_options(profiles, raw, user=USER)
        except OptionError as e:
            if e.field != "runtime":
                wrong_field.append((value, e.field))
            continue
        accepted += 1
        limit = vo.values["runtime"]
        assert _seconds(limit) <= 30 * 60, (value, limit)
        found = slurm_directives(vo.render_script(**SPAWN))
        assert [line for line in found if line[0].startswith("--time")] == [[f"--time={limit}"]]
    assert wrong_field == []
    assert accepted >= 2  # "30" and "0:29:59" at least
