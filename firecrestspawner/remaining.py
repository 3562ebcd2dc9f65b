"""The remaining time of a running server, for the hub's home page.

The spawner mixes in :class:`RemainingTime`: public, read-only properties the
shipped ``templates/hub/home.html`` reads (``firecrest_end_time``,
``firecrest_remaining``, ``firecrest_end_warning``) and the trait saying when
the page warns. JupyterHub renders the home page for the logged-in user with
their own spawners only, autoescaped: no API, no state, no token in the page.
Enable it with ``c.JupyterHub.template_paths = [firecrestspawner.remaining.HUB_TEMPLATES]``.
"""

from __future__ import annotations

import time
from pathlib import Path

from traitlets import Integer
from traitlets.config import Configurable

from .jobs.record import remaining_text

#: The folder to put in ``c.JupyterHub.template_paths`` (its ``home.html``
#: extends JupyterHub's own ``templates/home.html``).
HUB_TEMPLATES = str(Path(__file__).parent / "templates" / "hub")


class RemainingTime(Configurable):
    """What the home page shows of a running job's end (a mixin of the spawner)."""

    end_warning = Integer(
        900,
        min=0,
        config=True,
        help="""Seconds before the job's time limit from which the hub's home page
        warns that the server will end (0: never). The end comes from the
        scheduler (start + time limit, as FirecREST reports the job).""",
    )

    @property
    def firecrest_end_time(self) -> float:
        """When the running job ends (epoch seconds); 0 when unknown or not running."""
        record = getattr(self, "record", None)
        if record is None or not record.job_id or record.ended:
            return 0.0
        return float(record.ends_at)

    @property
    def firecrest_remaining(self) -> str:
        """The remaining time as text (``"1 h 05 min"``); empty when unknown."""
        end = self.firecrest_end_time
        return remaining_text(end - time.time()) if end else ""

    @property
    def firecrest_end_warning(self) -> bool:
        """True when the end is nearer than ``end_warning`` seconds."""
        end = self.firecrest_end_time
        return bool(end and self.end_warning and end - time.time() <= self.end_warning)

    @property
    def firecrest_end_iso(self) -> str:
        """The end as ISO 8601 UTC (for the page's ``<time datetime>``); empty when unknown."""
        end = self.firecrest_end_time
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)) if end else ""


__all__ = ["HUB_TEMPLATES", "RemainingTime"]
