"""YAML text -> the same plain data as :mod:`.parse`, at C speed, or :data:`NOT_FAST` (pure).

:func:`.parse.parse_text` reads YAML with ruamel.yaml's round-trip loader,
in pure Python, because it keeps every node's position. Positions are needed
only to report a problem or a warning; a valid file does not need them. This
module builds the node tree with libyaml (PyYAML's C parser and composer)
and turns it into plain values itself, with the **YAML 1.2** rules that
ruamel applies (libyaml's own resolver is YAML 1.1, where ``1:30:00`` is the
number 5400, ``no`` is False and ``017`` is 15).

It answers only when it is sure the result equals ruamel's; otherwise it
answers :data:`NOT_FAST` and the caller parses exactly. Not fast:

* a plain scalar that YAML 1.2 reads as anything but a string, ``null``,
  ``true``/``false``, a decimal integer or a plain decimal fraction (hex,
  octal, binary, ``_`` separators, exponents, ``.inf``, timestamps, ``<<``
  merge keys, ``=``), a plain scalar starting with ``0`` and another digit,
  or a float that does not print back as written;
* an explicit tag (even ``!!str``); a key that is not
  a string; a duplicate key; a document that is not a mapping; a ``%`` directive; characters YAML 1.1 and 1.2
  treat differently (NEL, LS, PS line breaks, a byte order mark), control
  characters, tabs, a ``!`` that may start a tag, an anchor name YAML 1.1
  would read shorter, block scalar details libyaml takes and ruamel refuses (a comment glued to
  the header, a header at the start of a line, a line of spaces only), a quoted
  key whose ``:`` is glued to the value; anything libyaml refuses; more values or depth than
  :mod:`.parse` allows.

``tests/profiles/test_fastyaml.py`` compares the two on the shipped profiles,
every test profile and generated documents.
"""

from __future__ import annotations

import re
from typing import Any

try:  # PyYAML with libyaml; without it every text is parsed exactly
    import yaml
    from yaml._yaml import CParser

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the installation
    AVAILABLE = False

from .parse import MAX_DEPTH, MAX_NODES


class _NotFast:
    def __repr__(self) -> str:
        return "NOT_FAST"


#: The answer when the exact parser must be used.
NOT_FAST: Any = _NotFast()

#: The tags this module's resolver gives nodes without an explicit tag; a node
#: with any other tag had one written (``!!str``, ``!x``, ``!``): NOT_FAST (ruamel
#: keeps such a scalar as a ``TaggedScalar``, not a string).
_PLAIN = "tag:firecrestspawner,2026:plain"  # resolved here, by YAML 1.2
_STR = "tag:firecrestspawner,2026:quoted"
_SEQ = "tag:firecrestspawner,2026:seq"
_MAP = "tag:firecrestspawner,2026:map"
_UNSURE_TAG = "tag:firecrestspawner,2026:unsure"

#: Text where libyaml and ruamel may read differently: NEL, LS, PS line breaks
#: (YAML 1.1), a byte order mark, control characters, tabs (ruamel refuses some
#: libyaml takes), a directive, or what may be a tag (``!`` after a space or at
#: the start: a text ``Hello !`` merely takes the exact path).
_UNSURE_TEXT = re.compile(
    "[\x85\u2028\u2029\ufeff\x00-\x09\x0b\x0c\x0e-\x1f\x7f]|^%|(?:^|[\\s\\[{,])!", re.M
)

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
#: Everything YAML 1.2's implicit resolvers (ruamel's table) turn into a non-string;
#: what is not handled above is NOT_FAST. (bool and null are handled exactly.)
_NOT_STR_12 = re.compile(
    r"""(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)
    |[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+
    |<<
    |=
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
     (?:[Tt]|[\ \t]+)[0-9][0-9]?
     :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
     (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
    )\Z""",
    re.X,
)
#: First characters of the scalars above (anything else is a string unless bool/null).
_NOT_STR_FIRST = frozenset("-+0123456789.<=")
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


class _Unsure(Exception):
    pass


def plain_scalar(value: str) -> Any:
    """A plain (unquoted) scalar as YAML 1.2 reads it; raises ``_Unsure`` when not sure."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value[0] not in _NOT_STR_FIRST:
        return value
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        number = float(value)
        # ruamel keeps the written form; only where it prints back the same is it sure.
        if repr(number) != value.lstrip("+"):
            raise _Unsure
        return number
    if _NOT_STR_12.match(value):
        raise _Unsure
    return value


if AVAILABLE:

    class _Loader(CParser):
        """libyaml's parser and composer; plain scalars keep a tag of their own."""

        def descend_resolver(self, parent: Any, index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

        def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
            if kind is yaml.ScalarNode:
                if not (implicit[0] or implicit[1]):
                    return _UNSURE_TAG  # the non-specific tag "!"
                return _PLAIN if implicit[0] else _STR
            if not implicit:
                return _UNSURE_TAG
            return _SEQ if kind is yaml.SequenceNode else _MAP


def _plain(node: Any, budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _Unsure
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        if tag == _PLAIN:
            return plain_scalar(node.value)
        if tag == _STR:
            return node.value
        raise _Unsure
    if isinstance(node, yaml.SequenceNode):
        if tag != _SEQ:
            raise _Unsure
        return [_plain(item, budget, depth + 1) for item in node.value]
    if tag != _MAP:
        raise _Unsure
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Unsure
        key = _plain(key_node, budget, depth + 1)
        if not isinstance(key, str) or key in out:
            raise _Unsure
        out[key] = _plain(value_node, budget, depth + 1)
    return out


#: An anchor or alias (``&name``, ``*name``) where one may start; YAML 1.1 names are
#: letters, digits, ``_`` and ``-`` only, YAML 1.2 ones any non-space, non-flow characters.
_ANCHOR = re.compile(r"(?:^|[\s\[{,])[&*]([^\s,\[\]{}]*)", re.M)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
#: Block scalar details libyaml takes and ruamel refuses: a comment glued to the
#: header (``|#``), a header at the start of a line, a line of spaces only (ruamel:
#: "more indented follow up line than first in a block scalar"); and a quoted key
#: with its ``:`` glued to what follows (``["k":]``, JSON-like flow of YAML 1.2).
_BLOCK_DETAILS = re.compile(r"[|>][-+0-9]*#|^[|>]|^ +$|[\"']:(?![ \n])", re.M)


def _unsure(text: str) -> bool:
    if _UNSURE_TEXT.search(text) or _BLOCK_DETAILS.search(text):
        return True
    return any(not _SAFE_NAME.match(name) for name in _ANCHOR.findall(text))


def load_plain(text: str) -> Any:
    """The plain data of a YAML text, equal to :func:`.parse.parse_text`'s, or :data:`NOT_FAST`."""
    if not AVAILABLE or _unsure(text):
        return NOT_FAST
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            # A profile file is a mapping; anything else is reported by the exact parse.
            return NOT_FAST
        return _plain(node, [MAX_NODES], 0)
    except (_Unsure, yaml.YAMLError, RecursionError, ValueError):
        return NOT_FAST
    finally:
        loader.dispose()


__all__ = ["AVAILABLE", "NOT_FAST", "load_plain", "plain_scalar"]
