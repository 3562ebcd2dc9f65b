"""The port-report handler, against a real JupyterHub (its own test fixtures)."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from jupyterhub import apihandlers
from jupyterhub.spawner import Spawner
from jupyterhub.tests.utils import add_user, api_request
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from firecrestspawner.handlers import (
    FirecRESTSpawnerAPIHandler,
    PortReportError,
    PortReporting,
    PortWaiter,
    parse_port_report,
    register_api_handler,
)

# Before the module-scoped hub builds its handlers, as the spawner module does.
register_api_handler()


class PortSpawner(PortReporting, Spawner):
    """A spawner that, like ours, waits in start() for the job's port report."""

    _running = False

    async def start(self):
        self.port_waiter = PortWaiter()
        try:
            port = await self.port_waiter.wait(30)
        finally:
            self.port_waiter.close()
        self._running = True
        return ("127.0.0.1", port)

    async def poll(self):
        return None if self._running else 0

    async def stop(self):
        self._running = False


class _Ok(web.RequestHandler):
    def get(self, *args):
        self.write("ok")


@pytest.fixture
def target_port():
    """A real HTTP server for the hub to find at the reported port."""
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/(.*)", _Ok)]))
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()


@pytest.fixture
def port_spawner(app):
    with mock.patch.dict(app.tornado_settings, {"spawner_class": PortSpawner}):
        yield


async def start_waiting(user):
    """Start a spawn through the hub; return (spawner, task) once it waits for a port."""
    task = asyncio.ensure_future(user.spawn())
    spawner = user.spawners[""]
    for _ in range(200):
        waiter = getattr(spawner, "port_waiter", None)
        if waiter is not None and waiter.open:
            return spawner, task
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    raise AssertionError("spawner never started waiting for a port")


async def report(app, token, body, *, raw=False):
    data = body if raw else json.dumps(body)
    headers = {"Authorization": f"token {token}"} if token else {}
    return await api_request(
        app, "firecrestspawner", method="post", data=data, headers=headers, noauth=not token
    )


def snapshot(spawner):
    """Every trait value and instance attribute, serialised (deep, by value)."""
    traits = {k: repr(v) for k, v in spawner.trait_values().items()}
    attrs = {k: repr(v) for k, v in vars(spawner).items()}
    return traits, attrs


@pytest.fixture
async def waiting(app, user, port_spawner, target_port):
    """A server of `user` waiting for its port; completed on teardown."""
    spawner, task = await start_waiting(user)
    yield spawner
    if spawner.port_waiter.open:
        r = await report(app, spawner.api_token, {"port": target_port})
        assert r.status_code == 200
    await asyncio.wait_for(task, 30)


async def test_accepts_valid_port_exactly_once(app, user, waiting, target_port):
    spawner = waiting
    r = await report(app, spawner.api_token, {"port": target_port})
    assert r.status_code == 200
    assert r.json() == {"port": target_port}
    assert spawner.port_waiter.port == target_port
    assert not spawner.port_waiter.open
    # one use per spawn
    r = await report(app, spawner.api_token, {"port": target_port + 1})
    assert r.status_code == 409
    assert spawner.port_waiter.port == target_port


async def test_spawn_completes_on_reported_port(app, user, port_spawner, target_port):
    spawner, task = await start_waiting(user)
    r = await report(app, spawner.api_token, {"port": target_port})
    assert r.status_code == 200
    await asyncio.wait_for(task, 30)
    assert spawner.server.port == target_port
    # running, no longer starting: refused, nothing changes
    r = await report(app, spawner.api_token, {"port": 9})
    assert r.status_code == 409
    assert spawner.server.port == target_port


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"port": 8888, "cmd": ["/bin/sh", "-c", "id"]}, id="port-and-cmd"),
        pytest.param({"batch_script": "#!/bin/sh\nid"}, id="batch-script"),
        pytest.param({"port": 8888, "ip": "10.0.0.1"}, id="port-and-ip"),
        pytest.param({"port": 8888, "firecrest_url": "http://evil"}, id="port-and-url"),
        pytest.param({"cmd": ["x"]}, id="cmd-only"),
        pytest.param({}, id="empty-object"),
        pytest.param([8888], id="list"),
        pytest.param({"port": True}, id="bool"),
        pytest.param({"port": "8888"}, id="string"),
        pytest.param({"port": 8888.0}, id="float"),
        pytest.param({"port": None}, id="null"),
        pytest.param({"port": 65536}, id="too-high"),
        pytest.param({"port": -1}, id="negative"),
    ],
)
async def test_refuses_anything_but_a_port(app, waiting, body):
    spawner = waiting
    before = snapshot(spawner)
    r = await report(app, spawner.api_token, body)
    assert r.status_code == 400
    assert snapshot(spawner) == before
    assert spawner.port_waiter.open


async def test_port_zero_from_an_old_wrapper_fails_the_spawn_saying_what_to_do(
    app, user, port_spawner
):
    """The existing project's wrapper reports the hub's port: 0 with this hub."""
    spawner, task = await start_waiting(user)
    r = await report(app, spawner.api_token, {"port": 0})
    assert r.status_code == 400
    assert "older firecrestspawner-singleuser" in r.text
    assert spawner.port_waiter.port is None
    assert not spawner.port_waiter.open  # nothing else is accepted for this spawn
    with pytest.raises(PortReportError, match=r"c\.Spawner\.port"):
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("port=8888", id="form-encoded"),
        pytest.param("", id="empty"),
        pytest.param('{"port": 8888', id="truncated"),
        pytest.param('{"port": 8888, "pad": "' + "x" * 2000 + '"}', id="too-large"),
    ],
)
async def test_refuses_malformed_bodies(app, waiting, raw):
    r = await report(app, waiting.api_token, raw, raw=True)
    assert r.status_code == 400
    assert waiting.port_waiter.open


async def test_refuses_unknown_token(app, waiting):
    r = await report(app, "0" * 32, {"port": 8888})
    assert r.status_code == 403
    assert waiting.port_waiter.open


async def test_refuses_without_token(app, waiting):
    r = await report(app, None, {"port": 8888})
    assert r.status_code == 403
    assert waiting.port_waiter.open


async def test_refuses_users_own_non_server_token(app, user, waiting):
    """A token of the same user that is not this server's token."""
    own_token = user.new_api_token(note="personal", scopes=["self"])
    r = await report(app, own_token, {"port": 8888})
    assert r.status_code == 403
    assert waiting.port_waiter.open


async def test_refuses_when_not_starting(app, user, port_spawner):
    spawner = user.spawners[""]
    token = user.new_api_token(note="Server at /user/x/")
    spawner.api_token = token  # a server token, but the server is not starting
    r = await report(app, token, {"port": 8888})
    assert r.status_code == 409
    assert spawner.server is None


async def test_other_users_server_token_cannot_touch_this_server(
    app, user, port_spawner, target_port
):
    other = add_user(app.db, app, name="porthandler-other")
    spawner, task = await start_waiting(user)
    other_spawner, other_task = await start_waiting(other)
    r = await report(app, other_spawner.api_token, {"port": target_port})
    assert r.status_code == 200
    # The other user's token reported the other user's server only.
    assert other_spawner.port_waiter.port == target_port
    assert spawner.port_waiter.open
    assert spawner.port_waiter.port is None
    r = await report(app, spawner.api_token, {"port": target_port})
    assert r.status_code == 200
    await asyncio.wait_for(asyncio.gather(task, other_task), 30)
    await other.stop("")


def test_register_is_idempotent():
    register_api_handler()
    register_api_handler()
    entries = [h for h in apihandlers.default_handlers if h[1] is FirecRESTSpawnerAPIHandler]
    assert entries == [(r"/api/firecrestspawner", FirecRESTSpawnerAPIHandler)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"port": 1}', 1, id="min"),
        pytest.param(b'{"port": 65535}', 65535, id="max"),
        pytest.param(b'{"port": 8888}', 8888, id="typical"),
    ],
)
def test_parse_port_report_accepts(body, expected):
    assert parse_port_report(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"port": 1e3}', id="exponent"),
        pytest.param(b'{"port": false}', id="false"),
        pytest.param(b'{"Port": 8888}', id="wrong-case"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"8888", id="bare-number"),
    ],
)
def test_parse_port_report_refuses(body):
    with pytest.raises(web.HTTPError) as info:
        parse_port_report(body)
    assert info.value.status_code == 400


async def testport_waiter_timeout_and_close():
    waiter = PortWaiter()
    with pytest.raises(TimeoutError):
        await waiter.wait(0.01)
    assert waiter.open  # a timeout does not consume the waiter
    waiter.close()
    assert not waiter.open
    assert waiter.report(8888) is False
    assert waiter.port is None


async def testport_waiter_report_before_wait():
    waiter = PortWaiter()
    assert waiter.report(8888) is True
    assert waiter.report(9999) is False
    assert await waiter.wait(0.01) == 8888
