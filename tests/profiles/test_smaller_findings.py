"""Issue 14, finding 8: the smaller things an administrator tripped over."""

from __future__ import annotations

import json
from pathlib import Path

from firecrestspawner.demo import DemoOptions, DemoStack
from firecrestspawner.naming import job_name
from firecrestspawner.profiles import load_profile_text
from firecrestspawner.profiles.form import build_view
from firecrestspawner.profiles.models import SCHEMA_ID, readable_duration
from firecrestspawner.profiles.options import UserInfo
from firecrestspawner.profiles.script import log_path

ROOT = Path(__file__).resolve().parents[2]

DURATION = """\
systems: [{name: c, scheduler: %s}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: runtime, kind: duration, display_name: Time, min: "10", max: "1-00:00:00", default: "1:00:00"}
"""


def _duration_text(scheduler: str) -> str:
    (profile,) = load_profile_text(DURATION % scheduler, name="d.yaml").profiles
    view = build_view(profile, user=UserInfo("alice", ()), values={}, selected=True)
    (option,) = view.options
    return option.description


def test_duration_limits_are_shown_as_readable_values() -> None:
    text = _duration_text("slurm")
    assert "at least 10 min" in text
    assert "at most 1 day" in text
    assert readable_duration("90") == "1 h 30 min"
    assert readable_duration("2-04:00:00") == "2 days 4 h"


def test_pbs_site_is_not_told_slurm_time_format() -> None:
    assert "Slurm" in _duration_text("slurm")
    text = _duration_text("pbs")
    assert "Slurm" not in text
    assert "HH:MM:SS" in text


def test_job_log_is_one_per_server_not_one_per_spawn(tmp_path: Path) -> None:
    first = job_name("hub", "alice", "gpu", "aaaaaaaaaaaa")
    second = job_name("hub", "alice", "gpu", "bbbbbbbbbbbb")
    other = job_name("hub", "alice", "cpu", "aaaaaaaaaaaa")
    assert log_path("/home/alice", first) == log_path("/home/alice", second)
    assert log_path("/home/alice", first) != log_path("/home/alice", other)
    # the built-in templates write exactly where the spawner reads (log_path)
    for scheduler in ("slurm", "pbs"):
        text = DURATION % scheduler
        (profile,) = load_profile_text(text, name="d.yaml").profiles
        from firecrestspawner.profiles.models import ProfileSet
        from firecrestspawner.profiles.options import validate_options

        vo = validate_options(
            ProfileSet((profile,)), {"profile": ["p"]}, user=UserInfo("alice", ())
        )
        script = vo.render_script(cmd="x", job_name=second, workdir="/home/alice")
        assert f" {log_path('/home/alice', first)}\n" in script or (
            f"={log_path('/home/alice', first)}\n" in script
        ), script
        assert "bbbbbbbbbbbb.log" not in script


def test_reference_doc_does_not_refer_to_itself() -> None:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert "docs/profiles.md" not in doc


def test_schema_id_is_a_url_an_editor_can_fetch() -> None:
    schema = json.loads((ROOT / "schemas" / "profile.schema.json").read_text(encoding="utf-8"))
    assert schema["$id"] == SCHEMA_ID
    # the raw file of the repository (a github.com/<org>/<repo>/<path> URL answers 404)
    assert SCHEMA_ID.startswith("https://raw.githubusercontent.com/eth-cscs/firecrestspawner/main/")
    assert (ROOT / SCHEMA_ID.split("/main/", 1)[1]).is_file()


def test_demo_has_named_servers_on_by_default(tmp_path: Path) -> None:
    assert DemoOptions().named_servers is True
    stack = DemoStack(DemoOptions(backend="local", base_dir=tmp_path / "demo"))
    assert "c.JupyterHub.allow_named_servers = True" in stack.hub_settings()
    off = DemoStack(DemoOptions(backend="local", base_dir=tmp_path / "off", named_servers=False))
    assert "c.JupyterHub.allow_named_servers = False" in off.hub_settings()
