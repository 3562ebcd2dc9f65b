"""Findings 1, 2 and 4 in a real JupyterHub: every path answers 400 or spawns, never 500.

A profile with a permissive text option on a directive line, number options
and a text option whose pattern backtracks catastrophically in Python's ``re``.
Hostile values go through the form POST, the REST API, ``opt-`` links and
saved options: on each path a sample with every class of the hostile corpus
(why a sample: ``hubhelpers.py``; every value goes through the same validator
in ``test_hostile_values.py``). The values the validator (run here in-process,
the same function the hub runs) refuses must get a 400 naming the field and
submit nothing; a sample of accepted ones must spawn with the directives the
administrator wrote, the value inside one argument (checked on the script the
emulator received, with the port of ``sbatch``'s tokenizer that
``test_directive_injection.py`` checks against real ``sbatch``).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from jupyterhub.tests.utils import api_request, async_requests, public_host

from firecrestspawner.profiles import load_profile_text
from firecrestspawner.profiles.directives import slurm_directives
from firecrestspawner.profiles.models import ProfileSet
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options
from firecrestspawner.profiles.script import ScriptRejected
from tests.hub.test_profile_form import (
    error_text,
    jobs_of,
    post_form,
    spawn_page,
    stop_server,
    wait_for_job,
)

from .corpus import HOSTILE_JSON, SPECIAL, hostile_values
from .hubhelpers import classes_of, hub_sample, json_ok, submitted_script

pytestmark = pytest.mark.timeout(600)

SITE = """\
version: 1
firecrest_url: {url}
systems:
  - name: cluster
    workdir: {workdir}
profiles:
  - id: open
    display_name: Open
    system: cluster
    default: true
    options:
      - id: comment
        display_name: Constraint
        kind: text
        pattern: '[^\\x00-\\x1f]*'
        max_length: 4096
        req: constraint
      - id: nnodes
        display_name: Nodes
        kind: integer
        min: 1
        max: 4
        default: 1
      - id: mem
        display_name: Memory (GB)
        kind: number
        min: 0.5
        max: 64
        step: 0.5
        default: 1
        req: memory_gb
      - id: label
        display_name: Label
        kind: text
        pattern: '(a+)+$'
        max_length: 4096
        req: label
"""


@pytest.fixture
def hostile_site(tmp_path: Path, hub_emulator, workdir) -> Path:
    directory = tmp_path / "hostile"
    directory.mkdir()
    (directory / "site.yaml").write_text(
        SITE.format(url=hub_emulator.url, workdir=workdir), encoding="utf-8"
    )
    return directory


def _local_verdict(site: Path, raw: dict[str, Any]) -> str | None:
    """The field the validator and the script check refuse, or None when accepted."""
    text = (site / "site.yaml").read_text()
    profiles = ProfileSet(load_profile_text(text, name="site.yaml").profiles)
    try:
        vo = validate_options(profiles, raw, user=UserInfo("u"))
        vo.render_script(cmd="c", job_name="j", workdir="/w")
    except OptionError as e:
        return e.field
    except ScriptRejected as e:
        return e.field
    return None


def _cases(site: Path, values: list[Any], option: str) -> tuple[list[Any], list[Any]]:
    refused, accepted = [], []
    for value in values:
        field = _local_verdict(site, {"profile": "open", option: value})
        (accepted if field is None else refused).append(value)
    return refused, accepted


#: The options the built-in Slurm template writes (with the spawner's default account).
TEMPLATE_OPTIONS = {
    "--job-name",
    "--output",
    "--error",
    "--chdir",
    "--get-user-env",
    "--account",
    "--constraint",
    "--nodes",
}


async def _check_spawned(app, user, emu, value: str) -> None:
    job_id = await wait_for_job(user.spawner)
    script = await asyncio.to_thread(submitted_script, emu, user.name, job_id)
    directives = slurm_directives(script)
    flat = [arg for line in directives for arg in line]
    assert [a for a in flat if a.startswith("--constraint")] == [f"--constraint={value}"]
    # Only the options the built-in template writes for this profile, each once.
    names = [a.split("=", 1)[0] for a in flat]
    assert all(a.startswith("--") for a in flat), flat
    assert len(names) == len(set(names)), flat
    assert set(names) <= TEMPLATE_OPTIONS, flat
    await stop_server(app, user)


async def test_hostile_values_on_rest_form_links_and_saved_options_never_500(
    app, use_spawner, make_user, hub_emulator, hostile_site
):
    use_spawner(hostile_site, allow_link_spawn=True)
    statuses: dict[str, list[int]] = {"rest": [], "form": [], "link": [], "saved": []}
    strings = [v for v in hostile_values(160) if "\ud800" not in v]
    refused, accepted = _cases(hostile_site, strings, "comment")
    # Every class of the refused values, on every path (hubhelpers.py says why).
    sample = hub_sample(refused)
    sample_classes = frozenset().union(*map(classes_of, sample))
    assert sample_classes == frozenset().union(*map(classes_of, refused))
    assert {f"special:{i}" for i, v in enumerate(SPECIAL) if v in refused} <= sample_classes
    assert len(sample_classes) >= 50
    numbers = [v for v in HOSTILE_JSON if json_ok(v)] + ["9" * 400, "1e400", "NaN"]

    # REST: typed JSON values.
    user, cookies = await make_user("hostile-rest")
    rest_cases = [("comment", v) for v in sample] + [
        (o, v) for o in ("nnodes", "mem", "label") for v in numbers
    ]
    rest_cases += [("label", "a" * 3000 + "!"), ("label", "a" * 40 + "b")]
    for option, value in rest_cases:
        expected = _local_verdict(hostile_site, {"profile": "open", option: value})
        if expected is None:
            continue
        body = json.dumps({"profile": "open", option: value})
        r = await api_request(app, "users", user.name, "server", method="post", data=body)
        statuses["rest"].append(r.status_code)
        assert r.status_code == 400, (option, value, r.status_code, r.text[:300])
        assert expected in r.json()["message"]
    # The profile key and the keys themselves.
    odd_bodies: list[Any] = [
        {"profile": v} for v in [*refused[:20], 10**400, [[["x"]]], {"a": "b"}, True]
    ]
    odd_bodies += [
        {"profile": "open", k: "x"} for k in ["cmd", "_xsrf2", "a" * 5000, "\u2028", "x\ny"]
    ]
    odd_bodies += [
        {"profile": "open", "comment": {"image": "x"}},
        {"profile": "open", "nnodes": {}},
    ]
    for body in odd_bodies:
        r = await api_request(
            app, "users", user.name, "server", method="post", data=json.dumps(body)
        )
        statuses["rest"].append(r.status_code)
        assert r.status_code == 400, (body, r.status_code, r.text[:300])
    assert jobs_of(hub_emulator, user.name) == []

    # Form POST: strings as a browser sends them.
    user, cookies = await make_user("hostile-form")
    for value in sample:
        r = await post_form(app, cookies, {"profile": "open", "open.comment": value})
        statuses["form"].append(r.status_code)
        assert r.status_code == 400, (value, r.status_code)
        assert "comment" in error_text(BeautifulSoup(r.text, "html.parser"))
    for value in ["9" * 400, "-" + "9" * 30, "1e999", "inf"]:
        r = await post_form(app, cookies, {"profile": "open", "open.nnodes": value})
        statuses["form"].append(r.status_code)
        assert r.status_code == 400, value
    assert jobs_of(hub_emulator, user.name) == []

    # opt- links.
    user, cookies = await make_user("hostile-link")
    for value in hub_sample(v for v in refused if "\x00" not in v):
        r, soup = await spawn_page(app, cookies, **{"opt-profile": "open", "opt-comment": value})
        statuses["link"].append(r.status_code)
        assert r.status_code == 400, (value, r.status_code)
        assert "comment" in error_text(soup)
    assert jobs_of(hub_emulator, user.name) == []

    # Saved options (as left by an older version or a PATCH): the spawn page still
    # renders and says they are no longer valid; a start refuses them with a 400.
    user, cookies = await make_user("hostile-saved")
    saved = [{"nnodes": 10**400}, {"mem": -(10**400)}, {"comment": "a b"}, {"nnodes": [[["x"]]]}]
    saved += [{"comment": v} for v in refused[:20]] + [{"label": "a" * 3000 + "!"}]
    for options in saved:
        user.spawner.orm_spawner.user_options = {"profile": "open", **options}
        app.db.commit()
        r, soup = await spawn_page(app, cookies)
        statuses["saved"].append(r.status_code)
        assert r.status_code == 200, (options, r.status_code)
        notes = " ".join(n.get_text() for n in soup.select(".fcs-note"))
        assert "no longer valid" in notes, options
        r = await api_request(app, "users", user.name, "server", method="post")
        statuses["saved"].append(r.status_code)
        assert r.status_code == 400, (options, r.status_code)
    assert jobs_of(hub_emulator, user.name) == []

    # A sample of accepted values spawns, one per path, with the directives intact.
    spawned = [v for v in accepted if v][:3]
    assert len(spawned) >= 2
    user, cookies = await make_user("hostile-ok")
    r = await api_request(
        app,
        "users",
        user.name,
        "server",
        method="post",
        data=json.dumps({"profile": "open", "comment": spawned[0]}),
    )
    assert r.status_code in (201, 202), r.text
    await _check_spawned(app, user, hub_emulator, spawned[0])
    r = await post_form(app, cookies, {"profile": "open", "open.comment": spawned[1]})
    assert r.status_code == 302, r.status_code
    await _check_spawned(app, user, hub_emulator, spawned[1])

    assert all(len(v) >= 25 for v in statuses.values()), {k: len(v) for k, v in statuses.items()}
    assert 500 not in {s for v in statuses.values() for s in v}


async def test_hostile_regex_validations_do_not_block_the_hub(
    app, use_spawner, make_user, hub_emulator, hostile_site
):
    """20 hostile-regex validations at once; /hub/health keeps answering.

    A backtracking engine would need ~2**3000 steps per value: the loop would be
    blocked for good and this test would hit its timeout. Nothing asserts a time
    shorter than the generous loop-lag bound below (benchmarks/hostile_regex.py
    measures the latency).
    """
    use_spawner(hostile_site)
    users = [await make_user(f"regex-{i}") for i in range(20)]
    lags: list[float] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - start - 0.01)

    async def health() -> list[int]:
        codes = []
        while not done.is_set():
            r = await async_requests.get(public_host(app) + app.hub.base_url + "health")
            codes.append(r.status_code)
        return codes

    async def hostile(user) -> int:
        body = json.dumps({"profile": "open", "label": "a" * 3000 + "!"})
        r = await api_request(app, "users", user.name, "server", method="post", data=body)
        return r.status_code

    watcher = asyncio.create_task(watch())
    checker = asyncio.create_task(health())
    codes = await asyncio.gather(*(hostile(u) for u, _ in users))
    done.set()
    await watcher
    health_codes = await checker
    assert codes == [400] * 20
    assert health_codes
    assert set(health_codes) == {200}
    assert max(lags) < 5.0


BROKEN_AT_SPAWN = """\
version: 1
firecrest_url: {url}
systems:
  - name: cluster
    workdir: {workdir}
profiles:
  - id: fragile
    display_name: Fragile
    system: cluster
    options:
      - id: nnodes
        display_name: Nodes
        kind: integer
        min: 1
        max: 4
        default: 2
    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --job-name={{{{ job_name }}}}
        echo {{{{ 100 // (nnodes | int - 1) }}}}
        {{{{ cmd }}}}
"""


async def test_template_error_at_spawn_is_a_clear_message(
    app, use_spawner, make_user, hub_emulator, workdir, tmp_path
):
    """A template that fails only for some values: a 500 with a message, never a traceback."""
    directory = tmp_path / "fragile"
    directory.mkdir()
    (directory / "site.yaml").write_text(
        BROKEN_AT_SPAWN.format(url=hub_emulator.url, workdir=workdir), encoding="utf-8"
    )
    use_spawner(directory)
    user, _ = await make_user("fragile")
    body = json.dumps({"profile": "fragile", "nnodes": 1})
    r = await api_request(app, "users", user.name, "server", method="post", data=body)
    assert r.status_code == 500
    message = r.json()["message"]
    assert "batch script template could not be rendered" in message
    assert "Traceback" not in r.text
    assert jobs_of(hub_emulator, user.name) == []
