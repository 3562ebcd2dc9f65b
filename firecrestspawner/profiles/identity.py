"""Visibility by cluster identity: Slurm accounts and Unix groups from FirecREST (pure).

A profile, an option, a choice and a uenv image may be restricted by four
allow-lists; any match allows:

* ``groups`` / ``users``: JupyterHub group and user names (the hub knows them);
* ``accounts``: Slurm accounts (projects) the user holds on the system;
* ``unix_groups``: the user's Unix groups on the system (primary and supplementary).

The last two come from FirecREST's ``GET /status/{system}/userinfo`` of the
profile's system (for a multi-system profile, the chosen one), read through
:mod:`firecrestspawner.cluster` (cached per system and user; a failed refresh
serves the last answer). When no answer is known the user holds **nothing**
there: items restricted only by ``accounts``/``unix_groups`` stay hidden and are
refused (fail closed), and the form says why something may be missing.

``userinfo`` answers ``accounts: null`` on sites without Slurm accounting: the
user then holds no account (the primary group is not taken for one here, unlike
the ``accounts`` source of a cluster choice, which only suggests a value).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .choices import ClusterChoice, ClusterChoices, UserInfo
    from .models import Profile, ProfileSet

#: ``ClusterChoice.detail`` of the names of the ``identity`` cluster source.
ACCOUNT = "account"
UNIX_GROUP = "unix_group"


@dataclass(frozen=True)
class ClusterIdentity:
    """What FirecREST userinfo says about a user on one system.

    ``known`` is false when no answer could be read (then both sets are empty
    and ``note`` says why); ``note`` is also set for an answer served stale.
    """

    system: str
    accounts: frozenset[str] = frozenset()
    unix_groups: frozenset[str] = frozenset()
    known: bool = True
    note: str = ""


def restricted(item: Any) -> bool:
    """Whether ``item`` (profile, option, choice, image) has an identity allow-list."""
    return getattr(item, "accounts", None) is not None or (
        getattr(item, "unix_groups", None) is not None
    )


def holds(
    user: UserInfo, accounts: Sequence[str] | None, unix_groups: Sequence[str] | None
) -> bool:
    """Whether the user holds one of ``accounts`` or ``unix_groups`` on ``user.system``."""
    if accounts is None and unix_groups is None:
        return False
    ident = user.identity()
    if ident is None or not ident.known:
        return False
    return bool(ident.accounts.intersection(accounts or ())) or bool(
        ident.unix_groups.intersection(unix_groups or ())
    )


def _items(profile: Profile) -> Iterator[Any]:
    yield profile
    for option in profile.options:
        yield option
        yield from getattr(option, "choices", {}).values()
        yield from getattr(option, "images", {}).values()


def systems_needed(profile_set: ProfileSet) -> dict[str, str | None]:
    """``{system: FirecREST URL or None}`` whose userinfo some allow-list of the set reads."""
    out: dict[str, str | None] = {}
    for profile in profile_set:
        if any(restricted(item) for item in _items(profile)):
            for variant in profile.variants.values() or (profile,):
                out.setdefault(variant.system, variant.firecrest_url)
    return out


def from_choices(choices: ClusterChoices) -> ClusterIdentity:
    """The identity of a userinfo read through the cluster cache (``identity`` source)."""
    if choices.origin == "fallback":
        return ClusterIdentity(choices.system, known=False, note=choices.note)
    return ClusterIdentity(
        system=choices.system,
        accounts=frozenset(c.value for c in choices.items if c.detail == ACCOUNT),
        unix_groups=frozenset(c.value for c in choices.items if c.detail == UNIX_GROUP),
        note=choices.note,
    )


def userinfo_names(userinfo: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(name, ACCOUNT | UNIX_GROUP)]`` from a userinfo answer (accounts may be null)."""
    out: list[tuple[str, str]] = []
    for account in userinfo.get("accounts") or ():
        name = str((account or {}).get("name") or "")
        if name:
            out.append((name, ACCOUNT))
    groups = [userinfo.get("group") or {}, *(userinfo.get("groups") or ())]
    for group in groups:
        name = str((group or {}).get("name") or "")
        if name and (name, UNIX_GROUP) not in out:
            out.append((name, UNIX_GROUP))
    return out


def identity_choices(userinfo: Mapping[str, Any]) -> tuple[ClusterChoice, ...]:
    """A userinfo answer as cached names (``detail`` says account or Unix group)."""
    from .choices import ClusterChoice

    return tuple(ClusterChoice(value=n, detail=kind) for n, kind in userinfo_names(userinfo))


def missing_note(identities: Iterable[ClusterIdentity]) -> str:
    """The form's note when some system's userinfo is not known now ("" when all are)."""
    unknown = [i for i in identities if not i.known]
    if not unknown:
        return ""
    names = ", ".join(i.system for i in unknown)
    why = unknown[0].note.split(";")[0] if unknown[0].note else "FirecREST did not answer"
    return (
        f"Your projects and Unix groups on {names} could not be read ({why}): profiles "
        "and options restricted to them are not shown now. Reload the page later."
    )


def refusal(profile: Profile, user: UserInfo) -> str | None:
    """Why a profile the user asked for is not visible, when the reason is an unread userinfo."""
    if not restricted(profile):
        return None
    for variant in profile.variants.values() or (profile,):
        ident = user.identity(variant.system)
        if ident is None or not ident.known:
            return (
                f"profile {profile.id!r} is restricted to projects or Unix groups on "
                f"{variant.system}, which cannot be read from FirecREST now; try again later"
            )
    return None


__all__ = [
    "ACCOUNT",
    "UNIX_GROUP",
    "ClusterIdentity",
    "from_choices",
    "holds",
    "identity_choices",
    "missing_note",
    "refusal",
    "restricted",
    "systems_needed",
    "userinfo_names",
]
