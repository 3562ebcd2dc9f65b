"""A deterministic corpus of hostile option values, shared by the hardening tests.

Rich in what directive tokenizers treat specially (quotes, backslashes, white
space, ``=``, ``#``, ``:``, leading ``-``, ``packjob``/``hetjob``), in shell
metacharacters, control characters, huge numbers and long strings. Generated
from a fixed seed, so every run sees the same values.
"""

from __future__ import annotations

import random

FRAGMENTS = [
    '"',
    "'",
    "\\",
    " ",
    "  ",
    "=",
    "#",
    ":",
    "-",
    "--",
    "--uid=0",
    "--partition=debug",
    "--account=other",
    "-A",
    "-p",
    "debug",
    "packjob",
    "hetjob",
    "HetJob",
    "$(id)",
    "`id`",
    ";",
    "&&",
    "|",
    "${HOME}",
    "{{ cmd }}",
    "{cmd}",
    "%j",
    ",",
    "a",
    "x1",
    "\u00e9",
    "\u00a0",
    "\u200b",
]
#: Values every path must refuse with a 400 (or accept) and never answer 500 for.
SPECIAL = [
    "",
    " ",
    "a\nb",
    "a\rb",
    "\x00",
    "\u2028",
    "\u2029",
    "\x85",
    "\t",
    "x" * 5000,
    "9" * 400,
    "-" + "9" * 400,
    "1e400",
    "NaN",
    "inf",
    "1" * 19,
    '"--uid=0"',
    "a\\ b",
    "'\\'' --uid=0 '\\''",
    'a"b c"\\ d',
    "x --partition=debug",
    "x #comment",
    ":x",
    "-x",
    "hetjob",
    "xpackjobx",
    "\ud800",
]


def hostile_corpus(count: int = 400, seed: int = 12) -> list[tuple[str, frozenset[str]]]:
    """``count`` values, each with the classes it represents.

    A :data:`SPECIAL` value is a class of its own (``special:<index>``); a random
    join belongs to the class of every fragment it was built from
    (``fragment:<index>``). The hub-level tests sample by these classes.
    """
    rng = random.Random(seed)  # noqa: S311 - a fixed corpus, not a secret
    out = [(value, frozenset({f"special:{i}"})) for i, value in enumerate(SPECIAL)]
    while len(out) < count:
        picks = [rng.randrange(len(FRAGMENTS)) for _ in range(rng.randint(1, 6))]
        value = "".join(FRAGMENTS[i] for i in picks)
        out.append((value, frozenset(f"fragment:{i}" for i in picks)))
    return out[:count]


def hostile_values(count: int = 400, seed: int = 12) -> list[str]:
    """``count`` values: :data:`SPECIAL` first, then random joins of :data:`FRAGMENTS`."""
    return [value for value, _ in hostile_corpus(count, seed)]


#: Values that are not strings, for JSON paths.
HOSTILE_JSON = [
    10**400,
    -(10**400),
    10**19,
    1e308,
    -1e308,
    True,
    None,
    [],
    ["a", "b"],
    {},
    {"a": 1},
    [[["x"]]],
    3.5,
]
