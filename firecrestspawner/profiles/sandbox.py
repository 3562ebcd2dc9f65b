"""The sandbox batch templates render in, with bounded costs, and static template checks (pure).

Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` keeps templates away
from Python internals; this module also bounds what a template may cost, so a
profile file cannot make ``validate`` or the hub spend gigabytes or minutes:
no loaders (``include``, ``import``, ``extends``), a filter allowlist whose
results are size-checked, ``range`` limited, no loop inside a loop or a macro,
``*``/``**``/``%`` intercepted (so the compiler cannot fold them into huge
constants) and format widths limited. :func:`check_template` runs at load
time and before every compilation; :func:`unquoted_body_values` finds user
values a template writes into the script body unquoted (``validate`` warns).
"""

from __future__ import annotations

import functools
import re
import shlex
import string
from collections.abc import Collection
from typing import Any

import jinja2
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from .directives import DIRECTIVE_LINE_RE


class ScriptTemplateError(ValueError):
    """The template itself is broken (syntax, unknown variable, forbidden access)."""


def shquote(value: object) -> str:
    """Quote a value as one shell word (``shlex.quote``)."""
    return shlex.quote("" if value is None else str(value))


#: Longest template text accepted (a batch script, not a program).
MAX_TEMPLATE_CHARS = 64 * 1024
#: Longest rendered script, and longest string or list any step of a rendering may build.
MAX_SCRIPT_CHARS = 1024 * 1024
#: Largest ``range()`` a template may iterate over.
MAX_RANGE = 1000
#: Largest width or precision in a format specification (``{:>10}``, ``%10s``).
MAX_FORMAT_WIDTH = 1000
#: The filters a batch template may use: besides ``shquote``, Jinja2's that cannot
#: build large values from small arguments (``center``, ``indent``, ``format``,
#: ``wordwrap``, ``truncate`` take widths; ``batch``, ``slice`` counts).
SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
        "reverse", "round", "select", "selectattr", "shquote", "sort", "string", "title",
        "tojson", "trim", "unique", "upper",
    }
)  # fmt: skip
#: Template constructs refused: a batch template is one self-contained text, and its
#: cost must stay proportional to its size (no loop inside a loop or a macro).
_REFUSED_NODES = {
    jinja2.nodes.Include: "{% include %}",
    jinja2.nodes.Import: "{% import %}",
    jinja2.nodes.FromImport: "{% from ... import %}",
    jinja2.nodes.Extends: "{% extends %}",
}
_WIDTH_RE = re.compile(r"(\d+)")
_PERCENT_SPEC_RE = re.compile(r"%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")


def _too_big(value: Any) -> bool:
    return isinstance(value, (str, list, tuple, bytes)) and len(value) > MAX_SCRIPT_CHARS


def _check_spec(spec: str, where: str) -> None:
    """Refuse a format specification whose width or precision exceeds :data:`MAX_FORMAT_WIDTH`."""
    if "{" in spec or "*" in spec:
        raise ScriptTemplateError(f"{where}: computed widths ({spec!r}) are not allowed")
    for digits in _WIDTH_RE.findall(spec):
        if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
            raise ScriptTemplateError(
                f"{where}: width or precision {digits} is larger than {MAX_FORMAT_WIDTH}"
            )


def _check_format_string(text: str) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ScriptTemplateError(f"format string: {e}") from None
    for _, field, spec, _ in parsed:
        if field is not None and spec:
            _check_spec(spec, "format string")


def _check_percent_string(text: str) -> None:
    for m in _PERCENT_SPEC_RE.finditer(text):
        _check_spec(m.group(0), "% format")


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox with bounded costs.

    ``*``, ``**`` and ``%`` are intercepted: the compiler then cannot fold them
    (``{{ 'x' * 10**10 }}`` would otherwise be computed while compiling), and
    at render they are refused when the result would be too large. ``str.format``
    and ``%`` formatting refuse widths above :data:`MAX_FORMAT_WIDTH`; ``range``
    is limited to :data:`MAX_RANGE` items; every filter's result is bounded.
    """

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(count, int)
                    and len(seq) * max(count, 0) > MAX_SCRIPT_CHARS
                ):
                    raise ScriptTemplateError("a repetition would build a value too large")
        elif (
            operator == "**"
            and isinstance(left, (int, float))
            and isinstance(right, (int, float))
            and abs(right) > 64
            and abs(left) > 1
        ):
            raise ScriptTemplateError("an exponent larger than 64 is not allowed")
        elif operator == "%" and isinstance(left, str):
            _check_percent_string(left)
        result = super().call_binop(context, operator, left, right)
        if _too_big(result):
            raise ScriptTemplateError("an expression would build a value too large")
        return result

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = getattr(value, "__self__", "")

        def checked(*args: Any, **kwargs: Any) -> str:
            if isinstance(text, str):
                _check_format_string(text)
            return wrapped(*args, **kwargs)

        return checked


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise ScriptTemplateError(f"range() of more than {MAX_RANGE} items")
    return rng


def _bounded_filter(func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if _too_big(result):
            raise ScriptTemplateError(f"filter {func.__name__} would build a value too large")
        return result

    return wrapper


def _env() -> SandboxedEnvironment:
    env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["shquote"] = shquote
    env.filters = {
        name: _bounded_filter(f) for name, f in env.filters.items() if name in SAFE_FILTERS
    }
    env.globals = {"range": _bounded_range, "dict": dict, "namespace": env.globals["namespace"]}
    return env


_ENV = _env()


def check_template(template: str) -> None:
    """Refuse what cannot render in the sandbox or could cost more than its size.

    Loaders (``include``, ``import``, ``extends``), filters outside
    :data:`SAFE_FILTERS`, a loop inside a loop, a loop or a call inside a macro,
    recursive loops, texts above :data:`MAX_TEMPLATE_CHARS`; for ``str.format``
    templates, widths above :data:`MAX_FORMAT_WIDTH`. Raises
    :class:`ScriptTemplateError` naming the line.
    """
    _check_template(template)


@functools.lru_cache(maxsize=512)
def _check_template(template: str) -> None:
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ScriptTemplateError(
            f"the template has {len(template)} characters; at most {MAX_TEMPLATE_CHARS}"
        )
    if not is_jinja(template):
        for _, field_name, spec, _ in string.Formatter().parse(template):
            if field_name is not None and spec:
                _check_spec(spec, f"str.format field {{{field_name}}}")
        return
    try:
        ast = _ENV.parse(template)
    except jinja2.TemplateSyntaxError as e:
        raise ScriptTemplateError(f"line {e.lineno}: {e.message}") from None
    for node_type, label in _REFUSED_NODES.items():
        for refused in ast.find_all(node_type):
            raise ScriptTemplateError(
                f"line {refused.lineno}: {label} is not supported: a batch template is one "
                "self-contained text (no loader is configured)"
            )
    for node in ast.find_all(jinja2.nodes.Filter):
        if node.name not in SAFE_FILTERS:
            raise ScriptTemplateError(
                f"line {node.lineno}: filter {node.name!r} is not available in batch templates; "
                f"available: {', '.join(sorted(SAFE_FILTERS))}"
            )
    for loop in ast.find_all(jinja2.nodes.For):
        if loop.recursive:
            raise ScriptTemplateError(f"line {loop.lineno}: recursive loops are not supported")
        for inner in loop.find_all((jinja2.nodes.For, jinja2.nodes.Call)):
            if isinstance(inner, jinja2.nodes.For) or (
                isinstance(inner, jinja2.nodes.Call) and _calls_macro(inner, ast)
            ):
                raise ScriptTemplateError(
                    f"line {inner.lineno}: a loop or macro call inside a loop is not supported"
                )
    for macro in ast.find_all((jinja2.nodes.Macro, jinja2.nodes.CallBlock)):
        for inner in macro.find_all((jinja2.nodes.For, jinja2.nodes.Call)):
            if isinstance(inner, jinja2.nodes.For) or (
                isinstance(inner, jinja2.nodes.Call) and _calls_macro(inner, ast)
            ):
                raise ScriptTemplateError(
                    f"line {inner.lineno}: a loop or macro call inside a macro is not supported"
                )


#: Filters whose result is safe as shell text wherever it goes (one quoted word, a number).
SAFE_OUTPUT_FILTERS = frozenset({"shquote", "int", "float", "length", "count", "round", "abs"})


_TAGS_RE = re.compile(r"\{%.*?%\}|\{#.*?#\}")


def unquoted_body_values(template: str, names: Collection[str]) -> list[tuple[int, str]]:
    """``(line, variable)`` for each of ``names`` the template writes into the script body
    (not a directive line) other than through a safe filter such as ``| shquote``.

    Directive lines are left out: every value there is checked at each spawn.
    """
    return list(_unquoted_body_values(template, frozenset(names)))


@functools.lru_cache(maxsize=512)
def _unquoted_body_values(template: str, names: frozenset[str]) -> tuple[tuple[int, str], ...]:
    """:func:`unquoted_body_values`, once per (template, names): many profiles share a template."""
    wanted = set(names)
    lines = template.splitlines()
    out: list[tuple[int, str]] = []

    def on_directive(lineno: int) -> bool:
        # As the line renders: the tags `{% ... %}` and comments `{# ... #}` write nothing.
        if not 0 < lineno <= len(lines):
            return False
        return bool(DIRECTIVE_LINE_RE.match(_TAGS_RE.sub("", lines[lineno - 1])))

    if not is_jinja(template):
        for lineno, line in enumerate(lines, 1):
            if on_directive(lineno):
                continue
            for _, field, _, _ in string.Formatter().parse(line):
                root = _FIELD_RE.match(field or "")
                if root and root.group(1) in wanted:
                    out.append((lineno, root.group(1)))
        return tuple(out)
    try:
        ast = _ENV.parse(template)
    except jinja2.TemplateSyntaxError:
        return ()
    for output in ast.find_all(jinja2.nodes.Output):
        for expr in output.nodes:
            if isinstance(expr, jinja2.nodes.TemplateData):
                continue
            if isinstance(expr, jinja2.nodes.Filter) and expr.name in SAFE_OUTPUT_FILTERS:
                continue
            direct = [expr] if isinstance(expr, jinja2.nodes.Name) else []
            for name in [*direct, *expr.find_all(jinja2.nodes.Name)]:
                if name.name in wanted and not on_directive(name.lineno):
                    out.append((name.lineno, name.name))
    return tuple(sorted(set(out)))


def _calls_macro(call: jinja2.nodes.Call, ast: jinja2.nodes.Template) -> bool:
    names = {m.name for m in ast.find_all(jinja2.nodes.Macro)} | {"caller"}
    return isinstance(call.node, jinja2.nodes.Name) and call.node.name in names


def is_jinja(template: str) -> bool:
    """Whether a template is Jinja2 (as the documented ``format_template`` decides)."""
    return "{{" in template or "{%" in template


_FIELD_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


__all__ = [
    "MAX_FORMAT_WIDTH",
    "MAX_RANGE",
    "MAX_SCRIPT_CHARS",
    "MAX_TEMPLATE_CHARS",
    "SAFE_FILTERS",
    "SAFE_OUTPUT_FILTERS",
    "ScriptTemplateError",
    "check_template",
    "is_jinja",
    "shquote",
    "unquoted_body_values",
]
