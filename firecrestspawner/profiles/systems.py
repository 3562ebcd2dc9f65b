"""Multi-system profiles: ``systems: [daint, eiger]`` instead of ``system:`` (pure).

A profile that names several systems is checked and resolved once per system
(each system's scheduler, built-in template, ``req``, ``workdir`` and state
regexes), and offered as one profile whose first option, ``system``, is
generated: a choice of the systems, the first one the default, setting
``req_host``. Options may depend on it (``when: {system: [eiger]}``), a
``cluster_choice`` reads the chosen system's names, and the spawn goes to the
chosen system with that system's resolved profile (a *variant*). Saved options
carry ``system`` like any option; files with ``system:`` are unchanged.

The validator asks :func:`select` for the variant before it reads any option;
a system on which the profile's allow-lists (``accounts``/``unix_groups`` are
per system) do not let the user in is not offered and is refused.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import models as m
from .errors import OptionError, short

#: The id of the generated option (reserved in multi-system profiles).
SYSTEM_OPTION = "system"


def system_names(spec: m.ProfileSpec) -> list[str]:
    """The systems a profile spec names (one for ``system:``)."""
    return list(spec.systems) if spec.systems is not None else [spec.system or ""]


def system_option(file: m.ProfileFile, spec: m.ProfileSpec) -> m.ChoiceOption:
    """The generated ``system`` option of a multi-system profile."""
    labels = {s.name: s.display_name or s.name for s in file.systems}
    return m.ChoiceOption.model_validate(
        {
            "id": SYSTEM_OPTION,
            "kind": "choice",
            "display_name": "System",
            "req": "host",
            "choices": {
                name: {"display_name": labels.get(name, name)} for name in system_names(spec)
            },
            "default": system_names(spec)[0],
        }
    )


def predeclared(file: m.ProfileFile, spec: m.ProfileSpec) -> dict[str, m.Option]:
    """Options a ``when`` rule may name besides those declared: ``system`` when generated."""
    return {SYSTEM_OPTION: system_option(file, spec)} if spec.systems is not None else {}


def expand(file: m.ProfileFile) -> Iterator[tuple[int, m.ProfileSpec]]:
    """``(index, spec)`` per profile and system: each system of a multi-system profile once."""
    for i, spec in enumerate(file.profiles):
        if spec.systems is None:
            yield i, spec
            continue
        for name in dict.fromkeys(spec.systems):
            yield i, spec.model_copy(update={"system": name})


def problems(file: m.ProfileFile) -> list[tuple[list[Any], str, str]]:
    """What the per-system checks cannot see: repeated systems, an option named ``system``."""
    found: list[tuple[list[Any], str, str]] = []
    for i, spec in enumerate(file.profiles):
        if spec.systems is None:
            continue
        seen: set[str] = set()
        for k, name in enumerate(spec.systems):
            if name in seen:
                found.append(
                    (["profiles", i, "systems", k], f"system {name!r} is listed twice", "")
                )
            seen.add(name)
        for j, option in enumerate(spec.options):
            if option.id == SYSTEM_OPTION:
                found.append(
                    (
                        ["profiles", i, "options", j, "id"],
                        "option id 'system' is the generated system choice of `systems:`",
                        "rename the option; `when: {system: [...]}` refers to the generated one",
                    )
                )
    return found


def combine(file: m.ProfileFile, resolved: Sequence[m.Profile]) -> list[m.Profile]:
    """One profile per multi-system spec, holding its per-system variants.

    A multi-system profile is offered only when every one of its systems resolved.
    """
    multi = {spec.id: spec for spec in file.profiles if spec.systems is not None}
    out: list[m.Profile] = []
    groups: dict[str, list[m.Profile]] = {}
    for profile in resolved:
        if profile.id not in multi:
            out.append(profile)
            continue
        if profile.id not in groups:
            groups[profile.id] = []
            out.append(profile)  # a placeholder, replaced below
        groups[profile.id].append(profile)
    for pid, variants in groups.items():
        spec = multi[pid]
        index = next(k for k, p in enumerate(out) if p.id == pid)
        if {v.system for v in variants} != set(spec.systems or ()):
            del out[index]
            continue
        option = system_option(file, spec)
        table: dict[str, m.Profile] = {}
        view = types.MappingProxyType(table)
        for v in variants:
            table[v.system] = dataclasses.replace(v, options=(option, *v.options), variants=view)
        out[index] = table[system_names(spec)[0]]
    return out


def label(profile: m.Profile) -> str:
    """The systems a profile runs on, for the form's badge."""
    return " | ".join(profile.variants) if profile.variants else profile.system


def select(profile: m.Profile, wanted: Any, allowed: Mapping[str, bool]) -> m.Profile:
    """The variant of the chosen system (``wanted``: the unwrapped ``system`` value or None).

    ``allowed`` says per system whether the profile's allow-lists let the user in;
    without a choice the first allowed system is taken.
    """
    if not profile.variants:
        return profile
    offered = [name for name in profile.variants if allowed.get(name)]
    if wanted is None or wanted == "":
        if not offered:
            raise OptionError("profile", f"profile {profile.id!r} is not available to you")
        return profile.variants[offered[0]]
    if not isinstance(wanted, str) or wanted not in profile.variants:
        raise OptionError(
            SYSTEM_OPTION,
            f"{short(wanted)} is not a system of profile {profile.id!r}; "
            f"choose one of: {', '.join(offered) or '(none)'}",
        )
    if wanted not in offered:
        raise OptionError(
            SYSTEM_OPTION,
            f"profile {profile.id!r} is not available to you on {wanted}; "
            f"choose one of: {', '.join(offered) or '(none)'}",
        )
    return profile.variants[wanted]


def cluster_key(option_id: str, system: str) -> str:
    """The form's key of a multi-system profile's cluster list of one system."""
    return f"{option_id}@{system}"


__all__ = [
    "DOC",
    "SYSTEM_OPTION",
    "cluster_key",
    "combine",
    "expand",
    "label",
    "predeclared",
    "problems",
    "select",
    "system_names",
    "system_option",
]


#: The section of docs/profiles.md (``firecrestspawner schema --markdown``).
DOC = [
    "## Several systems in one profile",
    "",
    (
        "Write `systems: [daint, santis]` instead of `system:` to offer one profile on several "
        "systems of the file. The form then starts the profile with a generated option, "
        "`system` (a choice of those systems, labelled with their `display_name`, the first "
        "the default), which sets `req_host`. Options may depend on it like on any choice: "
        "`when: {system: [santis]}` shows an option on Santis only, `depends_on: {system: "
        "{santis: {max: 8}}}` changes a limit there. A `cluster_choice` reads its names from "
        "the chosen system (the form lists every system's names, each marked with its system; "
        "the inline script shows the chosen system's, and the server accepts only those). The "
        "spawn goes to the chosen system with that system's scheduler, built-in template, "
        "`req`, `workdir` and state regexes; the system is saved with the job, so poll and "
        "stop after a hub restart use it. `validate` checks the profile once per system (a "
        "template variable missing on one system, a PBS system asked for `gpus`), and reports "
        "a problem the systems share once. The option id `system` is reserved in such a "
        "profile. Saved options carry `system` like any option; files that use `system:` are "
        "unchanged."
    ),
    "",
    "See `profiles/examples/gpu-centre.yaml` for a profile on two GPU systems.",
    "",
]
