"""The demo's generated configuration: what it sets, and where its secrets are not."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from firecrestspawner.demo import HUB_SECRET_VARS, DemoError, DemoOptions, DemoStack, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path) -> DemoStack:
    stack = DemoStack(
        DemoOptions(port=8123, backend="local", base_dir=tmp_path / "demo", service_token="s" * 40)
    )
    stack.write_config()
    return stack


def load_hub_config(stack: DemoStack, env: dict[str, str]):
    old = dict(os.environ)
    os.environ.update(env)
    try:
        loader = PyFileConfigLoader(stack.hub_config.name, path=str(stack.hub_config.parent))
        return loader.load_config()
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_hub_config_runs_our_spawner_in_profile_mode_with_the_demo_profile(stack):
    env = {
        "FIRECRESTSPAWNER_DEMO_CLIENT_SECRET": stack.client_secret,
        "FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN": "s" * 40,
    }
    c = load_hub_config(stack, env)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123"
    assert c.JupyterHub.spawner_class == "firecrest-slurm"
    assert c.JupyterHub.authenticator_class == "firecrestspawner.demo_auth.DemoAuthenticator"
    assert c.Authenticator.enable_auth_state is True
    assert c.FirecRESTSpawnerBase.firecrest_url == stack.emulator_url
    assert c.DemoAuthenticator.token_url == f"{stack.emulator_url}/idp/token"
    assert c.DemoAuthenticator.client_secret == stack.client_secret
    profiles = Path(c.FirecRESTSpawnerBase.profiles_dir)
    assert [p.name for p in profiles.iterdir()] == ["demo.yaml"]
    assert (profiles / "demo.yaml").read_text() == (REPO / "profiles" / "demo.yaml").read_text()
    # Absolute commands from this environment, JupyterLab by default.
    assert all(Path(part).is_absolute() and Path(part).exists() for part in c.Spawner.cmd)
    assert [Path(p).name for p in c.Spawner.cmd] == [
        "firecrestspawner-singleuser",
        "jupyterhub-singleuser",
    ]
    assert c.Spawner.default_url == "/lab"
    assert ("--ServerApp.allow_root=True" in c.Spawner.args) == (os.geteuid() == 0)
    assert c.JupyterHub.services[0]["api_token"] == "s" * 40
    # The home page shows each running server's remaining time (issue #15.3).
    (templates,) = c.JupyterHub.template_paths
    home = Path(templates) / "home.html"
    assert "firecrest_remaining" in home.read_text()
    assert home.read_text().count('{% extends "templates/home.html" %}') == 1


def test_emulator_serves_the_systems_of_the_profiles(stack):
    settings = stack.emulator_settings()
    assert [s["name"] for s in settings["systems"]] == ["local"]  # profiles/demo.yaml
    assert {s["backend"] for s in settings["systems"]} == {"local"}
    assert settings["idp"]["clients"]["firecrestspawner-demo"]["secret"] == stack.client_secret


def test_secrets_stay_out_of_the_hub_config_and_in_private_files(stack):
    text = stack.hub_config.read_text()
    for secret in (stack.client_secret, stack.admin_token, stack.crypt_key, "s" * 40):
        assert secret not in text
    assert stat.S_IMODE(stack.hub_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(stack.emulator_config.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack.hub_dir / "crypt_key").stat().st_mode) == 0o600
    # A restart of the same demo keeps the key that encrypts auth_state.
    again = DemoStack(DemoOptions(backend="local", base_dir=stack.base))
    assert again.crypt_key == stack.crypt_key


def test_bad_choices_are_clear_errors(tmp_path):
    with pytest.raises(DemoError, match="unknown backend"):
        DemoStack(DemoOptions(backend="pbs", base_dir=tmp_path / "a"))
    with pytest.raises(DemoError, match="does not exist"):
        DemoStack(
            DemoOptions(backend="local", base_dir=tmp_path / "b", profiles_dir=tmp_path / "x")
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    stack = DemoStack(DemoOptions(backend="local", base_dir=tmp_path / "c", profiles_dir=empty))
    with pytest.raises(DemoError, match="no valid profile"):
        stack.write_config()


def test_emulator_process_gets_none_of_the_hubs_secrets(stack, monkeypatch):
    """The emulator reads its own secrets from its config; the hub's stay the hub's.

    Even set in the environment the demo itself was started with.
    """
    for name in HUB_SECRET_VARS:
        monkeypatch.setenv(name, f"outer-{name}")
    emulator_env = stack._emulator_env()
    hub_env = stack._env()
    for secret in (stack.client_secret, stack.crypt_key, "s" * 40, stack.admin_token):
        assert secret not in emulator_env.values()
    assert not HUB_SECRET_VARS & set(emulator_env)
    assert hub_env["JUPYTERHUB_CRYPT_KEY"] == stack.crypt_key
    assert hub_env["FIRECRESTSPAWNER_DEMO_CLIENT_SECRET"] == stack.client_secret
    assert hub_env["FIRECRESTSPAWNER_DEMO_SERVICE_TOKEN"] == "s" * 40


def test_free_ports_are_below_the_ephemeral_range():
    """Outgoing connections take their local ports from the ephemeral range, so a
    port picked there could be gone before the demo's service binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= p < low for p in ports), ports
    assert len(ports) > 1  # picked at random, not one fixed port
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))  # and free
