"""What one spawn submits, decided before any FirecREST call (pure).

Classic mode builds a :class:`SpawnRequest` from the spawner's traits; profile
mode builds it from a validated profile choice. Everything after that point
(render, submit, poll, stop) depends only on this object, so both modes share
one code path and the request can be tested without a hub.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import states


@dataclass(frozen=True)
class StateRegexes:
    """The documented regex traits, as used on ``job_status``."""

    pending: str = states.DEFAULT_PENDING_RE
    running: str = states.DEFAULT_RUNNING_RE
    unknown: str = states.DEFAULT_UNKNOWN_RE
    exechost: str = states.DEFAULT_EXECHOST_RE
    exechost_exp: str = ""


@dataclass(frozen=True)
class SpawnRequest:
    """One batch submission, fully resolved.

    ``variables`` are the batch-template variables (read-only); ``template``
    is the template text they are rendered into; ``workdir`` the job's
    working directory on ``system``.
    """

    system: str
    firecrest_url: str
    template: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    workdir: str = ""
    regexes: StateRegexes = field(default_factory=StateRegexes)
    #: Profile id in profile mode, "" in classic mode.
    profile: str = ""
    scheduler: str = "slurm"

    def __post_init__(self) -> None:
        if not self.system:
            raise ValueError("SpawnRequest.system (the FirecREST system name) is empty")
        if not self.firecrest_url:
            raise ValueError("SpawnRequest.firecrest_url is empty")
        if not self.template.strip():
            raise ValueError("SpawnRequest.template (the batch script) is empty")
        object.__setattr__(self, "variables", types.MappingProxyType(dict(self.variables)))

    def with_variables(self, **updates: Any) -> SpawnRequest:
        """A copy with some template variables replaced (e.g. the job name)."""
        merged = dict(self.variables)
        merged.update(updates)
        return SpawnRequest(
            system=self.system,
            firecrest_url=self.firecrest_url,
            template=self.template,
            variables=merged,
            workdir=self.workdir,
            regexes=self.regexes,
            profile=self.profile,
            scheduler=self.scheduler,
        )


__all__ = ["SpawnRequest", "StateRegexes"]
