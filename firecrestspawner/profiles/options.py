"""The one validator of user options, and resolution of ``req_*`` values (pure).

Every way options reach a spawn (the form, ``opt-`` query links, the REST
API, options saved from an earlier spawn, and again inside ``start()``) goes
through :func:`validate_options`. It returns only typed values of options the
chosen profile declares and the user may see; raw ``user_options`` are never
merged into anything.

Rules, in one place:

* ``raw`` is a mapping. Form data (lists of strings), REST JSON (typed
  values) and saved options (:meth:`ValidatedOptions.user_options`) are all
  accepted. A list must hold one value (booleans: the last one counts, so a
  hidden ``false`` field before a checkbox works).
* Keys in :data:`IGNORED_KEYS` (``_xsrf``) are dropped and never kept. Any
  other key that is neither ``profile`` nor an option of the profile is
  refused.
* ``profile`` names a profile visible to the user; absent, the user's default
  profile is used. An unknown and an invisible profile get the same answer.
* An option restricted by ``groups``/``users`` that the user may not see is
  refused if sent; it keeps the profile's value.
* An option hidden by its ``when`` rule is inactive: a value sent for it is
  **ignored** (forms without JavaScript submit hidden fields), and it sets
  no request variable.
* Absent active options take their default.
* No string may contain a control or line-separator character, and none may
  exceed :data:`MAX_VALUE_LENGTH` characters.

Request values are resolved with one precedence: spawner configuration
(``base``) < the file's ``defaults`` and the system's ``req`` < the profile's
fixed ``req`` < the user's validated choices (and a choice's own ``req``).
``host`` is always the profile's system.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import expert, regex
from . import models as m
from .choices import (
    ClusterChoices,
    UserInfo,
    allowed,
    choice_keys,
    cluster_choice_values,
    cluster_lists,
    cluster_name_ok,
    default_profile,
    is_allowed,
    option_visible,
    visible_profiles,
)
from .dependent import effective_option
from .errors import OptionError, short
from .identity import unread_note
from .models import Profile, ProfileSet, duration_seconds, format_duration, readable_duration
from .numbers import MAX_NUMBER, check_integer, check_number, number_text
from .script import (
    BUILTIN_REQ_NAMES,
    ScriptRejected,
    ScriptTemplateError,
    forbidden_char,
    render_batch_script,
    trusted_variables,
)
from .systems import SYSTEM_OPTION, select

#: Keys a framework adds to form data; dropped, never kept.
IGNORED_KEYS = frozenset({"_xsrf"})
#: The key that carries the profile id.
PROFILE_KEY = "profile"
#: Longest string accepted for any value (longer ones are refused unread).
MAX_VALUE_LENGTH = 4096
_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no", ""})


@dataclass(frozen=True)
class UenvValue:
    """A uenv image and its view ("" when the image has none)."""

    image: str
    view: str = ""


@dataclass(frozen=True)
class ValidatedOptions:
    """The result of :func:`validate_options`.

    ``values``: ``{option_id: typed value}`` for the active options only.
    ``req``: request variables (without ``req_``) with precedence applied.
    ``sources``: request variable -> option id, for the variables an option set.
    ``untrusted``: request variables whose value was typed by the user or read
    from the cluster (free text, numbers, durations, cluster choices); the
    script renderer checks them (see :meth:`render_script`).
    """

    profile: Profile
    values: Mapping[str, Any]
    req: Mapping[str, str]
    sources: Mapping[str, str] = field(default_factory=dict)
    untrusted: frozenset[str] = frozenset()

    def user_options(self) -> dict[str, Any]:
        """JSON-safe options to save in ``user_options``; they validate to the same result."""
        out: dict[str, Any] = {PROFILE_KEY: self.profile.id}
        for key, value in self.values.items():
            if isinstance(value, UenvValue):
                out[key] = {"image": value.image, "view": value.view}
            else:
                out[key] = value
        return out

    def template_variables(
        self,
        *,
        cmd: str,
        job_name: str,
        workdir: str,
        extra: Mapping[str, object] | None = None,
    ) -> dict[str, object]:
        """The batch template variables of this spawn.

        Every documented ``req_<x>`` as ``<x>`` (empty unless set), the
        profile's custom request variables, ``cmd``, ``job_name``, ``workdir``
        and ``extra`` (spawner-provided, e.g. ``port``). With the profile's
        ``legacy_lists``, each active option is also exposed under its id as a
        one-element list of strings (``{{runtime[0]}}``), as the old HTML forms
        did; request variables the options do not set are never shadowed.
        """
        variables: dict[str, object] = dict.fromkeys(BUILTIN_REQ_NAMES, "")
        variables.update(self.req)
        items = expert.template_items(self.profile, self.values)
        variables.update(items)
        if self.profile.legacy_lists:
            for option_id, value in self.values.items():
                if option_id in items:
                    continue  # scheduler options keep their items under the id
                variables[option_id] = [_legacy_text(value)]
                if isinstance(value, UenvValue):
                    variables[f"{option_id}_view"] = [value.view]
        variables.update(extra or {})
        variables.update(cmd=cmd, job_name=job_name, workdir=workdir)
        return variables

    def untrusted_variables(self) -> frozenset[str]:
        """Template variables to check when rendering (user-derived values and the spawn's own)."""
        names = set(self.untrusted) | {"job_name", "workdir", "username", "homedir"}
        if self.profile.legacy_lists:
            names |= {self.sources[name] for name in self.untrusted if name in self.sources}
        return frozenset(names)

    def render_script(
        self,
        *,
        cmd: str,
        job_name: str,
        workdir: str,
        extra: Mapping[str, object] | None = None,
    ) -> str:
        """Render the profile's batch script with the injection checks.

        Raises :class:`OptionError` naming the option whose value was refused
        (or :class:`~firecrestspawner.script.ScriptRejected` for a variable no
        option set), :class:`~firecrestspawner.script.ScriptTemplateError` for
        a broken template.
        """
        variables = self.template_variables(
            cmd=cmd, job_name=job_name, workdir=workdir, extra=extra
        )
        # The spawner's rule, so that `firecrestspawner render` and a spawn agree:
        # what the user typed or the cluster supplied is never trusted; a value
        # the file declares (a choice's or a boolean's) is the administrator's.
        user_set = self.untrusted_variables() | set(extra or {})
        try:
            return render_batch_script(
                self.profile.template,
                variables,
                name=self.profile.template_name,
                trusted=trusted_variables(variables, frozenset(user_set)),
            )
        except ScriptRejected as e:
            option = self.sources.get(e.field) or (e.field if e.field in self.values else None)
            if option is not None:
                raise OptionError(option, e.reason) from None
            raise


def _legacy_text(value: Any) -> str:
    if isinstance(value, UenvValue):
        return value.image
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def option_default(
    option: m.Option,
    *,
    user: UserInfo | None = None,
    system: str = "",
    cluster: Collection[ClusterChoices] | None = None,
) -> Any:
    """The value an option takes when none is given (typed as in ``values``)."""
    if isinstance(option, m.ChoiceOption):
        keys = choice_keys(option, user) if user else list(option.choices)
        if option.default is not None and option.default in keys:
            return option.default
        return keys[0] if keys else None
    if isinstance(option, m.UenvOption):
        keys = choice_keys(option, user) if user else list(option.images)
        if option.default is not None and option.default in keys:
            image = option.default
        elif keys and option.required:
            image = keys[0]
        else:
            return None
        spec = option.images[image]
        view = spec.default_view or next(iter(spec.views), "")
        return UenvValue(image, view)
    if isinstance(option, m.ClusterChoiceOption):
        if option.default is not None:
            return option.default
        if not option.required:
            return ""
        offered = cluster_choice_values(option, system, cluster)
        return offered[0] if offered else None
    if isinstance(option, m.IntegerOption):
        if option.default is not None:
            return option.default
        return option.min if option.min is not None else 1
    if isinstance(option, m.NumberOption):
        if option.default is not None:
            return option.default
        return option.min if option.min is not None else 0.0
    if isinstance(option, m.DurationOption):
        text = option.default or option.max or option.min or "1:00:00"
        return format_duration(duration_seconds(text))
    if isinstance(option, m.TextOption):
        return option.default
    if isinstance(option, (m.BooleanOption, m.SchedulerOptionsOption)):
        return option.default
    raise TypeError(f"unknown option kind {type(option).__name__}")  # pragma: no cover


def default_options(profile: Profile) -> dict[str, Any]:
    """``user_options`` that pick ``profile`` with every option at its default (JSON-safe)."""
    out: dict[str, Any] = {PROFILE_KEY: profile.id}
    chosen: dict[str, Any] = {}
    for option in profile.options:
        # After the dependent rules of the defaults above, as the validator picks them.
        option, _ = effective_option(option, chosen, list(chosen), system=profile.system)
        value = chosen[option.id] = option_default(option, system=profile.system)
        if isinstance(value, UenvValue):
            value = {"image": value.image, "view": value.view}
        if value is not None:
            out[option.id] = value
    return out


# -- raw values ---------------------------------------------------------------------------
def _check_string(field_name: str, value: str) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        raise OptionError(field_name, f"value is longer than {MAX_VALUE_LENGTH} characters")
    reason = forbidden_char(value)
    if reason:
        raise OptionError(field_name, reason)
    return value


def _unwrap(field_name: str, value: Any, *, last: bool = False) -> Any:
    """Form data -> one value; lists must hold one value (``last`` for checkboxes)."""
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        if len(value) > 1 and not last:
            raise OptionError(field_name, f"expected one value, got {len(value)}")
        value = value[-1]
    if isinstance(value, str):
        _check_string(field_name, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not isinstance(item, str):
                raise OptionError(field_name, "expected strings in the mapping")
            _check_string(field_name, key)
            _check_string(field_name, item)
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise OptionError(field_name, f"unsupported value type {type(value).__name__}")
    return value


def _as_text(option_id: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise OptionError(option_id, f"expected a string, got {short(value)}")
    return str(value)


def _check_choice(option: m.ChoiceOption, value: Any, user: UserInfo) -> tuple[str, dict[str, str]]:
    key = _as_text(option.id, value)
    allowed = choice_keys(option, user)
    if key not in allowed:
        raise OptionError(
            option.id, f"{short(key)} is not allowed; choose one of: {', '.join(allowed)}"
        )
    return key, {option.req_name: key, **{k: str(v) for k, v in option.choices[key].req.items()}}


def _check_uenv(
    option: m.UenvOption, value: Any, view: Any, user: UserInfo
) -> tuple[UenvValue | None, dict[str, str]]:
    if isinstance(value, dict):
        extra = set(value) - {"image", "view"}
        if extra:
            raise OptionError(option.id, f"unknown keys {sorted(extra)}; expected image and view")
        view = value.get("view", view)
        value = value.get("image")
    image = "" if value is None else _as_text(option.id, value)
    allowed = choice_keys(option, user)
    if image == "" and not option.required:
        return None, {option.req_name: "", option.view_req: ""}
    if image not in allowed:
        raise OptionError(
            option.id, f"{short(image)} is not allowed; choose one of: {', '.join(allowed)}"
        )
    spec = option.images[image]
    views = list(spec.views)
    view_text = "" if view is None else _as_text(f"{option.id}_view", view)
    if view_text == "":
        view_text = spec.default_view or (views[0] if views else "")
    if views and view_text not in views:
        raise OptionError(
            f"{option.id}_view",
            f"{short(view_text)} is not a view of {image}; choose one of: {', '.join(views)}",
        )
    if not views and view_text:
        raise OptionError(f"{option.id}_view", f"{image} has no views")
    req = {option.req_name: image, option.view_req: view_text}
    req.update({k: str(v) for k, v in spec.req.items()})
    return UenvValue(image, view_text), req


def _check_cluster(
    option: m.ClusterChoiceOption,
    value: Any,
    system: str,
    cluster: Collection[ClusterChoices] | None,
) -> str:
    name = "" if value is None else _as_text(option.id, value)
    if name == "":
        if option.required:
            raise OptionError(option.id, "a value is required")
        return ""
    offered = cluster_choice_values(option, system, cluster)
    if offered is None:
        if not cluster_name_ok(option, name):
            raise OptionError(option.id, f"{short(name)} is not a valid {option.source[:-1]} name")
    elif name not in offered:
        listed = ", ".join(offered[:20]) + (", ..." if len(offered) > 20 else "")
        raise OptionError(
            option.id,
            f"{short(name)} is not available; choose one of: {listed or '(none available now)'}",
        )
    return name


def _check_duration(option: m.DurationOption, value: Any) -> str:
    text = _as_text(option.id, value).strip()
    try:
        seconds = duration_seconds(text)
    except ValueError:
        raise OptionError(
            option.id,
            f"{short(text)} is not a time limit; write minutes (30), HH:MM:SS (1:30:00) or D-HH:MM:SS",
        ) from None
    lo = duration_seconds(option.min) if option.min else None
    hi = duration_seconds(option.max) if option.max else None
    if (lo is not None and seconds < lo) or (hi is not None and seconds > hi):
        low = readable_duration(option.min) if option.min else "0"
        high = readable_duration(option.max) if option.max else "unlimited"
        raise OptionError(option.id, f"{text} is outside the allowed range {low} to {high}")
    return format_duration(seconds)


def _check_text(option: m.TextOption, value: Any) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise OptionError(option.id, f"expected text, got {short(value)}")
    if len(value) > option.max_length:
        raise OptionError(option.id, f"is longer than {option.max_length} characters")
    if value == "":
        if option.required:
            raise OptionError(option.id, "a value is required")
        return ""
    if not regex.fullmatch(option.pattern, value):
        raise OptionError(
            option.id, f"{short(value)} does not match the required pattern {option.pattern}"
        )
    return value


def _check_boolean(option: m.BooleanOption, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise OptionError(option.id, f"expected true or false, got {short(value)}")


def when_text(value: Any) -> str:
    """A value as ``when`` rules compare it, and as the form shows it.

    ``true``/``false`` for booleans, ``4`` for 4.0, the image of a uenv value,
    ``""`` for none. The file's ``when`` values, the validated values and the
    form's fields all go through this one function, so they compare alike.
    """
    if isinstance(value, UenvValue):
        return value.image
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def option_active(option: m.Option, values: Mapping[str, Any], active: Iterable[str]) -> bool:
    """Whether the ``when`` rule of ``option`` holds for the values chosen above it."""
    active_set = set(active)
    for target, wanted in (option.when or {}).items():
        if target not in active_set:
            return False
        if when_text(values.get(target)) not in {when_text(w) for w in wanted}:
            return False
    return True


# -- the validator ---------------------------------------------------------------------------
def validate_options(
    profile_set: ProfileSet,
    raw: Mapping[str, Any] | None,
    *,
    user: UserInfo,
    cluster: Collection[ClusterChoices] | None = None,
    base: Mapping[str, str] | None = None,
    render_check: bool = True,
) -> ValidatedOptions:
    """Check ``raw`` user options against the profiles; the only way to a spawn's values.

    Raises :class:`OptionError` naming the refused field and what is allowed.
    ``render_check=False`` is for ``trial.py`` only, which renders the script
    itself with the same checks (and the same skip of a user's values).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise OptionError("options", f"expected a mapping of options, got {type(raw).__name__}")
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise OptionError("options", f"option names must be strings, got {short(key)}")
        if key in IGNORED_KEYS:
            continue
        _check_string("options", key)
        data[key] = value

    profile, user = _variant(
        _pick_profile(profile_set, data.pop(PROFILE_KEY, None), user), data, user
    )
    options = {o.id: o for o in profile.options}
    view_keys = {f"{o.id}_view": o for o in profile.options if isinstance(o, m.UenvOption)}
    for key in data:
        if key not in options and key not in view_keys:
            known = [PROFILE_KEY, *options, *view_keys]
            raise OptionError(
                key,
                f"unknown option for profile {profile.id!r}; known options: {', '.join(known)}",
            )
        option = options.get(key) or view_keys[key]
        if not option_visible(option, user):
            raise OptionError(key, f"this option of profile {profile.id!r} is not available to you")

    req: dict[str, str] = {k: str(v) for k, v in (base or {}).items()}
    req.update(profile.defaults)
    req.update(profile.fixed)
    req["host"] = profile.system
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    untrusted: set[str] = set()
    active: list[str] = []
    for option in profile.options:
        if not option_visible(option, user) or not option_active(option, values, active):
            continue
        # Limits that follow options above (depends_on, cluster_max): this option as it stands.
        option, why = effective_option(
            option, values, active, system=profile.system, cluster=cluster
        )
        is_bool = isinstance(option, m.BooleanOption)
        value = _unwrap(option.id, data.get(option.id), last=is_bool)
        if value is None or (value == "" and isinstance(option, (m.IntegerOption, m.NumberOption))):
            value = option_default(option, user=user, system=profile.system, cluster=cluster)
            if value is None and not isinstance(option, (m.UenvOption, m.ClusterChoiceOption)):
                raise OptionError(option.id, "no value given and no default is available to you")
        try:
            typed, updates = _check_option(option, value, data, user, profile, cluster)
        except OptionError as e:
            if why and e.field == option.id:
                raise OptionError(e.field, f"{e.message} ({why})") from None
            raise
        except (ArithmeticError, ValueError, TypeError, RecursionError) as e:
            # A value no check above foresaw: still the user's field and a 400, never a 500.
            raise OptionError(
                option.id, f"cannot read {short(value)}: {type(e).__name__}"
            ) from None
        if not isinstance(option, (m.ChoiceOption, m.UenvOption, m.BooleanOption)):
            untrusted.add(option.req_name)
        if typed is not None:
            values[option.id] = typed
        active.append(option.id)
        req.update(updates)
        for name in updates:
            sources[name] = option.id
        if isinstance(option, m.SchedulerOptionsOption):
            sources.setdefault(expert.TEMPLATE_VARIABLE, option.id)
            sources[option.req_name] = option.id
    validated = ValidatedOptions(
        profile=profile,
        values=types.MappingProxyType(values),
        req=types.MappingProxyType(req),
        sources=types.MappingProxyType(sources),
        untrusted=frozenset(untrusted),
    )
    if render_check:
        _check_script(validated)
    return validated


#: Spawn values for the trial rendering of :func:`_check_script` (inert words, as real ones are).
_TRIAL_SPAWN = {"cmd": "jupyterhub-singleuser", "job_name": "fcs-trial", "workdir": "/fcs-trial"}
_TRIAL_USER = {"username": "fcs-trial", "homedir": "/home/fcs-trial"}


def _check_script(validated: ValidatedOptions) -> None:
    """Render once, so every path refuses a value the template cannot take, naming the option.

    A refused value the file declares (or a broken template) is the administrator's:
    ``validate`` reports it; only what the user typed or the cluster named is raised.
    """
    try:
        validated.render_script(**_TRIAL_SPAWN, extra=_TRIAL_USER)
    except OptionError as e:
        option = next((o for o in validated.profile.options if o.id == e.field), None)
        if option is not None and not isinstance(option, DECLARED_KINDS):
            raise
    except (ScriptRejected, ScriptTemplateError):
        pass


#: Option kinds whose values the file declares (a refused one is the administrator's mistake).
DECLARED_KINDS = (m.ChoiceOption, m.UenvOption, m.BooleanOption)


def _check_option(
    option: m.Option,
    value: Any,
    data: Mapping[str, Any],
    user: UserInfo,
    profile: Profile,
    cluster: Collection[ClusterChoices] | None,
) -> tuple[Any, dict[str, str]]:
    """One active option's typed value and the request variables it sets."""
    updates: dict[str, str]
    typed: Any
    if isinstance(option, m.ChoiceOption):
        if value is None:
            raise OptionError(option.id, "no choice is available to you")
        typed, updates = _check_choice(option, value, user)
    elif isinstance(option, m.UenvOption):
        view = _unwrap(f"{option.id}_view", data.get(f"{option.id}_view"))
        if isinstance(value, UenvValue):
            if view is None:
                view = value.view
            value = value.image
        typed, updates = _check_uenv(option, value, view, user)
    elif isinstance(option, m.ClusterChoiceOption):
        if value is None:
            raise OptionError(option.id, f"no {option.source} are available now; try again later")
        typed = _check_cluster(option, value, profile.system, cluster)
        updates = {option.req_name: typed}
    elif isinstance(option, m.IntegerOption):
        typed = check_integer(option, value)
        updates = {option.req_name: str(typed)}
    elif isinstance(option, m.NumberOption):
        typed = check_number(option, value)
        updates = {option.req_name: number_text(typed)}
    elif isinstance(option, m.DurationOption):
        typed = _check_duration(option, value)
        updates = {option.req_name: typed}
    elif isinstance(option, m.TextOption):
        typed = _check_text(option, value)
        updates = {option.req_name: typed}
    elif isinstance(option, m.SchedulerOptionsOption):
        typed = expert.check(option, value)
        updates = {}
    elif isinstance(option, m.BooleanOption):
        typed = _check_boolean(option, value)
        updates = {option.req_name: option.true_value if typed else option.false_value}
    else:  # pragma: no cover
        raise TypeError(type(option).__name__)
    return typed, updates


def _variant(profile: Profile, data: dict[str, Any], user: UserInfo) -> tuple[Profile, UserInfo]:
    """The profile of the chosen system (multi-system profiles), and the user as seen there."""
    if profile.variants:
        wanted = _unwrap(SYSTEM_OPTION, data.get(SYSTEM_OPTION))
        ok = {name: allowed(v, user.on(name)) for name, v in profile.variants.items()}
        profile = select(profile, wanted, ok)
        data[SYSTEM_OPTION] = profile.system
    return profile, user.on(profile.system)


def _pick_profile(profile_set: ProfileSet, wanted: Any, user: UserInfo) -> Profile:
    visible = visible_profiles(profile_set, user)
    wanted = _unwrap(PROFILE_KEY, wanted)
    if wanted is None or wanted == "":
        profile = default_profile(profile_set, user)
        if profile is None:
            raise OptionError(PROFILE_KEY, "no profile is available to you")
        return profile
    for profile in visible:
        if profile.id == wanted:
            return profile
    names = ", ".join(p.id for p in visible) or "(none)"
    message = f"unknown profile {short(wanted)}; available to you: {names}"
    # Fail closed during a userinfo outage, and say why, in words that do not depend
    # on whether the id exists (a hidden profile's id is not confirmed to anyone).
    note = unread_note(profile_set, user)
    raise OptionError(PROFILE_KEY, f"{message}; {note}" if note else message)


__all__ = [
    "IGNORED_KEYS",
    "MAX_NUMBER",
    "MAX_VALUE_LENGTH",
    "PROFILE_KEY",
    "ClusterChoices",
    "OptionError",
    "UenvValue",
    "UserInfo",
    "ValidatedOptions",
    "choice_keys",
    "cluster_choice_values",
    "cluster_lists",
    "default_options",
    "default_profile",
    "duration_seconds",
    "format_duration",
    "is_allowed",
    "option_active",
    "option_default",
    "option_visible",
    "validate_options",
    "visible_profiles",
    "when_text",
]
