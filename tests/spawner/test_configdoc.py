"""docs/configuration.md is generated from the traits and must be current."""

from __future__ import annotations

from pathlib import Path

from firecrestspawner import configdoc
from firecrestspawner.spawner import SlurmSpawner

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_configuration_doc_is_current():
    assert DOC.read_text() == configdoc.render(), (
        "docs/configuration.md is stale: run "
        "`python -m firecrestspawner.configdoc > docs/configuration.md`"
    )


def test_every_configurable_trait_is_documented():
    text = DOC.read_text()
    for name, trait in SlurmSpawner.class_traits(config=True).items():
        if trait.this_class.__module__.startswith("firecrestspawner"):
            assert f"### `{name}`" in text, name
