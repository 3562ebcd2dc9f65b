"""Finding 1: no value changes the directives ``sbatch`` reads.

The check refuses any value that is not provably one inert word on a directive
line. The slurm-marked test compares the check's verdicts, and the project's
port of ``sbatch``'s tokenizer, with real ``sbatch``'s own parse of generated
scripts (``sbatch -vvv --test-only``: it prints every argument it finds in the
script and queues nothing), run as a real user. Scripts are batched (many
lines per call, separated by sentinel lines), so the suite makes a bounded
number of ``sbatch`` calls.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from firecrestspawner.profiles.directives import (
    DirectiveSyntaxError,
    inert_word_problem,
    slurm_arguments,
    slurm_directives,
)
from firecrestspawner.profiles.script import ScriptRejected, render_batch_script

from .corpus import hostile_values

#: Where the value goes on a directive line.
CONTEXTS = [
    "--comment={v}",
    "--comment {v}",
    '--comment="{v}"',
    "--comment='x{v}'",
    "-J{v}",
]
PLACEHOLDER = "fcsvPHx"
SBATCH_USER = "fsp-alice"
MAX_SBATCH_CALLS = 60


def _template(context: str) -> str:
    return (
        "#!/bin/bash\n#SBATCH --job-name=fixed\n#SBATCH "
        + context.replace("{v}", "{{ v }}")
        + "\n#SBATCH --partition=debug\necho ok\n"
    )


def _verdict(context: str, value: str) -> bool:
    try:
        render_batch_script(_template(context), {"v": value}, name="t")
    except ScriptRejected:
        return False
    return True


def _line(context: str, value: str) -> str:
    return "#SBATCH " + context.replace("{v}", value)


def _expected(context: str, value: str) -> list[str]:
    """The arguments the admin meant: the placeholder's words with the value in its place."""
    return [
        a.replace(PLACEHOLDER, value)
        for a in slurm_arguments(" " + context.replace("{v}", PLACEHOLDER))
    ]


def _port(line: str) -> list[str] | None:
    try:
        return slurm_directives(line + "\n")[0]
    except DirectiveSyntaxError:
        return None


# -- without Slurm: the rule and the port on known cases ------------------------------------------
def test_directive_injection_through_permissive_text_option_is_refused() -> None:
    # Values a shell-rules check read as one word, while sbatch reads extra options.
    for value in ["'\\'' --uid=0 '\\''", 'a"b c"\\ d --partition=debug', "x\\ --account=o"]:
        for context in CONTEXTS:
            assert not _verdict(context, value), (context, value)


def test_directive_check_names_the_field_and_the_line() -> None:
    with pytest.raises(ScriptRejected) as info:
        render_batch_script(_template("--comment={v}"), {"v": "a b"}, name="t")
    assert info.value.field == "v"
    assert "--comment=<v>" in info.value.reason


def test_inert_words_pass_on_directive_lines_and_anything_in_the_body() -> None:
    for value in ["debug", "proj-x", "1:00:00", "a.b@c", "4G", "gpu:2", ""]:
        assert _verdict("--comment={v}", value), value
    body = "#!/bin/bash\n#SBATCH --job-name=x\necho {{ v | shquote }}\n"
    assert render_batch_script(body, {"v": "a b' --uid=0"}, name="t")


def test_inert_word_rule() -> None:
    assert inert_word_problem("debug") is None
    for bad in ["-A", ":x", "a b", 'a"', "a'", "a\\", "a#", "apackjobb", "HETJOB", "a\u00a0b"]:
        assert inert_word_problem(bad), bad


def test_slurm_port_on_known_lines() -> None:
    assert slurm_arguments(' --job-name=a"b c"\\ d --partition=debug #x') == [
        "--job-name=ab c",
        "d",
        "--partition=debug",
    ]
    assert slurm_arguments(" --comment=x packjob y") == ["--comment=x"]
    assert slurm_arguments(" --comment=x HETJOB y") == ["--comment=x"]
    assert slurm_arguments(" --comment=x hetjobX y") == ["--comment=x", "hetjobX", "y"]
    assert slurm_arguments(" '\\'' --uid=0") == ["'", "--uid=0"]
    assert slurm_arguments(' "" --uid=0') == []
    with pytest.raises(DirectiveSyntaxError):
        slurm_arguments(" : -p debug")
    with pytest.raises(DirectiveSyntaxError):
        slurm_arguments(' "open')
    assert slurm_directives("#!/bin/bash\n#SBATCH -p a\n\n# c\necho\n#SBATCH -p b\n") == [
        ["-p", "a"]
    ]


def test_accepted_values_parse_as_the_admin_meant_by_the_port() -> None:
    changed = []
    for value in hostile_values():
        for context in CONTEXTS:
            if _verdict(context, value) and _port(_line(context, value)) != _expected(
                context, value
            ):
                changed.append((context, value))
    assert changed == []


# -- with Slurm: real sbatch's parse --------------------------------------------------------------
def _sbatch_found(script: str, workdir: Path) -> tuple[list[str], str]:
    """The arguments real ``sbatch`` finds in ``script`` (as a real user, nothing queued)."""
    path = workdir / "probe.sh"
    path.write_text(script, encoding="utf-8")
    path.chmod(0o644)
    result = subprocess.run(
        [
            "su",
            SBATCH_USER,
            "-s",
            "/bin/sh",
            "-c",
            f"cd /tmp && exec sbatch -vvv --test-only {path}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = result.stderr.decode("utf-8", "surrogateescape")
    found = re.findall(r'^sbatch: debug2: Found in script, argument "(.*)"$', err, re.M)
    return found, err


def _split(found: list[str], count: int) -> list[list[str]] | None:
    """Arguments per probe line, cut at the sentinels ``--comment=fcsep<i>``."""
    out: list[list[str]] = []
    current: list[str] = []
    expected = 0
    for arg in found:
        if arg == f"--comment=fcsep{expected}":
            if expected > 0:
                out.append(current)
            current, expected = [], expected + 1
        else:
            current.append(arg)
    return out if len(out) == count else None


@pytest.mark.slurm
@pytest.mark.timeout(600)
def test_directive_check_agrees_with_real_sbatch(slurm) -> None:
    if shutil.which("sbatch") is None or os.geteuid() != 0:
        pytest.skip("needs sbatch and root (to run it as a test user)")
    with tempfile.TemporaryDirectory(prefix="fsp-sbatch-") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        _compare_with_sbatch(tmp_path)


def _compare_with_sbatch(tmp_path: Path) -> None:
    cases = [(c, v) for v in hostile_values() for c in CONTEXTS]
    # sbatch can only write what a script holds; values with NUL or lone surrogates
    # never reach a script (the validator refuses them before any check).
    cases = [(c, v) for c, v in cases if "\x00" not in v and "\n" not in v and "\r" not in v]
    cases = [
        (c, v)
        for c, v in cases
        if v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == v
    ]
    parseable = [(c, v) for c, v in cases if _port(_line(c, v)) is not None]
    fatal = [(c, v) for c, v in cases if _port(_line(c, v)) is None]
    calls = 0
    observed: dict[tuple[str, str], list[str]] = {}
    batch = 200
    for start in range(0, len(parseable), batch):
        chunk = parseable[start : start + batch]
        lines = ["#!/bin/bash"]
        for i, (context, value) in enumerate(chunk):
            lines += [f"#SBATCH --comment=fcsep{i}", _line(context, value)]
        lines += [f"#SBATCH --comment=fcsep{len(chunk)}", "echo ok", ""]
        found, err = _sbatch_found("\n".join(lines), tmp_path)
        calls += 1
        per_line = _split(found, len(chunk))
        assert per_line is not None, (
            f"sbatch stopped early; the port said it would not:\n{err[-2000:]}"
        )
        observed.update(zip(chunk, per_line, strict=True))
    # The port calls these fatal: a bounded sample must be fatal for sbatch too.
    for context, value in fatal[:20]:
        _, err = _sbatch_found(f"#!/bin/bash\n{_line(context, value)}\necho ok\n", tmp_path)
        calls += 1
        assert "fatal:" in err, (context, value, err[-500:])
    assert calls <= MAX_SBATCH_CALLS

    port_mismatch = [(c, v) for (c, v), args in observed.items() if args != _port(_line(c, v))]
    assert port_mismatch == [], "the port of sbatch's tokenizer disagrees with sbatch"
    accepted = [(c, v) for c, v in cases if _verdict(c, v)]
    changed = [
        (c, v) for c, v in accepted if (c, v) in observed and observed[c, v] != _expected(c, v)
    ]
    unverified = [(c, v) for c, v in accepted if (c, v) not in observed]
    assert changed == [], "an accepted value changed the directives sbatch read"
    assert unverified == [], "an accepted value made sbatch stop (fatal)"
    # The corpus is hostile: many values sbatch would read as something else were refused.
    refused_dangerous = [
        (c, v)
        for (c, v), args in observed.items()
        if args != _expected(c, v) and not _verdict(c, v)
    ]
    assert len(accepted) >= 50
    assert len(refused_dangerous) >= 200
