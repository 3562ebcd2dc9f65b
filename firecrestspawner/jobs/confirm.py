"""Cancel and confirm: the one way a job is cancelled, by the spawner and by the reaper.

FirecREST refuses to cancel a job that has just ended as it refuses one it may not
touch; only a read of the job tells the two apart. Loads no hub library, so the
reaper uses it as it is.
"""

from __future__ import annotations

from .. import client as fc
from .. import states


async def cancel_and_confirm(client: fc.FirecrestClient, system: str, job_id: str) -> bool:
    """Cancel ``job_id``; True when cancelled, False when it had already ended.

    A refused cancel of a job that still lives raises the refusal
    (:class:`~firecrestspawner.client.CancelNotAccepted`); other failures raise as
    the client raises them.
    """
    try:
        await client.cancel(system, job_id)
    except fc.CancelNotAccepted:
        job = await client.job(system, job_id)
        if job is None or states.is_gone(states.state_of(job)):
            return False
        raise
    return True
