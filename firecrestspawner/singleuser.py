"""``firecrestspawner-singleuser CMD [ARGS...]``: run inside the batch job.

Used as ``c.Spawner.cmd = ["firecrestspawner-singleuser", "jupyterhub-singleuser"]``
(the existing firecrestspawner's convention). It

1. restores the environment the spawner encoded for FirecREST
   (:func:`firecrestspawner.jobenv.decode_job_environment`);
2. reads the API token from ``$FIRECRESTSPAWNER_TOKEN_FILE`` when the spawner
   delivered it as a 0600 file instead of an environment variable, and deletes
   the file;
3. uses the port of ``JUPYTERHUB_SERVICE_URL`` when the hub set one
   (``c.Spawner.port``, or the fixed port of the existing project's hub during
   a roll-out), else picks a free port on the node, so two servers on one node
   never collide, and rewrites ``JUPYTERHUB_SERVICE_URL`` with it (host
   ``0.0.0.0`` unless ``$FIRECRESTSPAWNER_BIND_HOST`` says otherwise). The
   port it picked stays reserved until ``CMD`` listens on it (see
   :func:`reserve_port`; ``$FIRECRESTSPAWNER_RESERVE_PORT=0`` turns that off);
4. reports ``{"port": N}`` to ``$JUPYTERHUB_API_URL/firecrestspawner`` with the
   server's token (timeout, bounded retries with backoff and jitter, a deadline);
5. sets ``$FIRECRESTSPAWNER_JOB_END_TIME`` (epoch seconds) to the job's end
   as Slurm reports it (``squeue -h -j $SLURM_JOB_ID -o %e``, bounded by a
   timeout; unset when unknown) so the notebook session can warn before the
   time limit;
6. ``exec``s ``CMD`` with that environment. The token travels in the
   environment only, never on the command line. ``--port=N`` is appended only
   when ``$FIRECRESTSPAWNER_PASS_PORT_ARG=1`` (old site scripts).

Standard library only, like the modules it imports (:mod:`.jobenv`,
:mod:`.redact`): a compute image needs this package installed with
``pip install --no-deps`` next to ``jupyterhub-singleuser``, nothing else
(``tests/unit/test_singleuser_bare_venv.py`` runs it in a venv without packages).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from .jobenv import decode_job_environment
from .redact import redact, register_secret

TOKEN_FILE_VAR = "FIRECRESTSPAWNER_TOKEN_FILE"  # noqa: S105 - a variable name
BIND_HOST_VAR = "FIRECRESTSPAWNER_BIND_HOST"
PASS_PORT_VAR = "FIRECRESTSPAWNER_PASS_PORT_ARG"  # noqa: S105 - a variable name
RESERVE_PORT_VAR = "FIRECRESTSPAWNER_RESERVE_PORT"
TIMEOUT_VAR = "FIRECRESTSPAWNER_REPORT_TIMEOUT"
ATTEMPTS_VAR = "FIRECRESTSPAWNER_REPORT_ATTEMPTS"
DEADLINE_VAR = "FIRECRESTSPAWNER_REPORT_DEADLINE"
END_TIME_VAR = "FIRECRESTSPAWNER_JOB_END_TIME"
PROG = "firecrestspawner-singleuser"


class SetupError(Exception):
    """Something the job cannot recover from; reported on stderr, exit 1."""


def _say(message: str) -> None:
    print(f"{PROG}: {redact(message)}", file=sys.stderr, flush=True)


def read_token_file(path: str) -> str:
    """The token in ``path`` (must be a regular file of ours, mode 0600); deletes it."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise SetupError(f"cannot read token file {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SetupError(f"token file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise SetupError(f"token file {path} is readable by others (mode {st.st_mode & 0o777:o})")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise SetupError(f"token file {path} belongs to another user")
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if not token:
        raise SetupError(f"token file {path} is empty")
    register_secret(token)
    return token


def configured_port(url: str | None) -> int:
    """The port the hub put in ``JUPYTERHUB_SERVICE_URL``; 0 when it left it to the job."""
    if not url:
        return 0
    try:
        return int(urlsplit(url).port or 0)
    except ValueError:
        return 0


def free_port(host: str = "") -> int:
    """A port nobody listens on right now (the kernel's choice); not reserved."""
    with reserve_port(host) as s:
        return s.getsockname()[1]


def reserve_port(host: str = "") -> socket.socket:
    """A bound, not listening, ``SO_REUSEADDR`` socket on a port of the kernel's choice.

    A port that was merely free when picked can be taken before the server
    binds it: the report to the hub and the server's start-up take seconds,
    and any outgoing connection on the node may get it as its local port
    (it comes from the same ephemeral range). While this socket stays bound
    the kernel hands the port to nobody else, yet a server that sets
    ``SO_REUSEADDR`` (tornado, and so ``jupyterhub-singleuser``; Python's
    ``http.server``; Go; Node) can still bind and listen on it. The socket
    is made inheritable so that it stays open through the ``exec``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
    except OSError:
        s.close()
        raise
    return s


def service_url(current: str | None, host: str, port: int, prefix: str = "/") -> str:
    """``JUPYTERHUB_SERVICE_URL`` with ``host:port``; path and scheme kept."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if current:
        parts = urlsplit(current)
        return urlunsplit((parts.scheme or "http", netloc, parts.path, parts.query, ""))
    return urlunsplit(("http", netloc, prefix or "/", "", ""))


def ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context for the hub's API, from the settings the wrapper honours.

    JupyterHub's internal SSL (``JUPYTERHUB_SSL_CLIENT_CA``, and the client
    certificate ``JUPYTERHUB_SSL_CERTFILE``/``_KEYFILE``) when set; otherwise
    ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``; otherwise the system's CA store.
    """
    ca = env.get("JUPYTERHUB_SSL_CLIENT_CA")
    cert = env.get("JUPYTERHUB_SSL_CERTFILE")
    key = env.get("JUPYTERHUB_SSL_KEYFILE")
    if ca or (cert and key):
        context = ssl.create_default_context(cafile=ca or None)
        if cert and key:
            context.load_cert_chain(cert, key)
        return context
    if env.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
    if env.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=env["SSL_CERT_DIR"])
    return ssl.create_default_context()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the hub's answer, not a place to post the token to."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _refusal_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return message if isinstance(message, str) else ""


def report_port(
    api_url: str,
    token: str,
    port: int,
    *,
    timeout: float = 10.0,
    attempts: int = 5,
    deadline: float = 120.0,
    wait_initial: float = 0.5,
    wait_max: float = 10.0,
    context: ssl.SSLContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """POST ``{"port": port}`` to the hub; raises :class:`SetupError` if refused.

    Connection errors, timeouts, 5xx and 429 are retried: at most ``attempts``
    requests, none started after ``deadline`` seconds, exponential backoff from
    ``wait_initial`` to ``wait_max`` plus up to ``wait_initial`` of jitter. Any
    other status of 400 or more is a refusal (not retried).
    """
    url = api_url.rstrip("/") + "/firecrestspawner"
    data = json.dumps({"port": port}).encode()
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
    end = time.monotonic() + deadline
    problem = "no attempt within the deadline"
    tried = 0
    for attempt in range(1, max(1, attempts) + 1):
        left = end - time.monotonic()
        if left <= 0:
            break
        tried = attempt
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310 - the hub's http(s) URL
        try:
            with opener.open(request, timeout=min(timeout, left)) as response:
                response.read()
            return
        except urllib.error.HTTPError as e:
            detail = _refusal_detail(e)
            e.close()
            if e.code < 400:
                return  # a redirect, not followed: answered (as before)
            if e.code < 500 and e.code != 429:
                raise SetupError(
                    f"the hub refused the port report: HTTP {e.code} {detail}"
                ) from None
            problem = f"hub answered HTTP {e.code}"
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
            reason = getattr(e, "reason", None) or e
            problem = f"{type(reason).__name__}: {reason}"
        if attempt < attempts:
            wait = min(wait_max, wait_initial * 2 ** (attempt - 1))
            wait += random.uniform(0, wait_initial)  # noqa: S311 - jitter, not crypto
            sleep(max(0.0, min(wait, end - time.monotonic())))
    raise SetupError(f"could not reach the hub at {url} after {tried} attempts: {problem}")


def slurm_end_time(
    env: Mapping[str, str], run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
) -> int:
    """The job's end (epoch seconds) from ``squeue``; 0 when not known.

    ``%e`` is the end Slurm expects (start + time limit) in the node's local
    time, ``YYYY-MM-DDTHH:MM:SS``; ``N/A``, ``Unknown`` or an error mean unknown.
    """
    job_id = env.get("SLURM_JOB_ID", "")
    if not job_id.isdigit():
        return 0
    try:
        done = run(
            ["squeue", "-h", "-j", job_id, "-o", "%e"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    text = (done.stdout or "").strip()
    if done.returncode != 0 or not text:
        return 0
    try:
        return int(time.mktime(time.strptime(text.splitlines()[0], "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, OverflowError):
        return 0


class Launch(NamedTuple):
    """What :func:`prepare` hands to the exec."""

    command: list[str]
    env: dict[str, str]
    port: int
    #: The socket reserving ``port`` (inheritable), or None when not reserved.
    held: socket.socket | None = None


def prepare(argv: Sequence[str], environ: dict[str, str]) -> Launch:
    """Everything but the exec: the argv to exec, its environment, the port."""
    if not argv:
        raise SetupError(f"usage: {PROG} CMD [ARGS...]")
    try:
        env = decode_job_environment(environ)
    except ValueError as e:
        raise SetupError(str(e)) from None

    token_file = env.pop(TOKEN_FILE_VAR, "")
    if token_file:
        token = read_token_file(token_file)
        env["JUPYTERHUB_API_TOKEN"] = token
        env.pop("JPY_API_TOKEN", None)
    token = env.get("JUPYTERHUB_API_TOKEN") or env.get("JPY_API_TOKEN") or ""
    if not token:
        raise SetupError("no JUPYTERHUB_API_TOKEN in the environment and no token file")
    register_secret(token)
    api_url = env.get("JUPYTERHUB_API_URL")
    if not api_url:
        raise SetupError("JUPYTERHUB_API_URL is not set")

    host = env.get(BIND_HOST_VAR) or "0.0.0.0"  # noqa: S104 - the proxy reaches the node
    port = configured_port(env.get("JUPYTERHUB_SERVICE_URL"))
    reserve = env.pop(RESERVE_PORT_VAR, "1") != "0"
    held: socket.socket | None = None
    if not port:
        try:
            held = reserve_port("" if host == "0.0.0.0" else host)  # noqa: S104
        except OSError as e:
            raise SetupError(f"cannot pick a free port on {host}: {e.strerror}") from None
        port = held.getsockname()[1]
        if not reserve:
            held.close()
            held = None
        else:
            # Kept open through the exec: the reservation ends with the server.
            held.set_inheritable(True)
    env["JUPYTERHUB_SERVICE_URL"] = service_url(
        env.get("JUPYTERHUB_SERVICE_URL"), host, port, env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    )
    try:
        timeout = float(env.get(TIMEOUT_VAR) or 10)
        attempts = max(1, int(env.get(ATTEMPTS_VAR) or 5))
        deadline = float(env.get(DEADLINE_VAR) or 120)
    except ValueError:
        raise SetupError(
            f"{TIMEOUT_VAR}, {ATTEMPTS_VAR} and {DEADLINE_VAR} must be numbers"
        ) from None
    try:
        context = ssl_context(env) if api_url.lower().startswith("https:") else None
    except (OSError, ssl.SSLError) as e:
        raise SetupError(f"cannot load the TLS settings for the hub's API: {e}") from None
    report_port(
        api_url,
        token,
        port,
        timeout=timeout,
        attempts=attempts,
        deadline=deadline,
        context=context,
    )

    end = slurm_end_time(env)
    if end:
        env[END_TIME_VAR] = str(end)
    command = list(argv)
    if env.get(PASS_PORT_VAR) == "1":
        command.append(f"--port={port}")
    return Launch(command, env, port, held)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; replaces this process with CMD on success."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command, env, port, _held = prepare(args, dict(os.environ))
    except SetupError as e:
        _say(str(e))
        sys.exit(1)
    _say(f"reported port {port} to the hub; starting {command[0]}")
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the configured server command
    except OSError as e:
        _say(f"cannot run {command[0]}: {e.strerror}")
        sys.exit(127)


if __name__ == "__main__":  # pragma: no cover
    main()
