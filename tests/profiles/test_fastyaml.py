"""The C-speed YAML reading (``profiles/fastyaml.py``) equals the exact one, or declines.

For every text: either :func:`load_plain` declines (``NOT_FAST``) or the
exact parser (ruamel, YAML 1.2, :func:`parse_text`) accepts the text and
gives the same data, value for value and type for type (``True`` is not
``1``). Texts: the shipped profiles, every test profile, generated profile
files, YAML 1.1/1.2 traps and generated scalars and documents. Then the
loader: a valid file gives the same result through the fast path as through
the exact one, and a file with problems reports the same problems (with
positions) either way.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import profiles_bench
from firecrestspawner.profiles import loader
from firecrestspawner.profiles.errors import ProfileError
from firecrestspawner.profiles.fastyaml import AVAILABLE, NOT_FAST, load_plain
from firecrestspawner.profiles.parse import parse_text

ROOT = Path(__file__).resolve().parents[2]
PROFILE_FILES = sorted(
    p
    for pattern in ("profiles/*.y*ml", "tests/**/profiles/**/*.y*ml", "tests/profiles/*/*.y*ml")
    for p in ROOT.glob(pattern)
)

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="PyYAML without libyaml")


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down (``True`` is not ``1``, ``1`` not ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def exact(text: str) -> Any:
    """The exact parse's data, or the ProfileError it raises."""
    try:
        return parse_text(text, "<t>", "yaml")[0]
    except ProfileError as e:
        return e


def check(text: str) -> Any:
    """Assert the rule; the fast answer (NOT_FAST or the data)."""
    fast = load_plain(text)
    if fast is NOT_FAST:
        return fast
    want = exact(text)
    assert not isinstance(want, ProfileError), f"fast accepted what the exact parse refuses: {want}"
    assert same(fast, want), (fast, want)
    return fast


def test_the_profile_files_of_the_repository_are_read_fast_and_the_same():
    assert len(PROFILE_FILES) > 20
    fast = 0
    for path in PROFILE_FILES:
        fast += check(path.read_text(encoding="utf-8")) is not NOT_FAST
    # Not a vacuous pass: most files take the fast path.
    assert fast >= len(PROFILE_FILES) * 3 // 4, fast


def test_generated_profile_files_are_read_fast_and_the_same(tmp_path):
    profiles_bench.generate(tmp_path, 12)
    for path in sorted(tmp_path.iterdir()):
        assert check(path.read_text()) is not NOT_FAST, path.name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1 (libyaml's resolver) would read these otherwise.
        ("t: 1:30:00", "1:30:00"),
        ("t: 12:00", "12:00"),
        ("b: yes", "yes"),
        ("b: no", "no"),
        ("b: on", "on"),
        ("b: off", "off"),
        ("b: y", "y"),
        ("b: NO", "NO"),
        ("v: 1.2.3", "1.2.3"),
        ("p: gpu:1", "gpu:1"),
        ("p: 'true'", "true"),
        ('p: "12"', "12"),
        ("n: ~", None),
        ("n:", None),
        ("n: null", None),
        ("b: true", True),
        ("b: False", False),
        ("i: 12", 12),
        ("i: -3", -3),
        ("i: 0", 0),
        ("f: 0.5", 0.5),
        ("f: -2.25", -2.25),
    ],
)
def test_scalars_read_as_yaml_1_2(text, value):
    fast = check(text + "\n")
    assert fast is not NOT_FAST
    assert same(fast, {text.split(":")[0]: value})


@pytest.mark.parametrize(
    "text",
    [
        "i: 0o17",
        "i: 017",
        "i: 0x1F",
        "i: 0b101",
        "i: 1_000",
        "f: 1e3",
        "f: 1.",
        "f: .5",
        "f: .inf",
        "f: .nan",
        "f: 1.50",
        "d: 2024-01-01",
        "d: 2024-01-01 10:00:00",
        "base: &a {x: 1}\nderived:\n  <<: *a\n",
        "i: !!int '3'",
        "p: !!str 12",
        "p: !!map {a: 1}",
        "p: ! 12",
        "x: !custom 1",
        "? [a, b]\n: c\n",
        "1: one",
        "true: yes",
        "a: 1\na: 2\n",
        "%YAML 1.1\n---\nb: yes\n",
        "s: \u2028x",
        "\ufeffa: 1",
        "a: [1, 2",
        "a: 1\n---\nb: 2\n",
        "a: &x?y 1",
        "a: |#c\n  x\n",
    ],
)
def test_what_the_fast_path_is_not_sure_of_is_declined(text):
    assert load_plain(text + "\n") is NOT_FAST
    check(text + "\n")


def test_an_empty_document_is_none_either_way():
    for text in ("", "# only a comment\n"):
        assert check(text) is None


def test_a_document_that_is_not_a_mapping_is_declined():
    for text in ("---\n", "- a\n", "just text\n", "|\n#x\n"):
        assert load_plain(text) is NOT_FAST


def test_anchors_aliases_and_block_scalars_are_the_same():
    text = (
        "common: &c\n  partition: normal\n  nodes: 1\n"
        "a: *c\nb: [*c, *c]\n"
        "lit: |\n  line 1\n    line 2\n\n"
        "keep: |+\n  kept\n\n"
        "strip: >-\n  folded\n  text\n\n  more\n"
        'dq: "tab\\there \\u00e9 \\x41 \\\\ \\"q\\""\n'
        "sq: 'it''s'\n"
        "multi: a\n  b\n  c\n"
        "flow: {x: 1, y: [a, 'b', \"c\"], z: {}}\n"
    )
    assert check(text) is not NOT_FAST


def test_alias_bombs_are_declined_not_expanded():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    assert load_plain("\n".join(lines) + "\n") is NOT_FAST


# ---------------------------------------------------------------- generated

_SCALAR_CHARS = "0123456789.-+_:eExXoObB ~nulNUTtrRuefasFAyYsS<=!&*#'\"abc/@%,[]{}?|>\t"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_SCALAR_CHARS + "\n", min_size=0, max_size=12))
def test_generated_scalars(value):
    check(f"key: {value}\n")
    check(f"- {value}\n")
    check(f"{value}: 1\n")
    check(f"a:\n  {value}\n")
    check(f"a: [{value}]\n")
    check(f"a: {{b: {value}}}\n")
    check(f"a: |\n  x\n{value}\n")


_keys = st.text(alphabet="abcxyz_-019 ", min_size=1, max_size=6)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet=_SCALAR_CHARS + "é\n", max_size=10),
    st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2030, 1, 1)),
)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees, st.sampled_from(["block", "flow", "pyyaml"]))
def test_generated_documents(tree, style):
    import io

    import yaml
    from ruamel.yaml import YAML

    if style == "pyyaml":
        text = yaml.safe_dump(tree, allow_unicode=True)
    else:
        out = io.StringIO()
        dumper = YAML(typ="rt")
        dumper.default_flow_style = style == "flow"
        dumper.dump(tree, out)
        text = out.getvalue()
    check(text)


# ---------------------------------------------------------------- the loader


def _load_both(path: Path, monkeypatch) -> tuple[Any, Any]:
    """(fast-path result, exact-path result) of one file: LoadedFile or ProfileError."""
    text = path.read_text(encoding="utf-8")
    results = []
    for fast in (True, False):
        loader._CACHE.clear()
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(loader, "load_plain", lambda text: NOT_FAST)
            try:
                results.append(loader.load_profile_text(text, name=str(path), base_dir=path.parent))
            except ProfileError as e:
                results.append(e)
    loader._CACHE.clear()
    return results[0], results[1]


@pytest.mark.parametrize("path", [p for p in PROFILE_FILES if p.suffix != ".toml"], ids=str)
def test_the_loader_gives_the_same_result_either_way(path, monkeypatch):
    fast, slow = _load_both(path, monkeypatch)
    assert type(fast) is type(slow)
    if isinstance(slow, ProfileError):
        # Problems keep their positions: the file was read again exactly.
        assert fast.problems == slow.problems
        assert any(p.line is not None for p in slow.problems)
    else:
        assert fast == slow


def test_generated_files_load_the_same_either_way(tmp_path, monkeypatch):
    profiles_bench.generate(tmp_path, 8)
    for path in sorted(tmp_path.iterdir()):
        fast, slow = _load_both(path, monkeypatch)
        assert not isinstance(slow, ProfileError)
        assert fast == slow
