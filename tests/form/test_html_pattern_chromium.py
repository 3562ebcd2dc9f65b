"""Profile patterns in a real browser: what the form gives Chromium means what Python means.

Each pattern is set as the ``pattern`` attribute of an ``<input>`` (as the form
does) and each sample typed into it; the browser's ``validity.patternMismatch``
must say what ``re.fullmatch`` says. No hub is needed: the page is local.
"""

from __future__ import annotations

import re

import pytest

from firecrestspawner.profiles.html_pattern import pattern_problem
from firecrestspawner.profiles.models import DEFAULT_TEXT_PATTERN

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SAMPLES = [
    "a",
    "abc",
    "ab-cd",
    "a-",
    "-",
    "A",
    "ABC",
    "a1",
    "123",
    "gpu-12",
    "gpu-1234",
    "a b",
    "a.b",
    "a/b",
    "/home/alice",
    "a&b",
    "a|b",
    "x",
    "y",
    "abab",
    "ababx",
    "root",
    "rooty",
    "é",
    "AZé",
    "٣",
    "a,b:c=d@e%f+g",
    ".*+?()[]{}|^$\\/",
]

#: Patterns the check accepts; Chromium must agree with Python on every sample.
ACCEPTED = [
    r"[a-z0-9\-]*",
    r"[a-z]{2,8}",
    r"gpu-[0-9]{1,3}",
    r"[a-z0-9]+([&\|][a-z0-9]+)*",
    r"(?:ab)+?x?",
    r"[^a-z]+",
    r"a.b",
    r"(?!root$)[a-z]+",
    r"x|y|",
    r"[\-a]+",
    r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\\/",
    r"[\x41-\x5a]+\u00e9",
    r"[a-z.,:=@%+]*",
    r"/home/[a-z]+",
    DEFAULT_TEXT_PATTERN,
]

_CHECK = """([pattern, samples]) => {
  const input = document.createElement("input");
  input.setAttribute("pattern", pattern);
  document.body.appendChild(input);
  const out = samples.map((s) => { input.value = s; return input.validity.patternMismatch; });
  input.remove();
  return out;
}"""


async def _mismatches(page, pattern: str, samples: list[str]) -> list[bool]:
    return await page.evaluate(_CHECK, [pattern, samples])


@pytest.mark.parametrize("pattern", ACCEPTED)
async def test_accepted_patterns_mean_the_same_in_chromium(page, pattern: str) -> None:
    assert pattern_problem(pattern) is None
    await page.set_content("<!doctype html><body></body>")
    browser = await _mismatches(page, pattern, SAMPLES)
    python = [re.fullmatch(pattern, s) is None for s in SAMPLES]
    differ = [s for s, b, p in zip(SAMPLES, browser, python, strict=True) if b != p]
    assert differ == []


async def test_the_premise_chromium_drops_or_reads_other_patterns_differently(page) -> None:
    """Why the check exists: these patterns would lose or change the browser's check."""
    await page.set_content("<!doctype html><body></body>")
    # Not compilable with the v flag: the browser silently checks nothing.
    for pattern in [r"[a-z0-9-]*", r"[A-Za-z0-9._,:=@/+-]*", r"[a-z]+([&|][a-z]+)*"]:
        assert re.fullmatch(pattern, "NOT valid!") is None
        assert await _mismatches(page, pattern, ["NOT valid!"]) == [False], pattern
        assert pattern_problem(pattern) is not None
    # Compilable but read differently: \d is ASCII in the browser, Unicode in Python.
    assert re.fullmatch(r"\d+", "٣") is not None
    assert await _mismatches(page, r"\d+", ["٣"]) == [True]
    assert pattern_problem(r"\d+") is not None
