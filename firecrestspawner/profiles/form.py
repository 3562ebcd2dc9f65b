"""The spawn form of profile mode, rendered from the site profiles (pure).

:func:`build_view` turns the profiles a user may see into a small view model
(what is selected, what each field shows, which ``when`` rules hide it, what
the spawn will request); :func:`render_form` renders it with a Jinja2
environment that autoescapes everything, so names and descriptions from
profile files, the cluster or remembered choices are always text, never
markup. The HTML follows JupyterHub 5/6's Bootstrap 5 markup (``form-check``,
``form-select``, ``form-control``, ``card``) and is inserted by JupyterHub
into its own ``<form id="spawn_form">``.

Field names are ``<profile id>.<option id>`` so each profile keeps its own
values; :func:`form_to_options` (used by ``options_from_form``) keeps only
those of the selected profile and of the options whose ``when`` rules hold,
which is what the inline script sends when JavaScript is on. Whatever comes
out still goes through :func:`firecrestspawner.options.validate_options` at
spawn time. This module does not import jupyterhub.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from . import dependent
from .choices import ClusterChoice, ClusterChoices, allowed
from .helptext import render_help
from .models import readable_duration
from .options import (
    PROFILE_KEY,
    UenvValue,
    UserInfo,
    option_active,
    option_default,
    option_visible,
    when_text,
)
from .systems import SYSTEM_OPTION, cluster_key
from .systems import label as systems_label

#: Form field carrying the profile id (also the ``user_options`` key).
PROFILE_FIELD = PROFILE_KEY

#: Request variables shown in the summary, in this order, with their labels.
SUMMARY_LABELS: dict[str, str] = {
    "nnodes": "nodes:",
    "ntasks": "tasks:",
    "gpus_per_node": "GPUs per node:",
    "gpus": "GPUs (whole job):",
    "ngpus": "GPUs (whole job):",
    "memory": "memory:",
    "runtime": "time:",
    "partition": "partition:",
    "reservation": "reservation:",
    "account": "account:",
    "uenv": "image:",
    "uenv_view": "view:",
}


def field_name(profile_id: str, option_id: str) -> str:
    """The form field of one option of one profile."""
    return f"{profile_id}.{option_id}"


@dataclass
class ChoiceView:
    value: str
    label: str
    detail: str = ""
    selected: bool = False
    #: Request variables this choice sets (shown in the summary).
    req: dict[str, str] = field(default_factory=dict)
    #: For uenv views: the image the view belongs to.
    image: str = ""
    #: What the cluster reports as this name's limits (a partition's nodes, cpus).
    limits: dict[str, int] = field(default_factory=dict)


@dataclass
class OptionView:
    id: str
    name: str
    kind: str  # select | checkbox | number | text | uenv_view
    label: str
    description: str = ""
    #: ``help:`` rendered from Markdown by :func:`~.helptext.render_help` (safe HTML).
    help_html: Markup = field(default_factory=Markup)
    choices: list[ChoiceView] = field(default_factory=list)
    value: Any = None
    min: Any = None
    max: Any = None
    step: Any = None
    pattern: str = ""
    maxlength: int | None = None
    placeholder: str = ""
    required: bool = False
    req_key: str = ""
    #: ``[{"option": id, "values": [str, ...]}, ...]``: all must hold.
    when: list[dict[str, Any]] = field(default_factory=list)
    active: bool = True
    #: Without JavaScript every field shows; this says when one is used.
    when_hint: str = ""
    note: str = ""
    #: Dependent limits (:mod:`.dependent`): as data for the script, and in words.
    depends: dict[str, Any] | None = None
    rules_text: str = ""
    #: The option whose value picks which choices show (``ChoiceView.image``).
    follows: str = ""


@dataclass
class ProfileView:
    id: str
    display_name: str
    description: str = ""
    help_html: Markup = field(default_factory=Markup)
    system: str = ""
    selected: bool = False
    options: list[OptionView] = field(default_factory=list)
    #: Request variables before any option (profile, file and config values).
    req: dict[str, str] = field(default_factory=dict)
    summary: str = ""


# -------------------------------------------------------------------------
# helpers


def _req_text(req: Mapping[str, Any]) -> dict[str, str]:
    """The request values the summary shows (only those: the page shows no other config)."""
    return {str(k): when_text(v) for k, v in req.items() if k in SUMMARY_LABELS}


def summary_text(req: Mapping[str, Any]) -> str:
    parts = []
    for key, label in SUMMARY_LABELS.items():
        value = req.get(key)
        if value not in (None, ""):
            parts.append(f"{label} {when_text(value)}")
    return ", ".join(parts)


def _when_hint(profile: Any, option: Any) -> str:
    labels = {o.id: o.display_name for o in profile.options}
    parts = []
    for other, accepted in (option.when or {}).items():
        shown = ", ".join(when_text(v) for v in accepted)
        parts.append(f"{labels.get(other, other)} is {shown}")
    return ("Used only when " + " and ".join(parts) + ".") if parts else ""


def _when_rules(option: Any) -> list[dict[str, Any]]:
    rules = getattr(option, "when", None) or {}
    return [{"option": k, "values": [when_text(v) for v in vs]} for k, vs in rules.items()]


def active_options(profile: Any, values: Mapping[str, Any], user: UserInfo) -> set[str]:
    """Ids of the options the validator treats as active for ``values``."""
    active: list[str] = []
    for option in profile.options:
        if option_visible(option, user) and option_active(option, values, active):
            active.append(option.id)
    return set(active)


def known_names(system: str, cluster: Mapping[str, ClusterChoices]) -> tuple[ClusterChoices, ...]:
    """The cluster lists of a profile's form (per option id) as the validator takes them.

    They are read as lists of ``system`` (the profile's); the validator
    ignores static fallbacks (see :func:`~.choices.reported_names`).
    """
    out = []
    for key, c in cluster.items():
        # A multi-system profile's lists are keyed option@system (systems.cluster_key).
        of = key.partition("@")[2] or system
        out.append(c if c.system == of else dataclasses.replace(c, system=of))
    return tuple(out)


def default_value(
    option: Any, *, user: UserInfo, system: str, cluster: ClusterChoices | None = None
) -> Any:
    """The preselected value of an option (the validator's default)."""
    known = known_names(system, {option.id: cluster} if cluster is not None else {})
    value = option_default(option, user=user, system=system, cluster=known)
    if option.kind == "cluster_choice" and cluster is not None:
        # FirecREST marks the user's default account: prefer it to the first.
        preferred = option.default is None and option.required and cluster.default
        if preferred and cluster.default in cluster.values:
            value = cluster.default
        elif value is None:
            value = cluster.values[0] if cluster.values else ""
    return value


# -------------------------------------------------------------------------
# view model


def _option_views(
    profile: Any,
    option: Any,
    *,
    name: str,
    value: Any,
    user: UserInfo,
    cluster: ClusterChoices | Mapping[str, ClusterChoices] | None,
    active: bool,
) -> list[OptionView]:
    labels = {o.id: o.display_name for o in profile.options}
    base = {
        "depends": dependent.rules_data(option),
        "rules_text": dependent.rules_text(option, labels),
        "id": option.id,
        "name": name,
        "label": option.display_name,
        "description": option.description,
        "help_html": render_help(option.help),
        "req_key": option.req_name,
        "when": _when_rules(option),
        "when_hint": _when_hint(profile, option),
        "active": active,
    }
    kind = option.kind
    if isinstance(cluster, Mapping):  # a multi-system profile: every system's lists
        if kind == "cluster_choice":
            return [_multi_cluster_view(profile, option, value, user, cluster, base)]
        cluster = None
    if kind == "choice":
        choices = [
            ChoiceView(
                value=key,
                label=c.display_name,
                detail=c.description,
                selected=key == when_text(value),
                req=_req_text(c.req),
            )
            for key, c in option.choices.items()
            if allowed(c, user) and _system_offered(profile, option, key, user)
        ]
        return [OptionView(kind="select", choices=choices, value=value, **base)]
    if kind == "cluster_choice":
        if cluster is not None:
            items = cluster.items
        else:
            items = tuple(ClusterChoice(v) for v in option.fallback)
        note = cluster.note if cluster is not None else ""
        if not items and (cluster is None or cluster.origin == "fallback"):
            # Nothing known (FirecREST unreachable, no static list): let the user
            # type the name; the validator checks its form, the scheduler the rest.
            return [
                OptionView(
                    kind="text",
                    value=when_text(value),
                    maxlength=128,
                    placeholder=f"{option.source[:-1]} name",
                    required=option.required,
                    note=f"{note} Type the name.".strip(),
                    **base,
                )
            ]
        choices = []
        if not option.required:
            choices.append(ChoiceView(value="", label="(none)", selected=value in ("", None)))
        for c in items:
            choices.append(
                ChoiceView(
                    value=c.value,
                    label=c.text,
                    detail=c.detail,
                    selected=c.value == when_text(value),
                    limits=dict(c.limits),
                )
            )
        return [OptionView(kind="select", choices=choices, value=value, note=note, **base)]
    if kind in ("integer", "number"):
        step = option.step if option.step is not None else (1 if kind == "integer" else "any")
        # The widest limits any rule allows: without JavaScript the browser must not refuse
        # a value another partition allows (the server checks the rule that holds).
        lo, hi = dependent.envelope(option)
        return [
            OptionView(
                kind="number",
                value=when_text(value),
                min=lo,
                max=hi,
                step=step,
                **base,
            )
        ]
    if kind == "duration":
        desc = option.description or ""
        limits = []
        if option.min:
            limits.append(f"at least {readable_duration(option.min)}")
        if option.max:
            limits.append(f"at most {readable_duration(option.max)}")
        fmt = "HH:MM:SS" if getattr(profile, "scheduler", "slurm") == "pbs" else "Slurm time format"
        hint = f"{fmt}, e.g. 01:30:00" + (f" ({', '.join(limits)})" if limits else "")
        base["description"] = f"{desc} {hint}".strip() if desc else hint
        return [
            OptionView(
                kind="text",
                value=when_text(value),
                placeholder="HH:MM:SS",
                maxlength=16,
                **base,
            )
        ]
    if kind == "text":
        return [
            OptionView(
                kind="text",
                value=when_text(value),
                # Only a pattern the browser reads as Python does (decided at load time).
                pattern=profile.html_patterns.get(option.id, ""),
                maxlength=option.max_length,
                placeholder=option.placeholder,
                **base,
            )
        ]
    if kind == "boolean":
        return [OptionView(kind="checkbox", value=bool(value), **base)]
    if kind == "scheduler_options":
        allow_text = ", ".join(
            name
            + ("" if spec.value is None else "=…" if name.startswith("--") else " …")
            + (" (repeatable)" if spec.repeatable else "")
            for name, spec in option.allow.items()
        )
        hint = f"Separated by spaces. Allowed: {allow_text}."
        base["description"] = f"{option.description} {hint}".strip()
        return [
            OptionView(
                kind="text",
                value=when_text(value),
                maxlength=option.max_length,
                placeholder=option.placeholder or next(iter(option.allow)),
                **base,
            )
        ]
    if kind == "uenv":
        if isinstance(value, UenvValue):
            image_now, view_now = value.image, value.view
        else:
            current = value if isinstance(value, Mapping) else {}
            image_now = when_text(current.get("image"))
            view_now = when_text(current.get("view"))
        images = [(key, img) for key, img in option.images.items() if allowed(img, user)]
        image_choices = [
            ChoiceView(
                value=key,
                label=img.display_name or key,
                detail=img.description,
                selected=key == image_now,
                req=_req_text(img.req),
            )
            for key, img in images
        ]
        view_choices = [
            ChoiceView(
                value=vkey,
                label=f"{view.display_name or vkey} ({img.display_name or key})",
                detail=view.description,
                selected=key == image_now and vkey == view_now,
                image=key,
            )
            for key, img in images
            for vkey, view in img.views.items()
        ]
        out = [OptionView(kind="select", choices=image_choices, value=image_now, **base)]
        if view_choices:
            out.append(
                OptionView(
                    id=f"{option.id}_view",
                    name=f"{name}_view",
                    kind="uenv_view",
                    label=f"{option.display_name}: view",
                    choices=view_choices,
                    value=view_now,
                    req_key=option.view_req,
                    when=base["when"],
                    when_hint=base["when_hint"],
                    active=active,
                )
            )
        return out
    raise ValueError(f"option {option.id!r} has an unknown kind {kind!r}")


def _system_offered(profile: Any, option: Any, key: str, user: UserInfo) -> bool:
    """A multi-system profile offers only the systems its allow-lists let the user use."""
    variants = getattr(profile, "variants", None)
    if option.id != SYSTEM_OPTION or not variants or key not in variants:
        return True
    return allowed(variants[key], user.on(key))


def _multi_cluster_view(
    profile: Any,
    option: Any,
    value: Any,
    user: UserInfo,
    cluster: Mapping[str, ClusterChoices] | None,
    base: dict[str, Any],
) -> OptionView:
    """A cluster choice of a multi-system profile: the names of every system, each
    tagged with it; the script shows the chosen system's, the validator takes only those."""
    choices: list[ChoiceView] = []
    notes: list[str] = []
    for name in profile.variants:
        found = (cluster or {}).get(cluster_key(option.id, name))
        if found is None and not allowed(profile.variants[name], user.on(name)):
            continue
        items = (
            found.items if found is not None else tuple(ClusterChoice(v) for v in option.fallback)
        )
        if found is not None and found.note:
            notes.append(f"{name}: {found.note}")
        if not option.required:
            choices.append(ChoiceView("", "(none)", selected=value in ("", None), image=name))
        for c in items:
            mine = name == profile.system and c.value == when_text(value)
            choices.append(ChoiceView(c.value, f"{c.text} ({name})", c.detail, mine, image=name))
    return OptionView(
        kind="select",
        choices=choices,
        value=value,
        note=" ".join(notes),
        follows=SYSTEM_OPTION,
        **base,
    )


def build_view(
    profile: Any,
    *,
    user: UserInfo,
    values: Mapping[str, Any],
    selected: bool,
    cluster: Mapping[str, ClusterChoices] | None = None,
    base_req: Mapping[str, Any] | None = None,
    req: Mapping[str, Any] | None = None,
) -> ProfileView:
    """The view of one profile the user may see.

    ``values`` are the values to preselect (remembered and re-validated, or
    defaults), ``cluster`` the cluster choices per option id, ``base_req``
    the request variables before any option and ``req`` those the current
    values resolve to (for the summary).
    """
    cluster = cluster or {}
    user = user.on(profile.system)
    values = dict(values)
    if profile.variants:  # the card shows the variant's system, whatever the first one is
        values.setdefault(SYSTEM_OPTION, profile.system)
    known = known_names(profile.system, cluster)
    holding: list[str] = []
    for option in profile.options:
        # Defaults as the validator picks them: after the rules of the options above.
        if option_visible(option, user) and option_active(option, values, holding):
            holding.append(option.id)
            option, _ = dependent.effective_option(
                option, values, holding[:-1], system=profile.system, cluster=known
            )
        if option.id not in values:
            own = cluster.get(option.id) or cluster.get(cluster_key(option.id, profile.system))
            values[option.id] = default_value(option, user=user, system=profile.system, cluster=own)
    active = active_options(profile, values, user)
    views: list[OptionView] = []
    for option in profile.options:
        if not option_visible(option, user):
            continue
        views.extend(
            _option_views(
                profile,
                option,
                name=field_name(profile.id, option.id),
                value=values.get(option.id),
                user=user,
                cluster=cluster if profile.variants else cluster.get(option.id),
                active=option.id in active,
            )
        )
    return ProfileView(
        id=profile.id,
        display_name=profile.display_name,
        description=profile.description,
        help_html=render_help(profile.spec.help),
        system=systems_label(profile),
        selected=selected,
        options=views,
        req=_req_text(base_req or {}),
        summary=summary_text(req if req is not None else (base_req or {})),
    )


# -------------------------------------------------------------------------
# rendering


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("firecrestspawner.profiles", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    lstrip_blocks=True,
)


def render_profile(view: ProfileView, index: int) -> Markup:
    """One profile's card of the form (``index`` numbers its element ids, from 1)."""
    template = _ENV.get_template("profile_card.html")
    # The output of an autoescaping template: every text in it is already escaped.
    return Markup(template.render(p=view, pid=f"fcs-p{index}"))  # noqa: S704


def render_form(profiles: Sequence[ProfileView | Markup], notes: Sequence[str] = ()) -> str:
    """The form HTML (a fragment for JupyterHub's ``spawn.html``).

    ``profiles`` are views, or cards already rendered by :func:`render_profile`
    (kept in a :class:`CardCache`) in their place.
    """
    cards = [
        p if isinstance(p, Markup) else render_profile(p, i) for i, p in enumerate(profiles, 1)
    ]
    template = _ENV.get_template("spawn_form.html")
    return template.render(
        cards=cards,
        notes=list(dict.fromkeys(n for n in notes if n)),
        summary_labels=SUMMARY_LABELS,
        summary_order=list(SUMMARY_LABELS),
    )


class CardCache:
    """Rendered profile cards, kept while nothing they show has changed.

    A card depends on the profile (a new object when its file changes), its
    position, whether it is selected, the user (allow-lists, defaults), the
    cluster choices shown (their ``fetched_at`` changes with each FirecREST
    answer) and the configured request values; all of these are the key. A
    profile with remembered values is not kept. The profile object is held with
    its card, so a key naming it by ``id()`` cannot match a later object. Plain
    dict operations only; emptied when full.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._cards: dict[tuple[Any, ...], tuple[Any, Markup]] = {}

    @staticmethod
    def key(
        profile: Any,
        *,
        index: int,
        selected: bool,
        user: UserInfo,
        cluster: Mapping[str, ClusterChoices],
        base_req: Mapping[str, Any],
    ) -> tuple[Any, ...]:
        return (
            id(profile),
            index,
            selected,
            user,
            tuple(sorted(cluster.items())),
            tuple(sorted((str(k), str(v)) for k, v in base_req.items())),
        )

    def get(self, key: tuple[Any, ...], profile: Any) -> Markup | None:
        hit = self._cards.get(key)
        return hit[1] if hit is not None and hit[0] is profile else None

    def put(self, key: tuple[Any, ...], profile: Any, card: Markup) -> None:
        if len(self._cards) >= self.size:
            self._cards.clear()
        self._cards[key] = (profile, card)

    def clear(self) -> None:
        self._cards.clear()


# -------------------------------------------------------------------------
# form data -> raw user options


def _last(values: Any) -> Any:
    if isinstance(values, list | tuple):
        return values[-1] if values else None
    return values


def form_to_options(formdata: Mapping[str, Any], profile: Any | None) -> dict[str, Any]:
    """Raw ``user_options`` from the fields the selected profile owns.

    ``formdata`` is JupyterHub's dict of lists of strings. Fields of other
    profiles, ``_xsrf`` and anything unknown are dropped. Values stay
    strings: the validator types and checks them, and ignores the values of
    options whose ``when`` rules do not hold (which the inline script
    disables, and a form posted without JavaScript still sends), so both
    mean the same. ``profile`` is None when the posted id is not one the user
    may see; then only the id is passed on, for the validator to refuse.
    """
    profile_id = _last(formdata.get(PROFILE_FIELD))
    out: dict[str, Any] = {}
    if profile_id is None:
        return out
    out[PROFILE_FIELD] = str(profile_id)
    if profile is None:
        return out
    for option in profile.options:
        name = field_name(profile.id, option.id)
        if name in formdata:
            if option.kind == "boolean":
                # A ticked box posts the hidden "false" and then "true".
                out[option.id] = "true" if "true" in list(formdata[name]) else "false"
            else:
                out[option.id] = _last(formdata[name])
        if option.kind == "uenv" and f"{name}_view" in formdata:
            out[f"{option.id}_view"] = _last(formdata[f"{name}_view"])
    return out


__all__ = [
    "PROFILE_FIELD",
    "SUMMARY_LABELS",
    "CardCache",
    "ChoiceView",
    "OptionView",
    "ProfileView",
    "active_options",
    "build_view",
    "default_value",
    "field_name",
    "form_to_options",
    "known_names",
    "render_form",
    "render_profile",
    "summary_text",
]
