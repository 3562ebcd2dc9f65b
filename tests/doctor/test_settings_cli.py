"""How the doctor reads a hub configuration, and its command line.

The configuration is read the way JupyterHub reads it (traitlets' loader,
sections of the class hierarchy merged base first, ``@default`` methods for
what is not configured); the command line never takes or prints a token.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from firecrestspawner.cli import main
from firecrestspawner.doctor import ConfigProblem, hub_settings
from firecrestspawner.doctor.settings import read_env_file
from firecrestspawner.emulator.testing import RunningEmulator

from .conftest import SA_SECRET, write_config


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text("c = get_config()  # noqa: F821\n" + textwrap.dedent(text))
    return path


def test_sections_merge_base_first_and_defaults_come_from_the_traits(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FIRECREST_URL", "https://fc.example.org")
    monkeypatch.setenv("SA_CLIENT_SECRET", "from-the-environment")
    path = config(
        tmp_path,
        """
        c.JupyterHub.spawner_class = "firecrest-slurm"
        c.Spawner.start_timeout = 100
        c.FirecRESTSpawnerBase.start_timeout = 200
        c.SlurmSpawner.start_timeout = 300
        c.FirecRESTSpawnerBase.workdir = "/scratch/{username}/jupyter"
        c.Spawner.args.append("--debug")
        c.Spawner.cmd = "module load x && firecrestspawner-singleuser jupyterhub-singleuser"
        """,
    )
    s = hub_settings(path)
    sp = s.spawner
    assert sp.start_timeout == 300
    assert sp.workdir == "/scratch/{username}/jupyter"
    assert sp.firecrest_url == "https://fc.example.org"  # @default: $FIRECREST_URL
    assert sp.service_account_client_secret == "from-the-environment"
    assert sp.args == ["--debug"]  # a LazyConfigValue applied to the default
    assert sp.node_name_template == ""  # a static default
    assert s.wrapper() == ("firecrestspawner-singleuser", "module load x &&")
    # JupyterHub's defaults: the hub listens and is reached on 127.0.0.1:8081.
    assert s.hub_api_url == "http://127.0.0.1:8081/hub/api"
    assert (s.hub_bind_host, s.hub_bind_port) == ("127.0.0.1", 8081)


def test_credentials_default_to_the_authenticators_and_connect_url_wins(tmp_path: Path):
    path = config(
        tmp_path,
        """
        c.JupyterHub.spawner_class = "firecrestspawner.spawner.SlurmSpawner"
        c.JupyterHub.authenticator_class = "firecrestspawner.demo_auth.DemoAuthenticator"
        c.DemoAuthenticator.token_url = "https://idp.example.org/token"
        c.DemoAuthenticator.client_id = "hub"
        c.JupyterHub.base_url = "/jh/"
        c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
        c.JupyterHub.hub_connect_url = "http://hub.cluster.internal:8081"
        """,
    )
    s = hub_settings(path)
    assert s.spawner.token_url == "https://idp.example.org/token"
    assert s.spawner.client_id == "hub"
    assert s.hub_api_url == "http://hub.cluster.internal:8081/jh/hub/api"
    assert (s.hub_bind_host, s.hub_bind_port) == ("0.0.0.0", 8081)  # noqa: S104


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ('import os\nx = os.environ["HUB_SECRET_X"]\n', "'HUB_SECRET_X', which is not set",
         "--env-file"),
        ("c.JupyterHub.spawner_class = 'simple'\n", "not a firecrestspawner class",
         '"firecrest-slurm"'),
        ("\n\n1/0\n", "jupyterhub_config.py:4: ZeroDivisionError", "fix the configuration"),
    ],
)  # fmt: skip
def test_unusable_configurations_say_where_and_what_to_fix(tmp_path, text, message, fix):
    with pytest.raises(ConfigProblem) as info:
        hub_settings(config(tmp_path, text))
    assert message in info.value.message
    assert fix in info.value.fix


def test_env_file_reads_systemd_style_lines(tmp_path: Path):
    env = tmp_path / "hub.env"
    env.write_text("# secrets\nexport A=1\nB=\"two words\"\n\nC='x=y'\n")
    assert read_env_file(env) == {"A": "1", "B": "two words", "C": "x=y"}
    env.write_text("not a line\n")
    with pytest.raises(ConfigProblem, match=r"hub\.env:1: not a KEY=VALUE line"):
        read_env_file(env)


def test_a_token_on_the_command_line_is_refused_without_echoing_it(capsys):
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--user", "alice", "--user-token", "secret-token-value-123"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--user-token is not accepted" in err
    assert "FIRECRESTSPAWNER_DOCTOR_TOKEN" in err
    assert "secret-token-value-123" not in err


def test_command_exit_codes_json_and_no_secret_in_the_output(
    emu: RunningEmulator, tmp_path: Path, capsys, monkeypatch
):
    token = emu.issue_refresh_token("alice")
    monkeypatch.setenv("FIRECRESTSPAWNER_DOCTOR_TOKEN", token)
    path = write_config(tmp_path, emu)
    assert main(["doctor", "-f", str(path), "--user", "alice"]) == 0
    human = capsys.readouterr().out
    assert "[PASS] Service account token grant" in human
    assert "All checks passed." in human

    bad = write_config(tmp_path / "bad", emu, sa_secret="wrong-secret-value")
    assert main(["doctor", "-f", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["failed"] == ["sa-token"]
    step = next(s for s in data["steps"] if s["id"] == "sa-token")
    assert "service_account_client_secret" in step["fix"]

    assert main(["doctor", "-f", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().out

    # The user's token (refreshed and rotated by the doctor) and the secrets never show.
    token_file = tmp_path / "token"
    token_file.write_text(emu.issue_refresh_token("alice"))
    assert main(["doctor", "-f", str(path), "--json", "--user", "alice",
                 "--user-token-file", str(token_file)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for secret in (token, token_file.read_text(), SA_SECRET, "wrong-secret-value"):
        assert secret not in human + out
