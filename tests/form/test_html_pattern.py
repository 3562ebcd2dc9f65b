"""Which profile patterns the form gives the browser (pure table tests).

The browser compiles an input's ``pattern`` as ``new RegExp("^(?:p)$", "v")``;
``tests/form/test_html_pattern_chromium.py`` checks the accepted ones in a
real Chromium.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from firecrestspawner.profiles import form, load_profile_file, load_profile_text
from firecrestspawner.profiles.html_pattern import browser_pattern, pattern_problem
from firecrestspawner.profiles.models import DEFAULT_TEXT_PATTERN
from firecrestspawner.profiles.options import UserInfo

HERE = Path(__file__).resolve().parent
ALL_KINDS = HERE.parent / "profiles" / "valid" / "all-kinds.yaml"

#: Patterns the browser reads as Python does.
SAFE = [
    pytest.param(r"[a-z0-9\-]*", id="escaped-dash"),
    pytest.param(r"[a-z]{2,8}", id="bounded-repeat"),
    pytest.param(r"gpu-[0-9]{1,3}", id="dash-outside-class"),
    pytest.param(r"[a-z0-9]+([&\|][a-z0-9]+)*", id="escaped-bar-in-class"),
    pytest.param(r"(?:ab|cd)+?x", id="non-capturing-lazy"),
    pytest.param(r"[^a-z]", id="negated"),
    pytest.param(r"a.b", id="dot"),
    pytest.param(r"(?!root$)[a-z]+", id="lookahead"),
    pytest.param(r"x|y|", id="empty-alternative"),
    pytest.param(r"[\-a]", id="escaped-dash-first"),
    pytest.param(r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\\/", id="escaped-syntax"),
    pytest.param(r"[\x41-\x5a]\u00e9", id="hex-escapes"),
    pytest.param(r"[a-z.,:=@%+]*", id="single-punctuation-in-class"),
    pytest.param(r"/home/[a-z]+", id="slash-outside-class"),
    pytest.param(DEFAULT_TEXT_PATTERN, id="the-default"),
]

#: Patterns the form leaves out, and a word of the reason.
UNSAFE = [
    pytest.param(r"[a-z0-9-]*", "`-` at the edge", id="dash-at-end"),
    pytest.param(r"[-a-z]", "`-` at the edge", id="dash-at-start"),
    pytest.param(r"[a-c-e]", "`-` at the edge", id="dash-after-range"),
    pytest.param(r"[A-Za-z0-9._,:=@/+-]*", "`/` inside", id="old-default"),
    pytest.param(r"[a-z0-9]+([&|][a-z0-9]+)*", "`|` inside", id="bar-in-class"),
    pytest.param(r"[(x)]", "`(` inside", id="paren-in-class"),
    pytest.param(r"[a{]", "`{` inside", id="brace-in-class"),
    pytest.param(r"[&&]", "`&&`", id="double-ampersand"),
    pytest.param(r"[a..b]", "`..`", id="double-dot"),
    pytest.param(r"[]a]", "`]` first", id="bracket-first"),
    pytest.param(r"\d+", "Unicode", id="digit-class"),
    pytest.param(r"[\w.]+", "Unicode", id="word-class-in-class"),
    pytest.param(r"a\sb", "Unicode", id="space-class"),
    pytest.param(r"(?P<x>a)", "named groups", id="named-group"),
    pytest.param(r"(?i)abc", "inline flags", id="inline-flag"),
    pytest.param(r"(?i:abc)", "inline flags", id="scoped-flag"),
    pytest.param(r"\Aabc\Z", "`\\A`", id="string-anchors"),
    pytest.param(r"a*+", "possessive", id="possessive"),
    pytest.param(r"(?>a)", "atomic", id="atomic"),
    pytest.param(r"(?<=a)b", "lookbehind", id="lookbehind"),
    pytest.param(r"(?<!a)b", "lookbehind", id="negative-lookbehind"),
    pytest.param(r"a{,3}", "`{`", id="python-only-repeat"),
    pytest.param(r"a{x", "`{`", id="literal-brace"),
    pytest.param(r"a]", "`]`", id="lone-bracket"),
    pytest.param(r"a\-b", "`\\-`", id="escaped-dash-outside"),
    pytest.param(r"a\@b", "`\\@`", id="escaped-at-outside"),
    pytest.param(r"(a)\1", "back-references", id="backreference"),
    pytest.param(r"(?=a)*", "repetition", id="repeated-lookahead"),
    pytest.param(r"\bword", "boundary", id="word-boundary"),
    pytest.param(r"[a-z", "does not compile", id="python-error"),
]


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_are_given_to_the_browser(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    assert browser_pattern(pattern) == pattern


@pytest.mark.parametrize(("pattern", "reason"), UNSAFE)
def test_unsafe_patterns_are_left_out(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert reason in problem[0]
    assert browser_pattern(pattern) == ""


def test_the_default_pattern_means_what_it_did() -> None:
    # Escaping `/` and `-` for the browser changed no value Python accepts.
    import re

    for value in ["a/b", "x-y", "a b", "a.b,c:d=e@f+g", "", "a'b", "-"]:
        old = re.fullmatch(r"[A-Za-z0-9._,:=@/+-]*", value) is not None
        assert (re.fullmatch(DEFAULT_TEXT_PATTERN, value) is not None) is old, value


def _text_field(profile, option_id: str):
    view = form.build_view(profile, user=UserInfo("alice", ("users",)), values={}, selected=True)
    soup = BeautifulSoup(form.render_form([view]), "html.parser")
    return soup.find("input", attrs={"name": f"{profile.id}.{option_id}"})


def test_form_emits_only_patterns_the_browser_reads_alike() -> None:
    text = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: unsafe, kind: text, display_name: U, pattern: "[a-z0-9-]*"}
      - {id: safe, kind: text, display_name: S, pattern: '[a-z0-9\\-]*'}
      - {id: plain, kind: text, display_name: D}
"""
    loaded = load_profile_text(text, name="t.yaml")
    profile = loaded.profiles[0]
    assert dict(profile.html_patterns) == {"safe": r"[a-z0-9\-]*", "plain": DEFAULT_TEXT_PATTERN}
    assert not _text_field(profile, "unsafe").has_attr("pattern")
    assert _text_field(profile, "safe")["pattern"] == r"[a-z0-9\-]*"
    assert _text_field(profile, "plain")["pattern"] == DEFAULT_TEXT_PATTERN
    # The file loads; the left-out pattern is a warning at its position, not an error.
    (warning,) = loaded.warnings
    assert (warning.path, warning.line) == ("$.profiles[0].options[0].pattern", 8)
    assert "the server still checks it" in warning.message
    assert "`-` at the edge" in warning.message
    assert "[a-z0-9\\-]" in warning.hint


def test_validate_prints_a_warning_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    from firecrestspawner.cli import main

    assert main(["validate", str(ALL_KINDS)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {ALL_KINDS}:58:18: $.profiles[0].options[5].pattern: " in out
    assert out.endswith("1 file(s) valid, 1 warning(s)\n")


def test_validate_json_lists_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    from firecrestspawner.cli import main

    assert main(["validate", "--json", str(ALL_KINDS)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert [w["path"] for w in report["warnings"]] == ["$.profiles[0].options[5].pattern"]


def test_server_still_refuses_what_the_browser_does_not_check() -> None:
    from firecrestspawner.profiles.options import OptionError, validate_options

    ps = load_profile_file(ALL_KINDS)
    with pytest.raises(OptionError) as info:
        validate_options(ps, {"profile": "main", "note": "Not Valid!"}, user=UserInfo("a"))
    assert info.value.field == "note"


def test_directory_logs_the_warning_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import shutil

    from firecrestspawner.profiles import ProfileDirectory

    shutil.copy(ALL_KINDS, tmp_path / "site.yaml")
    directory = ProfileDirectory(tmp_path)
    with caplog.at_level(logging.WARNING, logger="firecrestspawner.profiles"):
        directory.current()
        directory.current()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "options[5].pattern" in warnings[0].getMessage()
