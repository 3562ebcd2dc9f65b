"""Table tests for the job environment encoding (pure)."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firecrestspawner import jobenv
from firecrestspawner.jobenv import PACKED_VAR, decode_job_environment, describe, job_environment

SCOPES = '["access:servers!server=alice/", "read:users:name!user=alice"]'


def _packed(out: dict[str, str]) -> dict[str, str]:
    return json.loads(base64.b64decode(out[PACKED_VAR]))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("JUPYTERHUB_USER", "alice", id="plain"),
        pytest.param("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:0/user/alice/", id="url"),
        pytest.param("JUPYTERHUB_API_TOKEN", "0123456789abcdef0123456789abcdef", id="token"),
        pytest.param("WITH_SPACE", "a b", id="space"),
        pytest.param("EMPTY", "", id="empty"),
        pytest.param("EQUALS", "a=b", id="equals"),
    ],
)
def test_safe_values_are_sent_unchanged(key, value):
    out = job_environment({key: value})
    assert out == {key: value}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("LIST", "a,b", id="comma"),
        pytest.param("SQ", "it's", id="single-quote"),
        pytest.param("DQ", 'say "hi"', id="double-quote"),
        pytest.param("NL", "line1\nline2", id="newline"),
        pytest.param("CR", "a\rb", id="carriage-return"),
        pytest.param("TAB", "a\tb", id="tab"),
        pytest.param("NUL", "a\x00b", id="nul"),
        pytest.param("BS", "a\\b", id="backslash"),
        pytest.param("BT", "a`id`b", id="backtick"),
        pytest.param("DOLLAR", "$HOME", id="dollar"),
        pytest.param("UNI", "élodie", id="non-ascii"),
        pytest.param("LS", "a\u2028b", id="line-separator"),
        pytest.param("bad-name", "x", id="invalid-key"),
    ],
)
def test_mangled_values_are_packed_and_restored(key, value):
    out = job_environment({key: value, "KEEP": "k"})
    assert key not in out
    assert out["KEEP"] == "k"
    assert _packed(out) == {key: value}
    # The packed variable itself is safe on an sbatch --export line.
    assert set(out[PACKED_VAR]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    )
    restored = decode_job_environment(out)
    assert restored[key] == value
    assert PACKED_VAR not in restored


@pytest.mark.parametrize("key", jobenv.BASE64_KEYS)
def test_scope_keys_are_base64_encoded_in_place(key):
    out = job_environment({key: SCOPES})
    assert PACKED_VAR not in out
    assert base64.b64decode(out[key]).decode() == SCOPES


def test_scope_keys_decode_like_site_scripts_do():
    """Site batch scripts run `base64 --decode` on the scope variables."""
    out = job_environment({"JUPYTERHUB_OAUTH_ACCESS_SCOPES": SCOPES})
    decoded = subprocess.run(
        ["base64", "--decode"],
        input=out["JUPYTERHUB_OAUTH_ACCESS_SCOPES"].encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert decoded == SCOPES


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(base64.b64encode(SCOPES.encode()).decode(), id="still-encoded"),
        pytest.param(SCOPES, id="decoded-by-batch-script"),
    ],
)
def test_decode_handles_scopes_encoded_or_already_decoded(value):
    restored = decode_job_environment({"JUPYTERHUB_OAUTH_SCOPES": value})
    assert restored["JUPYTERHUB_OAUTH_SCOPES"] == SCOPES


@pytest.mark.parametrize(
    ("kwargs", "expected_keys"),
    [
        pytest.param({}, {"A", "B"}, id="default-drops-path"),
        pytest.param({"drop": ()}, {"A", "B", "PATH"}, id="drop-nothing"),
        pytest.param({"keep": ["A", "PATH"]}, {"A"}, id="keep-then-drop"),
        pytest.param({"drop": ("PATH", "B")}, {"A"}, id="drop-more"),
    ],
)
def test_keep_and_drop(kwargs, expected_keys):
    out = job_environment({"A": "1", "B": "2", "PATH": "/usr/bin"}, **kwargs)
    assert set(out) == expected_keys


def test_incoming_packed_var_is_not_forwarded():
    out = job_environment({PACKED_VAR: "garbage", "A": "1"})
    assert out == {"A": "1"}


def test_corrupt_packed_var_is_an_error():
    with pytest.raises(ValueError, match=PACKED_VAR):
        decode_job_environment({PACKED_VAR: "not base64!"})


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(json.dumps(["a"]), id="list"),
        pytest.param(json.dumps({"A": 1}), id="non-string-value"),
    ],
)
def test_packed_var_must_be_object_of_strings(blob):
    with pytest.raises(ValueError, match="object of strings"):
        decode_job_environment({PACKED_VAR: base64.b64encode(blob.encode()).decode()})


env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True).filter(
    lambda k: k != PACKED_VAR
)


@given(st.dictionaries(env_keys, st.text(), max_size=8))
def test_round_trip_restores_every_value(env):
    out = job_environment(env, drop=())
    for value in out.values():
        assert "," not in value
        assert "\n" not in value
        assert value.isascii()
    assert decode_job_environment(out, base64_keys=()) == {
        k: (base64.b64encode(v.encode()).decode() if k in jobenv.BASE64_KEYS else v)
        for k, v in env.items()
    }


CANARY = "canary-api-token-0123456789abcdef"


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"JUPYTERHUB_API_TOKEN": CANARY}, id="api-token"),
        pytest.param({"JPY_API_TOKEN": CANARY}, id="legacy-token"),
        pytest.param({"MY_SECRET": CANARY}, id="secret-name"),
        pytest.param({"OTHER": f"Authorization: token {CANARY}"}, id="header-in-value"),
        pytest.param({"SECRET_LIST": f"{CANARY},x"}, id="packed-secret"),
    ],
)
def test_describe_never_shows_secrets(env):
    text = describe(job_environment(env))
    assert CANARY not in text
    assert next(iter(env)) in text


def test_describe_lists_packed_keys_and_plain_values():
    text = describe(job_environment({"LIST": "a,b", "JUPYTERHUB_USER": "alice"}))
    assert "JUPYTERHUB_USER='alice'" in text
    assert f"{PACKED_VAR}=<packed: LIST>" in text
    assert "a,b" not in text
