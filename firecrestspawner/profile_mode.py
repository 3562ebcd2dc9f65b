"""Profile mode: the hook through which declarative site profiles drive a spawn.

The spawner asks :meth:`ProfileModeMixin.resolve_profile_request` for a
:class:`~firecrestspawner.request.SpawnRequest` at the start of every spawn.
``None`` means classic mode: the request is built from the ``req_*`` traits
and ``batch_script``, and ``user_options`` are ignored. Profile mode only has
to validate the user's choices (one validator, every path) and return the
resolved request; submission, polling and cleanup are shared.
"""

from __future__ import annotations

from traitlets import Unicode
from traitlets.config import Configurable

from .request import SpawnRequest


class ProfileModeMixin(Configurable):
    """Mixin of :class:`~firecrestspawner.spawner.FirecRESTSpawnerBase` for profile mode."""

    profiles_dir = Unicode(
        "",
        help="""Directory of site profile files (YAML or TOML).

        Empty (the default) keeps classic mode: the batch script and its
        variables come from ``batch_script`` and the ``req_*`` traits, and
        ``user_options`` are never used. When set, users choose a profile and
        its declared options, which are validated at every spawn.
        """,
    ).tag(config=True)

    async def resolve_profile_request(self) -> SpawnRequest | None:
        """The request built from the validated profile choice, or None for classic mode.

        Raise :func:`firecrestspawner.errors.spawn_error` (status 400) for an
        invalid choice; never fall back to a default profile silently.
        """
        return None


__all__ = ["ProfileModeMixin"]
