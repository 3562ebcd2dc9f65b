"""Dependent options: limits, defaults and choices that follow another option's value (pure).

An option's ``depends_on`` maps an option declared above it (the
*controller*) and one of its values to a :class:`~.rules.DependentRule`. While
the controller is active and has that value, the rule's ``min``, ``max``,
``default`` and ``choices`` replace the option's own; with rules of several
controllers holding at once, the tightest bounds win, the choices are those
all allow, and the default is that of the first rule giving one. The
option's own default, when no rule gives one, is moved inside the limits.
An ``integer`` option's ``cluster_max`` also caps it at the ``totalNodes`` or
``cpus`` FirecREST reports for the partition picked in a ``cluster_choice``.

:func:`effective_option` gives the option as it stands for the values chosen
above it: the one validator (:func:`~.options.validate_options`) and the form
use it, so every path checks the same limits. :func:`problems` is what
``validate`` reports; :func:`rules_text` and :func:`rules_data` are what the
form shows without and with JavaScript.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from . import models as m
from .choices import ClusterChoices
from .durations import duration_seconds, format_duration, readable_duration
from .errors import short

#: Option kinds a rule may name as controller (their values can be listed).
CONTROLLER_KINDS = (m.ChoiceOption, m.ClusterChoiceOption, m.UenvOption, m.BooleanOption)
#: Kinds that take ``min``/``max``/``default`` rules, and those that take ``choices``.
BOUNDED_KINDS = (m.IntegerOption, m.NumberOption, m.DurationOption)
CHOICE_KINDS = (m.ChoiceOption, m.UenvOption, m.ClusterChoiceOption)
#: Most controller value combinations ``validate`` checks for one option.
MAX_COMBINATIONS = 512


def value_text(value: Any) -> str:
    """A controller's value as rules compare it (as ``when`` does: ``true``, ``4``, a uenv image)."""
    from .options import when_text  # the one text rule, shared with `when`

    return when_text(value)


def holding_rules(
    option: m.Option, values: Mapping[str, Any], active: Collection[str]
) -> list[tuple[str, str, m.DependentRule]]:
    """The rules of ``option`` that hold now: (controller id, its value, rule), in file order."""
    out = []
    for controller, by_value in (option.depends_on or {}).items():
        if controller not in active:
            continue
        text = value_text(values.get(controller))
        rule = by_value.get(text)
        if rule is not None:
            out.append((controller, text, rule))
    return out


def _seconds(value: Any) -> int:
    return duration_seconds(str(value))


def _number(option: m.Option, value: Any) -> Any:
    if isinstance(option, m.DurationOption):
        return _seconds(value)
    return value


def _combine(
    option: m.Option, rules: Iterable[m.DependentRule], cap: int | None = None
) -> dict[str, Any]:
    """The fields of ``option`` once ``rules`` apply (only the fields that change)."""
    rules = list(rules)
    update: dict[str, Any] = {}
    if isinstance(option, BOUNDED_KINDS):
        mins = [r.min for r in rules if r.min is not None]
        maxs = [r.max for r in rules if r.max is not None]
        lo = max(mins, key=lambda v: _number(option, v)) if mins else option.min
        hi = min(maxs, key=lambda v: _number(option, v)) if maxs else option.max
        if cap is not None and isinstance(option, m.IntegerOption):
            hi = cap if hi is None else min(int(hi), cap)
        default = next((r.default for r in rules if r.default is not None), None)
        if default is None:
            default = _clamped_default(option, lo, hi)
        if isinstance(option, m.DurationOption):
            lo, hi = (None if v is None else str(v) for v in (lo, hi))
            default = None if default is None else str(default)
        update.update(min=lo, max=hi, default=default)
    elif isinstance(option, CHOICE_KINDS):
        allowed: list[str] | None = None
        for rule in rules:
            if rule.choices is not None:
                keep = set(rule.choices)
                allowed = [
                    k for k in (allowed if allowed is not None else rule.choices) if k in keep
                ]
        default = next((r.default for r in rules if r.default is not None), None)
        if isinstance(option, m.ChoiceOption) and allowed is not None:
            update["choices"] = {k: v for k, v in option.choices.items() if k in allowed}
        elif isinstance(option, m.UenvOption) and allowed is not None:
            update["images"] = {k: v for k, v in option.images.items() if k in allowed}
        elif isinstance(option, m.ClusterChoiceOption) and allowed is not None:
            prior = option.allow
            update["allow"] = [k for k in allowed if prior is None or k in prior]
        own = option.default
        if default is not None:
            update["default"] = str(default)
        elif allowed is not None and own is not None and own not in allowed:
            update["default"] = allowed[0] if allowed else None
    return update


def _clamped_default(option: m.Option, lo: Any, hi: Any) -> Any:
    """The option's own default (or the kind's implicit one) moved inside ``[lo, hi]``."""
    if isinstance(option, m.DurationOption):
        own = option.default or hi or lo or "1:00:00"
        secs = _seconds(own)
        if hi is not None and secs > _seconds(hi):
            return hi
        if lo is not None and secs < _seconds(lo):
            return lo
        return option.default if option.default is not None else None
    own = option.default
    if own is None:
        return None  # the implicit default is `min` (the rule's, if it gives one)
    if hi is not None and own > hi:
        return hi
    if lo is not None and own < lo:
        return lo
    return own


def cluster_limit(
    option: m.Option,
    values: Mapping[str, Any],
    active: Collection[str],
    system: str,
    cluster: Collection[ClusterChoices] | None,
) -> int | None:
    """The partition limit ``cluster_max`` names, if the cluster reported it for the pick."""
    bound = getattr(option, "cluster_max", None)
    if bound is None or bound.option not in active:
        return None
    picked = value_text(values.get(bound.option))
    found = None
    for choices in cluster or ():
        if choices.system == system and choices.source == "partitions":
            for item in choices.items:
                if item.value == picked:
                    found = item.limit(bound.limit)
    return found


def effective_option(
    option: m.Option,
    values: Mapping[str, Any],
    active: Collection[str],
    *,
    system: str = "",
    cluster: Collection[ClusterChoices] | None = None,
) -> tuple[m.Option, str]:
    """``option`` with the rules that hold now applied, and why (``""`` when none holds).

    The reason reads "while partition is debug" and is added to a refusal.
    """
    if option.depends_on is None and getattr(option, "cluster_max", None) is None:
        return option, ""
    holding = holding_rules(option, values, active)
    cap = cluster_limit(option, values, active, system, cluster)
    if not holding and cap is None:
        return option, ""
    update = _combine(option, (rule for _, _, rule in holding), cap)
    reasons = [f"{controller} is {text}" for controller, text, _ in holding]
    bound = getattr(option, "cluster_max", None)
    if cap is not None and bound is not None:
        picked = value_text(values.get(bound.option))
        reasons.append(f"partition {picked} has {cap} {bound.limit}")
    return option.model_copy(update=update), "while " + " and ".join(reasons)


# -- validate ---------------------------------------------------------------------------------
Found = list[tuple[list[Any], str, str]]


def _controller_values(target: m.Option) -> list[str] | None:
    """The values a controller can take (None: not known before a spawn, e.g. cluster names)."""
    if isinstance(target, m.ChoiceOption):
        return list(target.choices)
    if isinstance(target, m.UenvOption):
        return list(target.images)
    if isinstance(target, m.BooleanOption):
        return ["true", "false"]
    if isinstance(target, m.ClusterChoiceOption) and target.allow is not None:
        return list(target.allow)
    return None


def _keys_of(option: m.Option) -> list[str] | None:
    if isinstance(option, m.ChoiceOption):
        return list(option.choices)
    if isinstance(option, m.UenvOption):
        return list(option.images)
    if isinstance(option, m.ClusterChoiceOption):
        return list(option.allow) if option.allow is not None else None
    return None


def _field_problems(option: m.Option, rule: m.DependentRule) -> Found:
    """Each field of one rule: allowed for the kind and of the kind's type."""
    found: Found = []
    kind = option.kind
    if isinstance(option, BOUNDED_KINDS):
        if rule.choices is not None:
            found.append((["choices"], f"a {kind} option has no choices", "use min, max, default"))
        for key in ("min", "max", "default"):
            value = getattr(rule, key)
            if value is None:
                continue
            if isinstance(option, m.DurationOption):
                try:
                    duration_seconds(str(value))
                except ValueError:
                    found.append(
                        (
                            [key],
                            f"{short(value)} is not a time limit",
                            'write e.g. "30" or "2:00:00"',
                        )
                    )
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                found.append(([key], f"{short(value)} is not a number", "write a number"))
            elif isinstance(option, m.IntegerOption) and not float(value).is_integer():
                found.append(([key], f"{short(value)} is not a whole number", "write e.g. 4"))
    elif isinstance(option, CHOICE_KINDS):
        for key in ("min", "max"):
            if getattr(rule, key) is not None:
                found.append(([key], f"a {kind} option has no {key}", "use choices and default"))
        keys = _keys_of(option)
        for k, choice in enumerate(rule.choices or []):
            if keys is not None and choice not in keys:
                found.append(
                    (["choices", k], f"{choice!r} is not a value of this option", _one_of(keys))
                )
        if rule.default is not None:
            text = value_text(rule.default)
            if keys is not None and text not in keys:
                found.append(
                    (["default"], f"default {text!r} is not a value of this option", _one_of(keys))
                )
            elif rule.choices is not None and text not in rule.choices:
                found.append(
                    (
                        ["default"],
                        f"default {text!r} is not among the rule's choices",
                        _one_of(rule.choices),
                    )
                )
    return found


def _one_of(keys: Iterable[str]) -> str:
    return "use one of: " + (", ".join(keys) or "(none)")


def _consistency(option: m.Option, update: Mapping[str, Any]) -> str | None:
    """Why the option's fields after ``update`` contradict each other, or None."""
    if not update:
        return None
    if isinstance(option, BOUNDED_KINDS):
        lo, hi, default = update.get("min"), update.get("max"), update.get("default")
        try:
            n_lo = None if lo is None else _number(option, lo)
            n_hi = None if hi is None else _number(option, hi)
            n_default = None if default is None else _number(option, default)
        except ValueError:
            return None  # reported by the field check
        if n_lo is not None and n_hi is not None and n_lo > n_hi:
            return f"min {_show(option, lo)} is above max {_show(option, hi)}"
        if n_default is not None and n_hi is not None and n_default > n_hi:
            return f"default {_show(option, default)} is above max {_show(option, hi)}"
        if n_default is not None and n_lo is not None and n_default < n_lo:
            return f"default {_show(option, default)} is below min {_show(option, lo)}"
    elif isinstance(option, (m.ChoiceOption, m.UenvOption)):
        left = update.get("choices", update.get("images"))
        if left is not None and not left:
            return "no choice is left"
    return None


def _show(option: m.Option, value: Any) -> str:
    return readable_duration(str(value)) if isinstance(option, m.DurationOption) else str(value)


def problems(
    option: m.Option, declared: Mapping[str, m.Option], option_ids: Collection[str]
) -> Found:
    """What ``validate`` reports about ``depends_on`` and ``cluster_max`` of one option.

    Paths are below the option. ``declared`` are the options above it.
    """
    found: Found = []
    rules = option.depends_on or {}
    if rules and not isinstance(option, BOUNDED_KINDS + CHOICE_KINDS):
        found.append(
            (
                ["depends_on"],
                f"a {option.kind} option cannot have dependent limits",
                (
                    "depends_on applies to integer, number, duration, choice, uenv and "
                    "cluster_choice options; use `when` to show or hide this one"
                ),
            )
        )
        return found
    usable: dict[str, list[str] | None] = {}
    for controller, by_value in rules.items():
        where = ["depends_on", controller]
        target = declared.get(controller)
        if controller == option.id:
            found.append(
                (["depends_on"], f"option {option.id!r} cannot depend on itself", "remove it")
            )
            continue
        if target is None:
            what = (
                "is declared below this one"
                if controller in option_ids
                else "is not an option of this profile"
            )
            found.append(
                (
                    where,
                    f"`depends_on` refers to {controller!r}, which {what}",
                    "name an option declared above, one of: " + (", ".join(declared) or "(none)"),
                )
            )
            continue
        if not isinstance(target, CONTROLLER_KINDS):
            found.append(
                (
                    ["depends_on"],
                    (
                        f"{controller!r} is a {target.kind} option; limits can depend on a choice, "
                        "cluster_choice, uenv or boolean option"
                    ),
                    "depend on the option whose values pick the limits",
                )
            )
            continue
        possible = _controller_values(target)
        usable[controller] = [v for v in by_value if possible is None or v in possible]
        for value, rule in by_value.items():
            if possible is not None and value not in possible:
                found.append(
                    (
                        [*where, value],
                        f"{value!r} is not a value of option {controller!r}",
                        _one_of(possible),
                    )
                )
                continue
            fields = _field_problems(option, rule)
            found += [([*where, value, *parts], msg, hint) for parts, msg, hint in fields]
            if fields:
                continue
            reason = _consistency(option, _combine(option, [rule]))
            if reason:
                found.append(
                    (
                        [*where, value],
                        f"while {controller} is {value}: {reason}",
                        "make the rule's limits and default agree",
                    )
                )
    found += _combination_problems(option, rules, usable, found)
    found += _cluster_max_problems(option, declared)
    return found


def _combination_problems(
    option: m.Option,
    rules: Mapping[str, Mapping[str, m.DependentRule]],
    usable: Mapping[str, list[str] | None],
    found: Found,
) -> Found:
    """Rules of several controllers that hold together and contradict each other."""
    if found or len(usable) < 2:
        return []
    axes = [[(c, None)] + [(c, v) for v in values or []] for c, values in usable.items()]
    out: Found = []
    for n, combo in enumerate(itertools.product(*axes)):
        if n >= MAX_COMBINATIONS:
            break
        picked = [(c, v) for c, v in combo if v is not None]
        if len(picked) < 2:
            continue
        reason = _consistency(option, _combine(option, [rules[c][v] for c, v in picked]))
        if reason:
            when = " and ".join(f"{c} is {v}" for c, v in picked)
            out.append((["depends_on"], f"while {when}: {reason}", "make these rules agree"))
            break
    return out


def _cluster_max_problems(option: m.Option, declared: Mapping[str, m.Option]) -> Found:
    bound = getattr(option, "cluster_max", None)
    if bound is None:
        return []
    target = declared.get(bound.option)
    if isinstance(target, m.ClusterChoiceOption) and target.source == "partitions":
        return []
    return [
        (
            ["cluster_max", "option"],
            f"{bound.option!r} is not a cluster_choice option with source partitions declared above",
            "name the option that picks the partition",
        )
    ]


# -- the form ---------------------------------------------------------------------------------
def _rule_phrase(option: m.Option, update: Mapping[str, Any]) -> str:
    parts = []
    if isinstance(option, BOUNDED_KINDS):
        lo, hi, default = update.get("min"), update.get("max"), update.get("default")
        if lo is not None and hi is not None and _show(option, lo) == _show(option, hi):
            parts.append(f"exactly {_show(option, lo)}")
        elif lo is not None and hi is not None:
            parts.append(f"{_show(option, lo)} to {_show(option, hi)}")
        elif hi is not None:
            parts.append(f"up to {_show(option, hi)}")
        elif lo is not None:
            parts.append(f"at least {_show(option, lo)}")
        if default is not None:
            parts.append(f"default {_show(option, default)}")
    else:
        keys = update.get("choices", update.get("images", update.get("allow")))
        if keys is not None:
            parts.append("choices " + (", ".join(keys) or "none"))
        if update.get("default") is not None:
            parts.append(f"default {update['default']}")
    return ", ".join(parts)


def rules_text(option: m.Option, labels: Mapping[str, str]) -> str:
    """The rules in words, for the form without JavaScript (``labels``: option id -> label).

    "Depends on Partition: debug: up to 30 min; long: up to 2 days. Otherwise: up to 12 h."
    """
    sentences = []
    for controller, by_value in (option.depends_on or {}).items():
        phrases = []
        for value, rule in by_value.items():
            phrase = _rule_phrase(option, _combine(option, [rule]))
            if phrase:
                phrases.append(f"{value}: {phrase}")
        if phrases:
            sentences.append(
                f"Depends on {labels.get(controller, controller)}: " + "; ".join(phrases) + "."
            )
    if sentences:
        own = {k: getattr(option, k, None) for k in ("min", "max", "default")}
        if isinstance(option, m.ChoiceOption):
            own["choices"] = list(option.choices)
        elif isinstance(option, m.UenvOption):
            own["images"] = list(option.images)
        phrase = _rule_phrase(option, {k: v for k, v in own.items() if v is not None})
        if phrase:
            sentences.append(f"Otherwise: {phrase}.")
    bound = getattr(option, "cluster_max", None)
    if bound is not None:
        what = "nodes" if bound.limit == "nodes" else "CPUs"
        sentences.append(
            f"At most the {what} FirecREST reports for the chosen {labels.get(bound.option, bound.option)}."
        )
    return " ".join(sentences)


def rules_data(option: m.Option) -> dict[str, Any] | None:
    """The rules for the form's script: ``{"base": {...}, "rules": {controller: {value: {...}}}}``.

    Durations are ``HH:MM:SS`` with readable text (``min_text``, ``max_text``);
    ``cluster_max`` (``{"option", "limit"}``) says which partition limit caps
    the value (the partition's ``<option>`` carries ``data-fcs-limits``). Every
    value is data for ``|tojson``, never markup.
    """
    bound = getattr(option, "cluster_max", None)
    if option.depends_on is None and bound is None:
        return None
    base = {k: getattr(option, k) for k in ("min", "max", "default") if hasattr(option, k)}
    if isinstance(option, m.ChoiceOption):
        base["choices"] = list(option.choices)
    elif isinstance(option, m.UenvOption):
        base["choices"] = list(option.images)

    def view(fields: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in fields.items() if k in ("min", "max", "default")}
        # A rule's images (uenv) or names (cluster_choice) win over the base's choices.
        keys = fields.get("images", fields.get("allow", fields.get("choices")))
        if keys is not None:
            out["choices"] = list(keys)
        if isinstance(option, m.DurationOption):
            for k in ("min", "max", "default"):
                if out.get(k) is not None:
                    out[k] = format_duration(_seconds(out[k]))
            for k in ("min", "max"):
                out[f"{k}_text"] = readable_duration(out[k]) if out.get(k) else ""
        return out

    return {
        "base": view(base),
        "rules": {
            c: {v: view({**base, **_combine(option, [r])}) for v, r in by_value.items()}
            for c, by_value in (option.depends_on or {}).items()
        },
        "cluster_max": None if bound is None else {"option": bound.option, "limit": bound.limit},
    }


__all__ = [
    "CONTROLLER_KINDS",
    "effective_option",
    "holding_rules",
    "problems",
    "rules_data",
    "rules_text",
]


#: The section of ``docs/profiles.md`` on dependent options (rendered by ``schema --markdown``).
DOC = [
    "## Dependent options",
    "",
    (
        "An option's limits, default and choices can follow the value of an option declared "
        "above it, declared once with `depends_on: {<option>: {<value>: {min, max, default, "
        "choices}}}`. While that option is shown (its `when` holds) and has that value, what the "
        "rule gives replaces the option's own; otherwise the option's own apply. With rules of "
        "several options holding at once, the tightest `min`/`max` apply, the `choices` all of "
        "them allow, and the `default` of the first rule that has one; without one, the "
        "option's own default is moved inside the limits. Values are written as in `when` "
        "(`true`/`false` for a boolean, the image for a uenv, the name for a `cluster_choice`). "
        "Rules may bound `integer`, `number` and `duration` options (`min`, `max`, `default`) "
        "and restrict `choice`, `uenv` and `cluster_choice` options (`choices`, `default`); the "
        "controlling option is a `choice`, `cluster_choice`, `uenv` or `boolean`."
    ),
    "",
    "```yaml",
    "- id: partition",
    "  kind: choice",
    "  display_name: Partition",
    "  choices: {normal: {display_name: normal}, debug: {display_name: debug}}",
    "- id: runtime",
    "  kind: duration",
    "  display_name: Time limit",
    '  max: "12:00:00"',
    '  default: "2:00:00"',
    "  depends_on:",
    "    partition:",
    '      debug: {max: "30", default: "30"}',
    "```",
    "",
    (
        "Partitions read from FirecREST (`cluster_choice` with `source: partitions`) can key "
        "rules by their names. FirecREST 2.5 reports for each partition its name, state, "
        "`totalNodes` and `cpus`, and no time limit: an `integer` option's `cluster_max: "
        "{option: partition, limit: nodes}` caps it at the picked partition's `totalNodes` (or "
        "`cpus`); time limits per partition are written in `depends_on`. `validate` checks "
        "that every rule names an option declared above, with values it can take, that each "
        "field suits the option's kind, and that limits and defaults agree (per rule and for "
        "rules of several options together). The one validator applies the rules on every "
        "path (form, `opt-` links, REST, saved options, `start()`, `render`); a refused value "
        "names the field and the rule (`45 is outside 5 min to 30 min (while partition is "
        "debug)`). The form updates limits and choices when the controlling option changes, "
        "and without JavaScript shows the rules as text under the field."
    ),
    "",
    (
        "From Open OnDemand: `data-max-<field>-for-<option>-<value>: N` becomes "
        "`depends_on: {<option>: {<value>: {max: N}}}` (likewise `data-min-*`); "
        "`data-option-for-<option>-<value>: false` on a choice becomes the rule's `choices` "
        "(the keys that stay); `data-hide-<field>-when-<option>-<value>` becomes `when:` on "
        "the hidden option (it lists the values that show it)."
    ),
    "",
]


def envelope(option: m.Option) -> tuple[Any, Any]:
    """The loosest ``min`` and ``max`` of a number option over its own limits and every rule."""
    lo, hi = getattr(option, "min", None), getattr(option, "max", None)
    for by_value in (option.depends_on or {}).values():
        for rule in by_value.values():
            fields = _combine(option, [rule])
            r_lo, r_hi = fields.get("min"), fields.get("max")
            lo = None if lo is None or r_lo is None else min(lo, r_lo)
            hi = None if hi is None or r_hi is None else max(hi, r_hi)
    return lo, hi
