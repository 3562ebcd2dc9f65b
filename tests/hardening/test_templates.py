"""Finding 3: templates ``validate`` accepts render; compile and render cost are bounded.

The expensive cases below would take gigabytes or minutes without the bounds
(the test would hit its timeout or exhaust memory); with them each is refused
at once. Nothing asserts a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError
from firecrestspawner.profiles.loader import read_profile_file
from firecrestspawner.profiles.script import (
    ScriptTemplateError,
    check_template,
    render_batch_script,
)

SITE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems: [{{name: cluster}}]
profiles:
  - id: p
    display_name: P
    system: cluster
    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --job-name={{{{ job_name }}}}
        {body}
        {{{{ cmd }}}}
"""


def _site(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(body=body), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "label"),
    [
        ('{% include "other.sh" %}', "include"),
        ('{% import "macros.j2" as m %}', "import"),
        ('{% from "macros.j2" import x %}', "import"),
        ('{% extends "base.sh" %}', "extends"),
    ],
)
def test_template_loaders_are_refused_at_validate(tmp_path: Path, body: str, label: str) -> None:
    with pytest.raises(ProfileError) as info:
        read_profile_file(_site(tmp_path, body))
    text = str(info.value)
    assert label in text
    assert "self-contained" in text
    assert "batch_script.template" in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body",
    [
        "{{ 'x' * 10**10 }}",  # constant folding would build 10 GB while compiling
        "{{ 'x' * 999999999 }}",
        "{{ 10 ** (10 ** 10) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ ('x' ~ 'y') * 999999999 }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% for i in range(5000) %}x{% endfor %}",
    ],
)
def test_compile_and_render_cost_are_bounded(tmp_path: Path, body: str) -> None:
    # validate loads the file (it parses the template); the render is refused, not run away.
    path = _site(tmp_path, body)
    try:
        loaded = read_profile_file(path)
    except ProfileError as e:
        refused = str(e)
        loaded = None
    if loaded is None:
        assert "template" in refused  # refused at validate: fine
        return
    template = loaded.profiles[0].template
    with pytest.raises(ScriptTemplateError):
        render_batch_script(template, {"job_name": "j", "cmd": "c"}, name="t")


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("{% for a in [1, 2] %}{% for b in [1, 2] %}x{% endfor %}{% endfor %}", "inside a loop"),
        ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "inside a macro"),
        ("{% for a in [1] recursive %}{{ loop([a]) }}{% endfor %}", "recursive"),
        ("{{ 'x' | center(999999999) }}", "center"),
        ("{{ 'x' | indent(999999999) }}", "indent"),
        ("{{ '%s' | format('x') }}", "format"),
        ("{{ lipsum(100000) }}", "lipsum"),
    ],
)
def test_unbounded_constructs_are_refused_at_validate(tmp_path: Path, body: str, what: str) -> None:
    with pytest.raises(ProfileError) as info:
        read_profile_file(_site(tmp_path, body))
    assert what in str(info.value)


def test_format_widths_are_bounded_in_str_format_templates() -> None:
    with pytest.raises(ScriptTemplateError) as info:
        check_template("#!/bin/bash\necho {cmd:>999999999}\n")
    assert "999999999" in str(info.value)
    assert render_batch_script("#!/bin/bash\necho {cmd:>8}\n", {"cmd": "c"}).endswith("       c\n")


@pytest.mark.parametrize(
    "body",
    ["{{ 1 // (cmd | length - cmd | length) }}", "{{ cmd.nope.deeper }}", "{{ [] | first + 1 }}"],
)
def test_template_error_at_spawn_is_a_clear_message(body: str) -> None:
    template = f"#!/bin/bash\n#SBATCH --job-name=x\n{body}\n"
    with pytest.raises(ScriptTemplateError) as info:
        render_batch_script(template, {"cmd": "c"}, name="profile p")
    message = str(info.value)
    assert message.startswith("profile p: ")
    assert "Traceback" not in message
    assert len(message) < 400


def test_shipped_templates_still_pass() -> None:
    from firecrestspawner.profiles.script import builtin_template

    for name in ("slurm", "pbs"):
        check_template(builtin_template(name))
