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


def test_a_failure_that_names_its_cause_keeps_its_reason():
    from firecrestspawner.errors import AuthError, SpawnFailure, user_error

    down = AuthError("identity provider at https://idp/token did not answer after 3 attempts")
    exc = user_error(down, "The access file could not be written.", reason="token-file")
    message, _ = format_exception(exc)
    assert exc.reason == "identity-provider"
    assert "identity provider" in message
    assert "https://idp/token" not in message  # the detail is for the log
    assert exc.status_code == 503
    # Anything else is reported as the step's failure.
    other = user_error(
        OSError("disk"), "The access file could not be written.", reason="token-file"
    )
    assert other.reason == "token-file"
    assert format_exception(other)[0] == "The access file could not be written."
    custom = SpawnFailure("detail <x>", user_message="Shown <x>", spawn_reason="r", status_code=418)
    assert custom.spawn_error().reason == "r"
    assert format_exception(custom.spawn_error())[1] == "Shown &lt;x&gt;"
