"""Property tests: hostile option values, and documents generated from the schema."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firecrestspawner.profiles import ProfileError, ProfileSet, load_profile_file, load_profile_text
from firecrestspawner.profiles import models as m
from firecrestspawner.profiles.options import (
    OptionError,
    UserInfo,
    cluster_lists,
    validate_options,
)
from firecrestspawner.profiles.script import ScriptRejected, directive_lines

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# -- hostile values -------------------------------------------------------------------------
FRAGMENTS = [
    "\n",
    "\r",
    "\x00",
    "\u2028",
    "\u2029",
    "\x85",
    "\t",
    "$(id)",
    "`id`",
    "'",
    '"',
    "\\",
    ";",
    "&&",
    "|",
    " ",
    "#",
    "#SBATCH --uid=0",
    "\n#SBATCH --account=other",
    "#PBS -A other",
    "--qos=high",
    "-A x",
    "${HOME}",
    "{{ cmd }}",
    "{cmd}",
    "%j",
    "=",
    ",",
]
hostile = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), min_size=1, max_size=6
).map("".join)

# A profile whose free-text options accept anything the validator allows at all
# (no pattern beyond "no control characters"), placed in a directive line, on a
# shell line (quoted) and alone.
PERMISSIVE = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --job-name={{ job_name }}
        #SBATCH --comment={{ comment }}
        {% if account %}#SBATCH --account={{ account }}
        {% endif %}echo {{ note | shquote }}
        {{ cmd }}
    options:
      - {id: comment, kind: text, display_name: C, pattern: '.*', max_length: 200}
      - {id: note, kind: text, display_name: N, pattern: '.*', max_length: 200}
      - {id: account, kind: text, display_name: A, pattern: '.*', max_length: 200}
"""
PERMISSIVE_SET = ProfileSet(load_profile_text(PERMISSIVE, name="permissive.yaml").profiles)
USER = UserInfo("alice", ("g",))


def _attempt(fn: Any, errors: tuple[type[Exception], ...]) -> tuple[Any, Exception | None]:
    """Run ``fn``; return (result, None) or (None, the expected exception)."""
    try:
        return fn(), None
    except errors as e:
        return None, e


def _check_structure(script: str, with_account: bool) -> None:
    lines = directive_lines(script)
    expected = ["--job-name", "--comment"] + (["--account"] if with_account else [])
    assert len(lines) == len(expected), lines
    for line, option in zip(lines, expected, strict=True):
        words = shlex.split(line)
        assert len(words) == 2, line
        assert words[0] == "#SBATCH"
        assert words[1].split("=", 1)[0] == option
    # exactly the template's lines: nothing added
    assert len(script.splitlines()) == 5 + (1 if with_account else 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(comment=hostile, note=hostile, account=st.one_of(st.just(""), hostile))
def test_hostile_values_are_refused_or_inert(comment: str, note: str, account: str) -> None:
    raw = {"comment": comment, "note": note, "account": account}
    script, error = _attempt(
        lambda: validate_options(PERMISSIVE_SET, raw, user=USER).render_script(
            cmd="jupyterhub-singleuser", job_name="j", workdir="/w"
        ),
        (OptionError,),
    )
    if isinstance(error, OptionError):
        assert error.field in raw
        assert error.message
        return
    # accepted: the directives are exactly the template's, and the shell line is inert
    _check_structure(script, with_account=bool(account))
    (echo,) = [line for line in script.splitlines() if line.startswith("echo ")]
    assert shlex.split(echo) == ["echo", note]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_against_shipped_profiles(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted((ROOT / "profiles").glob("*.*"))))
    ps = load_profile_file(path)
    profile = data.draw(st.sampled_from(ps.profiles))
    user = UserInfo("alice", tuple(profile.groups or ()))
    keys = [o.id for o in profile.options] + ["profile", "_xsrf", "cmd", "host"]
    raw: dict[str, Any] = {"profile": profile.id}
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        raw[key] = data.draw(
            st.one_of(hostile, st.lists(hostile, max_size=2), st.integers(), st.booleans())
        )
    # Every system of the file reports lists: a value missing from raw (``profile: []``)
    # selects the first visible profile, whose system must not lack cluster data.
    accounts, reservations = [data.draw(hostile), "proj1"], [data.draw(hostile)]
    cluster = cluster_lists(
        {p.system: {"accounts": accounts, "reservations": reservations} for p in ps.profiles}
    )
    vo, error = _attempt(
        lambda: validate_options(ps, raw, user=user, cluster=cluster), (OptionError,)
    )
    if vo is not None:
        script, error = _attempt(
            lambda: vo.render_script(
                cmd="jupyterhub-singleuser", job_name="j", workdir="/home/alice"
            ),
            (OptionError,),
        )
    if isinstance(error, OptionError):
        field = error.field
        assert field in raw or field in {"options", "profile"} or field.removesuffix("_view") in raw
        return
    # Accepted: same directive options, line for line, as the defaults of the same choices give.
    reference = validate_options(
        ps, {**vo.user_options()}, user=user, cluster=cluster
    ).render_script(cmd="jupyterhub-singleuser", job_name="j", workdir="/home/alice")
    assert script == reference
    for line in directive_lines(script):
        words = shlex.split(line)
        assert all(not any(c in w for c in "\n\r\x00\u2028\u2029") for w in words)
        assert words[0] in ("#SBATCH", "#PBS")
    for value in vo.values.values():
        if isinstance(value, str):
            assert not any(c in value for c in "\n\r\x00\u2028\u2029\x85")


@settings(max_examples=200, deadline=None)
@given(value=hostile.filter(bool))
def test_script_checks_alone(value: str) -> None:
    from firecrestspawner.profiles.script import render_batch_script

    template = "#!/bin/bash\n#SBATCH --partition={{ p }}\n#SBATCH --time {{ t }}\n{{ x }}\necho {{ q | shquote }}\n"
    variables = {"p": value, "t": value, "x": value, "q": value}
    script, error = _attempt(lambda: render_batch_script(template, variables), (ScriptRejected,))
    if isinstance(error, ScriptRejected):
        assert error.field in variables
        return
    lines = directive_lines(script)
    assert len(lines) == 2
    assert [shlex.split(line)[0] for line in lines] == ["#SBATCH", "#SBATCH"]
    assert len(shlex.split(lines[0])) == 2
    assert len(shlex.split(lines[1])) == 3


# -- documents generated from the schema --------------------------------------------------
SCHEMA = m.generate_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.text(max_size=8))
any_json = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"].split("/")[-1]
        node = {**SCHEMA["$defs"][ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


_MEMO: dict[str, st.SearchStrategy[Any]] = {}


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy for instances of a node of our schema (memoised per node)."""
    key = json.dumps(node, sort_keys=True)
    if key not in _MEMO:
        _MEMO[key] = st.deferred(lambda: _from_schema(node, depth))
    return _MEMO[key]


def _from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy for instances of a node of our schema (the keywords it uses)."""
    node = _resolve(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node and "properties" not in node:  # an object's oneOf only says what is required
            return st.one_of([from_schema(branch, depth + 1) for branch in node[key]])
    kind = node.get("type")
    if kind == "string":
        if "pattern" in node:
            strategy = st.from_regex(node["pattern"], fullmatch=True)
        else:
            strategy = st.one_of(
                st.text(
                    min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 20), 20)
                ),
                st.sampled_from(
                    ["{{ cmd }}", "{{ partition }}", "{% if x %}", "[a-z", "1:00:00", "slurm"]
                ),
            )
        return strategy.filter(
            lambda s: node.get("minLength", 0) <= len(s) <= node.get("maxLength", 10**6)
        )
    if kind == "integer":
        return st.integers(node.get("minimum", -3), node.get("maximum", 100))
    if kind == "number":
        return st.floats(node.get("minimum", -3), node.get("maximum", 100), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(
            from_schema(node["items"], depth + 1), min_size=node.get("minItems", 0), max_size=2
        )
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        if "patternProperties" in node:
            pattern, sub = next(iter(node["patternProperties"].items()))
            return st.dictionaries(
                st.from_regex(pattern, fullmatch=True), from_schema(sub, depth + 1), max_size=2
            )

        @st.composite
        def build(draw: st.DrawFn) -> dict[str, Any]:
            out: dict[str, Any] = {}
            limit = node.get("maxProperties")
            for name, sub in props.items():
                if name in required or draw(st.booleans()):
                    if limit is not None and len(out) >= limit:
                        break
                    out[name] = draw(from_schema(sub, depth + 1))
            if node.get("minProperties", 0) > len(out) and props:
                name = draw(st.sampled_from(sorted(props)))
                out[name] = draw(from_schema(props[name], depth + 1))
            return out

        return build()
    return any_json


@st.composite
def documents(draw: st.DrawFn) -> Any:
    doc = draw(from_schema(SCHEMA))
    # often point every profile at the first system, so more documents get past that check
    if draw(st.booleans()) and isinstance(doc, dict) and doc.get("systems") and doc.get("profiles"):
        for profile in doc["profiles"]:
            profile["system"] = doc["systems"][0]["name"]
    # sometimes damage one place, so the error paths run too
    if draw(st.booleans()) and isinstance(doc, dict) and doc:
        key = draw(st.sampled_from(sorted(doc)))
        doc[key] = draw(any_json)
    return doc


_SLOW_OK = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


@settings(max_examples=100, deadline=None, suppress_health_check=_SLOW_OK)
@given(doc=documents())
def test_generated_documents_never_crash_the_loader(doc: Any) -> None:
    text = json.dumps(doc)  # JSON is YAML 1.2
    loaded, error = _attempt(lambda: load_profile_text(text, name="gen.yaml"), (ProfileError,))
    if isinstance(error, ProfileError):
        assert error.problems
        for problem in error.problems:
            assert problem.file == "gen.yaml"
            assert problem.path.startswith("$")
            assert problem.message
        return
    assert loaded.profiles


@settings(max_examples=100, deadline=None, suppress_health_check=_SLOW_OK)
@given(doc=documents())
def test_schema_and_models_agree(doc: Any) -> None:
    """What the JSON Schema accepts, the pydantic models accept (and the reverse for rejections)."""
    from pydantic import ValidationError

    schema_ok = not list(VALIDATOR.iter_errors(doc))
    try:
        m.ProfileFile.model_validate(doc)
        model_ok = True
    except ValidationError:
        model_ok = False
    # The loader always runs the schema first, so this direction is the one that matters:
    # the models never refuse a document the schema accepted.
    if schema_ok:
        assert model_ok


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            {
                "systems": [{"name": "c"}],
                "profiles": [{"id": "p", "display_name": "P", "system": "c", "req": {"Bad": "x"}}],
            },
            id="req-key",
        ),
        pytest.param(
            {"systems": [], "profiles": [{"id": "p", "display_name": "P", "system": "c"}]},
            id="no-systems",
        ),
        pytest.param(
            {
                "systems": [{"name": "c"}],
                "profiles": [{"id": "p", "display_name": "P", "system": "c", "batch_script": {}}],
            },
            id="empty-script",
        ),
        pytest.param(
            {
                "systems": [{"name": "c"}],
                "profiles": [
                    {
                        "id": "p",
                        "display_name": "P",
                        "system": "c",
                        "options": [
                            {"id": "a", "kind": "choice", "display_name": "A", "choices": {}}
                        ],
                    }
                ],
            },
            id="no-choices",
        ),
        pytest.param({"systems": [{"name": "c", "x": 1}], "profiles": []}, id="extra-key"),
    ],
)
def test_schema_and_models_reject_the_same(doc: dict[str, Any]) -> None:
    from pydantic import ValidationError

    assert list(VALIDATOR.iter_errors(doc))
    with pytest.raises(ValidationError):
        m.ProfileFile.model_validate(doc)
