"""The spawn form rendered from profiles: markup, escaping, defaults, `when`
rules, and form data -> raw user options (pure, no hub)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from firecrestspawner.profiles import ProfileSet, form, load_profile_file, load_profile_text
from firecrestspawner.profiles.choices import ClusterChoice, ClusterChoices, cluster_lists
from firecrestspawner.profiles.options import (
    OptionError,
    UserInfo,
    cluster_choice_values,
    validate_options,
)

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def site() -> ProfileSet:
    return load_profile_file(HERE / "profiles" / "site.yaml")


def _profile(site, pid):
    return site.get(pid)


def _render(site, pids, *, user="alice", groups=(), values=None, selected=None, **kw):
    views = []
    for pid in pids:
        p = _profile(site, pid)
        views.append(
            form.build_view(
                p,
                user=UserInfo(user, tuple(groups)),
                values=(values or {}).get(pid, {}),
                selected=pid == (selected or pids[0]),
                cluster=kw.get("cluster", {}).get(pid),
            )
        )
    return BeautifulSoup(form.render_form(views, notes=kw.get("notes", ())), "html.parser")


def test_profiles_render_as_bootstrap_radio_cards_with_labels(site):
    soup = _render(site, ["cpu", "gpu"])
    radios = soup.select("input.form-check-input[type=radio][name=profile]")
    assert [r["value"] for r in radios] == ["cpu", "gpu"]
    assert radios[0].has_attr("checked")
    assert not radios[1].has_attr("checked")
    for r in radios:
        label = soup.find("label", attrs={"for": r["id"]})
        assert label is not None
    assert len(soup.select(".card.fcs-profile")) == 2
    # Every visible input, select has a label tied to it.
    for field in soup.select("select, input[type=text], input[type=number], input[type=checkbox]"):
        assert soup.find("label", attrs={"for": field["id"]}), field


def test_defaults_are_preselected(site):
    soup = _render(site, ["cpu"])
    assert (
        soup.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)["value"]
        == "normal"
    )
    assert soup.find("input", attrs={"name": "cpu.runtime"})["value"] == "01:00:00"
    assert soup.find("input", attrs={"name": "cpu.nnodes"})["value"] == "1"
    assert soup.find("input", attrs={"name": "cpu.nnodes"})["max"] == "4"
    assert not soup.find(
        "input", attrs={"name": "cpu.use_reservation", "type": "checkbox"}
    ).has_attr("checked")


def test_previous_values_are_preselected(site):
    values = {"cpu": {"partition": "debug", "nnodes": 3, "use_reservation": True}}
    soup = _render(site, ["cpu"], values=values)
    sel = soup.find("select", attrs={"name": "cpu.partition"}).find("option", selected=True)
    assert sel["value"] == "debug"
    assert soup.find("input", attrs={"name": "cpu.nnodes"})["value"] == "3"
    assert soup.find("input", attrs={"name": "cpu.use_reservation", "type": "checkbox"}).has_attr(
        "checked"
    )
    res = soup.find("div", attrs={"data-fcs-option": "reservation"})
    assert not res.has_attr("data-fcs-inactive")


def test_when_rules_are_exposed_for_the_script_and_as_text(site):
    soup = _render(site, ["cpu"])
    res = soup.find("div", attrs={"data-fcs-option": "reservation"})
    assert res.has_attr("data-fcs-inactive")  # the box is unticked by default
    assert res["data-fcs-when"] == '[{"option": "use_reservation", "values": ["true"]}]'
    assert "Used only when Use a reservation is true." in res.get_text()


def test_hostile_profile_texts_render_as_text(site):
    p = _profile(site, "hostile")
    html = form.render_form(
        [form.build_view(p, user=UserInfo("mallory"), values={}, selected=True)]
    )
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "<svg" not in html
    soup = BeautifulSoup(html, "html.parser")
    label = soup.find("label", attrs={"for": "fcs-p1"})
    assert label.get_text() == '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    # JSON in attributes cannot break out of them.
    option = soup.find("option", attrs={"value": "a"})
    assert json.loads(option["data-fcs-req"]) == {"account": "x' onmouseover='alert(6)\" y"}
    assert not soup.find(attrs={"onmouseover": True})
    # Only the form's own inline script is present.
    assert len(soup.find_all("script")) == 1


def test_cluster_choices_and_note(site):
    cluster = ClusterChoices(
        source="accounts",
        system="cluster",
        items=(ClusterChoice("fallback-account"),),
        origin="fallback",
        note="FirecREST did not answer within 2 s; showing the site's default list.",
    )
    soup = _render(site, ["gpu"], groups=["gpu-users"], cluster={"gpu": {"account": cluster}})
    select = soup.find("select", attrs={"name": "gpu.account"})
    assert [o["value"] for o in select.find_all("option")] == ["fallback-account"]
    note = soup.select_one(".fcs-option-note")
    assert "did not answer within 2 s" in note.get_text()
    assert note["id"] in select["aria-describedby"]


def test_summary_shows_requested_resources(site):
    p = _profile(site, "cpu")
    view = form.build_view(
        p,
        user=UserInfo("a"),
        values={},
        selected=True,
        base_req={"nnodes": 1, "runtime": "01:00:00"},
        req={"nnodes": 2, "runtime": "02:00:00", "partition": "debug"},
    )
    assert view.summary == "nodes: 2, time: 02:00:00, partition: debug"
    # Only summary values reach the page, not the rest of the configuration.
    secretish = form.build_view(
        p, user=UserInfo("a"), values={}, selected=True, base_req={"prologue": "module load x"}
    )
    assert secretish.req == {}
    soup = BeautifulSoup(form.render_form([view]), "html.parser")
    assert soup.select_one(".fcs-summary-text").get_text() == view.summary


@pytest.mark.parametrize(
    ("formdata", "expected"),
    [
        pytest.param(
            {
                "profile": ["cpu"],
                "cpu.partition": ["debug"],
                "cpu.runtime": ["02:00:00"],
                "cpu.nnodes": ["2"],
                "cpu.use_reservation": ["false"],
                "cpu.reservation": ["course"],
                "gpu.ngpus": ["4"],
                "_xsrf": ["token"],
                "evil": ["x"],
            },
            {
                "profile": "cpu",
                "partition": "debug",
                "runtime": "02:00:00",
                "nnodes": "2",
                "use_reservation": "false",
                # inactive (its rule does not hold): the validator ignores it
                "reservation": "course",
            },
            id="js-off-other-profile-dropped",
        ),
        pytest.param(
            {
                "profile": ["cpu"],
                "cpu.use_reservation": ["false", "true"],
                "cpu.reservation": ["course"],
            },
            {"profile": "cpu", "use_reservation": "true", "reservation": "course"},
            id="ticked-box-activates-dependent-option",
        ),
        pytest.param({"cpu.partition": ["debug"]}, {}, id="no-profile"),
    ],
)
def test_form_to_options(site, formdata, expected):
    assert form.form_to_options(formdata, _profile(site, "cpu")) == expected


def test_form_to_options_unknown_profile_keeps_only_the_id(site):
    assert form.form_to_options({"profile": ["nope"], "nope.x": ["1"]}, None) == {"profile": "nope"}


def test_option_and_choice_allow_lists(site):
    data = {
        "version": 1,
        "systems": [{"name": "c"}],
        "firecrest_url": "http://f.invalid",
        "profiles": [
            {
                "id": "p",
                "display_name": "P",
                "system": "c",
                "options": [
                    {
                        "id": "size",
                        "display_name": "Size",
                        "kind": "choice",
                        "choices": {
                            "small": {"display_name": "Small"},
                            "huge": {"display_name": "Huge", "groups": ["big"]},
                        },
                    },
                    {
                        "id": "debugflag",
                        "display_name": "Debug",
                        "kind": "boolean",
                        "users": ["admin"],
                    },
                ],
            }
        ],
    }
    p = load_profile_text(json.dumps(data), name="inline.yaml").profiles[0]
    plain = form.build_view(p, user=UserInfo("alice"), values={}, selected=True)
    assert [o.id for o in plain.options] == ["size"]
    assert [c.value for c in plain.options[0].choices] == ["small"]
    big = form.build_view(p, user=UserInfo("admin", ("big",)), values={}, selected=True)
    assert [o.id for o in big.options] == ["size", "debugflag"]
    assert [c.value for c in big.options[0].choices] == ["small", "huge"]


def test_js_off_form_validates_to_what_the_script_would_send(site):
    """Without JavaScript the hidden dependent field is posted; it changes nothing."""
    posted = {
        "profile": ["cpu"],
        "cpu.partition": ["debug"],
        "cpu.runtime": ["02:00:00"],
        "cpu.nnodes": ["2"],
        "cpu.use_reservation": ["false"],
        "cpu.reservation": ["course"],
    }
    with_js = {k: v for k, v in posted.items() if k != "cpu.reservation"}
    user = UserInfo("alice")
    off = validate_options(site, form.form_to_options(posted, site.get("cpu")), user=user)
    on = validate_options(site, form.form_to_options(with_js, site.get("cpu")), user=user)
    assert off.user_options() == on.user_options()
    assert off.user_options() == {
        "profile": "cpu",
        "partition": "debug",
        "runtime": "02:00:00",
        "nnodes": 2,
        "use_reservation": False,
    }
    assert "reservation" not in off.req or off.req["reservation"] == ""


SHIPPED = sorted(
    p for p in (HERE.parents[1] / "profiles").iterdir() if p.suffix in (".yaml", ".yml", ".toml")
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_profile_renders_with_labelled_fields(path):
    profile_set = load_profile_file(path)
    groups: set[str] = set()
    for p in profile_set:
        groups |= set(p.groups or ())
        for option in p.options:
            groups |= set(option.groups or ())
    user = UserInfo("someone", tuple(sorted(groups)))
    clusters = {p.id: _live_cluster(p) for p in profile_set}
    views = [
        form.build_view(p, user=user, values={}, selected=i == 0, cluster=clusters[p.id])
        for i, p in enumerate(profile_set)
    ]
    soup = BeautifulSoup(form.render_form(views), "html.parser")
    radios = soup.select("input[name=profile]")
    assert [r["value"] for r in radios] == [p.id for p in profile_set]
    for field in soup.select("select, input[type=text], input[type=number], input[type=checkbox]"):
        assert soup.find("label", attrs={"for": field["id"]}), field
    # The defaults the form preselects are what the validator accepts.
    for p in profile_set:
        raw = {"profile": [p.id]}
        for field in soup.select(f"[name^='{p.id}.']"):
            if field.name == "select":
                chosen = field.find("option", selected=True) or field.find("option")
                if chosen is not None:
                    raw.setdefault(field["name"], []).append(chosen["value"])
            elif field.get("type") == "checkbox":
                if field.has_attr("checked"):
                    raw.setdefault(field["name"], []).append("true")
            else:
                raw.setdefault(field["name"], []).append(field.get("value", ""))
        known = form.known_names(p.system, clusters[p.id])
        validate_options(profile_set, form.form_to_options(raw, p), user=user, cluster=known)


def _live_cluster(profile) -> dict[str, ClusterChoices]:
    """Plausible FirecREST answers for the profile's cluster-derived options."""
    out = {}
    for option in profile.options:
        if option.kind != "cluster_choice":
            continue
        candidates = [*(option.allow or ()), "jupyter-course-1", "acct1", "normal"]
        known = cluster_lists({profile.system: {option.source: candidates}})
        names = cluster_choice_values(option, profile.system, known) or []
        out[option.id] = ClusterChoices(
            source=option.source,
            system=profile.system,
            items=tuple(ClusterChoice(n) for n in names),
            origin="live",
        )
    return out


def test_unknown_cluster_list_without_fallback_asks_for_the_name(site):
    """FirecREST unreachable and no static list: a required text field, not an empty select."""
    data = {
        "version": 1,
        "systems": [{"name": "c"}],
        "firecrest_url": "http://f.invalid",
        "profiles": [
            {
                "id": "p",
                "display_name": "P",
                "system": "c",
                "options": [
                    {
                        "id": "account",
                        "display_name": "Project",
                        "kind": "cluster_choice",
                        "source": "accounts",
                    }
                ],
            }
        ],
    }
    loaded = load_profile_text(json.dumps(data), name="inline.yaml")
    p = loaded.profiles[0]
    down = ClusterChoices(
        source="accounts",
        system="c",
        items=(),
        origin="fallback",
        note="FirecREST did not answer within 2 s; no list is available.",
    )
    view = form.build_view(
        p, user=UserInfo("a"), values={}, selected=True, cluster={"account": down}
    )
    soup = BeautifulSoup(form.render_form([view]), "html.parser")
    field = soup.find("input", attrs={"name": "p.account"})
    assert field["type"] == "text"
    assert field.has_attr("required")
    assert "Type the name." in soup.select_one(".fcs-option-note").get_text()
    # What the user types is accepted when nothing is known, if it is a well-formed name.
    profile_set = ProfileSet(loaded.profiles)
    ok = validate_options(
        profile_set,
        form.form_to_options({"profile": ["p"], "p.account": ["g152"]}, p),
        user=UserInfo("a"),
        cluster=form.known_names("c", {"account": down}),
    )
    assert ok.req["account"] == "g152"
    with pytest.raises(OptionError, match="not a valid account name"):
        validate_options(
            profile_set,
            form.form_to_options({"profile": ["p"], "p.account": ["g1 --uid=0"]}, p),
            user=UserInfo("a"),
            cluster=form.known_names("c", {"account": down}),
        )
