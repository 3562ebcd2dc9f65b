"""The fast validity check of the schema pass answers as the full validator does.

``report.validity_checker()`` checks only the option branch ``kind`` names
(the ``oneOf`` is discriminated); ``report.schema_validator()`` is
jsonschema's own. For every document, valid or not, both must say the same:
the shipped and test profiles, and mutations of valid documents that touch
exactly what the shortcut relies on (``kind``, required keys, types, options
that are not mappings).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firecrestspawner.profiles import models as m
from firecrestspawner.profiles import report
from firecrestspawner.profiles.parse import parse_text

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for pattern in ("profiles/*.*ml", "profiles/*.toml", "tests/**/profiles/**/*.*ml")
    for p in ROOT.glob(pattern)
)


def documents() -> list[Any]:
    out = []
    for path in FILES:
        fmt = "toml" if path.suffix == ".toml" else "yaml"
        try:
            out.append(parse_text(path.read_text(encoding="utf-8"), str(path), fmt)[0])
        except Exception:  # noqa: BLE001, S112 - a file that does not parse has no data
            continue
    return out


DOCS = documents()
VALID = [d for d in DOCS if report.schema_validator().is_valid(d)]


def agree(doc: Any) -> bool:
    return report.validity_checker().is_valid(doc) == report.schema_validator().is_valid(doc)


def test_the_shortcut_applies_to_the_schema():
    # Not vacuous: the option list is discriminated, and the checker proves it.
    schema = m.generate_schema()
    options = schema["$defs"]["ProfileSpec"]["properties"]["options"]["items"]
    instance = {"kind": "text"}
    index = report._discriminated(options["oneOf"], instance, options, schema["$defs"])
    assert index is not None
    assert options["oneOf"][index] == {"$ref": "#/$defs/TextOption"}


def test_every_profile_file_gets_the_same_answer():
    assert len(VALID) >= 5
    assert len(DOCS) > len(VALID), "some test files are invalid"
    for doc in DOCS:
        assert agree(doc)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.text(max_size=8),
    st.sampled_from([*m.OPTION_KINDS, "Text", "nosuch", ""]),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_options_get_the_same_answer(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(VALID)))
    profiles = [p for p in doc.get("profiles", []) if p.get("options")]
    if not profiles:
        return
    profile = data.draw(st.sampled_from(profiles))
    i = data.draw(st.integers(0, len(profile["options"]) - 1))
    option = profile["options"][i]
    action = data.draw(
        st.sampled_from(["kind", "drop", "add", "retype", "replace", "nokind", "other-kind-keys"])
    )
    if action == "kind":
        option["kind"] = data.draw(_values)
    elif action == "drop" and option:
        option.pop(data.draw(st.sampled_from(sorted(option))))
    elif action == "add":
        option[
            data.draw(st.sampled_from(["choices", "source", "images", "min", "x", "pattern"]))
        ] = data.draw(_values)
    elif action == "retype" and option:
        option[data.draw(st.sampled_from(sorted(option)))] = data.draw(_values)
    elif action == "replace":
        profile["options"][i] = data.draw(_values)
    elif action == "nokind":
        option.pop("kind", None)
    elif action == "other-kind-keys":
        # Keys of another kind on this option: valid under no branch, or under another.
        other = data.draw(st.sampled_from(VALID))
        options = [o for p in other.get("profiles", []) for o in p.get("options") or []]
        if options:
            option.update(copy.deepcopy(data.draw(st.sampled_from(options))))
            option["kind"] = data.draw(st.sampled_from(m.OPTION_KINDS))
    assert agree(doc)
