"""The hub-level fixtures of ``tests/hub`` (a real JupyterHub, the FirecREST emulator)."""

from tests.hub.conftest import (  # noqa: F401 - fixtures
    hub_emulator,
    make_user,
    profiles_dir,
    use_spawner,
    workdir,
)
