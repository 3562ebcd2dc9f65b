"""The form reflects dependent options (#14.3) with and without JavaScript.

Without JavaScript every rule is in the HTML as text under its field, number
inputs carry the widest limits any rule allows (the server checks the rule
that holds), and nothing is hidden. With JavaScript (Chromium), changing the
controlling choice updates the bound, the default and the allowed choices.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from firecrestspawner.profiles import load_profile_file
from firecrestspawner.profiles.form import build_view, render_form
from firecrestspawner.profiles.options import UserInfo

HERE = Path(__file__).resolve().parent.parent / "profiles" / "valid"
PS = load_profile_file(HERE / "dependent-expert.yaml")
ALICE = UserInfo("alice")


def _html(values: dict | None = None) -> str:
    views = [
        build_view(p, user=ALICE, values=(values or {}) if i == 0 else {}, selected=i == 0)
        for i, p in enumerate(PS)
    ]
    return render_form(views)


def _field(soup: BeautifulSoup, option: str, profile: str = "gpu"):
    return soup.find(attrs={"data-fcs-profile": profile}).find(attrs={"data-fcs-option": option})


def test_without_javascript_the_rules_are_text_under_the_field() -> None:
    soup = BeautifulSoup(_html(), "html.parser")
    runtime = _field(soup, "runtime").find(class_="fcs-rules").get_text()
    assert "Depends on Partition: debug: 5 min to 30 min, default 30 min" in runtime
    assert "Otherwise: 15 min to 12 h" in runtime
    account = _field(soup, "account").find(class_="fcs-rules").get_text()
    assert "long: choices staff" in account
    nodes = _field(soup, "nnodes", "cluster-parts").find(class_="fcs-rules").get_text()
    assert "At most the nodes FirecREST reports for the chosen Partition" in nodes


def test_without_javascript_no_limit_the_server_would_accept_is_refused_by_the_browser() -> None:
    soup = BeautifulSoup(_html(), "html.parser")
    nnodes = _field(soup, "nnodes").find("input")
    assert (nnodes["min"], nnodes["max"]) == ("1", "4")
    # No choice is hidden: another partition may allow it.
    options = _field(soup, "account").find_all("option")
    assert [o["value"] for o in options] == ["proj1", "proj2", "staff"]
    assert not any(o.has_attr("hidden") or o.has_attr("disabled") for o in options)


def test_defaults_follow_the_values_the_form_starts_with() -> None:
    soup = BeautifulSoup(_html({"partition": "debug"}), "html.parser")
    assert _field(soup, "runtime").find("input")["value"] == "00:30:00"
    assert _field(soup, "account").find("option", selected=True)["value"] == "proj2"


def test_expert_options_list_what_is_allowed() -> None:
    soup = BeautifulSoup(_html(), "html.parser")
    text = _field(soup, "extra").get_text(" ")
    assert "Allowed: --exclusive, --constraint=…" in text
    assert "--comment=… (repeatable), -C …" in text


def test_rule_data_is_escaped_json() -> None:
    html = _html()
    assert "data-fcs-depends='{&#34;" in html or 'data-fcs-depends=\'{"base"' in html
    assert "<script>" not in html.split("<script>", 1)[0]


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_with_javascript_the_bound_follows_the_partition(page) -> None:
    await page.set_content(f"<!doctype html><body><form>{_html()}</form></body>")
    runtime = page.locator('input[name="gpu.runtime"]')
    nnodes = page.locator('input[name="gpu.nnodes"]')
    account = page.locator('select[name="gpu.account"]')
    assert await runtime.input_value() == "02:00:00"
    assert await nnodes.get_attribute("max") == "4"

    await page.select_option('select[name="gpu.partition"]', "debug")
    assert await nnodes.get_attribute("max") == "2"
    assert await runtime.input_value() == "00:30:00"  # 2 h is above debug's 30 min
    limits = page.locator('[data-fcs-profile="gpu"] [data-fcs-option="runtime"] .fcs-limits')
    assert await limits.text_content() == "Now: at least 5 min, at most 30 min."
    assert await account.input_value() == "proj1"  # still allowed on debug: kept
    staff = account.locator('option[value="staff"]')
    assert await staff.get_attribute("disabled") is not None

    await page.select_option('select[name="gpu.partition"]', "long")
    assert await account.input_value() == "staff"
    assert await account.locator('option[value="proj1"]').get_attribute("disabled") is not None
    assert await limits.text_content() == "Now: at least 15 min, at most 2 days."

    # Two controllers: the tightest bounds of the rules that hold.
    await page.select_option('select[name="gpu.partition"]', "debug")
    await page.check('input[name="gpu.big"][type=checkbox]')
    assert await nnodes.get_attribute("min") == "2"
    assert await nnodes.get_attribute("max") == "2"
    assert await nnodes.input_value() == "2"


def _cluster_html() -> str:
    from firecrestspawner.cluster import partitions_to_choices
    from firecrestspawner.profiles.choices import ClusterChoices

    answer = [
        {"name": "normal", "partition": "UP", "cpus": 256, "totalNodes": 8},
        {"name": "debug", "partition": "UP", "cpus": 64, "totalNodes": 2},
    ]
    parts = ClusterChoices("partitions", "daint", partitions_to_choices(answer))
    profile = PS.get("cluster-parts")
    view = build_view(profile, user=ALICE, values={}, selected=True, cluster={"partition": parts})
    return render_form([view])


def test_partition_limits_from_firecrest_are_data_on_the_choices() -> None:
    soup = BeautifulSoup(_cluster_html(), "html.parser")
    debug = soup.find("option", attrs={"value": "debug"})
    assert debug["data-fcs-limits"] == '{"cpus": 64, "nodes": 2}'


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_with_javascript_the_partition_limit_from_firecrest_caps_the_nodes(page) -> None:
    await page.set_content(f"<!doctype html><body><form>{_cluster_html()}</form></body>")
    nnodes = page.locator('input[name="cluster-parts.nnodes"]')
    assert await nnodes.get_attribute("max") == "8"  # normal: 8 nodes (the option allows 64)
    await nnodes.fill("6")
    await page.select_option('select[name="cluster-parts.partition"]', "debug")
    assert await nnodes.get_attribute("max") == "2"
    assert await nnodes.get_attribute("min") == "1"
    assert await nnodes.input_value() == "1"  # 6 is above debug's 2: back to the default


UENV = """
systems: [{name: daint}]
profiles:
  - id: u
    display_name: U
    system: daint
    options:
      - id: partition
        kind: choice
        display_name: Partition
        choices: {normal: {display_name: n}, debug: {display_name: d}}
      - id: uenv
        kind: uenv
        display_name: Image
        images:
          cuda/12:v1: {views: {cuda: {}}}
          gnu/24:v1: {views: {default: {}, modules: {}}}
        depends_on:
          partition:
            debug: {choices: [gnu/24:v1]}
"""


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_with_javascript_an_image_rule_also_updates_the_views(page) -> None:
    from firecrestspawner.profiles.loader import load_profile_text

    profile = load_profile_text(UENV, name="u.yaml").profiles[0]
    html = render_form([build_view(profile, user=ALICE, values={}, selected=True)])
    await page.set_content(f"<!doctype html><body><form>{html}</form></body>")
    image = page.locator('select[name="u.uenv"]')
    view = page.locator('select[name="u.uenv_view"]')
    assert await image.input_value() == "cuda/12:v1"
    assert await view.input_value() == "cuda"
    await page.select_option('select[name="u.partition"]', "debug")
    assert await image.input_value() == "gnu/24:v1"
    assert await view.input_value() == "default"
    hidden = await image.locator('option[value="cuda/12:v1"]').get_attribute("disabled")
    assert hidden is not None
