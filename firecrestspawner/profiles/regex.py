"""Profile regular expressions that run in linear time (pure).

A text option's ``pattern`` and a cluster choice's ``filter`` are matched
against what users type and what the cluster reports, inside the hub's event
loop. Python's ``re`` backtracks: a pattern with nested quantifiers such as
``(a+)+$`` takes time doubling with each character of a hostile value, and
stalls the whole hub. These patterns are therefore compiled and matched with
RE2 (``google-re2``), whose matching time is linear in the value's length.

RE2 has no backreferences, lookaround, atomic groups or possessive
quantifiers, and bounds repetition counts and program size; ``validate``
refuses such patterns (:func:`regex_problem`) with the construct RE2 named,
so a file that loads never fails at a spawn. ``\\d``, ``\\w``, ``\\s`` and
``\\b`` are ASCII-only in RE2 (as in the browser's ``pattern``).
"""

from __future__ import annotations

import functools
import re

import re2

#: Memory RE2 may use for one compiled pattern (its default); a larger program
#: is refused at validate time.
MAX_PROGRAM_MEMORY = 8 << 20


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the problem is reported to the administrator, not to stderr
    options.max_mem = MAX_PROGRAM_MEMORY
    # Only "does it match" is asked: without capture groups RE2 answers with its
    # DFA, about ten times faster on a long value than with submatch tracking.
    options.never_capture = True
    return options


_OPTIONS = _options()


def _message(error: Exception) -> str:
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)


@functools.lru_cache(maxsize=1024)
def compile_linear(pattern: str) -> re2._Regexp:
    """The RE2 program of ``pattern`` (cached); raises ``re2.error`` as :func:`regex_problem` says."""
    return re2.compile(pattern, options=_OPTIONS)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a profile regex, or None.

    It must compile with Python's ``re`` (the syntax the documentation
    describes) and with RE2 (the engine that matches it).
    """
    try:
        compile_linear(pattern)
    except re2.error as e:
        message = _message(e)
        where = _where(pattern, message)
        return (
            f"uses a construct that cannot run in linear time (RE2: {message}{where}); "
            "backreferences, lookahead/lookbehind, atomic groups, possessive quantifiers and "
            "repetition counts above 1000 are not supported"
        )
    try:
        re.compile(pattern)
    except re.error as e:
        return f"does not compile: {e}"
    return None


def _where(pattern: str, message: str) -> str:
    """`` at character N`` for the fragment RE2 quoted in its message, if found."""
    fragment = message.rsplit(": ", 1)[-1] if ": " in message else ""
    index = pattern.find(fragment) if fragment else -1
    return f" at character {index + 1} of the pattern" if index >= 0 else ""


def fullmatch(pattern: str, value: str) -> bool:
    """Whether all of ``value`` matches ``pattern``, in time linear in ``len(value)``."""
    return compile_linear(pattern).fullmatch(value) is not None


__all__ = ["MAX_PROGRAM_MEMORY", "compile_linear", "fullmatch", "regex_problem"]
