"""Job control of a spawn, without traitlets or a hub (see :mod:`.control`).

* :mod:`.record` - the spawn's job as one record (the state JupyterHub stores);
* :mod:`.waiting` - the one wait loop (backoff, jitter, deadline);
* :mod:`.reading` - who acts (:class:`JobAccess`), the bounds (:class:`JobSettings`), job state;
* :mod:`.cancelling` - cancel and confirm, cancel by name, orphans, stop;
* :mod:`.control` - :class:`JobController`: submit, waits, token file, ended jobs;
* :mod:`.progress` - what the user reads while a spawn progresses.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the type checker and editors see; at run time, __getattr__
    from .control import JobController, Prepare
    from .progress import ProgressLog, progress_event, progress_message
    from .reading import JobAccess, JobSettings, client_settings
    from .record import JobRecord, Orphan
    from .waiting import Backoff, deadline_in

#: Where each public name lives; imported on first use, so that the pure
#: modules (:mod:`.record`) load without the client, JupyterHub or asyncio.
_HOME = {
    "JobController": "control",
    "Prepare": "control",
    "ProgressLog": "progress",
    "progress_event": "progress",
    "progress_message": "progress",
    "JobAccess": "reading",
    "JobSettings": "reading",
    "client_settings": "reading",
    "JobRecord": "record",
    "Orphan": "record",
    "Backoff": "waiting",
    "deadline_in": "waiting",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOME[name]}", __name__), name)


__all__ = [
    "Backoff",
    "JobAccess",
    "JobController",
    "JobRecord",
    "JobSettings",
    "Orphan",
    "Prepare",
    "ProgressLog",
    "client_settings",
    "deadline_in",
    "progress_event",
    "progress_message",
]
