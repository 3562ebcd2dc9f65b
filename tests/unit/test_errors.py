"""spawn_error(): the user's message is what JupyterHub shows, escaped as HTML."""

from __future__ import annotations

from jupyterhub.utils import format_exception

from firecrestspawner.errors import spawn_error


def test_spawn_page_shows_the_user_message_not_the_log_message():
    exc = spawn_error(
        "Job 7 ended: exit code 3.\nLast lines:\n<b>boom</b>",
        reason="job-ended",
        log_message="Job 7 (fcs.hub.alice._.x) ended: FAILED",
        status_code=500,
    )
    # What the hub's progress API puts in the failed event.
    message, html_message = format_exception(exc)
    assert message == "Job 7 ended: exit code 3.\nLast lines:\n<b>boom</b>"
    assert html_message == "Job 7 ended: exit code 3.<br>\nLast lines:<br>\n&lt;b&gt;boom&lt;/b&gt;"
    assert exc.status_code == 500
    assert exc.reason == "job-ended"


def test_the_api_answer_is_the_users_message_on_jupyterhub_5_and_6():
    """JupyterHub 5's API handler answers ``log_message % args``; 6 reads jupyterhub_message."""
    exc = spawn_error(
        "Invalid option 'partition': 100% wrong.",
        reason="invalid-options",
        log_message="Refused options of alice: partition",
        status_code=400,
    )
    shown = getattr(exc, "jupyterhub_message", None)
    if exc.log_message and "Refused" not in exc.log_message:  # JupyterHub 5: the legacy error
        shown = exc.log_message % exc.args
        assert exc.log_detail == "Refused options of alice: partition"
    assert shown == "Invalid option 'partition': 100% wrong."
