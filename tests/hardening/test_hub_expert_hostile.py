"""Hostile values through expert scheduler options and dependent limits, in a real JupyterHub.

The allow-list is as permissive as an administrator can write it (``--comment``
with the value pattern ``.*``), beside a time limit that depends on the
partition. Hostile values go through the REST API, the form POST, ``opt-``
links and saved options, on each path a sample with every class of the hostile
corpus (why a sample: ``hubhelpers.py``; every value goes through the same
validator in ``test_expert_hostile.py``): each gets a 400 naming the field (never a 500) and
submits nothing, or spawns with exactly the directive it names (read from the
script the emulator received, with the port of ``sbatch``'s tokenizer that
``test_directive_injection.py`` checks against real ``sbatch``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from jupyterhub.tests.utils import api_request

from firecrestspawner.profiles import load_profile_text
from firecrestspawner.profiles.directives import slurm_directives
from firecrestspawner.profiles.models import ProfileSet
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options
from tests.hub.test_profile_form import (
    error_text,
    jobs_of,
    post_form,
    spawn_page,
    stop_server,
    wait_for_job,
)

from .corpus import HOSTILE_JSON, hostile_values
from .hubhelpers import classes_of, hub_sample, json_ok, submitted_script

pytestmark = pytest.mark.timeout(600)

SITE = """\
version: 1
firecrest_url: {url}
systems:
  - name: cluster
    workdir: {workdir}
profiles:
  - id: expert
    display_name: Expert
    system: cluster
    default: true
    options:
      - id: partition
        display_name: Partition
        kind: choice
        choices: {{normal: {{display_name: normal}}, debug: {{display_name: debug}}}}
      - id: runtime
        display_name: Time limit
        kind: duration
        max: "04:00:00"
        default: "01:00:00"
        depends_on:
          partition:
            debug: {{max: "30"}}
      - id: extra
        display_name: Extra options
        kind: scheduler_options
        max_length: 4096
        allow:
          --comment: {{value: ".*", repeatable: true}}
          --exclusive: {{}}
"""


@pytest.fixture
def expert_site(tmp_path: Path, hub_emulator, workdir) -> Path:
    directory = tmp_path / "expert"
    directory.mkdir()
    (directory / "site.yaml").write_text(
        SITE.format(url=hub_emulator.url, workdir=workdir), encoding="utf-8"
    )
    return directory


def _verdict(site: Path, raw: dict[str, Any]) -> str | None:
    """The field the validator refuses (it renders the script too), or None."""
    profiles = ProfileSet(load_profile_text((site / "site.yaml").read_text(), name="s").profiles)
    try:
        validate_options(profiles, {"profile": "expert", **raw}, user=UserInfo("u"))
    except OptionError as e:
        return e.field
    return None


def _corpus_value(text: str) -> str:
    """The corpus value a case was built from."""
    return text.removeprefix("--comment=")


async def test_hostile_expert_and_dependent_values_never_500(
    app, use_spawner, make_user, hub_emulator, expert_site
):
    use_spawner(expert_site, allow_link_spawn=True)
    statuses: list[int] = []
    strings = [v for v in hostile_values(120) if "\ud800" not in v]
    texts = [f"--comment={v}" for v in strings] + strings
    refused = [t for t in texts if _verdict(expert_site, {"extra": t}) is not None]
    accepted = [t for t in texts if t not in refused and t.strip()]
    assert len(refused) >= 100
    assert accepted
    # Every class of the refused values on every path (hubhelpers.py says why).
    sample = hub_sample(refused, _corpus_value)
    sample_classes = frozenset().union(*(classes_of(_corpus_value(t)) for t in sample))
    assert sample_classes == frozenset().union(*(classes_of(_corpus_value(t)) for t in refused))
    assert len(sample_classes) >= 50
    runtimes = hub_sample(strings)
    assert frozenset().union(*map(classes_of, runtimes)) == frozenset().union(
        *map(classes_of, strings)
    )

    user, cookies = await make_user("xh-rest")
    cases: list[dict[str, Any]] = [{"extra": t} for t in sample]
    cases += [{"extra": v} for v in HOSTILE_JSON if json_ok(v) and not isinstance(v, str)]
    cases += [{"partition": "debug", "runtime": v} for v in ["45", "1:00:00", "1-00", *runtimes]]
    for raw in cases:
        expected = _verdict(expert_site, raw)
        if expected is None:
            continue
        body = json.dumps({"profile": "expert", **raw})
        r = await api_request(app, "users", user.name, "server", method="post", data=body)
        statuses.append(r.status_code)
        assert r.status_code == 400, (raw, r.status_code, r.text[:300])
        assert expected in r.json()["message"]
    assert jobs_of(hub_emulator, user.name) == []

    user, cookies = await make_user("xh-form")
    for text in sample:
        r = await post_form(app, cookies, {"profile": "expert", "expert.extra": text})
        statuses.append(r.status_code)
        assert r.status_code == 400, (text, r.status_code)
        assert "extra" in error_text(BeautifulSoup(r.text, "html.parser"))
    r = await post_form(
        app, cookies, {"profile": "expert", "expert.partition": "debug", "expert.runtime": "45"}
    )
    statuses.append(r.status_code)
    assert r.status_code == 400
    assert "runtime" in error_text(BeautifulSoup(r.text, "html.parser"))
    assert jobs_of(hub_emulator, user.name) == []

    user, cookies = await make_user("xh-link")
    for text in [t for t in sample if "\x00" not in t]:
        r, soup = await spawn_page(app, cookies, **{"opt-profile": "expert", "opt-extra": text})
        statuses.append(r.status_code)
        assert r.status_code == 400, (text, r.status_code)
        assert "extra" in error_text(soup)
    assert jobs_of(hub_emulator, user.name) == []

    user, cookies = await make_user("xh-saved")
    for options in [{"extra": t} for t in refused[:15]] + [{"partition": "debug", "runtime": "45"}]:
        user.spawner.orm_spawner.user_options = {"profile": "expert", **options}
        app.db.commit()
        r, soup = await spawn_page(app, cookies)
        statuses.append(r.status_code)
        assert r.status_code == 200, (options, r.status_code)
        r = await api_request(app, "users", user.name, "server", method="post")
        statuses.append(r.status_code)
        assert r.status_code == 400, (options, r.status_code)
    assert jobs_of(hub_emulator, user.name) == []

    # Accepted values spawn with exactly the directives they name.
    user, cookies = await make_user("xh-ok")
    for text in accepted[:2]:
        body = json.dumps({"profile": "expert", "extra": text})
        r = await api_request(app, "users", user.name, "server", method="post", data=body)
        assert r.status_code in (201, 202), r.text
        job_id = await wait_for_job(user.spawner)
        script = await asyncio.to_thread(submitted_script, hub_emulator, user.name, job_id)
        flat = [a for line in slurm_directives(script) for a in line]
        comments = [a for a in flat if a.startswith("--comment")]
        assert comments == user.spawner.user_options["extra"].split(" "), (text, flat)
        assert all(a.startswith("--") for a in flat), flat
        await stop_server(app, user)

    assert len(statuses) >= 120
    assert 500 not in statuses
