"""firecrestspawner-singleuser, run for real as a subprocess against a recording hub."""

# ruff: noqa: S104  (0.0.0.0 is the bind address under test)

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from firecrestspawner.jobenv import PACKED_VAR, job_environment
from firecrestspawner.singleuser import SetupError, report_port, service_url

SCRIPT = Path(sys.executable).parent / "firecrestspawner-singleuser"
TOKEN = "canary0api0token0" + "ab" * 16
SCOPES = '["access:servers!server=alice/", "read:users:name!user=alice"]'

# The command the job would exec: prints what it was given, and proves it can
# listen on the port as a server does (SO_REUSEADDR, as tornado sets it). It
# also says whether a bind without SO_REUSEADDR is refused: the port is held.
PRINTER = [
    sys.executable,
    "-c",
    (
        "import json, os, socket, sys\n"
        "from urllib.parse import urlsplit\n"
        "port = urlsplit(os.environ['JUPYTERHUB_SERVICE_URL']).port\n"
        "plain = socket.socket()\n"
        "try:\n"
        "    plain.bind(('0.0.0.0', port)); held = False\n"
        "except OSError:\n"
        "    held = True\n"
        "plain.close()\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', port)); s.listen(); s.close()\n"
        "print(json.dumps({'argv': sys.argv, 'env': dict(os.environ), 'held': held}))\n"
    ),
]


class Hub:
    """A recording stand-in for the hub's port API."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.url = ""


class _PortHandler(web.RequestHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def post(self) -> None:
        self.hub.requests.append(
            {
                "authorization": self.request.headers.get("Authorization"),
                "body": json.loads(self.request.body),
            }
        )
        status = self.hub.statuses.pop(0) if self.hub.statuses else 200
        self.set_status(status)
        self.write({"message": "refused" if status >= 400 else "ok"})


@pytest.fixture
def hub():
    h = Hub()
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/hub/api/firecrestspawner", _PortHandler, {"hub": h})]))
    server.add_sockets(sockets)
    h.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    yield h
    server.stop()


def job_env(hub: Hub, **extra: str) -> dict[str, str]:
    """The environment a job gets: encoded by jobenv as the spawner does."""
    hub_env = {
        "JUPYTERHUB_API_URL": hub.url,
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/alice/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": SCOPES,
        "JUPYTERHUB_OAUTH_SCOPES": SCOPES,
        "SITE_LIST": "a,b,c",
        "SITE_QUOTED": 'say "hi"\nnext line',
        **extra,
    }
    env = job_environment(hub_env)
    assert PACKED_VAR in env
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}


async def run(env: dict[str, str], command=PRINTER) -> tuple[int, dict | None, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    printed = json.loads(out) if out.strip() else None
    return proc.returncode, printed, err.decode()


@pytest.mark.timeout(60)
async def test_reports_port_and_execs_with_restored_environment(hub):
    code, printed, err = await run(job_env(hub))
    assert code == 0, err
    assert len(hub.requests) == 1
    request = hub.requests[0]
    assert request["authorization"] == f"token {TOKEN}"
    assert set(request["body"]) == {"port"}
    port = request["body"]["port"]
    child_env = printed["env"]
    url = urlsplit(child_env["JUPYTERHUB_SERVICE_URL"])
    assert url.port == port
    assert url.hostname == "0.0.0.0"
    assert url.path == "/user/alice/"
    # decoded environment restored
    assert child_env["SITE_LIST"] == "a,b,c"
    assert child_env["SITE_QUOTED"] == 'say "hi"\nnext line'
    assert child_env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"] == SCOPES
    assert child_env["JUPYTERHUB_OAUTH_SCOPES"] == SCOPES
    assert PACKED_VAR not in child_env
    assert child_env["JUPYTERHUB_API_TOKEN"] == TOKEN
    # the command ran unchanged; no port argument, no token on the command line
    assert printed["argv"][1:] == []
    assert all(TOKEN not in arg for arg in printed["argv"])
    assert TOKEN not in err


@pytest.mark.timeout(60)
async def test_token_file_is_read_then_removed(hub, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    env = job_env(hub, FIRECRESTSPAWNER_TOKEN_FILE=str(token_file))
    env = {k: v for k, v in env.items() if k != "JUPYTERHUB_API_TOKEN"}
    # the token is in neither the plain nor the packed environment
    assert TOKEN not in json.dumps(env)
    assert TOKEN not in base64.b64decode(env[PACKED_VAR]).decode()
    code, printed, err = await run(env)
    assert code == 0, err
    assert not token_file.exists()
    assert hub.requests[0]["authorization"] == f"token {TOKEN}"
    assert printed["env"]["JUPYTERHUB_API_TOKEN"] == TOKEN
    assert "FIRECRESTSPAWNER_TOKEN_FILE" not in printed["env"]
    assert all(TOKEN not in arg for arg in printed["argv"])


@pytest.mark.timeout(60)
async def test_token_file_readable_by_others_is_refused(hub, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    env = job_env(hub, FIRECRESTSPAWNER_TOKEN_FILE=str(token_file))
    code, printed, err = await run(env)
    assert code == 1
    assert printed is None
    assert "readable by others" in err
    assert hub.requests == []


@pytest.mark.timeout(60)
async def test_the_picked_port_stays_reserved_through_the_exec(hub):
    """Until the server listens, nothing else on the node can take the port."""
    code, printed, err = await run(job_env(hub))
    assert code == 0, err
    assert printed["held"] is True
    assert "FIRECRESTSPAWNER_RESERVE_PORT" not in printed["env"]


@pytest.mark.timeout(60)
async def test_the_reservation_can_be_turned_off(hub):
    """For a server that binds without SO_REUSEADDR."""
    code, printed, err = await run(job_env(hub, FIRECRESTSPAWNER_RESERVE_PORT="0"))
    assert code == 0, err
    assert printed["held"] is False


@pytest.mark.timeout(60)
async def test_a_port_the_hub_set_is_not_reserved(hub):
    code, printed, err = await run(
        job_env(hub, JUPYTERHUB_SERVICE_URL="http://0.0.0.0:57002/user/alice/")
    )
    assert code == 0, err
    assert printed["held"] is False


# Run in a network namespace of its own with an ephemeral range of 64 ports:
# outgoing connections use up the whole range, as a busy node's do. A port that
# was only free when picked is taken by one of them (the control); a reserved
# one never is, and a server can still listen on it.
_NETNS_RACE = """
import socket, sys, threading
from firecrestspawner.singleuser import free_port, reserve_port
with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
    f.write("40000 40063")
server = socket.socket(); server.bind(("127.0.0.1", 5000)); server.listen(256)
threading.Thread(target=lambda: [server.accept() for _ in iter(int, 1)], daemon=True).start()
def exhaust():
    taken, socks = set(), []
    while True:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", 5000))
        except OSError:
            s.close()
            return taken, socks
        taken.add(s.getsockname()[1]); socks.append(s)
def listens(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port)); s.listen(); return True
    except OSError:
        return False
    finally:
        s.close()
mode = sys.argv[1]
held = reserve_port() if mode == "reserved" else None
port = held.getsockname()[1] if held else free_port()
taken, socks = exhaust()
print(port in taken, listens(port), len(taken))
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("mode", "expected"), [("free", "True False"), ("reserved", "False True")])
def test_outgoing_connections_cannot_take_a_reserved_port(mode, expected):
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip for a network namespace of its own")
    done = subprocess.run(
        [
            unshare,
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -c "$1" "$2"',
            sys.executable,
            _NETNS_RACE,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    taken, listens, count = done.stdout.split()
    assert int(count) >= 60  # the range was used up
    assert f"{taken} {listens}" == expected


@pytest.mark.timeout(60)
async def test_legacy_port_argument_when_asked(hub):
    code, printed, err = await run(job_env(hub, FIRECRESTSPAWNER_PASS_PORT_ARG="1"))
    assert code == 0, err
    port = hub.requests[0]["body"]["port"]
    assert printed["argv"][1:] == [f"--port={port}"]


@pytest.mark.timeout(60)
async def test_bind_host_is_configurable(hub):
    code, printed, err = await run(job_env(hub, FIRECRESTSPAWNER_BIND_HOST="127.0.0.1"))
    assert code == 0, err
    assert urlsplit(printed["env"]["JUPYTERHUB_SERVICE_URL"]).hostname == "127.0.0.1"


@pytest.mark.timeout(60)
async def test_refused_report_does_not_start_the_server(hub):
    hub.statuses = [409]
    code, printed, err = await run(job_env(hub))
    assert code == 1
    assert printed is None
    assert "HTTP 409" in err
    assert len(hub.requests) == 1  # 4xx is not retried
    assert TOKEN not in err


@pytest.mark.timeout(60)
async def test_hub_errors_are_retried_a_bounded_number_of_times(hub):
    hub.statuses = [503, 502]
    code, printed, err = await run(job_env(hub, FIRECRESTSPAWNER_REPORT_ATTEMPTS="3"))
    assert code == 0, err
    assert len(hub.requests) == 3
    assert printed is not None

    hub.requests.clear()
    hub.statuses = [503, 503, 503]
    code, printed, err = await run(job_env(hub, FIRECRESTSPAWNER_REPORT_ATTEMPTS="3"))
    assert code == 1
    assert printed is None
    assert len(hub.requests) == 3


@pytest.mark.timeout(60)
async def test_two_jobs_on_one_node_get_different_ports(hub):
    results = await asyncio.gather(run(job_env(hub)), run(job_env(hub)))
    assert all(code == 0 for code, _, _ in results)
    ports = {urlsplit(p["env"]["JUPYTERHUB_SERVICE_URL"]).port for _, p, _ in results}
    assert len(ports) == 2
    assert ports == {r["body"]["port"] for r in hub.requests}


@pytest.mark.timeout(60)
async def test_a_port_the_hub_set_is_honoured(hub):
    """``c.Spawner.port`` (or the existing project's hub, which fixes the port)."""
    code, printed, err = await run(
        job_env(hub, JUPYTERHUB_SERVICE_URL="http://0.0.0.0:57001/user/alice/")
    )
    assert code == 0, err
    assert urlsplit(printed["env"]["JUPYTERHUB_SERVICE_URL"]).port == 57001
    assert [r["body"]["port"] for r in hub.requests] == [57001]


@pytest.mark.timeout(60)
async def test_without_command_is_a_usage_error(hub):
    code, _, err = await run(job_env(hub), command=[])
    assert code == 1
    assert "usage" in err


@pytest.mark.parametrize(
    ("current", "host", "port", "expected"),
    [
        pytest.param(
            "http://0.0.0.0:0/user/a/", "0.0.0.0", 5000, "http://0.0.0.0:5000/user/a/", id="port"
        ),
        pytest.param(
            "https://127.0.0.1:8888/user/a%20b/",
            "0.0.0.0",
            5000,
            "https://0.0.0.0:5000/user/a%20b/",
            id="https-quoted-path",
        ),
        pytest.param(None, "10.0.0.1", 5000, "http://10.0.0.1:5000/prefix/", id="missing"),
        pytest.param("http://[::]:0/u/", "::", 5000, "http://[::]:5000/u/", id="ipv6"),
    ],
)
def test_service_url(current, host, port, expected):
    assert service_url(current, host, port, "/prefix/") == expected


class _Always503(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        type(self).count += 1
        self.send_response(503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_hub():
    _Always503.count = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always503)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()
    server.server_close()


def test_retries_back_off_exponentially_with_jitter(failing_hub):
    waits: list[float] = []
    with pytest.raises(SetupError, match=r"after 4 attempts: hub answered HTTP 503"):
        report_port(failing_hub, TOKEN, 1234, attempts=4, wait_initial=0.5, sleep=waits.append)
    assert _Always503.count == 4
    assert len(waits) == 3
    for wait, base in zip(waits, (0.5, 1.0, 2.0), strict=True):
        assert base <= wait <= base + 0.5


@pytest.mark.timeout(30)
def test_no_attempt_starts_after_the_deadline(failing_hub):
    started = time.monotonic()
    with pytest.raises(SetupError, match="could not reach the hub"):
        report_port(failing_hub, TOKEN, 1234, attempts=1000, deadline=1.0, wait_initial=0.05)
    assert time.monotonic() - started < 1.0 + 0.5
    assert 3 <= _Always503.count < 1000
