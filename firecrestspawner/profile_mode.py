"""Profile mode: declarative site profiles drive the form and the spawn.

With ``profiles_dir`` set, the spawner:

- renders its options form from the profiles the user may see
  (:mod:`firecrestspawner.form`), with cluster-derived choices fetched through
  :mod:`firecrestspawner.cluster` (bounded in time, cached, never an error page);
- turns form data (``options_from_form``) and ``opt-`` links
  (``options_from_query``) into raw ``user_options`` holding only declared keys,
  and checks them early with the one validator,
  :func:`firecrestspawner.options.validate_options`, for a quick message;
- validates ``user_options`` **again** in :meth:`resolve_profile_request`, at
  the start of every spawn, whatever path they came by (form, link, REST body,
  options saved from an earlier spawn, a profile file changed since) and
  builds the :class:`~firecrestspawner.request.SpawnRequest` from the chosen
  profile: system, FirecREST URL, template, state regexes and ``req_*`` values.

The spawner holds a :class:`ProfileMode` (composition): it passes what
profile mode needs (:class:`ProfileContext`: the user, the configured
``req_*`` values, a FirecREST client factory) and gets back options, the form
and a frozen :class:`~firecrestspawner.request.SpawnRequest`. The spawner
saves the profile id, system and FirecREST URL in its state, so poll and stop
after a hub restart talk to the same system; :meth:`ProfileMode.state_regexes`
gives the profile's state regexes back.

Link policy (``GET /hub/spawn?opt-profile=...&opt-<option>=...``, which
spawns without a confirmation): off unless ``allow_link_spawn`` is true; when
on, a link may name only ``profile`` and options the profile declares and the
user may see, every value passes the same validator, and anything else is
refused (400) instead of being dropped, so a crafted link cannot start
something other than what it says.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Float, Unicode
from traitlets.config import Configurable

from . import client as fc
from .cluster import CACHE, ClusterChoice, ClusterChoices, PooledStatusClient
from .errors import spawn_error
from .profiles import Profile, ProfileDirectory, ProfileSet, form, identity, regex
from .profiles.choices import allowed
from .profiles.options import (
    OptionError,
    UserInfo,
    ValidatedOptions,
    option_visible,
    validate_options,
    visible_profiles,
)
from .profiles.systems import SYSTEM_OPTION, cluster_key
from .request import SpawnRequest
from .states import StateRegexes
from .submission import option_error

#: One watcher per directory, shared by all spawners of the hub.
_DIRECTORIES: dict[str, ProfileDirectory] = {}

#: Rendered profile cards of the form, shared by all spawners of the hub: a user
#: reloading the spawn page re-renders only what changed (see form.CardCache).
CARDS = form.CardCache()

#: What a user last sent in a form that was refused, without the refused field:
#: JupyterHub renders the form again at once, and it shows these choices instead
#: of resetting them. Per user, taken by the next render, bounded.
SUBMITTED: OrderedDict[str, dict[str, Any]] = OrderedDict()
SUBMITTED_MAX = 1024


def profile_directory(path: str) -> ProfileDirectory:
    directory = _DIRECTORIES.get(path)
    if directory is None:
        directory = _DIRECTORIES[path] = ProfileDirectory(path)
    return directory


def _last(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return value[-1] if value else None
    return value


def _declared_keys(profile: Profile, user: UserInfo) -> set[str]:
    keys = {form.PROFILE_FIELD}
    for option in profile.options:
        if not option_visible(option, user):
            continue
        keys.add(option.id)
        if option.kind == "uenv":
            keys.add(f"{option.id}_view")
    return keys


class ProfileModeTraits(Configurable):
    """Profile mode: site profile files drive the form and the spawn."""

    profiles_dir = Unicode(
        "",
        help="""Directory of site profile files (YAML or TOML).

        Empty (the default) keeps classic mode: the batch script and its
        variables come from ``batch_script`` and the ``req_*`` traits, and
        ``user_options`` are never used. When set, users choose a profile and
        its declared options in a form generated from the files; the choice
        is validated at every spawn, whatever path it came by (form, link,
        REST API, saved options). Files added or changed are picked up at the
        next form or spawn without restarting the hub; a broken file is
        logged and skipped. In profile mode the form comes from the
        profiles: ``options_form`` and ``options_from_form`` are not used.
        """,
    ).tag(config=True)

    profile_form_timeout = Float(
        2.0,
        help="""Seconds the spawn form waits for cluster-derived choices.

        Partitions, reservations and accounts come from FirecREST. When it
        is slower than this the form renders at once with the profile's
        static fallback list and a note, and the answer, when it comes,
        fills the cache for the next render. The same bound applies when
        the choice is checked again at spawn time.
        """,
    ).tag(config=True)

    cluster_identity_ttl = Float(
        300.0,
        help="""Seconds a user's Slurm accounts and Unix groups (FirecREST userinfo) are cached.

        Read only when a profile, option, choice or uenv image has an
        ``accounts`` or ``unix_groups`` allow-list, per system and user, within
        ``profile_form_timeout``. When FirecREST does not answer, the last
        answer is used; when there is none, what those lists restrict is not
        shown and refused (fail closed), and the form says why.
        """,
    ).tag(config=True)

    allow_link_spawn = Bool(
        False,
        help="""Allow starting a server from a link with ``opt-`` query parameters.

        JupyterHub starts a server on ``GET /hub/spawn?opt-profile=...``
        without a confirmation, so a link someone else sends can start a
        job for a logged-in user. Off by default: such a link is refused
        with a message and the form is shown. When on, a link may carry
        only ``profile`` and the options that profile declares, all checked
        by the same validator as the form; anything else is refused.
        """,
    ).tag(config=True)


@dataclass(frozen=True)
class ProfileContext:
    """What profile mode needs from the spawner, for one request."""

    user: UserInfo
    #: The spawner's ``firecrest_url`` (a profile may name its own).
    firecrest_url: str
    #: The spawner configuration's ``req_*`` values: the lowest precedence.
    base_req: Mapping[str, str]
    #: ``await client(url)``: the user's FirecREST client (cluster-derived choices).
    client: Callable[[str], Awaitable[fc.FirecrestClient]]
    log: logging.Logger | logging.LoggerAdapter[Any]


class ProfileMode:
    """Profile mode of one spawner: the form, option input, and the spawn request."""

    def __init__(
        self,
        profiles_dir: str,
        context: ProfileContext,
        *,
        form_timeout: float = 2.0,
        allow_link_spawn: bool = False,
        identity_ttl: float = 300.0,
    ) -> None:
        self.profiles_dir = profiles_dir
        self.context = context
        self.form_timeout = form_timeout
        self.allow_link_spawn = allow_link_spawn
        self.identity_ttl = identity_ttl

    # ------------------------------------------------------------ helpers

    async def profile_set(self) -> ProfileSet:
        """The current profiles (file stats and re-reads off the event loop)."""
        return await asyncio.to_thread(profile_directory(self.profiles_dir).current)

    def _profile_url(self, profile: Profile) -> str:
        return profile.firecrest_url or self.context.firecrest_url

    async def _status_client(self, url: str) -> PooledStatusClient:
        return PooledStatusClient(await self.context.client(url))

    async def user(self, profile_set: ProfileSet) -> UserInfo:
        """The user with their accounts and Unix groups on the systems allow-lists read.

        Nothing is fetched when no allow-list of the set names ``accounts`` or
        ``unix_groups``. Cached per system and user (``cluster_identity_ttl``);
        an unread system is kept as unknown, and allow-lists fail closed there.
        """
        user = self.context.user
        needed = identity.systems_needed(profile_set)
        if not needed:
            return user

        async def one(system: str, url: str) -> identity.ClusterIdentity:
            async def factory() -> PooledStatusClient:
                return await self._status_client(url)

            result = await CACHE.get(
                factory,
                firecrest_url=url,
                system=system,
                source="identity",
                user=user.name,
                ttl=self.identity_ttl,
                timeout=self.form_timeout,
            )
            return identity.from_choices(result)

        found = await asyncio.gather(
            *(one(s, url or self.context.firecrest_url) for s, url in needed.items())
        )
        return UserInfo(user.name, user.groups, tuple(found))

    async def _cluster_choices(self, profile: Profile, user: UserInfo) -> dict[str, ClusterChoices]:
        """Cluster-derived choices of the profile's options, fetched concurrently.

        Keyed by option id; for a multi-system profile by ``option@system``, for each
        system the user may use it on.
        """
        if profile.variants:
            parts = await asyncio.gather(
                *(
                    self._cluster_choices_of(v, user.on(name), multi=True)
                    for name, v in profile.variants.items()
                    if allowed(v, user.on(name))
                )
            )
            return {k: v for part in parts for k, v in part.items()}
        return await self._cluster_choices_of(profile, user.on(profile.system))

    async def _cluster_choices_of(
        self, profile: Profile, user: UserInfo, *, multi: bool = False
    ) -> dict[str, ClusterChoices]:
        url = self._profile_url(profile)
        options = [
            o for o in profile.options if o.kind == "cluster_choice" and option_visible(o, user)
        ]
        if not options:
            return {}

        async def factory() -> PooledStatusClient:
            return await self._status_client(url)

        async def one(option: Any) -> tuple[str, ClusterChoices]:
            result = await CACHE.get(
                factory,
                firecrest_url=url,
                system=profile.system,
                source=option.source,
                user=user.name,
                ttl=option.ttl,
                timeout=self.form_timeout,
                fallback=[ClusterChoice(v) for v in option.fallback],
                allow=option.allow,
            )
            if option.filter:
                # RE2 (linear time), as the validator: a cluster's names cannot stall the loop.
                items = tuple(c for c in result.items if regex.fullmatch(option.filter, c.value))
                result = ClusterChoices(
                    result.source,
                    result.system,
                    items,
                    result.origin,
                    result.note,
                    result.fetched_at,
                )
            return (cluster_key(option.id, profile.system) if multi else option.id), result

        return dict(await asyncio.gather(*(one(o) for o in options)))

    def _config_req(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.context.base_req.items() if v is not None}

    async def validate(
        self,
        profile_set: ProfileSet,
        raw: Any,
        *,
        context: str = "",
        remember: bool = False,
    ) -> ValidatedOptions:
        """The one validator, with fresh cluster lists; refusals become 400 spawn errors."""
        user = await self.user(profile_set)
        profile_id = raw.get(form.PROFILE_FIELD) if isinstance(raw, Mapping) else None
        visible = {p.id: p for p in visible_profiles(profile_set, user)}
        profile = visible.get(str(_last(profile_id))) if profile_id is not None else None
        chosen = raw.get(SYSTEM_OPTION) if isinstance(raw, Mapping) else None
        if profile is not None and str(_last(chosen)) in profile.variants:
            # Only the chosen system's lists: the validator reads no other.
            name = str(_last(chosen))
            variant = profile.variants[name]
            cluster = await self._cluster_choices_of(variant, user.on(name), multi=True)
        else:
            cluster = await self._cluster_choices(profile, user) if profile is not None else {}
        try:
            return validate_options(
                profile_set,
                raw,
                user=user,
                cluster=form.known_names(profile.system, cluster) if profile else None,
                base=self._config_req(),
            )
        except OptionError as e:
            if remember and isinstance(raw, Mapping):
                SUBMITTED[user.name] = {k: v for k, v in raw.items() if k != e.field}
                SUBMITTED.move_to_end(user.name)
                while len(SUBMITTED) > SUBMITTED_MAX:
                    SUBMITTED.popitem(last=False)
            raise option_error(user.name, e.field, e.message, context) from None

    # ------------------------------------------------------------ the form

    async def options_form(self, previous: Mapping[str, Any] | None) -> str:
        """Render the form: visible profiles, their options, remembered valid choices."""
        profile_set = await self.profile_set()
        user = await self.user(profile_set)
        notes: list[str] = [identity.missing_note(user.identities)]
        profiles = visible_profiles(profile_set, user)
        if not profiles:
            return form.render_form([], notes)
        fetched = await asyncio.gather(*(self._cluster_choices(p, user) for p in profiles))
        clusters = {p.id: c for p, c in zip(profiles, fetched, strict=True)}
        remembered: ValidatedOptions | None = None
        previous = SUBMITTED.pop(user.name, None) or dict(previous or {})
        if previous:
            wanted = clusters.get(str(previous.get(form.PROFILE_FIELD)), {})
            system = next((p.system for p in profiles if p.id == previous.get("profile")), "")
            try:
                remembered = validate_options(
                    profile_set,
                    previous,
                    user=user,
                    cluster=form.known_names(system, wanted),
                    base=self._config_req(),
                )
            except OptionError as e:
                notes.append(
                    f"Your previous choices are no longer valid ({e.field}: {e.message}); "
                    "the defaults are shown."
                )
        default_id = next((p.id for p in profiles if p.default), profiles[0].id)
        selected_id = remembered.profile.id if remembered is not None else default_id
        config_req = self._config_req()
        cards = []
        for index, p in enumerate(profiles, 1):
            cluster = clusters[p.id]
            notes.extend(c.note for c in cluster.values() if c.note)
            mine = remembered is not None and remembered.profile.id == p.id
            if mine and remembered is not None:
                p = remembered.profile  # the variant of the remembered system
            elif p.variants:
                p = next(v for name, v in p.variants.items() if allowed(v, user.on(name)))
            # A card with defaults only is kept while its inputs are unchanged (CARDS).
            key = None
            if not mine:
                key = form.CardCache.key(
                    p,
                    index=index,
                    selected=p.id == selected_id,
                    user=user,
                    cluster=cluster,
                    base_req=config_req,
                )
                card = CARDS.get(key, p)
                if card is not None:
                    cards.append(card)
                    continue
            values = dict(remembered.values) if mine and remembered else {}
            req = remembered.req if mine and remembered else None
            if req is None:
                req = self._default_req(profile_set, p, user, cluster)
            view = form.build_view(
                p,
                user=user,
                values=values,
                selected=p.id == selected_id,
                cluster=cluster,
                base_req={**config_req, **p.defaults, **p.fixed},
                req=req,
            )
            card = form.render_profile(view, index)
            if key is not None:
                CARDS.put(key, p, card)
            cards.append(card)
        return form.render_form(cards, notes)

    def _default_req(
        self,
        profile_set: ProfileSet,
        profile: Profile,
        user: UserInfo,
        cluster: dict[str, ClusterChoices],
    ) -> Mapping[str, Any] | None:
        try:
            return validate_options(
                profile_set,
                {form.PROFILE_FIELD: profile.id},
                user=user,
                cluster=form.known_names(profile.system, cluster),
                base=self._config_req(),
            ).req
        except OptionError:
            return None

    # ------------------------------------------------------------ form and link input

    async def options_from_form(self, form_data: dict[str, list[Any]]) -> dict[str, Any]:
        """Declared fields of the selected profile only, checked early."""
        profile_set = await self.profile_set()
        profile_id = _last(form_data.get(form.PROFILE_FIELD))
        visible = {p.id: p for p in visible_profiles(profile_set, await self.user(profile_set))}
        raw = form.form_to_options(form_data, visible.get(str(profile_id)))
        validated = await self.validate(profile_set, raw, remember=True)
        return validated.user_options()

    async def options_from_query(self, query_data: dict[str, list[str]]) -> dict[str, Any]:
        """``opt-`` links: refused unless ``allow_link_spawn``; then declared keys only."""
        if not self.allow_link_spawn:
            raise spawn_error(
                "Starting a server from a link is disabled on this site; "
                "choose the options in the form below.",
                reason="invalid-options",
                status_code=400,
            )
        profile_set = await self.profile_set()
        user = await self.user(profile_set)
        # JupyterHub 6 strips the ``opt-`` prefix itself; 5.4 passes every query
        # argument as it came, so a 6-style link reaches us with the prefix.
        raw = {str(k).removeprefix("opt-"): _last(v) for k, v in query_data.items()}
        profile_id = raw.get(form.PROFILE_FIELD)
        visible = {p.id: p for p in visible_profiles(profile_set, user)}
        profile = visible.get(str(profile_id))
        if profile is not None:
            profile = profile.variants.get(str(raw.get(SYSTEM_OPTION)), profile)
            unknown = sorted(set(raw) - _declared_keys(profile, user.on(profile.system)))
            if unknown:
                raise spawn_error(
                    f"Invalid option {unknown[0]!r}: profile {profile.id!r} has no such option.",
                    reason="invalid-options",
                    status_code=400,
                )
        validated = await self.validate(profile_set, raw)
        return validated.user_options()

    # ------------------------------------------------------------ the spawn

    async def resolve(
        self, user_options: Mapping[str, Any] | None, *, cmd: str, default_workdir: str
    ) -> SpawnRequest:
        """Validate ``user_options`` again (every path) and build the request.

        Raises a 400 spawn error naming the field when the options are not
        valid for the current profiles and this user. ``request.user_options``
        holds the canonical options (only what was validated) to save.
        """
        profile_set = await self.profile_set()
        vo = await self.validate(
            profile_set,
            dict(user_options or {}),
            context="If these options were saved from an earlier start, "
            "open the spawn form and choose again.",
        )
        return request_from_options(
            vo,
            user=self.context.user.name,
            cmd=cmd,
            default_workdir=default_workdir,
            firecrest_url=self._profile_url(vo.profile),
        )

    def state_regexes(self, profile_id: str, system: str = "") -> StateRegexes | None:
        """The state regexes of a running job's profile on its system (None: the profile is gone).

        Called from the synchronous ``load_state`` on the event loop: it reads the
        profiles as last loaded (no file access, no lock a loader thread may hold)
        and re-reads changed files in a thread for the next call. Only before the
        directory was ever read in this process (a hub starting: JupyterHub loads
        the state of running servers before it serves) does it read the files here.
        """
        directory = profile_directory(self.profiles_dir)
        profiles = directory.last()
        if profiles is None:
            profiles = directory.current()
        else:
            directory.refresh_soon()
        profile = profiles.get(str(profile_id))
        if profile is not None and profile.variants:
            profile = profile.variants.get(system)
        if profile is None:
            self.context.log.warning(
                "Profile %r of a running server is gone; using default state regexes", profile_id
            )
            return None
        return profile.states


def request_from_options(
    vo: ValidatedOptions, *, user: str, cmd: str, default_workdir: str, firecrest_url: str
) -> SpawnRequest:
    """The spawn request of validated options (no I/O: also what the render CLI's twin uses)."""
    p = vo.profile
    workdir = f"{p.workdir.rstrip('/')}/{user}" if p.workdir else default_workdir
    return SpawnRequest(
        system=p.system,
        firecrest_url=firecrest_url,
        template=p.template,
        # job_name is set when the spawner names the job.
        variables=vo.template_variables(cmd=cmd, job_name="", workdir=workdir),
        workdir=workdir,
        regexes=p.states,
        profile=p.id,
        scheduler=p.scheduler,
        # What the user typed or the cluster supplied is never trusted, even
        # when a profile maps such an option onto ``options``.
        user_set=vo.untrusted_variables(),
        options=vo,
    )


__all__ = [
    "ProfileContext",
    "ProfileMode",
    "ProfileModeTraits",
    "profile_directory",
    "request_from_options",
]
