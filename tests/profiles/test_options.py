"""The one option validator: table tests over every kind and every input shape."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.profiles import ProfileSet, load_profile_file
from firecrestspawner.profiles.choices import ClusterChoice, reported_names
from firecrestspawner.profiles.options import (
    ClusterChoices,
    OptionError,
    UenvValue,
    UserInfo,
    cluster_lists,
    default_options,
    validate_options,
    visible_profiles,
    when_text,
)

HERE = Path(__file__).resolve().parent
PS: ProfileSet = load_profile_file(HERE / "valid" / "all-kinds.yaml")
ALICE = UserInfo("alice", ("users",))
BOB = UserInfo("bob", ())
GPU = UserInfo("gina", ("gpu-users",))
STAFF = UserInfo("sam", ("staff", "admins"))
CLUSTER = cluster_lists(
    {"cluster": {"accounts": ["proj1", "proj2"], "reservations": ["course-a", "maint"]}}
)


def ok(
    raw: dict[str, Any],
    user: UserInfo = ALICE,
    cluster: Collection[ClusterChoices] | None = CLUSTER,
    **kw: Any,
):
    return validate_options(PS, raw, user=user, cluster=cluster, **kw)


def refused(
    raw: Any, user: UserInfo = ALICE, cluster: Collection[ClusterChoices] | None = CLUSTER
) -> OptionError:
    with pytest.raises(OptionError) as info:
        validate_options(PS, raw, user=user, cluster=cluster)
    return info.value


# -- accepted values -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "option", "value", "req"),
    [
        pytest.param(
            {"partition": ["debug"]},
            "partition",
            "debug",
            {"partition": "debug", "qos": "debug"},
            id="choice-form",
        ),
        pytest.param(
            {"partition": "normal"},
            "partition",
            "normal",
            {"partition": "normal", "qos": "high"},
            id="choice-rest",
        ),
        pytest.param({"nodes": ["4"]}, "nodes", 4, {"nnodes": "4"}, id="integer-form-string"),
        pytest.param({"nodes": 8}, "nodes", 8, {"nnodes": "8"}, id="integer-max"),
        pytest.param({"nodes": 3.0}, "nodes", 3, {"nnodes": "3"}, id="integer-from-float"),
        pytest.param({"nodes": [""]}, "nodes", 1, {"nnodes": "1"}, id="integer-empty-is-default"),
        pytest.param({"cpus": "64"}, "cpus", 64, {"nprocs": "64"}, id="integer-step"),
        pytest.param({"mem_gb": "1.5"}, "mem_gb", 1.5, {"memory_gb": "1.5"}, id="number-form"),
        pytest.param({"mem_gb": 16}, "mem_gb", 16.0, {"memory_gb": "16"}, id="number-int"),
        pytest.param(
            {"runtime": "30"}, "runtime", "00:30:00", {"runtime": "00:30:00"}, id="duration-minutes"
        ),
        pytest.param(
            {"runtime": "1-00:00:00"},
            "runtime",
            "24:00:00",
            {"runtime": "24:00:00"},
            id="duration-days",
        ),
        pytest.param(
            {"runtime": "2:30:00"},
            "runtime",
            "02:30:00",
            {"runtime": "02:30:00"},
            id="duration-hms",
        ),
        pytest.param(
            {"runtime": 45},
            "runtime",
            "00:45:00",
            {"runtime": "00:45:00"},
            id="duration-int-minutes",
        ),
        pytest.param({"note": "abc-1"}, "note", "abc-1", {"comment": "abc-1"}, id="text"),
        pytest.param({"note": ""}, "note", "", {"comment": ""}, id="text-empty"),
        pytest.param(
            {"exclusive": ["false", "on"]},
            "exclusive",
            True,
            {"options": "--exclusive"},
            id="bool-hidden-then-checkbox",
        ),
        pytest.param(
            {"exclusive": ["false"]}, "exclusive", False, {"options": ""}, id="bool-form-false"
        ),
        pytest.param(
            {"exclusive": True}, "exclusive", True, {"options": "--exclusive"}, id="bool-rest"
        ),
        pytest.param(
            {"account": "proj2"}, "account", "proj2", {"account": "proj2"}, id="cluster-choice"
        ),
        pytest.param(
            {"reservation": "course-a"},
            "reservation",
            "course-a",
            {"reservation": "course-a"},
            id="cluster-filter",
        ),
        pytest.param(
            {"reservation": ""}, "reservation", "", {"reservation": ""}, id="cluster-optional-none"
        ),
        pytest.param(
            {"env": "prgenv/24:v1", "env_view": "modules"},
            "env",
            UenvValue("prgenv/24:v1", "modules"),
            {"uenv": "prgenv/24:v1", "uenv_view": "modules"},
            id="uenv-form",
        ),
        pytest.param(
            {"env": {"image": "prgenv/24:v1", "view": "default"}},
            "env",
            UenvValue("prgenv/24:v1", "default"),
            {"uenv_view": "default"},
            id="uenv-rest",
        ),
        pytest.param(
            {"env": "prgenv/24:v1"},
            "env",
            UenvValue("prgenv/24:v1", "default"),
            {"uenv_view": "default"},
            id="uenv-default-view",
        ),
        pytest.param(
            {"env": "bare/1:v1"},
            "env",
            UenvValue("bare/1:v1", ""),
            {"uenv": "bare/1:v1", "uenv_view": ""},
            id="uenv-no-views",
        ),
    ],
)
def test_accepted(raw: dict[str, Any], option: str, value: Any, req: dict[str, str]) -> None:
    vo = ok({"profile": "main", **raw})
    assert vo.values[option] == value
    for key, expected in req.items():
        assert vo.req[key] == expected


# -- refused values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        pytest.param(
            {"partition": "gpu"},
            "partition",
            "choose one of: normal, debug",
            id="choice-group-restricted",
        ),
        pytest.param({"partition": "Normal"}, "partition", "not allowed", id="choice-case"),
        pytest.param(
            {"partition": ["normal", "debug"]}, "partition", "expected one value", id="two-values"
        ),
        pytest.param({"partition": True}, "partition", "expected a string", id="choice-bool"),
        pytest.param({"nodes": 9}, "nodes", "outside the allowed range 1 to 8", id="integer-max"),
        pytest.param({"nodes": "1e3"}, "nodes", "whole number", id="integer-text"),
        pytest.param({"nodes": True}, "nodes", "whole number", id="integer-bool"),
        pytest.param({"cpus": 3}, "cpus", "steps of 2 from 2", id="integer-step"),
        pytest.param({"mem_gb": 0.75}, "mem_gb", "steps of 0.5", id="number-step"),
        pytest.param({"mem_gb": "nan"}, "mem_gb", "expected a number", id="number-nan"),
        pytest.param({"mem_gb": float("inf")}, "mem_gb", "expected a number", id="number-inf"),
        pytest.param(
            {"runtime": "5"},
            "runtime",
            "outside the allowed range 10 min to 1 day",
            id="duration-min",
        ),
        pytest.param({"runtime": "2-00:00:00"}, "runtime", "outside", id="duration-max"),
        pytest.param(
            {"runtime": "1:75:00"}, "runtime", "not a time limit", id="duration-bad-minutes"
        ),
        pytest.param({"runtime": "1h"}, "runtime", "not a time limit", id="duration-unit"),
        pytest.param(
            {"note": "ABC"},
            "note",
            "does not match the required pattern",
            id="text-pattern-fullmatch",
        ),
        pytest.param({"note": "abc\ndef"}, "note", "U+000A", id="text-newline"),
        pytest.param({"note": "a" * 21}, "note", "longer than 20", id="text-length"),
        pytest.param({"note": "a\u2028b"}, "note", "U+2028", id="text-line-separator"),
        pytest.param({"note": "x" * 5000}, "note", "longer than 4096", id="text-huge"),
        pytest.param({"exclusive": "maybe"}, "exclusive", "true or false", id="bool-text"),
        pytest.param(
            {"account": "proj3"}, "account", "choose one of: proj1, proj2", id="cluster-not-listed"
        ),
        pytest.param(
            {"reservation": "maint"},
            "reservation",
            "choose one of: course-a",
            id="cluster-filtered",
        ),
        pytest.param({"account": ""}, "account", "required", id="cluster-required"),
        pytest.param({"env": "secret/1:v1"}, "env", "not allowed", id="uenv-user-restricted"),
        pytest.param(
            {"env": "prgenv/24:v1", "env_view": "nope"},
            "env_view",
            "choose one of: default, modules",
            id="uenv-bad-view",
        ),
        pytest.param(
            {"env": "bare/1:v1", "env_view": "x"},
            "env_view",
            "has no views",
            id="uenv-view-without-views",
        ),
        pytest.param(
            {"env": {"image": "prgenv/24:v1", "extra": "x"}},
            "env",
            "unknown keys",
            id="uenv-rest-extra",
        ),
        pytest.param(
            {"bogus": "1"}, "bogus", "unknown option for profile 'main'", id="unknown-key"
        ),
        pytest.param(
            {"admin_knob": "x"}, "admin_knob", "not available to you", id="option-group-restricted"
        ),
        pytest.param(
            {"profile": "staff"},
            "profile",
            "unknown profile 'staff'; available to you: main",
            id="profile-invisible",
        ),
        pytest.param({"profile": "nope"}, "profile", "unknown profile", id="profile-unknown"),
        pytest.param({"note\n": "x"}, "options", "U+000A", id="key-control-char"),
        pytest.param({"note": {"a": 1}}, "note", "expected strings", id="mapping-for-text"),
        pytest.param({"note": object()}, "note", "unsupported value type", id="object"),
    ],
)
def test_refused(raw: dict[str, Any], field: str, fragment: str) -> None:
    error = refused({"profile": "main", **raw} if "profile" not in raw else raw)
    assert error.field == field
    assert fragment in error.message
    assert str(error).startswith(f"{field}: ")


def test_non_mapping_is_refused() -> None:
    assert refused(["profile", "main"]).field == "options"


def test_xsrf_is_dropped_never_kept() -> None:
    vo = ok({"_xsrf": ["token"], "profile": ["main"]})
    assert "_xsrf" not in vo.values
    assert "_xsrf" not in vo.user_options()
    assert "_xsrf" not in vo.req


def test_missing_options_take_defaults() -> None:
    vo = ok({"profile": "main"})
    assert vo.values["partition"] == "normal"
    assert vo.values["nodes"] == 1
    assert vo.values["runtime"] == "01:00:00"
    assert vo.values["exclusive"] is False
    assert vo.values["account"] == "proj1"  # first offered by the cluster
    assert vo.values["env"] == UenvValue("prgenv/24:v1", "default")


def test_missing_profile_means_users_default() -> None:
    assert ok({}).profile.id == "main"
    assert ok({"profile": [""]}).profile.id == "main"


def test_hidden_option_values_are_ignored() -> None:
    # `nodes` is shown only for normal and gpu; a form without JavaScript still sends it.
    vo = ok({"profile": "main", "partition": "debug", "nodes": "99"})
    assert "nodes" not in vo.values
    assert vo.req["nnodes"] == "1"  # the profile's fixed value, not the hidden field


def test_when_rule_shows_option() -> None:
    vo = ok({"profile": "main", "partition": "normal", "nodes": "5"})
    assert vo.req["nnodes"] == "5"


def test_group_membership_opens_choices_and_profiles() -> None:
    assert ok({"profile": "main", "partition": "gpu"}, user=GPU).req["gres"] == "gpu:4"
    assert ok({"profile": "staff"}, user=STAFF).profile.id == "staff"
    assert ok({"profile": "staff"}, user=BOB).profile.id == "staff"  # listed by name
    assert ok({"profile": "main", "admin_knob": "x"}, user=STAFF).req["reservation_custom"] == "x"
    assert [p.id for p in visible_profiles(PS, ALICE)] == ["main"]
    assert [p.id for p in visible_profiles(PS, STAFF)] == ["main", "staff"]


def test_precedence_base_defaults_fixed_choice() -> None:
    base = {"qos": "from-config", "srun": "from-config", "account": "cfg", "custom": "cfg"}
    vo = ok({"profile": "main", "partition": "debug"}, base=base)
    assert vo.req["custom"] == "cfg"  # only the configuration sets it
    assert vo.req["srun"] == "srun"  # file defaults beat the configuration
    assert vo.req["cluster"] == "alps"  # system req
    assert vo.req["site_flag"] == "fixed"  # profile fixed value
    assert vo.req["qos"] == "debug"  # the choice's own req beats the fixed value
    assert vo.req["account"] == "proj1"  # the user's (default) choice beats everything
    assert vo.req["host"] == "cluster"  # always the profile's system


def test_host_cannot_be_set_by_user() -> None:
    assert refused({"profile": "main", "host": "elsewhere"}).field == "host"


def test_cluster_none_uses_fallback() -> None:
    vo = ok({"profile": "main", "account": "proj1"}, cluster=None)
    assert vo.req["account"] == "proj1"
    assert refused({"profile": "main", "account": "proj2"}, cluster=None).field == "account"
    # no fallback and no cluster data: any well-formed name passing the filter
    assert (
        ok({"profile": "main", "reservation": "course-z"}, cluster=None).req["reservation"]
        == "course-z"
    )
    assert refused({"profile": "main", "reservation": "maint"}, cluster=None).field == "reservation"


def test_the_cache_result_type_is_what_the_validator_reads() -> None:
    # One ClusterChoices: what firecrestspawner.cluster's cache returns is passed as is.
    from firecrestspawner import cluster as cluster_cache

    assert cluster_cache.ClusterChoices is ClusterChoices
    live = ClusterChoices("accounts", "cluster", (ClusterChoice("proj2"),), "stale")
    assert ok({"profile": "main", "account": "proj2"}, cluster=[live]).req["account"] == "proj2"
    # A list for another system says nothing about this one.
    other = ClusterChoices("accounts", "elsewhere", (ClusterChoice("proj9"),))
    assert refused({"profile": "main", "account": "proj9"}, cluster=[other]).field == "account"


@pytest.mark.parametrize(
    ("lists", "expected"),
    [
        pytest.param([], None, id="nothing-known"),
        pytest.param([("accounts", "cluster", ("a",), "live")], ("a",), id="live"),
        pytest.param([("accounts", "cluster", ("a",), "cache")], ("a",), id="cache"),
        pytest.param([("accounts", "cluster", ("a",), "stale")], ("a",), id="stale"),
        pytest.param([("accounts", "cluster", ("a",), "fallback")], None, id="fallback-not-known"),
        pytest.param([("nodes", "cluster", ("a",), "live")], None, id="other-source"),
        pytest.param(
            [("accounts", "cluster", ("a",), "live"), ("accounts", "cluster", ("b",), "live")],
            ("b",),
            id="last-wins",
        ),
    ],
)
def test_reported_names(lists: list[tuple], expected: tuple[str, ...] | None) -> None:
    cluster = [
        ClusterChoices(source, system, tuple(ClusterChoice(n) for n in names), origin)
        for source, system, names, origin in lists
    ]
    assert reported_names(cluster, "cluster", "accounts") == expected


def test_cluster_names_are_untrusted() -> None:
    cluster = cluster_lists({"cluster": {"accounts": ["ok1", "bad name", "x\n#SBATCH", "ok2"]}})
    vo = ok({"profile": "main"}, cluster=cluster)
    assert vo.values["account"] == "ok1"
    assert refused({"profile": "main", "account": "bad name"}, cluster=cluster).field == "account"


def test_saved_options_round_trip() -> None:
    vo = ok(
        {
            "profile": "main",
            "partition": "normal",
            "nodes": "3",
            "env": "prgenv/24:v1",
            "env_view": "modules",
            "exclusive": ["on"],
        }
    )
    saved = vo.user_options()
    again = ok(saved)
    assert again.values == vo.values
    assert again.req == vo.req
    import json

    assert json.loads(json.dumps(saved)) == saved


def test_default_options_validate_for_every_shipped_profile() -> None:
    for path in sorted((HERE.parent.parent / "profiles").glob("*.*")):
        ps = load_profile_file(path)
        for profile in ps:
            user = UserInfo("u", tuple(profile.groups or ()))
            cluster = cluster_lists(
                {
                    profile.system: {
                        "accounts": ["proj1"],
                        "reservations": [],
                        "partitions": ["normal"],
                        "nodes": [],
                    }
                }
            )
            vo = validate_options(ps, default_options(profile), user=user, cluster=cluster)
            assert vo.profile.id == profile.id


def test_validated_result_is_read_only() -> None:
    vo = ok({"profile": "main"})
    with pytest.raises(TypeError):
        vo.req["partition"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        vo.values["partition"] = "x"  # type: ignore[index]


def test_legacy_lists_expose_one_element_lists() -> None:
    ps = load_profile_file(HERE / "valid" / "template-file-legacy.yaml")
    vo = validate_options(ps, {"runtime": "90"}, user=ALICE)
    variables = vo.template_variables(
        cmd="jupyterhub-singleuser", job_name="j", workdir="/home/alice"
    )
    assert variables["runtime"] == ["01:30:00"]
    assert variables["cmd"] == "jupyterhub-singleuser"
    assert variables["partition"] == "normal"  # not an option: stays a scalar
    script = vo.render_script(cmd="jupyterhub-singleuser", job_name="j", workdir="/home/alice")
    assert "#SBATCH --time=01:30:00\n" in script
    assert script.endswith("srun jupyterhub-singleuser\n")


def test_render_script_names_the_option() -> None:
    # a text pattern that lets a space through: the directive check names the option
    text = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: acct, kind: text, req: account, display_name: A, pattern: '[a-z0-9 -]*'}
"""
    from firecrestspawner.profiles import load_profile_text

    ps = ProfileSet(load_profile_text(text, name="t.yaml").profiles)
    # The validator itself renders once, so every path refuses it before a spawn starts.
    with pytest.raises(OptionError) as info:
        validate_options(ps, {"acct": "a --uid 0"}, user=ALICE)
    assert info.value.field == "acct"
    assert "directive" in info.value.message
    vo = validate_options(ps, {"acct": "a-b"}, user=ALICE)
    assert "#SBATCH --account=a-b" in vo.render_script(cmd="x", job_name="j", workdir="/w")


WHEN_BOOL = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: gpu, kind: boolean, display_name: GPU}
      - {id: ngpus, kind: integer, display_name: GPUs, min: 1, max: 4, when: {gpu: [true]}}
      - {id: ratio, kind: number, req: mem_ratio, display_name: R, min: 0, max: 1000000}
"""


@pytest.mark.parametrize(
    ("raw", "ngpus", "ratio"),
    [
        pytest.param({"gpu": "on", "ngpus": "2"}, "2", "0", id="shown"),
        pytest.param({"gpu": ["false"], "ngpus": "3"}, "", "0", id="hidden-ignored"),
        pytest.param({"ratio": "1000000"}, "", "1000000", id="no-exponent"),
        pytest.param({"ratio": 0.25}, "", "0.25", id="decimal"),
    ],
)
def test_boolean_when_and_number_text(raw: dict[str, Any], ngpus: str, ratio: str) -> None:
    from firecrestspawner.profiles import load_profile_text

    ps = ProfileSet(load_profile_text(WHEN_BOOL, name="t.yaml").profiles)
    vo = validate_options(ps, raw, user=ALICE)
    assert vo.req.get("ngpus", "") == ngpus
    assert vo.req["mem_ratio"] == ratio


WHEN_NUMBER = """
systems: [{name: c}]
profiles:
  - id: p
    display_name: P
    system: c
    options:
      - {id: ratio, kind: number, display_name: R, min: 0, max: 8, default: 2}
      - {id: note, kind: text, display_name: N, when: {ratio: [4]}}
"""


@pytest.mark.parametrize(
    ("ratio", "active"),
    [
        pytest.param("4", True, id="typed-4"),
        pytest.param(4.0, True, id="json-4.0"),
        pytest.param("4.5", False, id="other"),
        pytest.param(None, False, id="default-2"),
    ],
)
def test_when_on_a_number_compares_as_the_form_shows_it(ratio: Any, active: bool) -> None:
    # The validator and the form compare `when` values through one when_text():
    # 4.0 is "4", as the form's number field and its data-fcs-when rule say.
    from firecrestspawner.profiles import form, load_profile_text

    profile = load_profile_text(WHEN_NUMBER, name="t.yaml").profiles[0]
    raw = {"note": "x"} if ratio is None else {"ratio": ratio, "note": "x"}
    vo = validate_options(ProfileSet((profile,)), raw, user=ALICE)
    assert ("note" in vo.values) is active
    view = form.build_view(profile, user=ALICE, values=vo.values, selected=True)
    (note,) = [o for o in view.options if o.id == "note"]
    assert note.when == [{"option": "ratio", "values": ["4"]}]
    assert note.active is active


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(4.0, "4", id="integral-float"),
        pytest.param(0.5, "0.5", id="float"),
        pytest.param(3, "3", id="int"),
        pytest.param(None, "", id="none"),
        pytest.param(UenvValue("img/1:v1", "default"), "img/1:v1", id="uenv-image"),
        pytest.param("normal", "normal", id="text"),
    ],
)
def test_when_text(value: Any, text: str) -> None:
    assert when_text(value) == text
