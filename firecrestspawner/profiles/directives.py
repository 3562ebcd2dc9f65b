"""Scheduler directive lines as the scheduler reads them (pure).

``sbatch`` reads options from the lines of a batch script that start with
``#SBATCH`` (and the old ``#SLURM``), up to the first command line, and splits
each line into arguments with its own rules, not the shell's
(``get_argument()`` in Slurm's ``src/sbatch/opt.c``):

* arguments are separated by white space; a ``"`` or ``'`` opens a quote that
  only the same character closes, and white space inside it is kept;
* a backslash makes the next character literal, *inside single quotes too*
  (the shell keeps it there), but never joins words across white space;
* an unquoted, unescaped ``#`` ends the line (a comment);
* an unquoted word ``hetjob`` or ``packjob`` (any case) ends the line and starts
  a new heterogeneous job component; a word starting with ``:`` is a fatal
  error.

``sbatch`` also reads ``#PBS`` and ``#BSUB`` lines as a wrapper, and PBS's
``qsub`` reads ``#PBS`` lines with shell-like quoting. Rather than trust that
these dialects agree, a value that goes onto any directive line must be an
*inert word* (:func:`inert_word_problem`): characters none of these
tokenizers treat specially, and not the start of an option. Such a value
stays inside the word it is placed in, whatever the scheduler. Every other
value is refused there; it may still go into the script's body.
"""

from __future__ import annotations

import re

#: Prefixes of the lines a scheduler (or ``sbatch`` as a wrapper) reads options from.
DIRECTIVE_PREFIXES: tuple[str, ...] = ("#SBATCH", "#SLURM", "#PBS", "#BSUB")

#: Lines checked as directives: every line starting with a prefix, also after white
#: space or further down the script. A superset of what any scheduler reads, so
#: nothing it reads escapes the check.
DIRECTIVE_LINE_RE = re.compile(r"^\s*#\s*(?:SBATCH|SLURM|PBS|BSUB)", re.IGNORECASE)

#: Characters of an inert word: printable ASCII that no directive tokenizer treats
#: specially (no white space, quotes, backslash, ``#``, ``$``, backquote, ``;``,
#: ``&``, ``|``, ``<``, ``>``, parentheses, braces or ``*?[]!~^``).
_INERT_RE = re.compile(r"[A-Za-z0-9_.,:=@%+/-]*")
#: Words sbatch treats specially (as whole words; refused inside values too, as older
#: versions blank out ``packjob`` anywhere in the line).
_SCANNED_WORDS_RE = re.compile(r"packjob|hetjob", re.IGNORECASE)


class DirectiveSyntaxError(ValueError):
    """A directive line ``sbatch`` would refuse (an unmatched quote, a leading ``:``)."""


def inert_word_problem(value: str) -> str | None:
    """Why ``value`` is not provably one inert word on a directive line, or None.

    The empty string is inert (it adds nothing). A value may not start with
    ``-`` (it would be read as an option where it starts a word) or ``:``
    (``sbatch`` stops with an error), and may not contain ``packjob`` or
    ``hetjob`` (``sbatch`` looks for them anywhere in the line).
    """
    value = str.__str__(value)  # a plain str: a subclass may answer [0] differently
    if value == "":
        return None
    if not _INERT_RE.fullmatch(value):
        bad = next(ch for ch in value if not _INERT_RE.fullmatch(ch))
        return (
            f"contains {bad!r}; a value on a scheduler directive line may hold only letters, "
            "digits and . , : = @ % + / _ -"
        )
    if value[0] in "-:":
        return (
            f"starts with {value[0]!r}; on a scheduler directive line it would be read as an option"
        )
    if _SCANNED_WORDS_RE.search(value):
        return "contains 'packjob' or 'hetjob', which sbatch reads as a job separator"
    return None


def directive_lines(script: str) -> list[str]:
    """The lines of ``script`` checked as scheduler directives (see :data:`DIRECTIVE_LINE_RE`)."""
    return [line.strip() for line in script.splitlines() if DIRECTIVE_LINE_RE.match(line)]


def slurm_arguments(line: str) -> list[str]:
    """The arguments ``sbatch`` reads from the text after the magic word of one line.

    A port of Slurm 22.05's ``get_argument()`` loop, checked against the real
    ``sbatch`` by ``tests/hardening/test_directive_injection.py``. Raises
    :class:`DirectiveSyntaxError` where ``sbatch`` stops with a fatal error.
    """
    text = line
    args: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i < n and text[i] == ":":
            raise DirectiveSyntaxError(f"unexpected ':' in [{line}]")
        if i >= n or _SEPARATOR_RE.match(text, i):
            return args
        word: list[str] = []
        quote = ""
        escape = False
        while i < n and (quote or text[i] not in _C_SPACE) and text[i] != "\n":
            ch = text[i]
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
                i += 1
                continue
            elif quote:
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
            elif ch in "\"'":
                quote = ch
                i += 1
                continue
            elif ch == "#":
                return [*args, "".join(word)] if word else args
            word.append(ch)
            i += 1
        if quote:
            raise DirectiveSyntaxError(f"unmatched {quote} in [{line}]")
        if not word:  # an empty argument ("") ends the line for sbatch
            return args
        args.append("".join(word))


#: What C's ``isspace()`` accepts in the C locale.
_C_SPACE = " \t\n\v\f\r"


#: A heterogeneous job separator: the whole unquoted word, any case.
_SEPARATOR_RE = re.compile(r"(?:hetjob|packjob)(?:[ \t\n\v\f\r]|$)", re.IGNORECASE)


def slurm_directives(script: str) -> list[list[str]]:
    """The arguments of each directive line ``sbatch`` reads, in order (one list per line).

    Lines starting with ``#SBATCH`` or ``#SLURM`` at the first column, up to
    the first line whose first non-blank character is not ``#``.
    """
    out: list[list[str]] = []
    for line in script.split("\n"):
        for magic in ("#SBATCH", "#SLURM"):
            if line.startswith(magic):
                out.append(slurm_arguments(line[len(magic) :]))
                break
        else:
            stripped = line.lstrip(_C_SPACE)
            if stripped and not stripped.startswith("#"):
                break
    return out


__all__ = [
    "DIRECTIVE_LINE_RE",
    "DIRECTIVE_PREFIXES",
    "DirectiveSyntaxError",
    "directive_lines",
    "inert_word_problem",
    "slurm_arguments",
    "slurm_directives",
]
