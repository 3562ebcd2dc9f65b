"""Cross-field checks of a profile file, and its resolution into frozen profiles (pure).

What the schema cannot say: unique system, profile and option ids, a profile's
system declared in the file, ``when`` rules that name options declared above
with values they can take, defaults inside their limits, regular expressions
that compile, request-variable names without ``req_`` and not reserved for the
spawner, and batch templates that use only variables something defines. Each
finding is a :class:`~.errors.Problem` at the position of the node it is about.
A profile without problems is resolved into a :class:`~.models.Profile`:
system, URL, template text, request values per layer and state regexes.

The only I/O is reading a profile's ``template_file`` (relative to the file).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..states import (
    DEFAULT_EXECHOST_RE,
    DEFAULT_PENDING_RE,
    DEFAULT_RUNNING_RE,
    DEFAULT_UNKNOWN_RE,
    StateRegexes,
)
from . import dependent, expert
from . import models as m
from .errors import Problem, json_path, short
from .gpus import check_gpu_names
from .html_pattern import pattern_problem
from .options import DECLARED_KINDS, when_text
from .parse import block_line, position
from .regex import fullmatch as regex_fullmatch
from .regex import regex_problem
from .sandbox import MAX_TEMPLATE_CHARS
from .script import (
    BUILTIN_REQ_NAMES,
    BUILTIN_TEMPLATES,
    SPAWN_VARIABLES,
    ScriptTemplateError,
    builtin_template,
    template_variables,
    unquoted_body_values,
)
from .systems import combine, expand, predeclared
from .systems import problems as system_problems
from .trial import declared_value_problems

#: Request-variable names an option may not set: the spawner provides them.
RESERVED_OPTION_REQ = frozenset({*SPAWN_VARIABLES, "host", "username", "homedir"})

#: Default state regexes per scheduler (Slurm: the documented trait defaults).
SCHEDULER_STATES: Mapping[str, StateRegexes] = {
    "slurm": StateRegexes(
        pending=DEFAULT_PENDING_RE,
        running=DEFAULT_RUNNING_RE,
        unknown=DEFAULT_UNKNOWN_RE,
        exechost=DEFAULT_EXECHOST_RE,
    ),
    # FirecREST reports PBS job states as the PBS letters (Q, H, W, T, R, E, ...)
    # and the exec host as "node/0*8+node2/0"; the first node is the host.
    "pbs": StateRegexes(
        pending=r"^(?:Q|H|W|T|S|QUEUED|HELD|WAITING|PENDING)\b",
        running=r"^(?:R|E|B|RUNNING|EXITING)\b",
        unknown="",
        exechost=r"^\S+\s+([^\s/+]+)",
    ),
}


class _Checker:
    def __init__(self, name: str, doc: Any, base_dir: Path | None) -> None:
        self.name = name
        self.doc = doc
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.dependencies: list[Path] = []

    def _problem(self, parts: list[Any], message: str, hint: str, key: str | None) -> Problem:
        line, col = position(self.doc, parts, key=key)
        path = json_path([*parts, key] if key is not None else parts)
        return Problem(self.name, path, message, hint, line, col)

    def add(self, parts: list[Any], message: str, hint: str = "", key: str | None = None) -> None:
        self.problems.append(self._problem(parts, message, hint, key))

    def warn(self, parts: list[Any], message: str, hint: str = "") -> None:
        """Something that works, but not as well as it could: the file still loads."""
        self.warnings.append(self._problem(parts, message, hint, None))

    def regex(
        self, parts: list[Any], pattern: str | None, groups: int = 0, *, linear: bool = False
    ) -> None:
        if pattern is None:
            return
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            self.add(
                parts,
                f"regular expression does not compile: {e}",
                "check escaping; YAML single quotes keep backslashes as they are",
            )
            return
        if linear:
            problem = regex_problem(pattern)
            if problem is not None:
                self.add(
                    parts,
                    f"regular expression {problem}",
                    "user values and cluster names are matched in linear time (RE2); "
                    "rewrite without that construct",
                )
                return
        if groups and compiled.groups < groups:
            self.add(
                parts,
                "regular expression needs a capture group",
                "wrap the host part in ( ), e.g. `^\\S+\\s+(\\S+)`",
            )

    def template_text(
        self, parts: list[Any], spec: m.ProfileSpec, scheduler: str
    ) -> tuple[str, str] | None:
        bs = spec.batch_script
        if bs is None:
            return builtin_template(scheduler), f"builtin:{scheduler}"
        if bs.builtin is not None:
            if bs.builtin not in BUILTIN_TEMPLATES:
                close = difflib.get_close_matches(bs.builtin, list(BUILTIN_TEMPLATES), n=1)
                self.add(
                    [*parts, "batch_script", "builtin"],
                    f"unknown built-in template {bs.builtin!r}",
                    (f"did you mean `{close[0]}`? " if close else "")
                    + "known: "
                    + ", ".join(sorted(BUILTIN_TEMPLATES)),
                )
                return None
            return builtin_template(bs.builtin), f"builtin:{bs.builtin}"
        if bs.template_file is not None:
            if self.base_dir is None:
                self.add(
                    [*parts, "batch_script", "template_file"],
                    "template_file needs a profile file on disk",
                    "use `template: |` inline",
                )
                return None
            path = Path(bs.template_file)
            if path.is_absolute() or ".." in path.parts:
                self.add(
                    [*parts, "batch_script", "template_file"],
                    "template_file must be a relative path inside the profile directory",
                    "write e.g. `templates/site.sh.j2`",
                )
                return None
            full = self.base_dir / path
            self.dependencies.append(full)
            try:
                real = full.resolve(strict=True)
                if not real.is_relative_to(self.base_dir.resolve()):
                    self.add(
                        [*parts, "batch_script", "template_file"],
                        f"template_file {bs.template_file!r} resolves to {real}, outside the "
                        "profile directory",
                        "keep the template (not a link to it) in the profile directory",
                    )
                    return None
                if len(real.read_bytes()) > MAX_TEMPLATE_CHARS * 4:
                    raise OSError(0, f"larger than {MAX_TEMPLATE_CHARS * 4} bytes")
                return real.read_text(encoding="utf-8"), str(full)
            except (OSError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
                self.add(
                    [*parts, "batch_script", "template_file"],
                    f"cannot read template file {bs.template_file!r}: {reason}",
                    "the path is relative to the profile file",
                )
                return None
        assert bs.template is not None  # noqa: S101 - the schema guarantees one of the three
        return bs.template, f"{self.name}#{spec.id}"


def _range(lo: Any, hi: Any) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _check_option_defaults(
    c: _Checker, parts: list[Any], opt: m.Option, option_ids: list[str]
) -> None:
    if isinstance(opt, m.ChoiceOption):
        if opt.default is not None and opt.default not in opt.choices:
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} is not among the choices",
                "use one of: " + ", ".join(opt.choices),
            )
        for key, choice in opt.choices.items():
            for name in choice.req:
                if name.startswith("req_"):
                    c.add(
                        [*parts, "choices", key, "req"],
                        f"{name!r} has a `req_` prefix",
                        f"write `{name[4:]}`",
                        key=name,
                    )
    elif isinstance(opt, m.UenvOption):
        if opt.default is not None and opt.default not in opt.images:
            c.add(
                [*parts, "default"],
                f"default image {opt.default!r} is not among the images",
                "use one of: " + ", ".join(opt.images),
            )
        for key, image in opt.images.items():
            if image.default_view is not None and image.default_view not in image.views:
                c.add(
                    [*parts, "images", key, "default_view"],
                    f"default view {image.default_view!r} is not a view of {key!r}",
                    "use one of: " + (", ".join(image.views) or "(no views)"),
                )
        if f"{opt.id}_view" in option_ids:
            c.add(
                [*parts, "id"],
                f"option id {opt.id + '_view'!r} is taken by the view of this uenv option",
                "rename the other option",
            )
    elif isinstance(opt, (m.IntegerOption, m.NumberOption)):
        if opt.min is not None and opt.max is not None and opt.min > opt.max:
            c.add([*parts, "min"], f"min {opt.min} is greater than max {opt.max}", "swap them")
        if opt.default is not None:
            if (opt.min is not None and opt.default < opt.min) or (
                opt.max is not None and opt.default > opt.max
            ):
                c.add(
                    [*parts, "default"],
                    f"default {opt.default} is outside {_range(opt.min, opt.max)}",
                    "pick a default between min and max",
                )
            elif opt.step is not None:
                base = opt.min if opt.min is not None else 0
                k = (opt.default - base) / opt.step
                if abs(k - round(k)) > 1e-9:
                    c.add(
                        [*parts, "default"],
                        f"default {opt.default} is not min + k*step (step {opt.step})",
                        "pick a default on the step grid",
                    )
        elif (
            opt.min is None
            and opt.max is not None
            and opt.max < (1 if isinstance(opt, m.IntegerOption) else 0)
        ):
            c.add(
                [*parts, "max"],
                "max is below the implicit default; set `default`",
                "add `default:`",
            )
    elif isinstance(opt, m.DurationOption):
        lo = m.duration_seconds(opt.min) if opt.min else None
        hi = m.duration_seconds(opt.max) if opt.max else None
        if lo is not None and hi is not None and lo > hi:
            c.add([*parts, "min"], f"min {opt.min!r} is longer than max {opt.max!r}", "swap them")
        if opt.default is not None:
            d = m.duration_seconds(opt.default)
            if (lo is not None and d < lo) or (hi is not None and d > hi):
                c.add(
                    [*parts, "default"],
                    f"default {opt.default!r} is outside {_range(opt.min, opt.max)}",
                    "pick a default between min and max",
                )
    elif isinstance(opt, m.TextOption):
        before = len(c.problems)
        c.regex([*parts, "pattern"], opt.pattern, linear=True)
        if len(c.problems) != before:
            return
        if opt.default and not regex_fullmatch(opt.pattern, opt.default):
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} does not match the pattern",
                f"the whole value must match {opt.pattern}",
            )
        if len(opt.default) > opt.max_length:
            c.add(
                [*parts, "default"],
                f"default is longer than max_length {opt.max_length}",
                "shorten it",
            )
    elif isinstance(opt, m.ClusterChoiceOption):
        c.regex([*parts, "filter"], opt.filter, linear=True)
        if (
            opt.default
            and opt.fallback
            and opt.default not in opt.fallback
            and opt.allow
            and opt.default not in opt.allow
        ):
            c.add(
                [*parts, "default"],
                f"default {opt.default!r} is neither in fallback nor in allow",
                "add it to `fallback`",
            )


def check_file(
    spec: m.ProfileFile, name: str, doc: Any, base_dir: Path | None
) -> tuple[list[m.Profile], list[Problem], list[Path], list[Problem]]:
    """Profiles, problems, files read (``template_file``) and warnings of one parsed file."""
    c = _Checker(name, doc, base_dir)
    _check_texts(c, spec)
    systems: dict[str, m.System] = {}
    for i, sys_spec in enumerate(spec.systems):
        if sys_spec.name in systems:
            c.add(
                ["systems", i, "name"],
                f"duplicate system {sys_spec.name!r}",
                "each system is listed once",
            )
        systems[sys_spec.name] = sys_spec
        if sys_spec.states:
            _check_states(c, ["systems", i, "states"], sys_spec.states)
        _check_req_names(c, ["systems", i, "req"], sys_spec.req)
    _check_req_names(c, ["defaults"], spec.defaults)

    seen_profiles: dict[str, int] = {}
    defaults_flagged = [i for i, p in enumerate(spec.profiles) if p.default]
    for i in defaults_flagged[1:]:
        c.add(
            ["profiles", i, "default"],
            "more than one profile has `default: true`",
            f"keep it on profile {spec.profiles[defaults_flagged[0]].id!r} only",
        )

    for at, message, hint in system_problems(spec):
        c.add(at, message, hint)
    resolved: list[m.Profile] = []
    for i, p in expand(spec):  # a profile with `systems:` once per system
        parts: list[Any] = ["profiles", i]
        before = len(c.problems)
        if seen_profiles.get(p.id, i) != i:
            c.add(
                [*parts, "id"],
                f"duplicate profile id {p.id!r} (first at $.profiles[{seen_profiles[p.id]}])",
                "profile ids are unique within a site",
            )
        seen_profiles.setdefault(p.id, i)
        system = systems.get(p.system or "")
        if system is None:
            close = difflib.get_close_matches(p.system or "", list(systems), n=1)
            bad: list[Any] = (
                ["systems", p.systems.index(p.system or "")] if p.systems else ["system"]
            )
            c.add(
                [*parts, *bad],
                f"unknown system {p.system!r}",
                (f"did you mean `{close[0]}`? " if close else "")
                + "declare it under `systems:` or use one of: "
                + ", ".join(systems),
            )
        _check_req_names(c, [*parts, "req"], p.req)
        if p.states:
            _check_states(c, [*parts, "states"], p.states)

        # options: ids, when rules, defaults
        option_ids: list[str] = [o.id for o in p.options]
        declared: dict[str, m.Option] = predeclared(spec, p)
        known_vars = set(BUILTIN_REQ_NAMES) | set(SPAWN_VARIABLES) | {expert.TEMPLATE_VARIABLE}
        known_vars |= set(spec.defaults) | set(p.req) | (set(system.req) if system else set())
        legacy = p.legacy_lists if p.legacy_lists is not None else spec.legacy_lists
        html_patterns: dict[str, str] = {}
        for j, opt in enumerate(p.options):
            oparts = [*parts, "options", j]
            if opt.id in declared:
                c.add(
                    [*oparts, "id"],
                    f"duplicate option id {opt.id!r}",
                    "option ids are unique within a profile",
                )
            if opt.id == "profile":
                c.add(
                    [*oparts, "id"],
                    "option id 'profile' is reserved (it carries the profile id)",
                    "rename the option",
                )
            elif opt.req is not None and opt.id in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "id"],
                    f"option id {opt.id!r} is a variable the spawner provides",
                    "rename the option",
                )
            if opt.req_name in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "req" if opt.req else "id"],
                    f"{opt.req_name!r} is provided by the spawner and cannot be set by an option",
                    "pick another request variable name",
                )
            if isinstance(opt, m.UenvOption) and opt.view_req in RESERVED_OPTION_REQ:
                c.add(
                    [*oparts, "view_req"],
                    f"{opt.view_req!r} is provided by the spawner",
                    "pick another name",
                )
            for target, values in (opt.when or {}).items():
                if target == opt.id:
                    c.add(
                        [*oparts, "when"],
                        f"option {opt.id!r} cannot depend on itself",
                        "remove it from `when`",
                        key=target,
                    )
                elif target not in declared:
                    where = (
                        "is declared below this one"
                        if target in option_ids
                        else "is not an option of this profile"
                    )
                    c.add(
                        [*oparts, "when"],
                        f"`when` refers to {target!r}, which {where}",
                        "`when` may only name options declared above, one of: "
                        + (", ".join(declared) or "(none)"),
                        key=target,
                    )
                else:
                    _check_when_values(c, [*oparts, "when", target], declared[target], values)
            _check_option_defaults(c, oparts, opt, option_ids)
            scheduler = system.scheduler if system else "slurm"
            for sub, message, hint in _extra_problems(opt, declared, option_ids, scheduler):
                c.add([*oparts, *sub], message, hint)
            if isinstance(opt, m.SchedulerOptionsOption):
                for sub, message, hint in expert.override_warnings(opt, p.options, scheduler):
                    c.warn([*oparts, *sub], message, hint)
            if isinstance(opt, m.TextOption):
                pattern = _browser_pattern(c, [*oparts, "pattern"], opt.pattern)
                if pattern:
                    html_patterns[opt.id] = pattern
            declared.setdefault(opt.id, opt)
            known_vars.add(opt.req_name)
            if legacy:
                known_vars.add(opt.id)
            if isinstance(opt, m.ChoiceOption):
                for choice in opt.choices.values():
                    known_vars |= set(choice.req)
            if isinstance(opt, m.UenvOption):
                known_vars.add(opt.view_req)
                for image in opt.images.values():
                    known_vars |= set(image.req)

        scheduler = system.scheduler if system else "slurm"
        template = c.template_text(parts, p, scheduler)
        script_key = [
            k
            for k in ("template", "template_file", "builtin")
            if p.batch_script and getattr(p.batch_script, k) is not None
        ]
        script_parts = [*parts, "batch_script", *script_key[:1]]
        if template is not None:
            text, template_name = template
            try:
                used = template_variables(text)
            except ScriptTemplateError as e:
                c.add(script_parts, f"template error: {e}", "fix the template syntax")
            else:
                _warn_body_values(c, script_parts, text, _user_vars(p.options, legacy))
                unknown = sorted(used - known_vars)
                if unknown:
                    line_hint = block_line(doc, script_parts, text, unknown[0])
                    c.add(
                        script_parts,
                        "template uses undefined variable"
                        + ("s " if len(unknown) > 1 else " ")
                        + ", ".join(repr(u) for u in unknown),
                        "declare them under the profile's `req:` or the file's `defaults:`, or add an option that sets them",
                    )
                    if line_hint is not None:
                        last = c.problems[-1]
                        c.problems[-1] = dataclasses.replace(last, line=line_hint, column=1)
        if template is not None and template[1].startswith("builtin:"):
            sys_index = next(
                (k for k, s in enumerate(spec.systems) if s.name == (p.system or "")), None
            )
            check_gpu_names(c, spec, p, parts, sys_index, scheduler)
        if len(c.problems) != before or system is None or template is None:
            continue
        states = _resolve_states(scheduler, system.states, p.states)
        url = system.firecrest_url or spec.firecrest_url
        profile = m.Profile(
            id=p.id,
            display_name=p.display_name,
            description=p.description,
            system=system.name,
            scheduler=scheduler,
            firecrest_url=url,
            workdir=system.workdir,
            default=p.default,
            groups=tuple(p.groups) if p.groups is not None else None,
            users=tuple(p.users) if p.users is not None else None,
            accounts=tuple(p.accounts) if p.accounts is not None else None,
            unix_groups=tuple(p.unix_groups) if p.unix_groups is not None else None,
            template=text,
            template_name=template_name,
            defaults=m.freeze({**spec.defaults, **system.req}),
            fixed=m.freeze(p.req),
            states=states,
            options=tuple(p.options),
            legacy_lists=legacy,
            source=name,
            spec=p,
            html_patterns=types.MappingProxyType(html_patterns),
        )
        found = declared_value_problems(spec, i, profile)
        for found_at, message, hint in found:
            c.add(script_parts if found_at is None else found_at, message, hint)
        if not found:
            resolved.append(profile)
    once = list(dict.fromkeys(c.problems))  # a multi-system profile's shared problems once
    return combine(spec, resolved), once, c.dependencies, list(dict.fromkeys(c.warnings))


#: Characters no text a profile shows may hold: C0 and C1 controls (a description may
#: hold newlines and tabs), line separators and the bidirectional overrides that make
#: a label read differently from what it is.
_SHOWN_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LABEL_FORBIDDEN = re.compile("[\n\t]")


def _extra_problems(
    opt: m.Option, declared: Mapping[str, m.Option], option_ids: list[str], scheduler: str
) -> list[tuple[list[Any], str, str]]:
    """Dependent limits (:mod:`.dependent`) and scheduler-option allow-lists (:mod:`.expert`)."""
    found = dependent.problems(opt, declared, option_ids)
    if isinstance(opt, m.SchedulerOptionsOption):
        found += expert.allow_list_problems(opt, scheduler)
        if opt.id in BUILTIN_REQ_NAMES or opt.id == expert.TEMPLATE_VARIABLE:
            found.append((["id"], f"{opt.id!r} is a template variable of its own", "rename it"))
    return found


def _user_vars(options: list[m.Option], legacy: bool) -> set[str]:
    """Template variables whose value a user types or the cluster names."""
    names: set[str] = set()
    for opt in options:
        if isinstance(opt, DECLARED_KINDS):
            continue
        names.add(opt.req_name)
        if legacy:
            names.add(opt.id)
    return names


def _check_texts(c: _Checker, spec: m.ProfileFile) -> None:
    """Refuse control characters in every text the form or the page shows."""

    def check(parts: list[Any], obj: Any) -> None:
        for key in ("display_name", "description", "help"):
            text = getattr(obj, key, None)
            if not isinstance(text, str):
                continue
            found = _SHOWN_FORBIDDEN.search(text) or (
                _LABEL_FORBIDDEN.search(text) if key == "display_name" else None
            )
            if found:
                c.add(
                    [*parts, key],
                    f"contains the control character U+{ord(found.group()):04X}",
                    "texts shown to users hold printable characters"
                    + (
                        " (and, in a description, newlines and tabs)"
                        if key != "display_name"
                        else ""
                    ),
                )

    for i, system in enumerate(spec.systems):
        check(["systems", i], system)
    for i, p in enumerate(spec.profiles):
        check(["profiles", i], p)
        for j, opt in enumerate(p.options):
            check(["profiles", i, "options", j], opt)
            if isinstance(opt, m.ChoiceOption):
                for key, choice in opt.choices.items():
                    check(["profiles", i, "options", j, "choices", key], choice)
            if isinstance(opt, m.UenvOption):
                for key, image in opt.images.items():
                    check(["profiles", i, "options", j, "images", key], image)
                    for view_key, view in image.views.items():
                        parts = ["profiles", i, "options", j, "images", key, "views", view_key]
                        check(parts, view)


def _warn_body_values(c: _Checker, parts: list[Any], text: str, user_vars: set[str]) -> None:
    """Warn about user-controlled values the template puts in the script body unquoted."""
    for line, name in unquoted_body_values(text, user_vars):
        c.warn(
            parts,
            f"template line {line}: {name!r} comes from the user and is inserted into the "
            "script body without `| shquote`; the shell would run what the user typed there",
            f"write `{{{{ {name} | shquote }}}}` (one shell word), or restrict the option's values",
        )


def _browser_pattern(c: _Checker, parts: list[Any], pattern: str) -> str:
    """The pattern for the form's HTML ``pattern`` attribute, or "" with a warning."""
    if regex_problem(pattern) is not None:
        return ""  # already an error
    problem = pattern_problem(pattern)
    if problem is None:
        return pattern
    reason, hint = problem
    c.warn(
        parts,
        f"the form leaves this pattern out of the browser's check (the server still checks it): {reason}",
        hint or "to keep the browser's check, write the pattern so the browser reads it alike",
    )
    return ""


def _check_req_names(c: _Checker, parts: list[Any], req: Mapping[str, Any]) -> None:
    for name in req:
        if name.startswith("req_"):
            c.add(
                parts,
                f"{name!r} has a `req_` prefix",
                f"write `{name[4:]}`: names here have no `req_` prefix",
                key=name,
            )


def _check_states(c: _Checker, parts: list[Any], states: m.States) -> None:
    for key in ("pending", "running", "unknown"):
        c.regex([*parts, key], getattr(states, key))
    c.regex([*parts, "exechost"], states.exechost, groups=1)


def _check_when_values(c: _Checker, parts: list[Any], target: m.Option, values: list[Any]) -> None:
    allowed: list[str] | None = None
    if isinstance(target, m.ChoiceOption):
        allowed = list(target.choices)
    elif isinstance(target, m.UenvOption):
        allowed = list(target.images)
    elif isinstance(target, m.BooleanOption):
        allowed = ["true", "false"]
    if allowed is None:
        return
    for k, value in enumerate(values):
        if when_text(value) not in allowed:
            c.add(
                [*parts, k],
                f"{short(value)} is not a value of option {target.id!r}",
                "use one of: " + ", ".join(allowed),
            )


def _resolve_states(scheduler: str, *layers: m.States | None) -> StateRegexes:
    base = SCHEDULER_STATES.get(scheduler, SCHEDULER_STATES["slurm"])
    values = dataclasses.asdict(base)
    for layer in layers:
        if layer is None:
            continue
        for key, value in layer.model_dump(exclude_none=True).items():
            values[key] = value
    return StateRegexes(**values)


__all__ = ["RESERVED_OPTION_REQ", "SCHEDULER_STATES", "check_file"]
