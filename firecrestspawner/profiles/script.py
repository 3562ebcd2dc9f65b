"""Batch script rendering and its safety checks (pure).

A batch script is rendered from a template and a mapping of variables:

* Jinja2 in a :class:`~jinja2.sandbox.SandboxedEnvironment` with
  ``StrictUndefined`` (a missing variable is an error, never an empty string),
  no autoescape (this is shell, not HTML), and a ``shquote`` filter; or, when
  the text contains neither ``{{`` nor ``{%``, Python ``str.format`` as the
  documented ``batch_script`` trait (``{cmd}``), restricted to plain names and
  list indexes (``{runtime[0]}``), never attributes.
* Before rendering, every value not named in ``trusted`` is refused if it
  contains a control or line-separator character (:data:`FORBIDDEN_CHARS`).
* After rendering, the scheduler directive lines (``#SBATCH``, ``#PBS``) are
  compared with a second rendering in which every such value that is not a
  plain word is replaced by an inert placeholder: same number of directive
  lines, and per line the same number of shell words and the same option
  names. So no value can add, remove or change a directive.

A failed check raises :class:`ScriptRejected` naming the variable; nothing has
been submitted at that point. Template mistakes (syntax, unknown variables)
raise :class:`ScriptTemplateError`: they are the administrator's to fix.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
from collections.abc import Collection, Iterable, Mapping
from importlib import resources
from typing import Any

import jinja2
from jinja2 import meta

from .directives import (
    _SCANNED_WORDS_RE,
    DirectiveSyntaxError,
    inert_word_problem,
    slurm_arguments,
)
from .directives import directive_lines as _directive_lines
from .expert import SchedulerItem
from .sandbox import (
    _ENV,
    _FIELD_RE,
    MAX_SCRIPT_CHARS,
    ScriptTemplateError,
    _check_spec,
    _check_template,
    check_template,
    is_jinja,
    shquote,
    unquoted_body_values,
)

#: The request variables the documented spawner classes define (``req_<x>`` ->
#: template variable ``<x>``). They always exist as template variables
#: (empty string unless set), so templates written for the traits keep working.
BUILTIN_REQ_NAMES: tuple[str, ...] = (
    "host",
    "queue",
    "partition",
    "account",
    "runtime",
    "memory",
    "nprocs",
    "nnodes",
    "ngpus",
    "gpus_per_node",
    "gpus",
    "options",
    "prologue",
    "epilogue",
    "uenv",
    "uenv_view",
    "reservation_custom",
    "username",
    "homedir",
    "cluster",
    "qos",
    "srun",
    "reservation",
    "gres",
    "submitenv",
    "constraint",
)

#: Variables the spawner provides for every spawn besides the request
#: variables: the single-user command line, the job name and the job's
#: absolute working directory.
SPAWN_VARIABLES: tuple[str, ...] = ("cmd", "job_name", "workdir")

#: Templates shipped with the package, by name.
BUILTIN_TEMPLATES: Mapping[str, str] = {"slurm": "slurm.sh.j2", "pbs": "pbs.sh.j2"}

#: Characters no checked value may contain: C0 controls (newline, CR, NUL,
#: tab, ...), DEL, NEL and the Unicode line and paragraph separators.
FORBIDDEN_CHARS_RE = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


class ScriptRejected(ValueError):
    """A value would change the structure of the batch script; nothing was submitted."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@functools.lru_cache(maxsize=16)
def builtin_template(name: str) -> str:
    """The text of a built-in template (``slurm`` or ``pbs``)."""
    try:
        filename = BUILTIN_TEMPLATES[name]
    except KeyError:
        raise ScriptTemplateError(
            f"unknown built-in template {name!r}; known: {', '.join(sorted(BUILTIN_TEMPLATES))}"
        ) from None
    return (
        resources.files("firecrestspawner")
        .joinpath("templates")
        .joinpath("batch")
        .joinpath(filename)
        .read_text(encoding="utf-8")
    )


def template_variables(template: str) -> set[str]:
    """Names of the variables a template refers to (its free variables)."""
    return set(_template_variables(template))


@functools.lru_cache(maxsize=512)
def _template_variables(template: str) -> frozenset[str]:
    # Cached by text: profile loading and every spawn ask again for the same few templates.
    _check_template(template)
    if is_jinja(template):
        try:
            ast = _ENV.parse(template)
        except jinja2.TemplateSyntaxError as e:
            raise ScriptTemplateError(f"line {e.lineno}: {e.message}") from None
        return frozenset(meta.find_undeclared_variables(ast))
    return frozenset(root for root, _ in _format_fields(template))


@functools.lru_cache(maxsize=512)
def _compiled(template: str) -> jinja2.Template:
    """The compiled template, cached by its text (compiling costs ~15 ms of CPU)."""
    _check_template(template)
    return _ENV.from_string(template)


def _format_fields(template: str) -> Iterable[tuple[str, str]]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ScriptTemplateError(f"str.format template: {e}") from None
    for _, field_name, format_spec, _ in parsed:
        if field_name is None:
            continue
        m = _FIELD_RE.fullmatch(field_name)
        if not m:
            raise ScriptTemplateError(
                f"str.format field {{{field_name}}}: only names and list indexes such as "
                "{cmd} or {runtime[0]} are allowed"
            )
        if format_spec and ("{" in format_spec):
            raise ScriptTemplateError(
                f"str.format field {{{field_name}}}: nested fields are not allowed"
            )
        if format_spec:
            _check_spec(format_spec, f"str.format field {{{field_name}}}")
        yield m.group(1), field_name


class _StrictFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        m = _FIELD_RE.fullmatch(field_name)
        if not m:
            raise ScriptTemplateError(f"str.format field {{{field_name}}} is not allowed")
        name = m.group(1)
        if name not in kwargs:
            raise ScriptTemplateError(f"undefined variable {name!r}")
        value = kwargs[name]
        for index in re.findall(r"\[(\d+)\]", m.group(2)):
            if not isinstance(value, (list, tuple)) or int(index) >= len(value):
                raise ScriptTemplateError(f"{field_name}: not a list with that index")
            value = value[int(index)]
        return value, name


def _render(template: str, variables: Mapping[str, Any], name: str) -> str:
    """Render; any failure is a :class:`ScriptTemplateError` naming the template, never a traceback."""
    if not is_jinja(template):
        try:
            _check_template(template)
            return _StrictFormatter().vformat(template, (), dict(variables))
        except ScriptTemplateError as e:
            raise ScriptTemplateError(f"{name}: {e}") from None
        except Exception as e:  # noqa: BLE001 - any failure of the template is the admin's to fix
            raise ScriptTemplateError(f"{name}: str.format template: {_describe(e)}") from None
    try:
        return _bounded_output(_compiled(template).generate(dict(variables)))
    except ScriptTemplateError as e:
        raise ScriptTemplateError(f"{name}: {e}") from None
    except jinja2.UndefinedError as e:
        raise ScriptTemplateError(f"{name}: {e.message}") from None
    except jinja2.TemplateSyntaxError as e:
        raise ScriptTemplateError(f"{name}: line {e.lineno}: {e.message}") from None
    except jinja2.exceptions.SecurityError as e:
        raise ScriptTemplateError(f"{name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any failure of the template is the admin's to fix
        raise ScriptTemplateError(f"{name}: {_describe(e)}") from None


def _describe(error: Exception) -> str:
    text = str(error)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _bounded_output(chunks: Iterable[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_SCRIPT_CHARS:
            raise ScriptTemplateError(
                f"the script would be longer than {MAX_SCRIPT_CHARS} characters"
            )
        out.append(chunk)
    return "".join(out)


def format_template(template: str, **kwargs: Any) -> str:
    """Render a template with keyword arguments (the documented module function).

    Jinja2 (sandboxed, strict) when the text contains ``{{`` or ``{%``, else
    ``str.format``. No injection checks: use :func:`render_batch_script` for
    batch scripts.
    """
    return _render(template, kwargs, "<template>")


def forbidden_char(value: str) -> str | None:
    """Why ``value`` may go into no batch script (a control or line-separator character), or None."""
    found = FORBIDDEN_CHARS_RE.search(value)
    if found is None:
        return None
    return (
        f"contains the control character U+{ord(found.group()):04X}; "
        "newlines, carriage returns, NUL, tabs and line separators are not allowed"
    )


def check_value(field: str, value: object) -> None:
    """Refuse a value that holds a control or line-separator character."""
    if isinstance(value, (list, tuple)):
        for item in value:
            check_value(field, item)
        return
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, SchedulerItem):
        check_value(field, [value.name, value.value])
        return
    if not isinstance(value, str):
        raise ScriptRejected(field, f"unsupported value type {type(value).__name__}")
    reason = forbidden_char(value)
    if reason:
        raise ScriptRejected(field, reason)


class _EmptyMark(str):
    """An empty value that shows a marker where it is rendered; still falsy and equal to ``""``.

    So the reference rendering takes the same branches and still shows where an
    empty value lands: as a whole word on a directive line it would let ``sbatch``
    read the next word as the previous option's argument.
    """

    mark: str
    base: type[str]

    def __new__(cls, mark: str, base: type[str] = str) -> _EmptyMark:
        obj = super().__new__(cls, "")
        obj.mark = mark
        obj.base = base
        return obj

    def __getitem__(self, key: Any) -> Any:
        # As the real value answers (request.FormValue answers [0] with itself).
        result = self.base.__getitem__(self.base(""), key)
        return self if isinstance(result, str) and result == "" else result

    def __str__(self) -> str:
        return self.mark

    def __format__(self, spec: str) -> str:
        return self.mark


def _placeholder(key: str, value: Any, owners: dict[str, tuple[str, str]]) -> Any:
    """``value`` with every item that is not an inert word replaced by a unique placeholder."""
    if isinstance(value, (list, tuple)):
        return [_placeholder(key, item, owners) for item in value]
    if isinstance(value, SchedulerItem):
        # The name is the administrator's (from the allow-list); the value is checked.
        return dataclasses.replace(value, value=_placeholder(key, value.value, owners))
    if isinstance(value, str):
        token = f"fcsv{len(owners) + 1}x"
        if value == "":
            owners[token] = (key, "")
            return _EmptyMark(token, type(value))
        problem = inert_word_problem(value)
        if problem is not None:
            owners[token] = (key, problem)
            return type(value)(token)
    return value


def directive_lines(script: str) -> list[str]:
    """The scheduler directive lines (``#SBATCH``, ``#PBS``, ...) of a script, stripped."""
    return _directive_lines(script)


def _culprit(line: str, variables: Mapping[str, Any], suspects: Iterable[str]) -> str:
    """The variable most likely responsible for a changed directive line.

    The longest suspect value found in the line, else the first suspect (a
    value that was replaced by a placeholder), so the error always names a
    variable.
    """
    suspects = list(suspects)
    best, best_len = "", 0
    for key in suspects:
        value = variables[key]
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            text = str(item).strip()
            if text and text in line and len(text) > best_len:
                best, best_len = key, len(text)
    return best or (suspects[0] if suspects else "<template>")


#: The administrator's shell fragments: the only variables inserted unchecked,
#: in classic and profile mode alike, unless the user set them.
ADMIN_FRAGMENTS = frozenset({"cmd", "prologue", "epilogue", "options", "srun", "submitenv"})


def trusted_variables(
    variables: Mapping[str, object], user_set: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The one trust rule of every render (spawn, ``firecrestspawner render``, tests).

    Only :data:`ADMIN_FRAGMENTS` from the site's configuration go into the
    script unchecked; every other value, including a fixed profile value or a
    ``req_*`` trait, must leave the scheduler directives as they are.
    """
    return frozenset((ADMIN_FRAGMENTS & set(variables)) - set(user_set))


def render_batch_script(
    template: str,
    variables: Mapping[str, object],
    *,
    name: str = "<profile>",
    trusted: Collection[str] = (),
) -> str:
    """Render a batch script; refuse values that would change its structure.

    ``variables`` are the template variables (see :data:`BUILTIN_REQ_NAMES`,
    :data:`SPAWN_VARIABLES`). ``trusted`` names variables set only by the
    administrator (for example a multi-line ``prologue`` from the spawner
    configuration): they are exempt from the value checks. Every other value
    is checked. Raises :class:`ScriptRejected` (a value) or
    :class:`ScriptTemplateError` (the template).
    """
    trusted_set = set(trusted)
    checked = [key for key in variables if key not in trusted_set]
    for key in checked:
        check_value(key, variables[key])
    script = _render(template, variables, name)

    # The reference rendering: every checked value that is not provably one inert word
    # (directives.inert_word_problem) becomes a placeholder, the rest stays as it is (so
    # branches on plain values take the same path).
    owners: dict[str, tuple[str, str]] = {}
    safe_vars = {
        key: value if key in trusted_set else _placeholder(key, value, owners)
        for key, value in variables.items()
    }
    reference = _render(template, safe_vars, name) if owners else script
    real_lines = directive_lines(script)
    safe_lines = directive_lines(reference)
    # 1. A value that is not an inert word may not go onto a directive line at all, and
    #    an empty one not as a whole word there.
    for i, line in enumerate(safe_lines):
        for token, (key, problem) in owners.items():
            if token not in line:
                continue
            if problem:
                raise ScriptRejected(
                    key, f"{problem} (it would go on the line `{_shape(line, owners)}`)"
                )
            if _whole_word(token, line):
                raise ScriptRejected(
                    key,
                    "is empty where a directive needs a word; sbatch would read the next "
                    f"word in its place (line `{_shape(line, owners)}`)",
                )
            safe_lines[i] = line = line.replace(token, "")
    # 2. The scheduler reads the same directive lines, word for word, as from the reference.
    suspects = list(dict.fromkeys(key for key, _ in owners.values())) or checked
    if len(real_lines) != len(safe_lines):
        extra = [line for line in real_lines if line not in safe_lines] or real_lines or [""]
        raise ScriptRejected(
            _culprit(extra[0], variables, suspects),
            "the value would add or remove a scheduler directive line",
        )
    for real, safe in zip(real_lines, safe_lines, strict=True):
        if real != safe:
            raise ScriptRejected(
                _culprit(real, variables, suspects), "the value would change a scheduler directive"
            )
    # 3. Inert values still may not complete a word sbatch scans whole lines for.
    for line in real_lines:
        if _SCANNED_WORDS_RE.search(line):
            for key in checked:
                value = variables[key]
                items = value if isinstance(value, (list, tuple)) else [value]
                if any(isinstance(v, str) and v and v in line for v in items):
                    raise ScriptRejected(
                        key, "the value would complete 'packjob' or 'hetjob' on a directive line"
                    )
    return script


def _whole_word(token: str, line: str) -> bool:
    """Whether ``token`` is a whole argument of a directive line as ``sbatch`` splits it."""
    body = line.lstrip()[1:].lstrip()
    body = re.sub(r"^[A-Za-z]+", "", body, count=1)
    try:
        return token in slurm_arguments(body)
    except DirectiveSyntaxError:
        return True


def _shape(line: str, owners: Mapping[str, tuple[str, str]]) -> str:
    """A directive line with each placeholder shown as ``<variable>``."""
    for token, (key, _) in owners.items():
        line = line.replace(token, f"<{key}>")
    return line


def log_path(workdir: str, job_name: str) -> str:
    """Where the built-in templates write the job's output and errors.

    One file per server, overwritten by its next job: the job name without its
    last part (the spawn id, see :func:`~firecrestspawner.naming.job_name`), so
    logs do not pile up one per spawn in the working directory.
    """
    return f"{workdir.rstrip('/')}/{job_name.rsplit('.', 1)[0]}.log"


__all__ = [
    "ADMIN_FRAGMENTS",
    "BUILTIN_REQ_NAMES",
    "BUILTIN_TEMPLATES",
    "FORBIDDEN_CHARS_RE",
    "SPAWN_VARIABLES",
    "ScriptRejected",
    "ScriptTemplateError",
    "builtin_template",
    "check_template",
    "check_value",
    "directive_lines",
    "forbidden_char",
    "format_template",
    "is_jinja",
    "log_path",
    "render_batch_script",
    "shquote",
    "template_variables",
    "trusted_variables",
    "unquoted_body_values",
]
