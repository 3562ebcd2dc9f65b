"""``firecrestspawner doctor``: check a site's set-up before its first user does.

- :mod:`.settings`: the hub's ``jupyterhub_config.py`` read with traitlets, no hub started
- :mod:`.checks`: the checks, in the order a spawn depends on them (:class:`Doctor`)
- :mod:`.probe`: ``--probe``, a short job proving node -> hub API and proxy -> node
- :mod:`.report`: steps, human and JSON output
- :mod:`.cli`: the command line

See docs/operations.md.
"""

from .checks import TOKEN_ENV, Doctor, DoctorOptions
from .cli import register_cli
from .report import Report, Step, format_report
from .settings import ConfigProblem, HubSettings, hub_settings, load_config

__all__ = [
    "TOKEN_ENV",
    "ConfigProblem",
    "Doctor",
    "DoctorOptions",
    "HubSettings",
    "Report",
    "Step",
    "format_report",
    "hub_settings",
    "load_config",
    "register_cli",
]
