"""Models of dependent limits and of the scheduler-option allow-list (pure).

``depends_on`` (on any option) declares, once, the limits, default and
allowed choices an option has while an option declared above it has a given
value: per-partition time limits without duplicate options. ``cluster_max``
bounds a whole number by what FirecREST reports for the partition picked in
a ``cluster_choice`` option. :class:`AllowedSchedulerOption` is one entry of
a ``scheduler_options`` option's allow-list. The rules are applied by
:mod:`.dependent` and :mod:`.expert`; :mod:`.models` puts them on the options.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from .fields import ChoiceKey, Field, Ident, LongText, Regex, StringConstraints, _Model

#: A bound or default in a rule: a whole number, a number or a Slurm time limit (text).
RuleValue = int | float | Annotated[str, StringConstraints(max_length=64)]


class DependentRule(_Model):
    """What an option allows while the controlling option has one value.

    Each field given replaces the option's own for as long as the rule holds;
    the fields left out keep the option's own. When rules of several
    controlling options hold at once, the tightest bounds apply, the choices
    allowed by all of them, and the default of the first rule that has one.
    """

    min: RuleValue | None = Field(
        None,
        description="Smallest value (`integer`, `number`) or shortest time limit (`duration`).",
    )
    max: RuleValue | None = Field(
        None,
        description="Largest value (`integer`, `number`) or longest time limit (`duration`).",
    )
    default: RuleValue | bool | None = Field(
        None,
        description="Preselected value while the rule holds. Default: the option's own default, moved inside the rule's limits (or the first allowed choice).",
    )
    choices: list[ChoiceKey] | None = Field(
        None,
        description="Keys that may be picked while the rule holds (`choice`: choice keys, `uenv`: image keys, `cluster_choice`: names); the others are hidden and refused.",
    )


#: ``depends_on``: controlling option id -> its value (as ``when`` writes it) -> rule.
DependsOn = dict[Ident, dict[Annotated[str, StringConstraints(max_length=256)], DependentRule]]


def normalise_depends(data: Any) -> Any:
    """Let ``depends_on`` keys be written as YAML reads them (``true:``, ``4:``).

    Keys are compared as ``when`` values are (booleans ``true``/``false``,
    numbers as written), so they are turned into that text before validation.
    """
    if not isinstance(data, dict):
        return data
    rules = data.get("depends_on")
    if not isinstance(rules, dict):
        return data
    fixed: dict[Any, Any] = {}
    for target, by_value in rules.items():
        if isinstance(by_value, dict):
            by_value = {_key_text(k): v for k, v in by_value.items()}
        fixed[target] = by_value
    return {**data, "depends_on": fixed}


def _key_text(key: Any) -> Any:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return key


class ClusterBound(_Model):
    """A limit FirecREST reports for the partition picked in a `cluster_choice` option.

    FirecREST (2.5.x) reports per partition its name, state, `totalNodes` and
    `cpus` (TotalCPUs), and no time limit: time limits per partition go in
    `depends_on`, keyed by the partition names.
    """

    option: Ident = Field(
        description="Id of a `cluster_choice` option with `source: partitions`, declared above."
    )
    limit: Literal["nodes", "cpus"] = Field(
        description="`nodes`: the partition's `totalNodes`; `cpus`: its `cpus` (TotalCPUs)."
    )


class AllowedSchedulerOption(_Model):
    """One scheduler option a user may add, in a `scheduler_options` allow-list."""

    value: Regex | None = Field(
        None,
        description="Regex (RE2, full match) the option's value must match; the value must also be one word of letters, digits and `.,:=@%+/_-` not starting with `-` or `:`. Absent: the option takes no value (a flag such as `--exclusive`).",
    )
    repeatable: bool = Field(False, description="Whether the option may be given more than once.")
    description: LongText = Field("", description="Shown in the form's list of allowed options.")


__all__ = [
    "AllowedSchedulerOption",
    "ClusterBound",
    "DependentRule",
    "DependsOn",
    "RuleValue",
    "normalise_depends",
]
