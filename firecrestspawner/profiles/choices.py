"""Who may pick what: allow-lists, and the names the cluster offers (pure).

A profile, an option, a choice and a uenv image may each carry ``groups`` and
``users`` allow-lists; :func:`is_allowed` is the one rule for all of them.

A ``cluster_choice`` option offers names FirecREST reports (partitions,
reservations, accounts, nodes). :class:`ClusterChoices` holds the names of one
such source on one system and where they came from;
:mod:`firecrestspawner.cluster` builds them from FirecREST answers (with a
cache and a fallback), :func:`cluster_lists` from plain names (the CLI and
tests). The form shows them, and the validator accepts only what
:func:`cluster_choice_values` offers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from . import models as m
from . import regex
from .identity import ClusterIdentity, holds
from .models import Profile, ProfileSet

#: Where a list of cluster names came from: a FirecREST answer now (``live``), one
#: cached within its TTL (``cache``) or older because a refresh failed (``stale``),
#: or the option's static list because nothing is known (``fallback``).
Origin = Literal["live", "cache", "stale", "fallback"]

_CHOICE_RE = re.compile(m.CHOICE_PATTERN)


@dataclass(frozen=True)
class UserInfo:
    """Who is spawning: the JupyterHub user name and group names, and what the
    cluster says (:class:`~.identity.ClusterIdentity` per system read; ``system``
    is the one allow-lists check, set by :meth:`on`)."""

    name: str
    groups: tuple[str, ...] = ()
    identities: tuple[ClusterIdentity, ...] = ()
    system: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "identities", tuple(self.identities))

    def on(self, system: str) -> UserInfo:
        """This user as seen on ``system`` (whose accounts and Unix groups count)."""
        return self if system == self.system else dataclasses.replace(self, system=system)

    def identity(self, system: str | None = None) -> ClusterIdentity | None:
        wanted = self.system if system is None else system
        return next((i for i in self.identities if i.system == wanted), None)


def is_allowed(
    groups: Sequence[str] | None,
    users: Sequence[str] | None,
    user: UserInfo,
    accounts: Sequence[str] | None = None,
    unix_groups: Sequence[str] | None = None,
) -> bool:
    """Allow-list check: no lists means everyone; otherwise any listed name the user has.

    ``accounts``/``unix_groups`` are checked on ``user.system`` (fail closed when unknown).
    """
    if groups is None and users is None and accounts is None and unix_groups is None:
        return True
    if user.name in (users or ()) or bool(set(user.groups) & set(groups or ())):
        return True
    return holds(user, accounts, unix_groups)


def allowed(item: object, user: UserInfo) -> bool:
    """:func:`is_allowed` with the lists of a profile, option, choice or uenv image."""
    return is_allowed(
        getattr(item, "groups", None),
        getattr(item, "users", None),
        user,
        getattr(item, "accounts", None),
        getattr(item, "unix_groups", None),
    )


def profile_allowed(profile: Profile, user: UserInfo) -> bool:
    """Whether the user may use the profile on at least one of its systems."""
    return any(allowed(v, user.on(v.system)) for v in (profile.variants.values() or (profile,)))


def visible_profiles(profile_set: ProfileSet, user: UserInfo) -> list[Profile]:
    """The profiles this user may see and use, in order."""
    return [p for p in profile_set if profile_allowed(p, user)]


def default_profile(profile_set: ProfileSet, user: UserInfo) -> Profile | None:
    """The user's default: the first visible profile marked ``default``, else the first visible."""
    visible = visible_profiles(profile_set, user)
    for profile in visible:
        if profile.default:
            return profile
    return visible[0] if visible else None


def option_visible(option: m.Option, user: UserInfo) -> bool:
    """Whether the option's own allow-list lets this user see it."""
    return allowed(option, user)


def choice_keys(option: m.ChoiceOption | m.UenvOption, user: UserInfo) -> list[str]:
    """Keys of the choices (or uenv images) this user may pick, in order."""
    items = option.choices if isinstance(option, m.ChoiceOption) else option.images
    return [key for key, item in items.items() if allowed(item, user)]


# -- names from the cluster ------------------------------------------------------------
@dataclass(frozen=True)
class ClusterChoice:
    """One name the cluster offers. All text is untrusted (escape it)."""

    value: str
    label: str = ""
    detail: str = ""
    default: bool = False
    #: What the cluster reports as limits of this name (a partition's ``nodes``, ``cpus``).
    limits: tuple[tuple[str, int], ...] = ()

    @property
    def text(self) -> str:
        return self.label or self.value

    def limit(self, name: str) -> int | None:
        return dict(self.limits).get(name)


@dataclass(frozen=True)
class ClusterChoices:
    """The names one source (``partitions``, ``reservations``, ``accounts``,
    ``nodes``) of one system offers, and where they came from."""

    source: str
    system: str
    items: tuple[ClusterChoice, ...] = ()
    origin: Origin = "live"
    #: Shown next to the field when the list is not live; "" otherwise.
    note: str = ""
    #: Epoch seconds of the FirecREST answer the items come from (0: fallback).
    fetched_at: float = 0.0

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.items)

    @property
    def default(self) -> str | None:
        """The name the cluster marks as the default (the user's default account), if any."""
        for c in self.items:
            if c.default:
                return c.value
        return None


def cluster_lists(
    by_system: Mapping[str, Mapping[str, Iterable[str]]],
) -> tuple[ClusterChoices, ...]:
    """Lists of names as FirecREST would report them, from ``{system: {source: [names]}}``."""
    return tuple(
        ClusterChoices(source, system, tuple(ClusterChoice(name) for name in names))
        for system, sources in by_system.items()
        for source, names in sources.items()
    )


def reported_names(
    cluster: Collection[ClusterChoices] | None, system: str, source: str
) -> tuple[str, ...] | None:
    """The names the cluster reported for ``source`` on ``system``; None when not known now.

    A ``fallback`` list is the profile's own static list, not something the
    cluster said, so it does not count. When several lists match, the last wins.
    """
    found: tuple[str, ...] | None = None
    for choices in cluster or ():
        if choices.system == system and choices.source == source and choices.origin != "fallback":
            found = choices.values
    return found


def cluster_choice_values(
    option: m.ClusterChoiceOption, system: str, cluster: Collection[ClusterChoices] | None
) -> list[str] | None:
    """Names a ``cluster_choice`` option offers now.

    The cluster's names (or, when unknown, the static ``fallback``), keeping
    only well-formed names that pass ``filter`` and ``allow``. ``None`` means
    nothing is known (no cluster data, no fallback): any well-formed name that
    passes ``filter`` and ``allow`` is accepted, and the scheduler decides.
    """
    names: Sequence[str] | None = reported_names(cluster, system, option.source)
    if names is None:
        names = option.fallback or None
    if names is None:
        return None
    out: list[str] = []
    for name in names:
        if isinstance(name, str) and cluster_name_ok(option, name) and name not in out:
            out.append(name)
    return out


def cluster_name_ok(option: m.ClusterChoiceOption, name: str) -> bool:
    """Whether ``name`` is a well-formed name that passes the option's ``filter`` and ``allow``."""
    if not _CHOICE_RE.fullmatch(name):
        return False
    if option.filter is not None and not regex.fullmatch(option.filter, name):
        return False
    return option.allow is None or name in option.allow


__all__ = [
    "ClusterChoice",
    "ClusterChoices",
    "Origin",
    "UserInfo",
    "allowed",
    "choice_keys",
    "cluster_choice_values",
    "cluster_lists",
    "cluster_name_ok",
    "default_profile",
    "is_allowed",
    "option_visible",
    "profile_allowed",
    "reported_names",
    "visible_profiles",
]
