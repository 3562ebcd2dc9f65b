"""Expert scheduler options: the ``scheduler_options`` kind, parsed against its allow-list (pure).

The user writes the options on one line, separated by spaces, as on the
``sbatch``/``qsub`` command line: ``--exclusive --constraint=gpu --mem 64G``;
a one-letter option takes its value as the next word (``-l place=excl``).
Each option must be in the administrator's allow-list, take a value exactly
when the list says so, match the list's value pattern (RE2) and be an *inert
word* (:func:`~.directives.inert_word_problem`), and appear once unless
``repeatable``. The result is a tuple of :class:`SchedulerItem`, each of which
the built-in templates put on a directive line of its own
(``#SBATCH --constraint=gpu``, ``#PBS -l place=excl``); the script renderer
checks the values again (an item's value is a checked variable there).

A refusal is an :class:`~.errors.OptionError` naming the option field and the
scheduler option refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import models as m
from . import regex
from .directives import inert_word_problem
from .errors import OptionError, short

#: The template variable that holds every scheduler option of a spawn, in form order.
TEMPLATE_VARIABLE = "scheduler_options"

#: Options the spawner sets itself, or that would take the job out of its hands
#: (job name, log paths, working directory, environment, arrays, holding, waiting):
#: ``validate`` refuses them in an allow-list.
RESERVED: Mapping[str, frozenset[str]] = {
    "slurm": frozenset(
        {
            "--job-name",
            "-J",
            "--output",
            "-o",
            "--error",
            "-e",
            "--chdir",
            "-D",
            "--export",
            "--export-file",
            "--get-user-env",
            "--wrap",
            "--array",
            "-a",
            "--hold",
            "-H",
            "--wait",
            "-W",
            "--uid",
            "--gid",
            "--parsable",
            "--test-only",
            "--input",
            "-i",
            "--batch",
        }
    ),
    "pbs": frozenset({"-N", "-o", "-e", "-j", "-k", "-S", "-v", "-V", "-I", "-J", "-h", "-z"}),
}


@dataclass(frozen=True)
class SchedulerItem:
    """One scheduler option: ``name`` from the allow-list, ``value`` typed by the user ("" for a flag).

    ``str()`` gives the text after the directive's magic word: ``--name=value``
    for a long option, ``-X value`` for a one-letter one, ``--name`` for a flag.
    """

    name: str
    value: str = ""

    def __str__(self) -> str:
        if not self.value:
            return self.name
        sep = "=" if self.name.startswith("--") else " "
        return f"{self.name}{sep}{self.value}"


def parse(option: m.SchedulerOptionsOption, text: str) -> tuple[SchedulerItem, ...]:
    """The user's text -> checked items. Raises :class:`OptionError` naming what is refused."""
    if len(text) > option.max_length:
        raise OptionError(option.id, f"is longer than {option.max_length} characters")
    words = text.split(" ")
    words = [w for w in words if w]
    items: list[SchedulerItem] = []
    seen: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        name, has_eq, value = word.partition("=") if word.startswith("--") else (word, False, "")
        spec = option.allow.get(name)
        if spec is None:
            allowed = ", ".join(option.allow)
            if not name.startswith("-"):
                raise OptionError(
                    option.id,
                    f"{short(word)} is not a scheduler option; write options such as "
                    f"{next(iter(option.allow))}, separated by spaces (allowed: {allowed})",
                )
            raise OptionError(option.id, f"{short(name)} is not allowed; allowed: {allowed}")
        if spec.value is None:
            if has_eq:
                raise OptionError(option.id, f"{name} takes no value")
        elif not has_eq:
            if i >= len(words) or words[i].startswith("-"):
                raise OptionError(option.id, f"{name} needs a value")
            value = words[i]
            i += 1
        if spec.value is not None:
            value = check_value(option, name, spec, value)
        if name in seen and not spec.repeatable:
            raise OptionError(option.id, f"{name} may be given only once")
        seen.add(name)
        items.append(SchedulerItem(name, value))
        if len(items) > option.max_options:
            raise OptionError(option.id, f"at most {option.max_options} options are allowed")
    return tuple(items)


def check_value(
    option: m.SchedulerOptionsOption, name: str, spec: m.AllowedSchedulerOption, value: str
) -> str:
    """One option's value: non-empty, matching the allow-list pattern, an inert word."""
    if value == "":
        raise OptionError(option.id, f"{name} needs a value")
    if spec.value is not None and not regex.fullmatch(spec.value, value):
        raise OptionError(
            option.id, f"{name}: {short(value)} does not match the allowed pattern {spec.value}"
        )
    problem = inert_word_problem(value)
    if problem is not None:
        raise OptionError(option.id, f"{name}: {short(value)} {problem}")
    return value


def check(option: m.SchedulerOptionsOption, value: Any) -> str:
    """The validator's entry: the typed value is the options as one normalised line."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise OptionError(
            option.id, f"expected the options as one line of text, got {short(value)}"
        )
    return " ".join(str(item) for item in parse(option, value))


def template_items(
    profile: m.Profile, values: Mapping[str, Any]
) -> dict[str, tuple[SchedulerItem, ...]]:
    """Template variables of the active ``scheduler_options`` options.

    Each option's items under its request name, and all of them, in form
    order, under :data:`TEMPLATE_VARIABLE` (empty when the profile has none).
    """
    out: dict[str, tuple[SchedulerItem, ...]] = {}
    every: list[SchedulerItem] = []
    for option in profile.options:
        if isinstance(option, m.SchedulerOptionsOption) and option.id in values:
            items = parse(option, str(values[option.id]))
            out[option.req_name] = items
            every.extend(items)
    out[TEMPLATE_VARIABLE] = tuple(every)
    return out


def allow_list_problems(
    option: m.SchedulerOptionsOption, scheduler: str
) -> list[tuple[list[Any], str, str]]:
    """What ``validate`` refuses in an allow-list: (path below the option, message, hint)."""
    found: list[tuple[list[Any], str, str]] = []
    bad_regex = False
    reserved = RESERVED.get(scheduler, frozenset())
    for name, spec in option.allow.items():
        if name in reserved:
            found.append(
                (
                    ["allow", name],
                    (
                        f"{name} is set by the spawner (or takes the job out of its hands) and "
                        "cannot be offered"
                    ),
                    "remove it from `allow`",
                )
            )
        if scheduler == "pbs" and name.startswith("--"):
            found.append(
                (
                    ["allow", name],
                    f"{name}: qsub options are one letter (`-l`, `-W`, `-q`)",
                    "write e.g. `-l` with a value pattern such as `place=(excl|shared)`",
                )
            )
        if spec.value is not None:
            problem = regex.regex_problem(spec.value)
            if problem is not None:
                bad_regex = True
                found.append(
                    (
                        ["allow", name, "value"],
                        f"regular expression {problem}",
                        "values are matched in linear time (RE2); rewrite without that construct",
                    )
                )
    if option.default:
        try:
            parse(option, option.default)
        except OptionError as e:
            found.append(
                (["default"], f"default: {e.message}", "fix the default or the allow-list")
            )
        except Exception:  # a pattern RE2 refuses, reported above
            if not bad_regex:
                raise
    if option.req is not None:
        found.append(
            (
                ["req"],
                (
                    "a scheduler_options option sets the template variable "
                    f"`{TEMPLATE_VARIABLE}` and its own id, not a request variable"
                ),
                "remove `req`",
            )
        )
    return found


__all__ = [
    "RESERVED",
    "TEMPLATE_VARIABLE",
    "SchedulerItem",
    "allow_list_problems",
    "check",
    "check_value",
    "override_warnings",
    "parse",
    "template_items",
]


#: Slurm options the built-in template writes from a request variable: an allowed
#: option of the same name comes later in the script and wins (sbatch reads the last).
OVERRIDES: Mapping[str, str] = {
    "--partition": "partition",
    "-p": "partition",
    "--time": "runtime",
    "-t": "runtime",
    "--account": "account",
    "-A": "account",
    "--nodes": "nnodes",
    "-N": "nnodes",
    "--cpus-per-task": "nprocs",
    "-c": "nprocs",
    "--mem": "memory",
    "--reservation": "reservation",
    "--qos": "qos",
    "-q": "qos",
    "--constraint": "constraint",
    "-C": "constraint",
    "--gres": "gres",
    "--gpus-per-node": "gpus_per_node",
    "--gpus": "gpus",
    "-G": "gpus",
    "--uenv": "uenv",
    "--view": "uenv_view",
}


def override_warnings(
    option: m.SchedulerOptionsOption, options: Iterable[m.Option], scheduler: str
) -> list[tuple[list[Any], str, str]]:
    """Allowed options that would override another option of the profile (and its limits)."""
    if scheduler != "slurm":
        return []
    setters = {o.req_name: o for o in options if not isinstance(o, m.SchedulerOptionsOption)}
    found = []
    for name in option.allow:
        other = setters.get(OVERRIDES.get(name, ""))
        if other is not None:
            found.append(
                (
                    ["allow", name],
                    (
                        f"{name} comes after the line option {other.id!r} sets and overrides it: "
                        "that option's limits, choices and dependent rules no longer bind"
                    ),
                    f"remove {name} from `allow`, or remove option {other.id!r}",
                )
            )
    return found


#: The section of ``docs/profiles.md`` on expert scheduler options (``schema --markdown``).
DOC = [
    "## Expert scheduler options",
    "",
    (
        "A `scheduler_options` option lets users add scheduler options the administrator "
        "allows: `allow` maps each option name, as the scheduler spells it (`--constraint`, "
        "`--exclusive`, `-l`), to its rule: `value` (a regex the value must match, RE2; absent "
        "for a flag that takes no value) and `repeatable`. Users write the options on one "
        "line, separated by spaces, as on the command line: `--exclusive --constraint=gpu "
        "--mem 64G`; a one-letter option takes the next word as its value (`-l place=excl`). "
        "Each option must be allowed, take a value exactly when its rule says so, match the "
        "pattern, be one inert word (see above) and appear once unless `repeatable`. Each "
        "becomes a directive line of its own: the built-in templates write `#SBATCH "
        "--constraint=gpu` and `#PBS -l place=excl` after the other directives. A custom "
        "template gets the list as `scheduler_options` (all such options of the profile, in "
        "form order) and under the option's id; each item prints as `--name=value` (`-X "
        "value`, or the bare name for a flag) and has `.name` and `.value`: "
        "`{% for o in scheduler_options %}#SBATCH {{ o }}` + newline + `{% endfor %}`. "
        "Options the spawner sets or that take the job out of its hands (job name, output, "
        "error, working directory, `--export`, `--array`, `--hold`, `--wait`, `--wrap`, ...; "
        "for PBS `-N -o -e -j -k -S -v -V -I -J -h -z`) are refused in `allow`, and PBS "
        "allow-lists take one-letter options only; `validate` warns when an allowed option "
        "overrides a line another option of the profile sets (`--time` beside a time-limit "
        "option: that option's limits would no longer bind). A refusal names the field and "
        "the option."
    ),
    "",
]
