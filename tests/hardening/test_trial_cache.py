"""The trial renderings' cache (issue 17) never lets a declared value pass that would inject.

``validate`` renders each profile's script with every value the file declares
and keeps each rendering's outcome by its whole input, because many profiles
share a template. A profile that differs from an already-checked one only in
one fixed value must still be refused: the key holds every value, the trust
set, the template's text and name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firecrestspawner.profiles import ProfileError, trial
from firecrestspawner.profiles.loader import read_profile_file
from firecrestspawner.profiles.script import ScriptRejected

SITE = """\
version: 1
firecrest_url: http://firecrest.invalid
systems:
  - name: cluster
profiles:
{profiles}"""

PROFILE = """\
  - id: {id}
    display_name: {id}
    system: cluster
{template}    req: {{partition: '{partition}'}}
    options:
      - id: size
        display_name: Size
        kind: choice
        choices:
          small: {{display_name: Small}}
          big: {{display_name: Big, req: {{nnodes: '{nnodes}'}}}}
"""

TEMPLATE = """\
    batch_script:
      template: |
        #!/bin/bash
        #SBATCH --partition={{ partition }}
        #SBATCH --nodes={{ nnodes }}
        {{ cmd }}
"""


def _profile(pid: str, partition: str = "normal", nnodes: str = "2", custom: bool = False) -> str:
    template = TEMPLATE if custom else ""
    return PROFILE.format(id=pid, partition=partition, nnodes=nnodes, template=template)


def _write(path: Path, *profiles: str) -> Path:
    path.write_text(SITE.format(profiles="".join(profiles)), encoding="utf-8")
    return path


@pytest.mark.parametrize("custom", [False, True], ids=["built-in template", "own template"])
@pytest.mark.parametrize(
    "change",
    [{"partition": "normal --uid=0"}, {"nnodes": "2 --qos=high"}, {"partition": "x\ny"}],
    ids=["fixed req", "choice req", "newline"],
)
def test_second_profile_with_an_injecting_value_is_refused_after_a_clean_one(
    tmp_path: Path, custom: bool, change: dict[str, str]
) -> None:
    trial._OUTCOMES.clear()
    clean = _profile("a", custom=custom)
    hostile = _profile("b", custom=custom, **change)
    # In one file, after a clean profile with the same template...
    with pytest.raises(ProfileError) as info:
        read_profile_file(_write(tmp_path / "one.yaml", clean, hostile))
    field = next(iter(change))
    assert any(repr(field) in p.message for p in info.value.problems), str(info.value)
    # ...and in a second file after the clean file was checked on its own (cache warm).
    trial._OUTCOMES.clear()
    assert len(read_profile_file(_write(tmp_path / "clean.yaml", clean)).profiles) == 1
    assert trial._OUTCOMES, "the clean file's trials were not cached: this test proves nothing"
    with pytest.raises(ProfileError) as info:
        read_profile_file(_write(tmp_path / "hostile.yaml", _profile("a", custom=custom, **change)))
    assert any(repr(field) in p.message for p in info.value.problems), str(info.value)


def test_a_refused_outcome_does_not_stick_to_a_clean_profile(tmp_path: Path) -> None:
    trial._OUTCOMES.clear()
    with pytest.raises(ProfileError):
        read_profile_file(_write(tmp_path / "bad.yaml", _profile("a", partition="a b")))
    assert len(read_profile_file(_write(tmp_path / "good.yaml", _profile("a"))).profiles) == 1


TPL = "#!/bin/bash\n#SBATCH --partition={{ partition }}\n{{ cmd }}\n"


@pytest.mark.parametrize(
    ("first", "second", "trusted"),
    [
        # the value itself
        ({"partition": "normal", "cmd": "x"}, {"partition": "a b", "cmd": "x"}, {"cmd"}),
        # the trust set: the same values, but the partition is no longer trusted
        ({"partition": "a b", "cmd": "x"}, {"partition": "a b", "cmd": "x"}, {"cmd"}),
        # a list holding the injecting item
        ({"partition": ["n"], "cmd": "x"}, {"partition": ["n --uid=0"], "cmd": "x"}, {"cmd"}),
    ],
)
def test_checked_render_key_holds_values_and_trust(
    first: dict[str, object], second: dict[str, object], trusted: set[str]
) -> None:
    trial._OUTCOMES.clear()
    first_trusted = {"cmd", "partition"} if first == second else trusted
    trial._checked_render(TPL, first, name="t", trusted=first_trusted)
    with pytest.raises(ScriptRejected) as info:
        trial._checked_render(TPL, second, name="t", trusted=trusted)
    assert info.value.field == "partition"
    # And the same input again gives the same refusal from the cache.
    with pytest.raises(ScriptRejected):
        trial._checked_render(TPL, second, name="t", trusted=trusted)


def test_checked_render_keeps_types_apart() -> None:
    # True == 1 and hash(True) == hash(1): the type must be part of the key.
    tpl = "#!/bin/bash\n{% if flag is sameas true %}#SBATCH --exclusive\n{% endif %}x\n"
    trial._OUTCOMES.clear()
    assert trial._render_key(tpl, {"flag": True}, "t", ()) != trial._render_key(
        tpl, {"flag": 1}, "t", ()
    )
    # A value that is not plain (a str subclass) is never cached.
    assert trial._render_key(tpl, {"flag": type("S", (str,), {})("x")}, "t", ()) is None
