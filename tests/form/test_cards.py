"""The form keeps each profile's rendered card while nothing it shows has changed."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from firecrestspawner import profile_mode
from firecrestspawner.profile_mode import ProfileContext, ProfileMode
from firecrestspawner.profiles import form
from firecrestspawner.profiles.options import UserInfo

FILE = """\
systems: [{name: alps}]
profiles:
  - id: small
    display_name: %s
    system: alps
    batch_script: {builtin: slurm}
    options:
      - {id: memory, kind: choice, display_name: Memory, default: m4,
         choices: {m4: {display_name: 4 GB, req: {memory: 4G}}, m8: {display_name: 8 GB, req: {memory: 8G}}}}
  - id: large
    display_name: Large
    system: alps
    batch_script: {builtin: slurm}
  - id: staff
    display_name: Staff only
    system: alps
    groups: [staff]
    batch_script: {builtin: slurm}
"""


async def _no_client(url: str):
    raise AssertionError("no cluster choice here: FirecREST is never asked")


def _mode(path: Path, user: UserInfo, base_req: dict[str, str] | None = None) -> ProfileMode:
    context = ProfileContext(
        user=user,
        firecrest_url="https://firecrest.example",
        base_req=base_req or {},
        client=_no_client,
        log=logging.getLogger("test"),
    )
    return ProfileMode(str(path), context)


@pytest.fixture
def built(monkeypatch):
    """Ids of the profiles whose view the form builds (a card not taken from the cache)."""
    profile_mode.CARDS.clear()
    calls: list[str] = []
    real = form.build_view

    def counting(profile, **kwargs):
        calls.append(profile.id)
        return real(profile, **kwargs)

    monkeypatch.setattr(form, "build_view", counting)
    yield calls
    profile_mode.CARDS.clear()


async def test_a_second_render_reuses_every_card(tmp_path: Path, built) -> None:
    (tmp_path / "p.yaml").write_text(FILE % "Small")
    mode = _mode(tmp_path, UserInfo("alice"))
    first = await mode.options_form({})
    assert built == ["small", "large"]
    assert await mode.options_form({}) == first
    assert built == ["small", "large"]


async def test_a_changed_file_renders_its_cards_again(tmp_path: Path, built) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(FILE % "Small")
    mode = _mode(tmp_path, UserInfo("alice"))
    await mode.options_form({})
    path.write_text(FILE % "Tiny")
    html = await mode.options_form({})
    assert "Tiny" in html
    assert "Small" not in html
    assert built == ["small", "large", "small", "large"]


async def test_cards_are_per_user_groups_config_and_remembered_values(
    tmp_path: Path, built
) -> None:
    (tmp_path / "p.yaml").write_text(FILE % "Small")
    await _mode(tmp_path, UserInfo("alice")).options_form({})
    staff = await _mode(tmp_path, UserInfo("bob", ("staff",))).options_form({})
    assert "Staff only" in staff
    assert built[2:] == ["small", "large", "staff"]
    del built[:]
    await _mode(tmp_path, UserInfo("alice"), {"partition": "debug"}).options_form({})
    assert built == ["small", "large"]
    del built[:]
    # The remembered profile's card shows the remembered values: built each time.
    remembered = {"profile": "small", "memory": "m8"}
    for _ in range(2):
        html = await _mode(tmp_path, UserInfo("alice")).options_form(remembered)
        assert re.search(r'value="m8"[^>]*selected', html)
        assert not re.search(r'value="m4"[^>]*selected', html)
    # "large" is as before (not selected, defaults): its card comes from the cache.
    assert built == ["small", "small"]
