"""``doctor --probe``: a short job that proves both network directions of a spawn.

The job runs the site's own wrapper (the first words of ``c.Spawner.cmd`` up to
``firecrestspawner-singleuser``) exactly as a spawn does: it reads its API
token (``api_token_delivery``), picks a free port and POSTs it to
``$JUPYTERHUB_API_URL/firecrestspawner``. Instead of JupyterHub it then runs
:data:`NODE_PROGRAM`, a standard-library HTTP server on that port, which also
GETs the hub's API URL from the node and answers with what it found.

Who receives the port report:

* the hub is not running: the doctor listens on the hub's own API address
  (``hub_bind_url`` / ``hub_ip:hub_port``) and the job is given the hub's API
  URL (``hub_connect_url``...), so the report travels exactly the way a
  spawn's would;
* the hub is running (its API answers): the doctor listens on a free port of
  ``--callback-host`` (default the API URL's host) for the report, and the
  node program GETs the real hub API URL; both must work.

Then the doctor connects to ``<node host>:<port>`` from where it runs (run it
where the proxy runs) and checks the answer carries this run's nonce: the
proxy's direction. The job is cancelled at the end, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .. import states
from ..client import describe
from ..redact import register_secret
from .jobs import JobPlan, PlanError, cancel_quietly, job_output, make_plan, submit
from .nodes import gethost
from .report import Step
from .settings import WRAPPER

if TYPE_CHECKING:
    from .checks import Doctor

#: Runs on the compute node (any Python 3 with the standard library).
NODE_PROGRAM = r"""
import json, os, socket, sys, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit
service = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
hub = os.environ.get("FCS_DOCTOR_HUB_API", "")
def check(url):
    if not url:
        return {"skipped": True}
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return {"status": r.status, "body": r.read(400).decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}
answer = json.dumps({"nonce": os.environ.get("FCS_DOCTOR_NONCE", ""),
                     "node": socket.gethostname(), "hub_api": check(hub)}).encode()
done = []
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if self.path.startswith("/done"):
            done.append(True)
    def log_message(self, *args):
        pass
server = HTTPServer((service.hostname or "0.0.0.0", service.port), Handler)
server.timeout = 1
print("firecrestspawner doctor probe: listening on port %d" % service.port, file=sys.stderr)
sys.stderr.flush()
end = time.time() + float(os.environ.get("FCS_DOCTOR_LIFETIME") or 300)
while not done and time.time() < end:
    server.handle_request()
"""

#: Finds a Python next to the wrapper (the job environment's), else on PATH.
_LAUNCHER = (
    'w=$(command -v "$1" 2>/dev/null || printf %s "$1"); d=$(dirname "$w"); '
    'for p in "$d/python3" "$d/python" python3; do '
    'if command -v "$p" >/dev/null 2>&1; then exec "$p" -c "$FCS_DOCTOR_PROGRAM"; fi; done; '
    'echo "firecrestspawner doctor probe: no python3 next to $w or on PATH" >&2; exit 127'
)


@dataclass
class _Listener:
    """The stand-in for the hub's API: accepts one port report carrying our token."""

    token: str
    prefix: str
    reports: list[dict[str, Any]] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    server: Any = None
    port: int = 0
    #: The API URL the job was given (reports go to ``<url>/firecrestspawner``).
    url: str = ""
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, host: str, port: int) -> int:
        from tornado import httpserver, netutil, web

        listener = self
        api = self.prefix.rstrip("/") + "/api"

        class Version(web.RequestHandler):
            def get(self) -> None:
                listener.gets.append(self.request.remote_ip or "")
                self.finish({"version": "firecrestspawner-doctor"})

        class Port(web.RequestHandler):
            def check_xsrf_cookie(self) -> None:
                return None

            def post(self) -> None:
                given = self.request.headers.get("Authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() not in ("token", "bearer") or not hmac.compare_digest(
                    value.strip().encode(), listener.token.encode()
                ):
                    self.set_status(403)
                    self.finish({"message": "not the doctor's token"})
                    return
                try:
                    body = json.loads(self.request.body or b"{}")
                    port = int(body["port"])
                except (ValueError, KeyError, TypeError):
                    self.set_status(400)
                    self.finish({"message": 'expected {"port": N}'})
                    return
                listener.reports.append({"port": port, "from": self.request.remote_ip})
                listener.event.set()
                self.finish({})

        app = web.Application(
            [(rf"{api}/?", Version), (rf"{api}/firecrestspawner/?", Port)],
            log_function=lambda handler: None,
        )
        sockets = netutil.bind_sockets(port, address=host or None)
        self.server = httpserver.HTTPServer(app)
        self.server.add_sockets(sockets)
        self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.close_all_connections(), 5)


async def hub_answers(api_url: str, timeout: float) -> str | None:
    """JupyterHub's version when its API answers at ``api_url``, else None."""
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=False) as http:  # noqa: S501 - a liveness probe
            r = await http.get(api_url.rstrip("/") + "/")
        if r.status_code == 200:
            return str(r.json().get("version") or "?")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return None


def probe_command(wrapper: str, before: str = "") -> str:
    """The batch script's command line: the site's wrapper, then the node program.

    ``before`` is the shell text of ``c.Spawner.cmd`` before the wrapper (kept as is).
    """
    words = [wrapper, "/bin/sh", "-c", _LAUNCHER, "fcs-doctor-probe", wrapper]
    return " ".join([before, *(shlex.quote(w) for w in words)]).strip()


async def run_probe(doctor: Doctor) -> None:
    """Submit the probe job, wait for both directions, add the ``probe`` step."""
    step = await _probe(doctor)
    doctor.report.add(step)


async def _probe(doctor: Doctor) -> Step:
    title = "Probe job: node -> hub API and proxy -> node"
    o = doctor.options
    settings = doctor.settings
    if not doctor.user_ok:
        # Asked for and not run is a failure, not a pass: exit status 1.
        return Step("probe", title, "fail",
                    "needs a working user credential: the probe job is submitted as --user",
                    "pass --user NAME with its token ($FIRECRESTSPAWNER_DOCTOR_TOKEN or "
                    "--user-token-file), and see the user credential check")  # fmt: skip
    try:
        plan = make_plan(doctor, o.profile)
    except PlanError as e:
        return Step("probe", title, "fail", str(e), "choose a profile with --profile ID")
    if (plan.url, plan.system) not in doctor.healthy:
        return Step("probe", title, "skip", f"{plan.system} is not healthy")
    wrapper, before = settings.wrapper()
    notes = []
    if not wrapper:
        wrapper = WRAPPER
        notes.append(
            f"c.Spawner.cmd does not run {WRAPPER} as a word; the probe runs {WRAPPER} from PATH"
        )
    api_url = settings.hub_api_url
    token = secrets.token_urlsafe(24)
    register_secret(token)
    listener = _Listener(token=token, prefix=settings.hub_prefix)
    version = await hub_answers(api_url, min(o.timeout, 5.0))
    if version is None:
        host, port = settings.hub_bind_host, settings.hub_bind_port
        try:
            listener.start(host, port)
        except OSError as e:
            return Step(
                "probe",
                title,
                "fail",
                f"the hub's API ({api_url}) does not answer, and the doctor cannot listen on "
                f"its address {host or '*'}:{port} in its place: {e.strerror or e}",
                "run the doctor on the hub's host (with the hub stopped, or running so "
                "that its API answers here), or pass --callback-host",
            )
        report_url = api_url
        mode = f"the hub is not running: the doctor listens in its place on {host or '*'}:{port}"
    else:
        host = o.callback_host or urlsplit(api_url).hostname or ""
        try:
            port = listener.start(host, 0)
        except OSError as e:
            return Step(
                "probe",
                title,
                "fail",
                f"cannot listen on {host}: {e.strerror or e}",
                "pass --callback-host with an address of this host that compute nodes reach",
            )
        parts = urlsplit(api_url)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        report_url = urlunsplit(("http", netloc, parts.path, "", ""))
        mode = (
            f"the hub is running (JupyterHub {version}); the job reports its port to the "
            f"doctor at {report_url} and GETs {api_url}"
        )
    listener.url = report_url
    try:
        return await _run_job(doctor, plan, listener, wrapper, before, report_url, [mode, *notes])
    finally:
        await listener.stop()


async def _run_job(
    doctor: Doctor,
    plan: JobPlan,
    listener: _Listener,
    wrapper: str,
    before: str,
    report_url: str,
    lines: list[str],
) -> Step:
    title = "Probe job: node -> hub API and proxy -> node"
    o = doctor.options
    sp = doctor.sp
    settings = doctor.settings
    api_url = settings.hub_api_url
    client = doctor.user_client(plan.url)
    assert client is not None  # noqa: S101
    timeout = float(o.probe_timeout or sp.start_timeout or 300)
    job_name = f"fcs-doctor.{doctor.nonce}.probe"
    env: dict[str, str] = {}
    for key in list(sp.env_keep or []):
        if key in os.environ and key != "PATH":
            env[key] = os.environ[key]
    env.update(settings.environment)
    env.update(
        {
            "JUPYTERHUB_API_URL": report_url,
            "FIRECRESTSPAWNER_REPORT_TIMEOUT": "5",
            "FIRECRESTSPAWNER_REPORT_ATTEMPTS": "4",
            "FIRECRESTSPAWNER_REPORT_DEADLINE": "30",
            "FCS_DOCTOR_NONCE": doctor.nonce,
            "FCS_DOCTOR_HUB_API": api_url,
            "FCS_DOCTOR_LIFETIME": str(int(timeout) + 120),
            "FCS_DOCTOR_PROGRAM": NODE_PROGRAM,
        }
    )
    token_path = ""
    if str(sp.api_token_delivery).lower() == "file":
        try:
            token_path = await client.write_private_file(
                plan.system,
                f"{plan.workdir.rstrip('/')}/.firecrestspawner",
                f"doctor-{doctor.nonce}.token",
                listener.token,
            )
        except Exception as e:  # noqa: BLE001 - reported
            return Step("probe", title, "fail", f"cannot upload the token file: {describe(e)}",
                        "see the working directory check")  # fmt: skip
        env["FIRECRESTSPAWNER_TOKEN_FILE"] = token_path
    else:
        env["JUPYTERHUB_API_TOKEN"] = listener.token
    cmd = probe_command(wrapper, before)
    try:
        try:
            job_id = await submit(doctor, plan, cmd, job_name, env)
        except PlanError as e:
            return Step("probe", title, "fail", str(e), "choose a profile with --profile ID")
        except Exception as e:  # noqa: BLE001 - reported
            return Step("probe", title, "fail", f"submit failed: {describe(e)}",
                        "see FirecREST's message; check the profile's partition, account and "
                        "time limit (firecrestspawner render shows the script)")  # fmt: skip
        where = f" (profile {plan.profile!r})" if plan.profile else ""
        lines.append(f"job {job_id} submitted as {o.user} on {plan.system}{where}, "
                     f"reporting to {report_url}")  # fmt: skip
        try:
            return await _follow(doctor, plan, listener, job_id, job_name, timeout, lines)
        finally:
            await cancel_quietly(doctor, plan, job_id)
    finally:
        # Also after a failed submit: the token file is of this run only.
        if token_path:
            with contextlib.suppress(Exception):
                await client.remove_file(plan.system, token_path)


_HUB_FIX = (
    "compute nodes must reach the hub's API at {url}: set c.JupyterHub.hub_connect_url to "
    "an address of the hub that the nodes reach (and c.JupyterHub.hub_bind_url / hub_ip "
    "so that the hub listens there), and open that port from the compute nodes"
)


async def _follow(
    doctor: Doctor,
    plan: JobPlan,
    listener: _Listener,
    job_id: str,
    job_name: str,
    timeout: float,
    lines: list[str],
) -> Step:
    title = "Probe job: node -> hub API and proxy -> node"
    client = doctor.user_client(plan.url)
    assert client is not None  # noqa: S101
    api_url = doctor.settings.hub_api_url
    started = time.monotonic()
    deadline = started + timeout
    job: dict[str, Any] | None = None
    running_at: float | None = None
    delay = 1.0
    while not listener.reports:
        try:
            job = await client.job(plan.system, job_id) or job
        except Exception as e:  # noqa: BLE001 - keep waiting within the deadline
            lines.append(f"reading the job failed once: {describe(e)}")
        state = states.state_of(job)
        if running_at is None and states.phase(state) is states.Phase.ALLOCATED:
            running_at = time.monotonic()
            lines.append(f"job running on {job.get('nodes') if job else '?'} after "
                         f"{running_at - started:.0f} s")  # fmt: skip
        if state and states.is_gone(state):
            tail = await job_output(doctor, plan, job_id, job_name)
            return _ended(lines, state, job, tail, api_url)
        if time.monotonic() > deadline:
            if running_at is None:
                reason = states.reason_of(job) if job else ""
                lines.append(f"job still {state or 'not listed'}"
                             + (f" ({reason})" if reason else "") + f" after {timeout:.0f} s")  # fmt: skip
                return Step("probe", title, "fail", "\n".join(lines),
                            "the job did not start in time: choose a profile whose partition "
                            "has free nodes (--profile), or raise --probe-timeout")  # fmt: skip
            tail = await job_output(doctor, plan, job_id, job_name)
            lines.append(f"no port report within {timeout:.0f} s")
            if tail:
                lines.append("end of the job's output:\n" + tail)
            return Step("probe", title, "fail", "\n".join(lines), _HUB_FIX.format(url=api_url))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(listener.event.wait(), delay)
        delay = min(delay * 1.5, 3.0)
    report = listener.reports[0]
    lines.append(
        f"node -> hub API: the job reported port {report['port']} to "
        f"{listener.url.rstrip('/')}/firecrestspawner (from {report['from']})"
    )
    if job is None or not job.get("nodes"):
        with contextlib.suppress(Exception):
            job = await client.job(plan.system, job_id) or job
    node = str((job or {}).get("nodes") or "")
    try:
        host = await gethost(doctor, node, plan.regexes, job)
    except Exception as e:  # noqa: BLE001 - the site's hook
        host = ""
        lines.append(f"the gethost hook failed: {type(e).__name__}: {e}")
    if not host:
        return Step("probe", title, "fail", "\n".join([*lines, f"no host for node {node!r}"]),
                    "see the node names check")  # fmt: skip
    answer, problem = await _connect(host, int(report["port"]), doctor.options.timeout)
    if answer is None:
        lines.append(f"proxy -> node: http://{host}:{report['port']}/ {problem}")
        return Step(
            "probe",
            title,
            "fail",
            "\n".join(lines),
            f"the host the proxy runs on must reach the compute nodes' ports: check that "
            f"{host!r} is the node's address on a network the proxy reaches "
            "(node_name_template) and that the firewall lets the proxy connect to "
            "ephemeral ports on the nodes",
        )
    if answer.get("nonce") != doctor.nonce:
        lines.append(f"proxy -> node: http://{host}:{report['port']}/ is another server")
        return Step("probe", title, "fail", "\n".join(lines),
                    "the node name resolves to another machine: fix node_name_template")  # fmt: skip
    lines.append(f"proxy -> node: http://{host}:{report['port']}/ answered from "
                 f"{answer.get('node')}")  # fmt: skip
    hub = answer.get("hub_api") or {}
    if hub.get("status") == 200:
        lines.append(f"node -> hub API: GET {api_url} answered 200")
        return Step("probe", title, "pass", "\n".join(lines))
    lines.append(f"node -> hub API: GET {api_url} failed: {hub.get('error') or hub}")
    return Step("probe", title, "fail", "\n".join(lines), _HUB_FIX.format(url=api_url))


def _ended(
    lines: list[str], state: str, job: dict[str, Any] | None, tail: str, api_url: str
) -> Step:
    title = "Probe job: node -> hub API and proxy -> node"
    code = states.exit_status(job)
    lines.append(f"the job ended ({state}, exit code {code}) before reporting its port")
    if tail:
        lines.append("end of the job's output:\n" + tail)
    text = tail.lower()
    if "could not reach the hub" in text or "refused the port report" in text:
        fix = _HUB_FIX.format(url=api_url)
    elif "no python3" in text or "cannot run" in text or "not found" in text:
        fix = (
            f"the job environment must provide {WRAPPER} and Python 3 (c.Spawner.cmd's first "
            "word, after the profile's prologue, e.g. `module load`)"
        )
    else:
        fix = "see the job's output above"
    return Step("probe", title, "fail", "\n".join(lines), fix)


async def _connect(host: str, port: int, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """GET the probe's answer; retried briefly (the server starts after the report)."""
    url = f"http://{host}:{port}/"
    deadline = time.monotonic() + max(20.0, timeout)
    problem = ""
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
        while True:
            try:
                r = await http.get(url)
                answer = r.json()
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"{url}done")
                return (answer if isinstance(answer, dict) else {}), ""
            except (httpx.HTTPError, ValueError) as e:
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                return None, f"did not answer: {problem}"
            await asyncio.sleep(1.0)


__all__ = ["NODE_PROGRAM", "hub_answers", "probe_command", "run_probe"]
