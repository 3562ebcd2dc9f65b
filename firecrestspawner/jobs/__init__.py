"""Job control of a spawn, without traitlets or a hub (see :mod:`.control`).

* :mod:`.record` - the spawn's job as one record (the state JupyterHub stores);
* :mod:`.waiting` - the one wait loop (backoff, jitter, deadline);
* :mod:`.reading` - who acts (:class:`JobAccess`), the bounds (:class:`JobSettings`), job state;
* :mod:`.cancelling` - cancel and confirm, cancel by name, orphans, stop;
* :mod:`.control` - :class:`JobController`: submit, waits, token file, ended jobs;
* :mod:`.progress` - what the user reads while a spawn progresses.
"""

from .control import JobController, Prepare
from .progress import ProgressLog, progress_event, progress_message
from .reading import JobAccess, JobSettings, client_settings
from .record import JobRecord, Orphan
from .waiting import Backoff, deadline_in

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
