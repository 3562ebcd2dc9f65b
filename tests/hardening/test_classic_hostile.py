"""Finding 1 on the classic path (no profiles): ``user_options`` become template variables.

Every hostile value is refused (:class:`ClassicOptionError` or :class:`ScriptRejected`,
both 400s at the hub) or leaves the directives ``sbatch`` reads as the template
wrote them, with the value inside one argument.
"""

from __future__ import annotations

from typing import Any

import pytest

from firecrestspawner.profiles.directives import DirectiveSyntaxError, slurm_directives
from firecrestspawner.profiles.script import ScriptRejected, render_batch_script, trusted_variables
from firecrestspawner.request import ClassicOptionError, FormValue, classic_user_variables

from .corpus import HOSTILE_JSON, hostile_values

#: Both ways the existing project's templates use form values.
TEMPLATE = """#!/bin/bash
#SBATCH --job-name=spawner-jupyterhub
#SBATCH --partition={{ partition }}
{% if runtime %}#SBATCH --time={{ runtime[0] }}{% endif %}
#SBATCH --comment {{ comment }}
{{ cmd }}
"""
PH = "fcsvPHx"


def _directives(script: str) -> list[list[str]] | None:
    try:
        return slurm_directives(script)
    except DirectiveSyntaxError:
        return None


def _render(chosen: dict[str, Any]) -> str:
    variables: dict[str, Any] = {
        "partition": FormValue("normal"),
        "runtime": FormValue("1:00:00"),
        "comment": FormValue("none"),
        "cmd": "jupyterhub-singleuser",
    }
    variables.update(chosen)
    return render_batch_script(
        TEMPLATE, variables, trusted=trusted_variables(variables, frozenset(chosen))
    )


def test_classic_user_options_cannot_change_the_directives() -> None:
    outcomes = {"accepted": 0, "refused": 0}
    changed = []
    for key in ("partition", "runtime", "comment"):
        for value in [*hostile_values(300), *HOSTILE_JSON]:
            try:
                chosen = classic_user_variables({key: value})
                script = _render(chosen)
            except (ClassicOptionError, ScriptRejected):
                outcomes["refused"] += 1
                continue
            outcomes["accepted"] += 1
            text = str(chosen[key]) if not isinstance(chosen[key], list) else None
            if not text:
                continue
            expected = _directives(_render({key: FormValue(PH)}))
            assert expected is not None
            expected = [[a.replace(PH, text) for a in line] for line in expected]
            if _directives(script) != expected:
                changed.append((key, value))
    assert changed == []
    assert outcomes["refused"] > 500
    assert outcomes["accepted"] > 50


def test_classic_values_cannot_start_an_option_word() -> None:
    # FormValue answers [0] with the whole value; the inert-word rule reads the plain text.
    for value in ["--uid=0", "-A", ":x", "--partition=debug"]:
        chosen = classic_user_variables({"comment": [value]})
        with pytest.raises(ScriptRejected) as info:
            _render(chosen)
        assert info.value.field == "comment"
