"""``firecrestspawner-singleuser`` runs in a venv that holds nothing but this package.

The venv is made by ``python -m venv --without-pip`` (Debian's ``/usr/bin/python3``
when present, as on a compute image, else this interpreter); the package's
files are copied into its site-packages and the console script is written as
pip writes it from ``[project.scripts]``: what ``pip install --no-deps
firecrestspawner`` leaves, without the network a wheel build would need. The
wrapper then reports its port to a stand-in hub API (plain HTTP, and HTTPS
with JupyterHub's internal-SSL CA variable) and execs a trivial command.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import firecrestspawner
from firecrestspawner.jobenv import job_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(firecrestspawner.__file__).parent
TOKEN = "bare0venv0token0" + "cd" * 16
SCRIPT = "firecrestspawner-singleuser"

# Top-level modules the wrapper's imports bring in besides the standard library
# (Debian's interpreter runs its sitecustomize hook).
IMPORTED_THIRD_PARTY = """
import sys, firecrestspawner.singleuser
skip = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
skip |= {"__main__", "sitecustomize", "usercustomize"}
print("\\n".join(sorted({m.split(".")[0] for m in sys.modules} - skip)))
"""

# The command the wrapper execs: prints what it was given.
PRINTER = """
import json, os, sys
print(json.dumps({
    "argv": sys.argv[1:],
    "url": os.environ["JUPYTERHUB_SERVICE_URL"],
    "token": os.environ["JUPYTERHUB_API_TOKEN"],
    "site": os.environ["SITE_LIST"],
}))
"""


def _base_python() -> str:
    system = Path("/usr/bin/python3")
    if (
        system.is_file()
        and subprocess.run(
            [str(system), "-c", "import sys, venv; sys.exit(sys.version_info < (3, 10))"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    ):
        return str(system)
    return sys.executable


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not [p for p in Path(purelib).iterdir() if not p.name.startswith("_")]  # empty
    shutil.copytree(
        PACKAGE, Path(purelib) / "firecrestspawner", ignore=shutil.ignore_patterns("__pycache__")
    )
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"][SCRIPT]
    module, _, func = entry.partition(":")
    script = venv / "bin" / SCRIPT
    script.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {func}\n"
        f"if __name__ == '__main__':\n    sys.exit({func}())\n"
    )
    script.chmod(0o755)
    return venv


class _Hub(ThreadingHTTPServer):
    requests: list[dict]


class _PortHandler(BaseHTTPRequestHandler):
    server: _Hub

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(
            {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "body": json.loads(body),
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"message": "ok"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test hub")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "hub.crt", directory / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(params=["http", "https"])
def hub(request, tmp_path) -> Iterator[tuple[_Hub, str, dict[str, str]]]:
    server = _Hub(("127.0.0.1", 0), _PortHandler)
    server.requests = []
    extra: dict[str, str] = {}
    if request.param == "https":
        cert, key = _certificate(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        extra["JUPYTERHUB_SSL_CLIENT_CA"] = str(cert)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"{request.param}://127.0.0.1:{server.server_address[1]}/hub/api"
    yield server, url, extra
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(120)
def test_runs_with_nothing_but_the_standard_library(bare_venv, hub, tmp_path):
    server, api_url, extra = hub
    python = bare_venv / "bin" / "python"
    # Nothing else is importable there.
    probe = subprocess.run(
        [str(python), "-c", "import httpx"], capture_output=True, text=True, check=False
    )
    assert "No module named 'httpx'" in probe.stderr
    # What the wrapper imports is this package and the standard library.
    imported = subprocess.run(
        [
            str(python),
            "-c",
            IMPORTED_THIRD_PARTY,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert imported == ["firecrestspawner"]

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    hub_env = {
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:0/user/alice/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "FIRECRESTSPAWNER_TOKEN_FILE": str(token_file),
        "FIRECRESTSPAWNER_PASS_PORT_ARG": "1",
        "SITE_LIST": "a,b",  # packed by jobenv, unpacked by the wrapper
        **extra,
    }
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **job_environment(hub_env)}
    command = [
        str(python),
        "-c",
        PRINTER,
    ]
    done = subprocess.run(
        [str(bare_venv / "bin" / SCRIPT), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 1
    request = server.requests[0]
    port = request["body"]["port"]
    assert request == {
        "path": "/hub/api/firecrestspawner",
        "authorization": f"token {TOKEN}",
        "body": {"port": port},
    }
    printed = json.loads(done.stdout)
    assert printed == {
        "argv": [f"--port={port}"],
        "url": f"http://0.0.0.0:{port}/user/alice/",
        "token": TOKEN,
        "site": "a,b",
    }
    assert not token_file.exists()
    assert TOKEN not in done.stderr
    assert os.environ.get("JUPYTERHUB_API_TOKEN") != TOKEN  # nothing leaked into the test
