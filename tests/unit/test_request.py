"""SpawnRequest is frozen, validated and read-only (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from firecrestspawner.request import SpawnRequest


def make(**kw):
    args = {"system": "cluster", "firecrest_url": "http://f7t", "template": "#!/bin/bash\n{cmd}"}
    args.update(kw)
    return SpawnRequest(**args)


def test_variables_are_read_only_copies():
    source = {"cmd": "jupyterhub-singleuser"}
    req = make(variables=source)
    source["cmd"] = "rm -rf /"
    assert req.variables["cmd"] == "jupyterhub-singleuser"
    with pytest.raises(TypeError):
        req.variables["cmd"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.system = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        pytest.param("system", "system", id="system"),
        pytest.param("firecrest_url", "firecrest_url", id="url"),
        pytest.param("template", "template", id="template"),
    ],
)
def test_required_fields(field, message):
    with pytest.raises(ValueError, match=message):
        make(**{field: ""})


def test_with_variables_copies():
    req = make(variables={"a": "1"})
    other = req.with_variables(job_name="n")
    assert other.variables == {"a": "1", "job_name": "n"}
    assert "job_name" not in req.variables
