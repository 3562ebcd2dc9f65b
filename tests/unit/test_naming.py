"""Table tests for job names (pure)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firecrestspawner import naming

SAFE = re.compile(r"[A-Za-z0-9._-]+")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("alice", "alice", id="plain"),
        pytest.param("a-b", "a-b", id="dash"),
        pytest.param("", "_", id="empty"),
    ],
)
def test_slug_keeps_plain_values(value, expected):
    assert naming.slug(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Alice", id="upper"),
        pytest.param("a b", id="space"),
        pytest.param("a\nb", id="newline"),
        pytest.param("x-abc", id="reserved-prefix"),
        pytest.param("a" * 100, id="long"),
        pytest.param("élodie@example.org", id="unicode-email"),
    ],
)
def test_slug_hashes_unsafe_values(value):
    result = naming.slug(value)
    assert result.startswith("x-")
    assert re.fullmatch(r"[a-z0-9-]+", result)
    assert len(result) <= 48


def test_job_name_is_deterministic_and_parseable():
    name = naming.job_name("hub1", "alice", "", "abc123")
    assert name == naming.job_name("hub1", "alice", "", "abc123")
    assert name == "fcs.hub1.alice._.abc123"
    parsed = naming.parse_job_name(name)
    assert parsed == naming.JobName(hub="hub1", user="alice", server="_", spawn="abc123")


def test_job_name_rejects_bad_spawn_id():
    with pytest.raises(ValueError, match="spawn_id"):
        naming.job_name("hub", "alice", "", "ab.c")


def test_new_spawn_id_is_valid():
    assert re.fullmatch(r"[0-9a-f]{12}", naming.new_spawn_id())


text = st.text(min_size=0, max_size=300)


@given(a=st.tuples(text, text, text), b=st.tuples(text, text, text))
def test_job_names_never_collide(a, b):
    name_a = naming.job_name(a[0], a[1] or "u", a[2], "s1")
    name_b = naming.job_name(b[0], b[1] or "u", b[2], "s1")
    assert (name_a == name_b) == (
        (a[0] or "hub", a[1] or "u", a[2]) == (b[0] or "hub", b[1] or "u", b[2])
    )


@given(hub=text, user=text.filter(bool), server=text)
def test_job_names_are_safe_and_short(hub, user, server):
    name = naming.job_name(hub, user, server, naming.new_spawn_id())
    assert SAFE.fullmatch(name)
    assert len(name) <= naming.MAX_LENGTH
    assert naming.parse_job_name(name) is not None
