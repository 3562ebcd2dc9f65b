"""Shared test configuration.

JupyterHub's own fixtures (``app``, ``db``, ``user``, ...) come from its test
package. Note that its autouse ``tmp_cwd`` fixture changes the working
directory per module: tests locate files relative to ``__file__``.

Fixture plugins of this project live in ``tests/fixtures/``; add yours to
``pytest_plugins`` below.
"""

from __future__ import annotations

pytest_plugins = [
    "jupyterhub.tests.conftest",
    "tests.fixtures.emulator",
    "tests.fixtures.slurm",
    "tests.fixtures.firecrest_server",
    "tests.fixtures.chp",
    "tests.fixtures.browser",
]
