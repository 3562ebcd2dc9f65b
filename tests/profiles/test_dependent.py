"""Dependent options (#14.3): limits, defaults and choices that follow another option.

The one validator applies them on every path; `validate` reports rules that
name nothing, take values their option cannot have, or contradict each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firecrestspawner.cluster import partitions_to_choices
from firecrestspawner.profiles import ProfileError, ProfileSet, load_profile_file
from firecrestspawner.profiles.choices import ClusterChoices
from firecrestspawner.profiles.loader import load_profile_text
from firecrestspawner.profiles.options import OptionError, UserInfo, validate_options

HERE = Path(__file__).resolve().parent
PS: ProfileSet = load_profile_file(HERE / "valid" / "dependent-expert.yaml")
ALICE = UserInfo("alice")


def ok(raw: dict[str, Any], **kw: Any) -> Any:
    return validate_options(PS, raw, user=ALICE, **kw)


def refused(raw: dict[str, Any], **kw: Any) -> OptionError:
    with pytest.raises(OptionError) as info:
        validate_options(PS, raw, user=ALICE, **kw)
    return info.value


def test_a_duration_bound_follows_the_partition() -> None:
    assert (
        ok({"profile": "gpu", "partition": "normal", "runtime": "3:00:00"}).req["runtime"]
        == "03:00:00"
    )
    e = refused({"profile": "gpu", "partition": "debug", "runtime": "45"})
    assert e.field == "runtime"
    assert "5 min to 30 min" in e.message
    assert "while partition is debug" in e.message
    # The rule can also raise the option's own limit.
    assert (
        ok({"profile": "gpu", "partition": "long", "runtime": "1-12:00:00"}).req["runtime"]
        == "36:00:00"
    )
    assert refused({"profile": "gpu", "partition": "normal", "runtime": "13:00:00"}).field == (
        "runtime"
    )


def test_defaults_follow_the_rule_or_move_inside_the_limits() -> None:
    # normal: the option's own default; debug: 2:00:00 moved to the rule's max; long: the rule's.
    assert ok({"profile": "gpu", "partition": "normal"}).req["runtime"] == "02:00:00"
    assert ok({"profile": "gpu", "partition": "debug"}).req["runtime"] == "00:30:00"
    assert ok({"profile": "gpu", "partition": "long"}).req["runtime"] == "24:00:00"


def test_integer_rules_of_two_controllers_combine_to_the_tightest() -> None:
    assert ok({"profile": "gpu", "partition": "normal", "nnodes": 4}).req["nnodes"] == "4"
    assert refused({"profile": "gpu", "partition": "debug", "nnodes": 3}).field == "nnodes"
    e = refused({"profile": "gpu", "partition": "normal", "big": True, "nnodes": 1})
    assert "while big is true" in e.message
    assert ok({"profile": "gpu", "partition": "debug", "big": True}).req["nnodes"] == "2"


def test_choices_follow_the_partition() -> None:
    assert ok({"profile": "gpu", "partition": "long"}).req["account"] == "staff"
    e = refused({"profile": "gpu", "partition": "long", "account": "proj1"})
    assert e.field == "account"
    assert "choose one of: staff" in e.message
    assert ok({"profile": "gpu", "partition": "debug"}).req["account"] == "proj2"
    assert refused({"profile": "gpu", "partition": "debug", "account": "staff"}).field == (
        "account"
    )
    assert (
        ok({"profile": "gpu", "partition": "normal", "account": "staff"}).req["account"] == "staff"
    )


def test_saved_options_validate_to_the_same_result() -> None:
    first = ok({"profile": "gpu", "partition": "debug", "big": "true"})
    again = ok(first.user_options())
    assert again.req == first.req


def test_form_shaped_values_are_checked_alike() -> None:
    e = refused({"profile": ["gpu"], "partition": ["debug"], "runtime": ["45"]})
    assert e.field == "runtime"


def _partitions(system: str = "daint") -> tuple[ClusterChoices, ...]:
    # What FirecREST 2.5.6 answers for /status/{system}/partitions (no time limit).
    answer = [
        {"name": "normal", "partition": "UP", "cpus": 256, "totalNodes": 8},
        {"name": "debug", "partition": "UP", "cpus": 64, "totalNodes": 2},
    ]
    return (ClusterChoices("partitions", system, partitions_to_choices(answer)),)


def test_partitions_from_firecrest_bound_nodes_and_key_time_limits() -> None:
    cluster = _partitions()
    raw = {"profile": "cluster-parts", "partition": "debug"}
    assert ok({**raw, "nnodes": 2}, cluster=cluster).req["nnodes"] == "2"
    e = refused({**raw, "nnodes": 3}, cluster=cluster)
    assert e.field == "nnodes"
    assert "partition debug has 2 nodes" in e.message
    assert ok({**raw, "partition": "normal", "nnodes": 8}, cluster=cluster).req["nnodes"] == "8"
    assert refused({**raw, "partition": "normal", "nnodes": 9}, cluster=cluster).field == "nnodes"
    assert refused({**raw, "runtime": "1:00:00"}, cluster=cluster).field == "runtime"
    # Without cluster data the option's own limits apply.
    assert ok({**raw, "nnodes": 64}).req["nnodes"] == "64"


BASE = """
systems: [{name: daint}]
profiles:
  - id: p
    display_name: P
    system: daint
    options:
      - id: partition
        kind: choice
        display_name: Partition
        choices: {normal: {display_name: n}, debug: {display_name: d}}
      - id: flag
        kind: text
        display_name: Flag
"""


def problems(options: str) -> list[str]:
    with pytest.raises(ProfileError) as info:
        load_profile_text(BASE + options, name="dep.yaml")
    return [f"{p.line}: {p.message}" for p in info.value.problems]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            "      - {id: r, kind: duration, display_name: R, depends_on: {nope: {a: {max: '30'}}}}",
            "`depends_on` refers to 'nope', which is not an option of this profile",
        ),
        (
            "      - {id: r, kind: duration, display_name: R, depends_on: {partition: {gpu: {max: '30'}}}}",
            "'gpu' is not a value of option 'partition'",
        ),
        (
            "      - {id: r, kind: duration, display_name: R, depends_on: {flag: {a: {max: '30'}}}}",
            "'flag' is a text option; limits can depend on",
        ),
        (
            "      - {id: r, kind: duration, display_name: R, depends_on: {partition: {debug: {max: '30', default: '1:00:00'}}}}",
            "while partition is debug: default 1 h is above max 30 min",
        ),
        (
            "      - {id: r, kind: integer, display_name: R, depends_on: {partition: {debug: {min: 4, max: 2}}}}",
            "while partition is debug: min 4 is above max 2",
        ),
        (
            "      - {id: r, kind: duration, display_name: R, depends_on: {partition: {debug: {max: 'soon'}}}}",
            "'soon' is not a time limit",
        ),
        (
            "      - {id: r, kind: choice, display_name: R, choices: {a: {display_name: a}}, depends_on: {partition: {debug: {choices: [b]}}}}",
            "'b' is not a value of this option",
        ),
        (
            "      - {id: r, kind: text, display_name: R, depends_on: {partition: {debug: {max: 1}}}}",
            "a text option cannot have dependent limits",
        ),
        (
            "      - {id: r, kind: integer, display_name: R, cluster_max: {option: partition, limit: nodes}}",
            "'partition' is not a cluster_choice option with source partitions declared above",
        ),
    ],
)
def test_validate_reports_bad_rules_at_their_line(options: str, expected: str) -> None:
    found = problems(options)
    assert any(expected in p for p in found), found
    assert all(p.startswith("15:") for p in found), found


def test_a_rule_naming_an_option_below_is_reported() -> None:
    text = """
      - {id: r, kind: duration, display_name: R, depends_on: {later: {x: {max: '30'}}}}
      - {id: later, kind: choice, display_name: L, choices: {x: {display_name: x}}}"""
    assert any("which is declared below this one" in p for p in problems(text))


def test_every_bad_rule_is_reported_in_one_pass() -> None:
    text = """
      - {id: r, kind: duration, display_name: R, depends_on: {partition: {gpu: {max: '30'}}}}
      - {id: s, kind: integer, display_name: S, depends_on: {partition: {debug: {min: 4, max: 2}}}}"""
    found = problems(text)
    assert len(found) == 2
    assert found[0].startswith("16:")
    assert found[1].startswith("17:")


KINDS = """
systems: [{name: daint}]
profiles:
  - id: p
    display_name: P
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
          gnu/24:v1: {views: {default: {}}}
          cuda/12:v1: {views: {default: {}}}
        depends_on:
          partition:
            debug: {choices: [gnu/24:v1]}
      - id: reservation
        kind: cluster_choice
        source: reservations
        display_name: Reservation
        required: false
        depends_on:
          partition:
            debug: {choices: [course-a]}
      - id: mem
        kind: number
        display_name: Memory
        min: 0.5
        max: 64
        default: 8
        depends_on:
          partition:
            debug: {max: 4.5}
"""


def test_uenv_cluster_choice_and_number_rules() -> None:
    from firecrestspawner.profiles.options import cluster_lists

    ps = ProfileSet(load_profile_text(KINDS, name="kinds.yaml").profiles)
    cluster = cluster_lists({"daint": {"reservations": ["course-a", "course-b"]}})

    def check(raw: dict[str, Any]) -> Any:
        return validate_options(ps, raw, user=ALICE, cluster=cluster)

    normal = check({"partition": "normal", "uenv": "cuda/12:v1", "reservation": "course-b"})
    assert normal.req["uenv"] == "cuda/12:v1"
    assert normal.req["mem"] == "8"
    debug = check({"partition": "debug"})
    assert debug.req["mem"] == "4.5"  # the default 8 moved inside debug's limit
    assert debug.req["uenv"] == "gnu/24:v1"
    for raw, field in (
        ({"partition": "debug", "uenv": "cuda/12:v1"}, "uenv"),
        ({"partition": "debug", "reservation": "course-b"}, "reservation"),
        ({"partition": "debug", "mem": 5}, "mem"),
    ):
        with pytest.raises(OptionError) as info:
            check(raw)
        assert info.value.field == field
        assert "while partition is debug" in info.value.message
    assert check({"partition": "debug", "reservation": "course-a"}).req["reservation"] == (
        "course-a"
    )


def test_default_options_follow_the_rules_of_the_defaults_above() -> None:
    from firecrestspawner.profiles.options import default_options

    text = (
        BASE.replace(
            "choices: {normal: {display_name: n}, debug: {display_name: d}}",
            "choices: {normal: {display_name: n}, debug: {display_name: d}}\n        default: debug",
        )
        + """      - id: runtime
        kind: duration
        display_name: R
        default: "2:00:00"
        depends_on: {partition: {debug: {max: "30"}}}
"""
    )
    ps = ProfileSet(load_profile_text(text, name="d.yaml").profiles)
    raw = default_options(ps.profiles[0])
    assert raw["runtime"] == "00:30:00"
    assert validate_options(ps, raw, user=ALICE).req["runtime"] == "00:30:00"
