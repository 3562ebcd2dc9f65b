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
    identities = list(identities)
    unknown = [i for i in identities if not i.known]
    stale = [i for i in identities if i.known and i.note]
    if not unknown and stale:
        names = ", ".join(i.system for i in stale)
        return (
            f"Your projects and Unix groups on {names} are from an earlier answer "
            f"({stale[0].note.split(';')[0]}); what you may use there may have changed since."
        )
    if not unknown:
        return ""
    names = ", ".join(i.system for i in unknown)
    why = unknown[0].note.split(";")[0] if unknown[0].note else "FirecREST did not answer"
    return (
        f"Your projects and Unix groups on {names} could not be read ({why}): profiles "
        "and options restricted to them are not shown now. Reload the page later."
    )


def unread_note(profile_set: ProfileSet, user: UserInfo) -> str:
    """What an unknown-profile answer adds while the user's userinfo cannot be read ("" if it can).

    It depends on the profiles and the user only, never on the id asked for: a
    profile hidden by ``accounts``/``unix_groups`` during an outage gets the same
    answer as an id that does not exist (the form's note says as much), so asking
    by id confirms no restricted profile; the user still learns to retry.
    """
    unread = [
        system
        for system in systems_needed(profile_set)
        if (ident := user.identity(system)) is None or not ident.known
    ]
    if not unread:
        return ""
    return (
        f"your projects and Unix groups on {', '.join(unread)} cannot be read from FirecREST "
        "now, so profiles restricted to them are not available; try again later"
    )


__all__ = [
    "ACCOUNT",
    "DOC",
    "UNIX_GROUP",
    "ClusterIdentity",
    "from_choices",
    "holds",
    "identity_choices",
    "missing_note",
    "restricted",
    "systems_needed",
    "unread_note",
    "userinfo_names",
]


#: The section of docs/profiles.md (``firecrestspawner schema --markdown``).
DOC = [
    "## Who sees what: JupyterHub groups, Slurm accounts, Unix groups",
    "",
    (
        "A profile, an option, a choice and a uenv image may each carry four allow-lists. "
        "Without any of them everyone sees the item; with any of them, a user who matches "
        "**one** entry of **any** list sees it (an empty list matches nobody). A hidden "
        "profile, option, choice or image is also refused when a request names it: the form, "
        "an `opt-` link, a REST body, options saved from an earlier spawn and `start()` all "
        "go through the same validator, so a crafted request gets a 400 naming the field."
    ),
    "",
    "| key | names | where the name comes from | how it gets there |",
    "|---|---|---|---|",
    ("| `users` | JupyterHub user names | the hub's user | the authenticator's user name |"),
    (
        "| `groups` | **JupyterHub** groups (not Unix groups) | the hub's database | the "
        "authenticator manages groups (`manage_groups`, e.g. from an OAuth claim), "
        "`c.JupyterHub.load_groups`, or the REST API |"
    ),
    (
        "| `accounts` | Slurm accounts (projects) | FirecREST `GET /status/{system}/userinfo` "
        "(`accounts`, from `sacctmgr`) on the profile's system | nothing to configure: the "
        "scheduler's own associations |"
    ),
    (
        "| `unix_groups` | Unix groups, primary and supplementary | the same userinfo (`group`, "
        "`groups`, from `id`) | nothing to configure: the cluster's own groups |"
    ),
    "",
    (
        "`accounts` and `unix_groups` are read only when some item of the loaded profiles "
        "uses them, per system and user, through the same cache as cluster choices "
        "(`cluster_identity_ttl`, default 300 s; at most `profile_form_timeout` seconds of "
        "waiting). When a refresh fails, the last answer is used and the form says how old "
        "it is. When there is no answer at all (FirecREST down, userinfo failing because the "
        "site has no Slurm accounting), the user holds **nothing** there: every item "
        "restricted only by `accounts`/`unix_groups` is hidden and refused (fail closed). The "
        "form then says that profiles and options restricted to projects or Unix groups on "
        "that system are not shown now, and a request for a profile the user cannot see "
        "gets 'unknown profile' with that reason added, the same answer whether the profile "
        "exists or not (asking by id confirms no restricted profile). `accounts: null` in userinfo (no "
        "accounting) means no account: use `unix_groups` on such sites. For a profile with "
        "`systems:`, the lists are checked on each system: the form offers only the systems "
        "where the user matches, and options, choices and images are checked on the chosen one."
    ),
    "",
    "```yaml",
    "- id: bigmem",
    "  display_name: Large-memory node",
    "  system: hpc",
    "  accounts: [bigmem-2026, g152]   # Slurm accounts on hpc",
    "  unix_groups: [hpcstaff]         # or this Unix group on hpc",
    "  groups: [admins]                # or this JupyterHub group",
    "```",
    "",
    "See `profiles/examples/project-site.yaml` for a whole site.",
    "",
]
