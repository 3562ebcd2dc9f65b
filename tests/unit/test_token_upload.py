"""The token file is uploaded from memory: no local copy on the hub (issue 17).

pyfirecrest's ``upload`` reads a local file; the token went through a
temporary file written and read back in threads for every spawn. The upload
now sends the content from memory in the request pyfirecrest would have made
(a direct upload under ``MAX_DIRECT_UPLOAD_SIZE``), then ``chmod 600``.
"""

from __future__ import annotations

import stat
from pathlib import Path
from unittest import mock

import pytest
from firecrest import correlation_id

from firecrestspawner import client as fc

pytestmark = pytest.mark.timeout(60)

UPLOAD = "POST /filesystem/{system}/ops/upload"
CHMOD = "PUT /filesystem/{system}/ops/chmod"


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def client(emulator):
    emulator.admin.reset_faults()
    emulator.admin.clear_requests()
    settings = fc.ClientSettings(read_attempts=2, read_deadline=10, request_timeout=10)
    token = StaticToken(emulator.admin.issue_access_token("upload-user", lifetime=3600))
    yield fc.get_client(emulator.url, "user:upload-user", token, settings)
    emulator.admin.reset_faults()
    await fc.close_all()


def no_local_files():
    """Any local file or thread hop of the old path fails the test."""
    refuse = AssertionError("the token touched the hub's disk")
    return (
        mock.patch("tempfile.mkdtemp", side_effect=refuse),
        mock.patch("tempfile.mkstemp", side_effect=refuse),
        mock.patch("aiofiles.open", side_effect=refuse),
    )


async def test_the_token_file_is_written_from_memory_with_mode_600(emulator, client, tmp_path):
    tmp_path.chmod(0o755)
    directory = tmp_path / ".firecrestspawner"
    secret = "t0ken-" + "x" * 40
    a, b, c = no_local_files()
    with a, b, c:
        path = await client.write_private_file(emulator.system, str(directory), "j.token", secret)
    assert path == f"{directory}/j.token"
    assert Path(path).read_text() == secret
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    routes = [f"{r['method']} {r['route']}" for r in emulator.admin.requests()]
    assert routes.count(UPLOAD) == 1
    assert routes[-1] == CHMOD


async def test_a_deleted_directory_is_made_again_and_the_upload_repeated(
    emulator, client, tmp_path
):
    tmp_path.chmod(0o755)
    directory = tmp_path / ".firecrestspawner"
    await client.write_private_file(emulator.system, str(directory), "one.token", "first")
    for f in directory.iterdir():
        f.unlink()
    directory.rmdir()
    a, b, c = no_local_files()
    with a, b, c:
        path = await client.write_private_file(emulator.system, str(directory), "two", "second")
    assert Path(path).read_text() == "second"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


async def test_the_upload_carries_the_callers_correlation_id_or_its_own(emulator, client, tmp_path):
    """As pyfirecrest's own methods: one id for the whole call, the caller's if set."""
    tmp_path.chmod(0o755)
    emulator.admin.clear_requests()
    with correlation_id("11111111-2222-3333-4444-555555555555"):
        await client.raw.upload_small(emulator.system, str(tmp_path), "a", b"x")
    await client.raw.upload_small(emulator.system, str(tmp_path), "b", b"y")
    ids = [r["correlation_id"] for r in emulator.admin.requests() if r["route"].endswith("/upload")]
    assert ids[0] == "11111111-2222-3333-4444-555555555555"
    assert len(ids) == 2
    assert ids[1]
    assert ids[1] != ids[0]


async def test_a_large_content_is_refused_before_any_request(emulator, client, tmp_path):
    emulator.admin.clear_requests()
    size = client.raw.MAX_DIRECT_UPLOAD_SIZE
    with pytest.raises(ValueError, match="too large"):
        await client.raw.upload_small(emulator.system, str(tmp_path), "big", b"x" * size)
    assert not [r for r in emulator.admin.requests() if r["route"].endswith("/ops/upload")]
