"""Finding 9: user values in the script body, ``template_file`` links, control characters in texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError
from firecrestspawner.profiles.loader import read_profile_file

SITE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems: [{{name: cluster}}]
profiles:
  - id: p
    display_name: {display_name}
    description: {description}
    system: cluster
    options:
      - id: label
        display_name: Label
        kind: text
        pattern: '[^\\x00-\\x1f]*'
      - id: size
        display_name: Size
        kind: choice
        choices:
          small: {{display_name: {choice_name}}}
    batch_script:
{script}
"""
SCRIPT = """\
      template: |
        #!/bin/bash
        #SBATCH --job-name={{{{ job_name }}}}
        {body}
        {{{{ cmd }}}}"""


def _site(
    tmp_path: Path, *, body: str = "echo ok", script: str | None = None, **texts: str
) -> Path:
    values = {"display_name": "P", "description": "''", "choice_name": "Small", **texts}
    path = tmp_path / "site.yaml"
    path.write_text(
        SITE.format(script=script or SCRIPT.format(body=body), **values), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    "body",
    [
        'echo "{{ label }}"',
        "echo {{ label }}",
        "export X='{{ label }}'",
        "echo {{ label | upper }}",
        "echo {{ 'x' ~ label }}",
    ],
)
def test_validate_warns_on_user_values_in_the_body_outside_a_quoted_context(
    tmp_path: Path, body: str
) -> None:
    loaded = read_profile_file(_site(tmp_path, body=body))
    warnings = [str(w) for w in loaded.warnings]
    assert any("'label' comes from the user" in w and "template line 3" in w for w in warnings), (
        warnings
    )


@pytest.mark.parametrize(
    "body",
    [
        "echo {{ label | shquote }}",
        "#SBATCH --comment={{ label }}",
        "{% if label %}echo yes{% endif %}",
        "echo {{ size }}",  # a declared choice: the administrator's value
    ],
)
def test_no_warning_for_quoted_directive_or_declared_values(tmp_path: Path, body: str) -> None:
    loaded = read_profile_file(_site(tmp_path, body=body))
    assert not [w for w in loaded.warnings if "comes from the user" in str(w)]


def test_template_file_symlink_outside_profile_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.sh"
    secret.write_text("#!/bin/bash\n{{ cmd }}\n", encoding="utf-8")
    site_dir = tmp_path / "profiles"
    site_dir.mkdir()
    (site_dir / "t.sh").symlink_to(secret)
    (site_dir / "sub").symlink_to(outside, target_is_directory=True)
    for name in ("t.sh", "sub/secret.sh"):
        path = _site(site_dir, script=f"      template_file: {name}")
        with pytest.raises(ProfileError) as info:
            read_profile_file(path)
        assert "outside the profile directory" in str(info.value)
        assert "template_file" in str(info.value)
    # A link that stays inside is fine.
    (site_dir / "real.sh").write_text("#!/bin/bash\n{{ cmd }}\n", encoding="utf-8")
    (site_dir / "inside.sh").symlink_to(site_dir / "real.sh")
    assert read_profile_file(_site(site_dir, script="      template_file: inside.sh")).profiles


@pytest.mark.parametrize(
    ("texts", "key"),
    [
        ({"display_name": '"a\\u0000b"'}, "display_name"),
        ({"display_name": '"a\\nb"'}, "display_name"),
        ({"description": '"a\\u001bb"'}, "description"),
        ({"description": '"a\\u202eb"'}, "description"),
        ({"choice_name": '"a\\u0007b"'}, "choices.small.display_name"),
    ],
)
def test_control_characters_in_shown_texts_are_refused(
    tmp_path: Path, texts: dict[str, str], key: str
) -> None:
    with pytest.raises(ProfileError) as info:
        read_profile_file(_site(tmp_path, **texts))
    problem = next(p for p in info.value.problems if "control character" in p.message)
    assert problem.path.endswith(key)
    assert problem.line > 0


def test_a_description_may_hold_newlines(tmp_path: Path) -> None:
    assert read_profile_file(_site(tmp_path, description='"line one\\nline two\\tx"')).profiles
