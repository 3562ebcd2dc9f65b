"""Whether a profile's Python regex may also be the browser's ``pattern`` check (pure).

A ``text`` option's ``pattern`` is checked on the server with Python's
``re.fullmatch``, always. The form may also give it to the browser as the
input's HTML ``pattern`` attribute, for a message before the form is sent.
Browsers compile that attribute as ``new RegExp("^(?:" + pattern + ")$", "v")``:
JavaScript's regex dialect in its strictest mode (the ``v`` flag). A pattern
the browser cannot compile there (``[a-z0-9-]*``: an unescaped ``-`` at the
edge of a class) is silently dropped by the browser, and one it reads
differently (``\\d`` is ASCII in JavaScript, Unicode in Python) would stop
values the server accepts.

:func:`pattern_problem` is a conservative syntactic check: it accepts a
pattern only if it is made of constructs that exist in both dialects with one
meaning (literals, ``.``, ``^``, ``$``, ``|``, groups ``(...)`` and
``(?:...)``, lookaheads, greedy and lazy quantifiers, character classes whose
punctuation is escaped, and the escapes both read alike). Anything else, and
anything it does not know, is refused with the reason: the form then leaves
the attribute out and the server's check alone decides.

``.`` differs only on ``\\r``, U+2028 and U+2029 (JavaScript's ``.`` does not
match them), which no option value may contain anyway.
"""

from __future__ import annotations

import re
import warnings

#: JavaScript's SyntaxCharacter: may be escaped anywhere.
_SYNTAX = frozenset("^$\\.*+?()[]{}|")
#: Written unescaped inside a ``v``-mode class, these are syntax errors.
_CLASS_SYNTAX = frozenset("()[]{}/|")
#: ``v``-mode ClassSetReservedPunctuator: may be escaped inside a class.
_CLASS_PUNCTUATORS = frozenset("&-!#%,:;<=>@`~")
#: Doubled inside a ``v``-mode class (``&&``, ``--``, ``..``, ...), these are reserved.
_DOUBLED = frozenset("&!#$%*+,.:;<=>?@^`~-")
#: Control escapes with one meaning in both dialects.
_CONTROL = frozenset("tnrfv")
_QUANTIFIER_RE = re.compile(r"\{\d+(?:,\d*)?\}")
_HEX_RE = {"x": re.compile(r"[0-9A-Fa-f]{2}"), "u": re.compile(r"[0-9A-Fa-f]{4}")}

_CLASS_HINT = (
    "escape punctuation inside [...] with a backslash, e.g. `[a-z0-9\\-]` or `[a-z.\\/]`; "
    "Python reads it the same"
)


class _Unsafe(Exception):
    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def pattern_problem(pattern: str) -> tuple[str, str] | None:
    """``None`` if the browser reads ``pattern`` as Python does, else ``(reason, hint)``."""
    try:
        with warnings.catch_warnings():  # "possible set operation": refused below anyway
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as e:
        return f"it does not compile in Python: {e}", "fix the regular expression"
    try:
        _Scanner(pattern).pattern()
    except _Unsafe as e:
        return e.reason, e.hint
    return None


def browser_pattern(pattern: str) -> str:
    """The HTML ``pattern`` attribute for ``pattern``: itself when safe, else "" (leave it out)."""
    return pattern if pattern_problem(pattern) is None else ""


class _Scanner:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def pattern(self) -> None:
        groups: list[str] = []  # "group" or "lookahead", innermost last
        repeatable = False  # may a quantifier follow what came last?
        while self.i < len(self.p):
            c = self._peek()
            if c == "\\":
                self._escape(in_class=False)
                repeatable = True
            elif c == "[":
                self._char_class()
                repeatable = True
            elif c == "(":
                groups.append(self._group_start())
                repeatable = False
            elif c == ")":
                if not groups:  # pragma: no cover - Python refuses it first
                    raise _Unsafe("unbalanced `)`")
                # A lookahead cannot be repeated in the browser's dialect.
                repeatable = groups.pop() == "group"
                self.i += 1
            elif c in "*+?":
                self._quantifier(repeatable, 1)
                repeatable = False
            elif c == "{":
                found = _QUANTIFIER_RE.match(self.p, self.i)
                if found is None:
                    raise _Unsafe(
                        "a `{` that is not a repetition such as `{2}`, `{2,}` or `{2,5}` "
                        "is a syntax error in the browser",
                        "escape it as `\\{`",
                    )
                self._quantifier(repeatable, found.end() - self.i)
                repeatable = False
            elif c in "]}":
                raise _Unsafe(
                    f"an unescaped `{c}` is a syntax error in the browser", f"escape it as `\\{c}`"
                )
            elif c in "^$|":
                self.i += 1
                repeatable = False
            else:  # a literal, or `.`
                self.i += 1
                repeatable = True

    def _group_start(self) -> str:
        ahead = self.p[self.i : self.i + 3]
        if ahead == "(?:":
            self.i += 3
            return "group"
        if ahead in ("(?=", "(?!"):
            self.i += 3
            return "lookahead"
        if ahead.startswith("(?"):
            raise _Unsafe(_GROUP_REASONS.get(ahead[2:3], "this `(?` group is Python-only"), "")
        self.i += 1
        return "group"

    def _quantifier(self, repeatable: bool, length: int) -> None:
        if not repeatable:
            raise _Unsafe(
                "a repetition of nothing, of an anchor or of a lookahead is a syntax error in the browser",
                "repeat a character, a class or a group",
            )
        self.i += length
        if self._peek() == "?":  # lazy: the same in both
            self.i += 1
        elif self._peek() == "+":
            raise _Unsafe(
                "possessive repetitions (`*+`, `++`, `?+`) are Python-only",
                "use a plain repetition",
            )

    def _escape(self, *, in_class: bool) -> None:
        e = self._peek(1)
        if not e:  # pragma: no cover - Python refuses it first
            raise _Unsafe("a trailing backslash")
        if e in _SYNTAX or e == "/" or e in _CONTROL or (in_class and e in _CLASS_PUNCTUATORS):
            self.i += 2
            return
        if in_class and e == "b":  # backspace in both
            self.i += 2
            return
        if e in _HEX_RE:
            digits = _HEX_RE[e].match(self.p, self.i + 2)
            if digits is None or (e == "u" and 0xD800 <= int(digits.group(), 16) <= 0xDFFF):
                raise _Unsafe(f"the escape `\\{e}...` is read differently by the browser")
            self.i = digits.end()
            return
        if e in "dDwWsS":
            raise _Unsafe(
                f"`\\{e}` means Unicode characters in Python but only ASCII ones (or another "
                "set of spaces) in the browser",
                "write the characters out, e.g. `[0-9]` for `\\d`, `[A-Za-z0-9_]` for `\\w`",
            )
        if e in "bBAZzG":
            raise _Unsafe(
                f"`\\{e}` (a boundary or anchor) is Python-only or means something else in the browser",
                "the whole value must match the pattern anyway; leave it out",
            )
        if e.isdigit():
            raise _Unsafe(
                "back-references and octal escapes (`\\1`, `\\0`) are read differently by the browser",
                "",
            )
        where = "inside [...]" if in_class else "outside [...]"
        raise _Unsafe(
            f"the escape `\\{e}` {where} is a syntax error in the browser",
            f"write `{e}` without the backslash" if not in_class else _CLASS_HINT,
        )

    def _char_class(self) -> None:
        self.i += 1
        if self._peek() == "^":
            self.i += 1
        if self._peek() == "]":
            raise _Unsafe(
                "a `]` first in a class is a character in Python but ends the class in the browser",
                "escape it as `\\]`",
            )
        tokens: list[str] = []  # "atom" or "-"
        while True:
            c = self._peek()
            if c == "":  # pragma: no cover - Python refuses it first
                raise _Unsafe("unterminated class")
            if c == "]":
                self.i += 1
                break
            if c == "\\":
                self._escape(in_class=True)
                tokens.append("atom")
                continue
            if c in _DOUBLED and self._peek(1) == c:
                raise _Unsafe(
                    f"`{c}{c}` inside [...] is reserved syntax in the browser", _CLASS_HINT
                )
            if c in _CLASS_SYNTAX:
                raise _Unsafe(
                    f"an unescaped `{c}` inside [...] is a syntax error in the browser",
                    _CLASS_HINT,
                )
            tokens.append("-" if c == "-" else "atom")
            self.i += 1
        # `-` is only allowed as a range between two characters (a-z), never at an
        # edge or next to another range: Python reads those as a character.
        k = 0
        while k < len(tokens):
            if tokens[k] == "-":
                raise _Unsafe(
                    "an unescaped `-` at the edge of a class (or next to a range) is a "
                    "syntax error in the browser",
                    _CLASS_HINT,
                )
            if tokens[k + 1 : k + 2] == ["-"]:
                if tokens[k + 2 : k + 3] != ["atom"]:
                    k += 1  # the dash is at the end: reported next round
                    continue
                k += 3
            else:
                k += 1


_GROUP_REASONS = {
    "P": "named groups `(?P<name>...)` are Python-only",
    "<": "lookbehind `(?<=...)` / `(?<!...)` is not supported alike by every browser",
    ">": "atomic groups `(?>...)` are Python-only",
    "#": "comments `(?#...)` are Python-only",
    "(": "conditional groups `(?(1)...)` are Python-only",
}
for _flag in "aiLmsux-":
    _GROUP_REASONS[_flag] = "inline flags such as `(?i)` are Python-only"


__all__ = ["browser_pattern", "pattern_problem"]
