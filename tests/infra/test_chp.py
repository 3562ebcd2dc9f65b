"""JupyterHub's ``app`` fixture runs behind the configurable-http-proxy from node_modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.tests.utils import async_requests, public_url

from tests.fixtures.chp import NODE_BIN

pytestmark = pytest.mark.chp


def test_chp_comes_from_node_modules(chp):
    assert Path(chp).resolve().is_relative_to(NODE_BIN.parent.resolve())


async def test_hub_answers_through_the_proxy(app):
    assert isinstance(app.proxy, ConfigurableHTTPProxy)
    routes = await app.proxy.get_all_routes()
    # The hub added its own route through the proxy's REST API.
    assert routes[app.hub.routespec]["data"]["hub"] is True
    r = await async_requests.get(public_url(app, path="hub/api"))
    assert r.status_code == 200
    assert "version" in r.json()
