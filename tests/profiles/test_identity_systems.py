"""Visibility by cluster identity (Slurm accounts, Unix groups) and multi-system profiles (#14.1, #14.4).

The one validator and the form, with identities as FirecREST userinfo gives
them; the hub paths (form POST, ``opt-`` link, REST, saved options) are in
tests/hub/test_identity_systems_hub.py.
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from bs4 import BeautifulSoup

from firecrestspawner.cluster import ClusterCache
from firecrestspawner.profiles import form, load_profile_text
from firecrestspawner.profiles.identity import (
    ACCOUNT,
    UNIX_GROUP,
    ClusterIdentity,
    from_choices,
    identity_choices,
    missing_note,
    systems_needed,
    userinfo_names,
)
from firecrestspawner.profiles.models import ProfileSet
from firecrestspawner.profiles.options import (
    OptionError,
    UserInfo,
    cluster_lists,
    validate_options,
    visible_profiles,
)

SITE = textwrap.dedent(
    """
    systems:
      - {name: daint, display_name: Daint (GPU), workdir: /users}
      - {name: eiger, workdir: /capstor}
      - {name: pbsx, scheduler: pbs, workdir: /home}
    profiles:
      - id: open
        display_name: Open
        system: daint
        options:
          - id: memory
            kind: choice
            display_name: Memory
            choices:
              small: {display_name: small}
              huge: {display_name: huge, accounts: [g200]}
              staff: {display_name: staff, unix_groups: [csstaff]}
          - id: uenv
            kind: uenv
            display_name: uenv
            images:
              prgenv-gnu/24.11:v1: {}
              preview/1:v1: {unix_groups: [uenv-beta]}
          - id: expert
            kind: boolean
            display_name: Expert
            accounts: [g200]
      - id: project
        display_name: Project g152 only
        system: daint
        accounts: [g152]
      - id: hub-or-unix
        display_name: JupyterHub group or Unix group
        system: daint
        groups: [hubstaff]
        unix_groups: [csstaff]
      - id: anywhere
        display_name: Anywhere
        systems: [daint, eiger, pbsx]
        accounts: [g152]
        options:
          - id: partition
            kind: cluster_choice
            source: partitions
            display_name: Partition
            fallback: [normal]
          - id: gpus_per_node
            kind: integer
            display_name: GPUs per node
            when: {system: [daint]}
            min: 1
            max: 4
            default: 4
          - id: runtime
            kind: duration
            display_name: Time limit
            max: "4:00:00"
    """
)


@pytest.fixture(scope="module")
def profiles() -> ProfileSet:
    return ProfileSet(load_profile_text(SITE, name="site.yaml").profiles)


def who(name: str = "alice", groups=(), **systems: ClusterIdentity) -> UserInfo:
    return UserInfo(name, tuple(groups), tuple(systems.values()))


def ident(system: str, accounts=(), unix_groups=(), known: bool = True) -> ClusterIdentity:
    return ClusterIdentity(system, frozenset(accounts), frozenset(unix_groups), known)


# ------------------------------------------------------------ userinfo -> identity


def test_userinfo_gives_accounts_and_every_unix_group():
    info = {
        "user": {"id": "1", "name": "alice"},
        "group": {"id": "10", "name": "alice"},
        "groups": [{"id": "10", "name": "alice"}, {"id": "20", "name": "csstaff"}],
        "accounts": [{"name": "g152", "default": True}, {"name": "g200", "default": False}],
    }
    assert userinfo_names(info) == [
        ("g152", ACCOUNT),
        ("g200", ACCOUNT),
        ("alice", UNIX_GROUP),
        ("csstaff", UNIX_GROUP),
    ]


def test_null_accounts_means_no_account_not_the_primary_group():
    # FirecREST answers accounts: null without Slurm accounting.
    names = userinfo_names({"group": {"name": "g152"}, "groups": [], "accounts": None})
    assert names == [("g152", UNIX_GROUP)]


# ------------------------------------------------------------ visibility


def test_profiles_restricted_by_account_are_visible_only_to_holders(profiles):
    outsider = who(daint=ident("daint", accounts=["g999"]))
    holder = who(daint=ident("daint", accounts=["g152"]))
    assert "project" not in [p.id for p in visible_profiles(profiles, outsider)]
    assert "project" in [p.id for p in visible_profiles(profiles, holder)]
    assert validate_options(profiles, {"profile": "project"}, user=holder).profile.id == "project"
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "project"}, user=outsider)
    assert e.value.field == "profile"


def test_any_of_the_four_lists_allows(profiles):
    hub_member = who(groups=["hubstaff"])  # no cluster identity known at all
    unix_member = who(daint=ident("daint", unix_groups=["csstaff"]))
    nobody = who(daint=ident("daint", unix_groups=["users"]))
    assert validate_options(profiles, {"profile": "hub-or-unix"}, user=hub_member)
    assert validate_options(profiles, {"profile": "hub-or-unix"}, user=unix_member)
    with pytest.raises(OptionError):
        validate_options(profiles, {"profile": "hub-or-unix"}, user=nobody)


def test_a_group_name_is_not_taken_for_a_unix_group_or_an_account(profiles):
    # JupyterHub group "csstaff" / "g152" do not grant what the cluster must say.
    user = who(groups=["csstaff", "g152"], daint=ident("daint"))
    ids = [p.id for p in visible_profiles(profiles, user)]
    assert "project" not in ids
    assert "hub-or-unix" not in ids


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param({"memory": "huge"}, "memory", id="choice-by-account"),
        pytest.param({"memory": "staff"}, "memory", id="choice-by-unix-group"),
        pytest.param({"uenv": "preview/1:v1"}, "uenv", id="uenv-image-by-unix-group"),
        pytest.param({"expert": "true"}, "expert", id="option-by-account"),
    ],
)
def test_crafted_values_of_restricted_items_are_refused(profiles, raw, field):
    plain = who(daint=ident("daint", accounts=["g152"], unix_groups=["users"]))
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "open", **raw}, user=plain)
    assert e.value.field == field
    allowed = who(daint=ident("daint", accounts=["g200"], unix_groups=["csstaff", "uenv-beta"]))
    assert validate_options(profiles, {"profile": "open", **raw}, user=allowed)


def test_unreadable_userinfo_fails_closed_and_says_why(profiles):
    unknown = who(daint=ident("daint", known=False))
    ids = [p.id for p in visible_profiles(profiles, unknown)]
    assert "project" not in ids
    assert "anywhere" not in ids
    assert "open" in ids  # not restricted: still offered
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "project"}, user=unknown)
    assert e.value.field == "profile"
    assert "cannot be read from FirecREST now" in e.value.message
    assert "try again later" in e.value.message
    assert "daint" in e.value.message
    # ... in the same words as for an id that does not exist: asking by id confirms
    # no restricted profile (only the id asked for is echoed, as always).
    with pytest.raises(OptionError) as nothing:
        validate_options(profiles, {"profile": "no-such"}, user=unknown)
    assert nothing.value.field == "profile"
    assert e.value.message.replace("'project'", "ID") == nothing.value.message.replace(
        "'no-such'", "ID"
    )
    assert "restricted to projects" not in e.value.message
    # Normally (userinfo read), hidden and unknown ids get the plain answer, also alike.
    plain = who(**{s: ident(s, accounts=["g999"]) for s in ("daint", "eiger", "pbsx")})
    answers = []
    for wanted in ("project", "no-such"):
        with pytest.raises(OptionError) as normal:
            validate_options(profiles, {"profile": wanted}, user=plain)
        answers.append(normal.value.message.replace(repr(wanted), "ID"))
    assert answers[0] == answers[1]
    assert "cannot be read" not in answers[0]
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "open", "memory": "huge"}, user=unknown)
    assert e.value.field == "memory"
    note = missing_note([ClusterIdentity("daint", known=False, note="FirecREST did not answer")])
    assert "daint" in note
    assert "not shown" in note
    assert missing_note([ident("daint")]) == ""


def test_only_systems_with_identity_lists_are_read(profiles):
    assert systems_needed(profiles) == {"daint": None, "eiger": None, "pbsx": None}
    plain = ProfileSet(tuple(p for p in profiles if p.id == "hub-or-unix"))
    assert systems_needed(plain) == {"daint": None}
    no_lists = load_profile_text(
        "systems: [{name: x}]\nprofiles: [{id: a, display_name: A, system: x}]\n"
    )
    assert systems_needed(ProfileSet(no_lists.profiles)) == {}


# ------------------------------------------------------------ the identity cache


class _Userinfo:
    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    async def userinfo(self, system: str):
        self.calls += 1
        if self.fail:
            raise ConnectionError("down")
        return {"group": {"name": "alice"}, "groups": [], "accounts": [{"name": "g152"}]}


def test_identity_is_cached_served_stale_and_unknown_without_an_answer():
    now = [0.0]
    cache = ClusterCache(clock=lambda: now[0], wall=lambda: 1000.0 + now[0])
    client = _Userinfo()

    async def factory():
        return client

    def get():
        return asyncio.run(
            cache.get(factory, firecrest_url="u", system="daint", source="identity", user="alice")
        )

    first = from_choices(get())
    assert first.known
    assert first.accounts == {"g152"}
    assert first.unix_groups == {"alice"}
    assert from_choices(get()) == first
    assert client.calls == 1
    now[0] = 400.0
    client.fail = True
    stale = from_choices(get())
    assert stale.known
    assert stale.accounts == {"g152"}
    assert "min ago" in stale.note
    assert "earlier answer" in missing_note([stale])  # the form says the answer is old
    empty = ClusterCache()
    result = asyncio.run(
        empty.get(factory, firecrest_url="u", system="daint", source="identity", user="alice")
    )
    assert not from_choices(result).known
    assert identity_choices({"accounts": None, "group": {"name": "g"}})[0].detail == UNIX_GROUP


# ------------------------------------------------------------ multi-system profiles

LISTS = cluster_lists(
    {"daint": {"partitions": ["normal", "gpu"]}, "eiger": {"partitions": ["cpu"]}}
)
G152 = {s: ident(s, accounts=["g152"]) for s in ("daint", "eiger", "pbsx")}


def test_multi_system_profile_resolves_each_system(profiles):
    p = profiles.get("anywhere")
    assert p is not None
    assert list(p.variants) == ["daint", "eiger", "pbsx"]
    assert p.options[0].id == "system"
    assert {v.system: (v.scheduler, v.workdir) for v in p.variants.values()} == {
        "daint": ("slurm", "/users"),
        "eiger": ("slurm", "/capstor"),
        "pbsx": ("pbs", "/home"),
    }
    assert p.variants["pbsx"].template_name == "builtin:pbs"


def test_the_spawn_goes_to_the_chosen_system_with_its_template(profiles):
    user = who(**G152)
    vo = validate_options(
        profiles, {"profile": "anywhere", "system": "eiger"}, user=user, cluster=LISTS
    )
    assert vo.profile.system == "eiger"
    assert vo.req["host"] == "eiger"
    assert vo.req["partition"] == "cpu"  # read from eiger's list, not daint's
    assert "gpus_per_node" not in vo.values  # when: {system: [daint]}
    assert vo.user_options() == {
        "profile": "anywhere",
        "system": "eiger",
        "partition": "cpu",
        "runtime": "04:00:00",
    }
    again = validate_options(profiles, vo.user_options(), user=user, cluster=LISTS)
    assert again.req == vo.req  # saved options validate to the same result
    pbs = validate_options(profiles, {"profile": "anywhere", "system": "pbsx"}, user=user)
    script = pbs.render_script(cmd="x", job_name="j", workdir="/home/alice")
    assert "#PBS -l walltime=04:00:00" in script
    assert "#SBATCH" not in script
    daint = validate_options(profiles, {"profile": "anywhere"}, user=user, cluster=LISTS)
    assert daint.profile.system == "daint"
    assert daint.values["gpus_per_node"] == 4


def test_a_cluster_name_of_another_system_is_refused(profiles):
    with pytest.raises(OptionError) as e:
        validate_options(
            profiles,
            {"profile": "anywhere", "system": "eiger", "partition": "gpu"},
            user=who(**G152),
            cluster=LISTS,
        )
    assert e.value.field == "partition"
    assert "cpu" in e.value.message


def test_an_unknown_system_is_refused_naming_the_field(profiles):
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "anywhere", "system": "lumi"}, user=who(**G152))
    assert e.value.field == "system"
    assert "daint, eiger, pbsx" in e.value.message


def test_a_system_where_the_user_lacks_the_account_is_not_offered(profiles):
    user = who(daint=ident("daint"), eiger=ident("eiger", accounts=["g152"]))
    vo = validate_options(profiles, {"profile": "anywhere"}, user=user, cluster=LISTS)
    assert vo.profile.system == "eiger"  # the first system the user may use
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "anywhere", "system": "daint"}, user=user)
    assert e.value.field == "system"
    assert "not available to you on daint" in e.value.message


def test_single_system_files_are_unchanged(profiles):
    vo = validate_options(profiles, {"profile": "open"}, user=who())
    assert vo.profile.variants == {}
    assert "system" not in vo.user_options()
    with pytest.raises(OptionError) as e:
        validate_options(profiles, {"profile": "open", "system": "eiger"}, user=who())
    assert e.value.field == "system"  # not an option of a one-system profile


def test_form_offers_the_systems_and_tags_cluster_names_with_theirs(profiles):
    user = who(**G152)
    p = profiles.get("anywhere")
    cluster = {
        "partition@daint": LISTS[0],
        "partition@eiger": LISTS[1],
    }
    view = form.build_view(p, user=user, values={}, selected=True, cluster=cluster)
    html = form.render_form([view])
    soup = BeautifulSoup(html, "html.parser")
    system = soup.find("select", attrs={"name": "anywhere.system"})
    assert [o["value"] for o in system.find_all("option")] == ["daint", "eiger", "pbsx"]
    assert system.find("option", selected=True)["value"] == "daint"
    partition = soup.find("select", attrs={"name": "anywhere.partition"})
    tagged = [(o["value"], o.get("data-fcs-image")) for o in partition.find_all("option")]
    assert tagged == [("normal", "daint"), ("gpu", "daint"), ("cpu", "eiger"), ("normal", "pbsx")]
    holder = partition.find_parent(class_="fcs-option")
    assert holder["data-fcs-image-of"] == "system"
    gpus = soup.find("input", attrs={"name": "anywhere.gpus_per_node"}).find_parent(
        class_="fcs-option"
    )
    assert "system" in gpus["data-fcs-when"]
    assert "daint | eiger | pbsx" in soup.get_text()
    # What the form posts (no JavaScript: every field) validates for the chosen system.
    posted = {
        "profile": ["anywhere"],
        "anywhere.system": ["eiger"],
        "anywhere.partition": ["cpu"],
        "anywhere.gpus_per_node": ["4"],
        "anywhere.runtime": ["1:00:00"],
    }
    raw = form.form_to_options(posted, p)
    vo = validate_options(profiles, raw, user=user, cluster=form.known_names("daint", cluster))
    assert vo.profile.system == "eiger"
    assert "gpus_per_node" not in vo.values


def test_a_running_jobs_state_regexes_are_its_systems(tmp_path):
    # After a hub restart, poll reads the job's state with the regexes of the system it runs on.
    import logging

    from firecrestspawner.profile_mode import ProfileContext, ProfileMode

    (tmp_path / "site.yaml").write_text(SITE)

    async def no_client(url: str):  # never called
        raise AssertionError(url)

    context = ProfileContext(UserInfo("alice"), "https://f7t", {}, no_client, logging.getLogger())
    mode = ProfileMode(str(tmp_path), context)
    pbs = mode.state_regexes("anywhere", "pbsx")
    slurm = mode.state_regexes("anywhere", "eiger")
    assert pbs is not None
    assert slurm is not None
    assert pbs.running.startswith("^(?:R|E")
    assert "RUNNING" in slurm.running
    assert mode.state_regexes("anywhere", "lumi") is None  # a system the profile lost


def test_state_regexes_read_the_last_loaded_profiles_and_refresh_in_a_thread(tmp_path, monkeypatch):
    # load_state runs on the event loop: it must not stat or re-read files, nor wait
    # for the lock of a loader thread. The profiles the hub last loaded answer it.
    import logging
    import threading

    from firecrestspawner.profile_mode import ProfileContext, ProfileMode, profile_directory
    from firecrestspawner.profiles.reload import ProfileDirectory

    site = tmp_path / "site.yaml"
    site.write_text(SITE)

    async def no_client(url: str):  # never called
        raise AssertionError(url)

    context = ProfileContext(UserInfo("alice"), "https://f7t", {}, no_client, logging.getLogger())
    directory = profile_directory(str(tmp_path))
    assert directory.current().get("anywhere") is not None  # what a form or a spawn loaded
    site.unlink()  # gone from disk since: the running job's regexes are still known

    callers = []
    read = ProfileDirectory.current

    def current(self):
        callers.append(threading.current_thread())
        return read(self)

    monkeypatch.setattr(ProfileDirectory, "current", current)
    started = []
    refresh = ProfileDirectory.refresh_soon
    monkeypatch.setattr(
        ProfileDirectory, "refresh_soon", lambda self: started.append(refresh(self))
    )

    class HeldByALoader:  # the directory's lock while a loader thread reads files
        def __init__(self):
            self.free = threading.Event()
            self.lock = threading.Lock()

        def __enter__(self):
            if threading.current_thread() is threading.main_thread():
                raise AssertionError("the event loop waited for a loader thread's lock")
            self.free.wait()
            self.lock.acquire()

        def __exit__(self, *exc):
            self.lock.release()

    held = HeldByALoader()
    monkeypatch.setattr(directory, "_lock", held)
    mode = ProfileMode(str(tmp_path), context)  # a spawner whose state the hub loads
    pbs = mode.state_regexes("anywhere", "pbsx")
    slurm = mode.state_regexes("anywhere", "eiger")
    assert threading.main_thread() not in callers
    held.free.set()
    assert pbs is not None
    assert pbs.running.startswith("^(?:R|E")
    assert slurm is not None
    assert "RUNNING" in slurm.running
    # The re-read happened in a thread (one at a time); the next call sees the removal.
    threads = [t for t in started if t is not None]
    assert threads
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert callers
    assert all(t is not threading.main_thread() for t in callers)
    assert directory.last() is not None
    assert directory.last().get("anywhere") is None


def test_the_form_offers_only_the_systems_the_user_may_use(profiles):
    user = who(daint=ident("daint"), eiger=ident("eiger", accounts=["g152"]))
    base = profiles.get("anywhere")
    card = base.variants["eiger"]  # profile mode shows the first system the user may use
    view = form.build_view(card, user=user, values={}, selected=True)
    soup = BeautifulSoup(form.render_form([view]), "html.parser")
    system = soup.find("select", attrs={"name": "anywhere.system"})
    assert [o["value"] for o in system.find_all("option")] == ["eiger"]
    assert system.find("option", selected=True)["value"] == "eiger"
