"""What the spawner submits: the checked script, the job environment, the command.

Functions of the spawn request and the spawner's settings, with the errors
the user reads (``spawn_error``); the spawner calls them from ``start()``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from . import client as fc
from .errors import HTTPError, spawn_error
from .jobenv import job_environment
from .profiles.options import OptionError
from .profiles.script import ScriptRejected, ScriptTemplateError
from .redact import redact
from .request import SpawnRequest, ensure_job_name, render_request, runs_wrapper

#: Name of the environment variable that points the job wrapper at the token file.
TOKEN_FILE_VAR = "FIRECRESTSPAWNER_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
TOKEN_VARS = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
WRAPPER = "firecrestspawner-singleuser"


def option_error(user: str, field: str, message: str, context: str = "") -> HTTPError:
    """The 400 spawn error for a refused option, naming the field."""
    text = f"Invalid option {field!r}: {message}."
    if context:
        text = f"{text} {context}"
    return spawn_error(
        text,
        reason="invalid-options",
        log_message=f"Refused options of {user}: {field}: {message}",
        status_code=400,
    )


def render_script(
    request: SpawnRequest,
    *,
    job_name: str,
    username: str,
    cmd: str,
    account: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> str:
    """The batch script of one submit attempt, or the spawn error the user reads.

    Renders through :func:`~firecrestspawner.request.render_request` (the
    function ``firecrestspawner render`` shares), then makes sure the
    scheduler takes ``job_name`` (the hub finds its jobs by it).
    """
    try:
        script = render_request(
            request, job_name=job_name, username=username, cmd=cmd, account=account
        )
    except OptionError as e:
        raise option_error(username, e.field, e.message) from None
    except ScriptRejected as e:
        raise spawn_error(
            f"The batch script was refused: the value of {e.field!r} {e.reason}.",
            reason="script-rejected",
            log_message=f"Batch script for {job_name} rejected: {e}",
            status_code=400,
        ) from None
    except (ScriptTemplateError, KeyError, IndexError, ValueError) as e:
        raise spawn_error(
            "The server cannot start: the batch script template could not be rendered. "
            "Please contact the administrators.",
            reason="configuration",
            log_message=f"Batch script rendering failed: {type(e).__name__}: {redact(e)}",
            status_code=500,
        ) from None
    script, renamed = ensure_job_name(script, job_name, request.scheduler)
    if renamed:
        log.info(
            "The batch script names its job itself; %s is added as the last --job-name "
            "(the hub finds its jobs by this name)",
            job_name,
        )
    return script


def job_env(env: dict[str, str], token_file: str | None) -> dict[str, str]:
    """What goes to FirecREST's ``env``: with a token file, the token variables never do."""
    env = dict(env)
    if token_file is not None:
        for key in TOKEN_VARS:
            env.pop(key, None)
        env[TOKEN_FILE_VAR] = token_file
    return job_environment(env)


def check_command(
    cmd: Sequence[str],
    *,
    api_token_delivery: str,
    batchspawner_singleuser_cmd: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Refuse a configuration that cannot deliver the token; warn about unused settings."""
    if batchspawner_singleuser_cmd != "batchspawner-singleuser":
        log.warning(
            "Spawner.batchspawner_singleuser_cmd is set but unused: "
            "the job runs Spawner.cmd (start it with %s)",
            WRAPPER,
        )
    if api_token_delivery == "file" and not runs_wrapper(list(cmd), WRAPPER):  # noqa: S105
        raise spawn_error(
            "The server cannot start: the site configuration is inconsistent "
            "(api_token_delivery='file' needs Spawner.cmd to run "
            f"{WRAPPER}). Please contact the administrators.",
            reason="configuration",
            log_message=f"api_token_delivery='file' requires {WRAPPER!r} in Spawner.cmd",
            status_code=500,
        )


def system_error(error: fc.SystemNotFound) -> HTTPError:
    """The user's message for a system FirecREST does not know (site configuration)."""
    return spawn_error(
        f"The server cannot start: the cluster {error.system!r} is not known to "
        "FirecREST. Please contact the administrators.",
        reason="configuration",
        log_message=str(error),
        status_code=500,
    )


__all__ = [
    "TOKEN_FILE_VAR",
    "WRAPPER",
    "check_command",
    "job_env",
    "option_error",
    "render_script",
    "system_error",
]
