"""Validate-time renderings of a profile with every value its file declares (pure).

A fixed ``req`` value, a file's ``defaults``, a system's ``req``, a choice (its
key and ``req``), a uenv image and view and a boolean's values are the
administrator's. Each is rendered into the batch script here, through the same
validator and the same checks a spawn runs, so a value that would change a
directive is reported by ``validate`` at its own position, and a user is never
blamed for it at a spawn. The template's cost bounds and render errors surface
here too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from . import models as m
from . import script as _script
from .choices import UserInfo
from .errors import OptionError, short
from .identity import ClusterIdentity
from .options import DECLARED_KINDS, cluster_lists, validate_options
from .script import ScriptRejected, ScriptTemplateError, render_batch_script, trusted_variables

#: Spawn values of the trial renderings (inert words, as the spawner's are).
_TRIAL_SPAWN = {
    "cmd": "jupyterhub-singleuser",
    "job_name": "fcs-validate",
    "workdir": "/fcs-validate",
}


#: What the spawner adds for the user (plain words, as a hub's user names are).
_TRIAL_USER = {"username": "fcs-validate", "homedir": "/home/fcs-validate"}


#: Outcomes of trial renderings, keyed by everything that decides them (see
#: :func:`_render_key`): many profiles (and every copy of a site's file) share a
#: template and most of their values, so one rendering answers for all of them.
_OUTCOMES: dict[tuple[Any, ...], tuple[str, ...]] = {}
_OUTCOMES_MAX = 4096

#: Value types a key may hold as they are (exact types: a ``str`` subclass may render
#: differently, and ``True == 1`` so the type is part of the key).
_PLAIN = (str, int, bool, float, type(None))


def _frozen(value: Any) -> Any:
    """``value`` as a hashable key part that tells apart every value that could render apart."""
    kind = type(value)
    if kind in _PLAIN:
        return (kind, value)
    if kind in (list, tuple):
        return (kind, tuple(_frozen(item) for item in value))
    raise TypeError(kind.__name__)


def _render_key(
    template: str, variables: Mapping[str, object], name: str, trusted: Collection[str]
) -> tuple[Any, ...] | None:
    """The whole input of :func:`render_batch_script`, or None if a value is not plain."""
    try:
        items = tuple((key, _frozen(value)) for key, value in variables.items())
    except TypeError:
        return None
    # Order matters (the reference rendering numbers placeholders in it), and so do
    # the template's name (in its errors) and the length bound.
    return (template, name, items, frozenset(trusted), _script.MAX_SCRIPT_CHARS)


def _checked_render(
    template: str, variables: Mapping[str, object], *, name: str, trusted: Collection[str]
) -> None:
    """:func:`render_batch_script` with the same outcome, computed once per distinct input.

    Raises the :class:`ScriptRejected` or :class:`ScriptTemplateError` the
    rendering raised, anew each time.
    """
    key = _render_key(template, variables, name, trusted)
    outcome = _OUTCOMES.get(key) if key is not None else None
    if outcome is None:
        try:
            render_batch_script(template, variables, name=name, trusted=trusted)
            outcome = ("ok",)
        except ScriptRejected as e:
            outcome = ("rejected", e.field, e.reason)
        except ScriptTemplateError as e:
            outcome = ("template", str(e))
        if key is not None:
            if len(_OUTCOMES) >= _OUTCOMES_MAX:
                _OUTCOMES.clear()
            _OUTCOMES[key] = outcome
    if outcome[0] == "rejected":
        raise ScriptRejected(outcome[1], outcome[2])
    if outcome[0] == "template":
        raise ScriptTemplateError(outcome[1])


def _trials(profile: m.Profile) -> list[dict[str, Any]]:
    """Options to render with: the defaults, then each declared value of each option in turn."""
    out: list[dict[str, Any]] = [{"profile": profile.id}]
    for option in profile.options:
        if isinstance(option, m.ChoiceOption):
            out += [{"profile": profile.id, option.id: key} for key in option.choices]
        elif isinstance(option, m.UenvOption):
            for image, spec in option.images.items():
                views = list(spec.views) or [""]
                out += [
                    {"profile": profile.id, option.id: {"image": image, "view": view}}
                    for view in views
                ]
        elif isinstance(option, m.BooleanOption):
            out += [{"profile": profile.id, option.id: value} for value in (True, False)]
    return out


def _trial_user(profile: m.Profile) -> UserInfo:
    """A user who may see every option of ``profile`` (as far as one user can)."""
    groups = set(profile.groups or ())
    users = list(profile.users or ())
    accounts, unix_groups = set(profile.accounts or ()), set(profile.unix_groups or ())
    for option in profile.options:
        groups |= set(option.groups or ())
        users += list(option.users or ())
        accounts |= set(option.accounts or ())
        unix_groups |= set(option.unix_groups or ())
        items = (
            option.choices.values()
            if isinstance(option, m.ChoiceOption)
            else option.images.values()
            if isinstance(option, m.UenvOption)
            else ()
        )
        for item in items:
            groups |= set(item.groups or ())
            users += list(item.users or ())
            accounts |= set(item.accounts or ())
            unix_groups |= set(item.unix_groups or ())
    ident = ClusterIdentity(profile.system, frozenset(accounts), frozenset(unix_groups))
    name = users[0] if users else "fcs-validate"
    return UserInfo(name, tuple(sorted(groups)), (ident,), profile.system)


def _trial_cluster(profile: m.Profile) -> Any:
    names: dict[str, list[str]] = {}
    for option in profile.options:
        if isinstance(option, m.ClusterChoiceOption):
            name = option.default or next(iter(option.fallback or []), "") or "fcs-validate"
            names.setdefault(option.source, []).append(name)
    return cluster_lists({profile.system: names}) if names else None


def _origin(
    spec: m.ProfileFile, index: int, profile: m.Profile, raw: Mapping[str, Any], name: str
) -> list[Any]:
    """Where the value of request variable ``name`` came from in this trial (highest layer)."""
    p = spec.profiles[index]
    for k, option in enumerate(p.options):
        chosen = raw.get(option.id)
        if isinstance(option, m.ChoiceOption) and chosen in option.choices:
            if name in option.choices[chosen].req:
                return ["profiles", index, "options", k, "choices", chosen, "req", name]
            if name == option.req_name:
                return ["profiles", index, "options", k, "choices", chosen]
        if isinstance(option, m.BooleanOption) and name == option.req_name:
            return ["profiles", index, "options", k, "true_value" if chosen else "false_value"]
        if name == option.req_name:
            return ["profiles", index, "options", k]
    if name in p.req:
        return ["profiles", index, "req", name]
    for j, system in enumerate(spec.systems):
        if system.name == profile.system and name in system.req:
            return ["systems", j, "req", name]
    if name in spec.defaults:
        return ["defaults", name]
    return ["profiles", index]


def declared_value_problems(
    spec: m.ProfileFile, index: int, profile: m.Profile
) -> list[tuple[list[Any] | None, str, str]]:
    """Render the profile's script as a spawn would, with every value the file declares.

    Fixed values (``req``, ``defaults``, a system's ``req``, a choice's value and
    ``req``, a boolean's values) go through exactly the checks a user's value
    goes through at a spawn, so a mistake in the file is reported here, at its
    position, and never blamed on a user. A template that cannot render (or
    would cost too much) is reported too.
    """
    found: list[tuple[list[Any] | None, str, str]] = []
    profile_set = m.ProfileSet((profile,))
    user = _trial_user(profile)
    cluster = _trial_cluster(profile)
    seen: set[tuple[str, str]] = set()
    for raw in _trials(profile):
        try:
            # The one rendering of this trial (validate_options would render it once more).
            vo = validate_options(profile_set, raw, user=user, cluster=cluster, render_check=False)
            variables = vo.template_variables(**_TRIAL_SPAWN, extra=_TRIAL_USER)
            trusted = trusted_variables(variables, vo.untrusted_variables())
            try:
                _checked_render(
                    profile.template, variables, name=profile.template_name, trusted=trusted
                )
            except ScriptRejected as e:
                # As validate_options does: a refused value of an option a user sets (or the
                # cluster names) is that option's, checked at each spawn, not the file's.
                owner = vo.sources.get(e.field) or (e.field if e.field in vo.values else None)
                owned = next((o for o in vo.profile.options if owner and o.id == owner), None)
                if owned is not None and not isinstance(owned, DECLARED_KINDS):
                    raise OptionError(owned.id, e.reason) from None
                raise
        except OptionError as e:
            key = (e.field, e.message)
            option = next((o for o in profile.options if o.id == e.field), None)
            if key in seen or not (
                isinstance(option, DECLARED_KINDS) or _declared_default(option, raw)
            ):
                continue  # what users type or the cluster names is checked at each spawn
            seen.add(key)
            option_index = next(
                (k for k, o in enumerate(spec.profiles[index].options) if o.id == e.field), None
            )
            where = (
                ["profiles", index, "options", option_index]
                if option_index is not None
                else ["profiles", index]
            )
            found.append(
                (
                    where,
                    f"with {_describe_trial(raw)}, option {e.field!r} is refused: {e.message}",
                    "a value the file declares goes through the same checks as a user's at a spawn",
                )
            )
        except ScriptRejected as e:
            key = (e.field, e.reason)
            if key in seen:
                continue
            seen.add(key)
            found.append(
                (
                    _origin(spec, index, profile, raw, e.field),
                    f"the value of {e.field!r} is refused for the batch script: {e.reason}",
                    (
                        "a value the file declares goes through the same checks as a user's at a "
                        "spawn; quote it in the template body or make it one plain word"
                    ),
                )
            )
        except ScriptTemplateError as e:
            found.append((None, f"template error: {e}", "fix the template"))
            break
    return found


def _declared_default(option: Any, raw: Mapping[str, Any]) -> bool:
    """Whether this trial gave ``option`` the default the file wrote for it.

    A user who leaves such a field alone gets that value, so its refusal is the
    file's mistake, not the user's (a value the user types is checked at spawn).
    """
    return (
        option is not None
        and option.id not in raw
        and isinstance(option, (m.TextOption, m.IntegerOption, m.NumberOption, m.DurationOption))
        and "default" in option.model_fields_set
        and option.default not in (None, "")
    )


def _describe_trial(raw: Mapping[str, Any]) -> str:
    chosen = {k: v for k, v in raw.items() if k != "profile"}
    if not chosen:
        return "the default values"
    return ", ".join(f"{k}={short(v)}" for k, v in chosen.items())


__all__ = ["declared_value_problems"]
