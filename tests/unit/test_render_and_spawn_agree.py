"""``firecrestspawner render`` and a spawn accept and refuse exactly the same (issue #16).

Hypothesis writes profile files (fixed values and a text option whose value
lands on an ``#SBATCH`` line, in the script body, or both, with and without
``legacy_lists``) and values rich in quotes, backslashes, spaces, ``=`` and
line breaks. Each goes through the CLI's render command and through the
spawner's own request path (:class:`~firecrestspawner.profile_mode.ProfileMode`
with the spawner's default ``req_*`` values, then
:func:`~firecrestspawner.request.render_request`): both must accept, with the
same script, or both refuse.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firecrestspawner.profile_mode import ProfileContext, ProfileMode
from firecrestspawner.profiles.cli import DEFAULT_CMD, cmd_render
from firecrestspawner.profiles.options import OptionError, UserInfo
from firecrestspawner.profiles.script import ScriptRejected, ScriptTemplateError
from firecrestspawner.request import render_request
from firecrestspawner.slurm import SlurmSpawner

USER = "alice"
JOB_NAME = "fcs.hub.alice._.000000000000"

#: The configured ``req_*`` values a default SlurmSpawner passes as the lowest precedence.
BASE_REQ = {
    name[4:]: str(trait.default_value or "")
    for name, trait in SlurmSpawner.class_traits().items()
    if name.startswith("req_")
}

VALUE_CHARS = st.sampled_from([*"ab1 -=_'\"\\$`;#\n\t,./:", "--qos=high", "#SBATCH"])
values = st.lists(VALUE_CHARS, max_size=12).map("".join)
fixed_values = st.sampled_from(["normal", "normal --qos=high", "a b", "debug", "x'y", ""])


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str]:
    text = profile_text(
        req_name=draw(st.sampled_from(["comment", "reservation", "qos", "note"])),
        place=draw(st.sampled_from(["directive", "body", "both", "option-line"])),
        legacy=draw(st.booleans()),
        partition=draw(fixed_values),
        pattern=draw(st.sampled_from([None, ".*", "[^\\n]*", "[a-z0-9 =-]*"])),
    )
    return text, draw(values)


def profile_text(
    *, req_name: str, place: str, legacy: bool, partition: str, pattern: str | None
) -> str:
    var = f"{{{{ {req_name}[0] }}}}" if legacy and req_name == "note" else f"{{{{ {req_name} }}}}"
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name={{ job_name }}",
        "#SBATCH --partition={{ partition }}",
    ]
    if place in ("directive", "both"):
        lines.append(f"#SBATCH --comment={var}")
    if place == "option-line":
        lines.append(f"#SBATCH {var}")
    if place in ("body", "both"):
        lines.append(f'echo "{var}"')
    lines.append("{{ cmd }}")
    template = "\n".join(lines)
    option = [
        "      - id: note",
        "        kind: text",
        "        display_name: Note",
        f"        req: {req_name}",
        "        required: false",
    ]
    if pattern is not None:
        option.append(f"        pattern: {json.dumps(pattern)}")
    text = "\n".join(
        [
            "systems:",
            "  - name: cluster",
            "    workdir: /home",
            f"legacy_lists: {str(legacy).lower()}",
            "profiles:",
            "  - id: p",
            "    display_name: P",
            "    system: cluster",
            f"    req: {{partition: {json.dumps(partition)}}}" if partition else "    req: {}",
            "    batch_script:",
            "      template: |",
            *[f"        {line}" for line in template.split("\n")],
            "    options:",
            *option,
            "",
        ]
    )
    return text


def render_cli(path: Path, value: str) -> tuple[bool, str]:
    args = argparse.Namespace(
        file=str(path),
        profile="p",
        set=[f"note={value}"],
        user=USER,
        group=None,
        cluster=None,
        cmd=DEFAULT_CMD,
        workdir=None,
        job_name=JOB_NAME,
        show_request=False,
    )
    out, err = io.StringIO(), io.StringIO()
    return cmd_render(args, out, err) == 0, out.getvalue() or err.getvalue()


def render_spawn(directory: Path, value: str) -> tuple[bool, str]:
    async def client(url: str):  # no cluster-derived options here
        raise AssertionError("no FirecREST call expected")

    context = ProfileContext(
        user=UserInfo(USER, ()),
        firecrest_url="https://firecrest.example.org",
        base_req=BASE_REQ,
        client=client,
        log=logging.getLogger("test"),
    )
    mode = ProfileMode(str(directory), context)

    async def run() -> str:
        request = await mode.resolve(
            {"profile": "p", "note": value}, cmd=DEFAULT_CMD, default_workdir=f"/home/{USER}"
        )
        return render_request(request, job_name=JOB_NAME, username=USER, cmd=DEFAULT_CMD)

    try:
        return True, asyncio.run(run())
    except (OptionError, ScriptRejected, ScriptTemplateError) as e:
        return False, str(e)
    except Exception as e:
        if getattr(e, "reason", None) in ("invalid-options", "script-rejected"):
            return False, str(e)
        raise


def verdicts(text: str, value: str) -> tuple[tuple[bool, str], tuple[bool, str]] | None:
    """(render's, the spawn's) verdict and output; None if the file itself is invalid."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = directory / "site.yaml"
        path.write_text(text)
        cli = render_cli(path, value)
        if not cli[0] and "refused" not in cli[1]:
            return None
        return cli, render_spawn(directory, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_render_and_a_spawn_accept_and_refuse_the_same(case: tuple[str, str]) -> None:
    text, value = case
    got = verdicts(text, value)
    if got is None:
        return  # the generated file itself is invalid: nothing to compare
    (cli_ok, cli_out), (spawn_ok, spawn_out) = got
    assert cli_ok == spawn_ok, f"render: {cli_out!r}\nspawn: {spawn_out!r}\n{text}"
    if cli_ok:
        assert cli_out == spawn_out


def test_the_property_sees_both_verdicts() -> None:
    """The generator's space holds accepted and refused cases (the property is not vacuous)."""
    text = profile_text(
        req_name="comment", place="directive", legacy=False, partition="normal", pattern=None
    )
    accepted = verdicts(text, "ab-1")
    refused = verdicts(text, "a --qos=high")
    assert accepted is not None
    assert refused is not None
    assert [accepted[0][0], accepted[1][0]] == [True, True]
    assert [refused[0][0], refused[1][0]] == [False, False]
    assert "--comment=ab-1" in accepted[0][1]
