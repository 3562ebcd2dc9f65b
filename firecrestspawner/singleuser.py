"""``firecrestspawner-singleuser CMD [ARGS...]``: run inside the batch job.

Used as ``c.Spawner.cmd = ["firecrestspawner-singleuser", "jupyterhub-singleuser"]``
(the existing firecrestspawner's convention). It

1. restores the environment the spawner encoded for FirecREST
   (:func:`firecrestspawner.jobenv.decode_job_environment`);
2. reads the API token from ``$FIRECRESTSPAWNER_TOKEN_FILE`` when the spawner
   delivered it as a 0600 file instead of an environment variable, and deletes
   the file;
3. picks a free port on the node, so two servers on one node never collide,
   and rewrites ``JUPYTERHUB_SERVICE_URL`` with it (host ``0.0.0.0`` unless
   ``$FIRECRESTSPAWNER_BIND_HOST`` says otherwise);
4. reports ``{"port": N}`` to ``$JUPYTERHUB_API_URL/firecrestspawner`` with the
   server's token (timeout, bounded retries);
5. ``exec``s ``CMD`` with that environment. The token travels in the
   environment only, never on the command line. ``--port=N`` is appended only
   when ``$FIRECRESTSPAWNER_PASS_PORT_ARG=1`` (old site scripts).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import stat
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
import stamina

from .jobenv import decode_job_environment
from .redact import redact, register_secret

TOKEN_FILE_VAR = "FIRECRESTSPAWNER_TOKEN_FILE"  # noqa: S105 - a variable name
BIND_HOST_VAR = "FIRECRESTSPAWNER_BIND_HOST"
PASS_PORT_VAR = "FIRECRESTSPAWNER_PASS_PORT_ARG"  # noqa: S105 - a variable name
TIMEOUT_VAR = "FIRECRESTSPAWNER_REPORT_TIMEOUT"
ATTEMPTS_VAR = "FIRECRESTSPAWNER_REPORT_ATTEMPTS"
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


def free_port(host: str = "") -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def service_url(current: str | None, host: str, port: int, prefix: str = "/") -> str:
    """``JUPYTERHUB_SERVICE_URL`` with ``host:port``; path and scheme kept."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if current:
        parts = urlsplit(current)
        return urlunsplit((parts.scheme or "http", netloc, parts.path, parts.query, ""))
    return urlunsplit(("http", netloc, prefix or "/", "", ""))


def _ssl_options(env: dict[str, str]) -> dict:
    """httpx options for the hub's internal SSL, when JupyterHub set it up."""
    ca = env.get("JUPYTERHUB_SSL_CLIENT_CA")
    cert = env.get("JUPYTERHUB_SSL_CERTFILE")
    key = env.get("JUPYTERHUB_SSL_KEYFILE")
    if not (ca or (cert and key)):
        return {}
    context = ssl.create_default_context(cafile=ca or None)
    if cert and key:
        context.load_cert_chain(cert, key)
    return {"verify": context}


class _Retryable(Exception):
    pass


def report_port(
    api_url: str,
    token: str,
    port: int,
    *,
    timeout: float = 10.0,
    attempts: int = 5,
    wait_initial: float = 0.5,
    **client_options,
) -> None:
    """POST ``{"port": port}`` to the hub; raises :class:`SetupError` if refused."""
    url = api_url.rstrip("/") + "/firecrestspawner"
    headers = {"Authorization": f"token {token}"}
    try:
        with httpx.Client(timeout=timeout, **client_options) as client:
            for attempt in stamina.retry_context(
                on=(httpx.TransportError, _Retryable),
                attempts=attempts,
                timeout=None,
                wait_initial=wait_initial,
                wait_max=10.0,
                wait_jitter=wait_initial,
            ):
                with attempt:
                    response = client.post(url, json={"port": port}, headers=headers)
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _Retryable(f"hub answered HTTP {response.status_code}")
    except (httpx.TransportError, _Retryable) as e:
        raise SetupError(
            f"could not reach the hub at {url} after {attempts} attempts: {e}"
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("message", "")
        except ValueError:
            detail = ""
        raise SetupError(f"the hub refused the port report: HTTP {response.status_code} {detail}")


def prepare(argv: Sequence[str], environ: dict[str, str]) -> tuple[list[str], dict[str, str], int]:
    """Everything but the exec: returns (argv to exec, its environment, port)."""
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
    port = free_port("" if host == "0.0.0.0" else host)  # noqa: S104
    env["JUPYTERHUB_SERVICE_URL"] = service_url(
        env.get("JUPYTERHUB_SERVICE_URL"), host, port, env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    )
    try:
        timeout = float(env.get(TIMEOUT_VAR) or 10)
        attempts = max(1, int(env.get(ATTEMPTS_VAR) or 5))
    except ValueError:
        raise SetupError(f"{TIMEOUT_VAR} and {ATTEMPTS_VAR} must be numbers") from None
    report_port(api_url, token, port, timeout=timeout, attempts=attempts, **_ssl_options(env))

    command = list(argv)
    if env.get(PASS_PORT_VAR) == "1":
        command.append(f"--port={port}")
    return command, env, port


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; replaces this process with CMD on success."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command, env, port = prepare(args, dict(os.environ))
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
