"""Site profiles: the files that say what users may run, and everything derived from them.

One module per concern; all but :mod:`.cli`, :mod:`.reload` and this one are
pure (no hub, no network, no threads or subprocesses;
``tests/profiles/test_layout.py`` enforces it):

- :mod:`.parse`: YAML 1.2 (ruamel) and TOML text -> data, positions, size limits
- :mod:`.errors`: :class:`ProfileError` and its problems (``FILE:LINE:COL: $.path: message``, hint),
  ``OptionError``
- :mod:`.models`: the file format (pydantic; the JSON Schema is generated from it)
  and the frozen :class:`Profile` / :class:`ProfileSet` loading produces; :mod:`.option_kinds`
  its option kinds (re-exported by :mod:`.models`); :mod:`.lightmodels` the same classes
  without pydantic, in a ``firecrestspawner validate`` process
- :mod:`.report`: JSON Schema errors -> problems with hints
- :mod:`.checks`: cross-field checks, resolution into frozen profiles
- :mod:`.trial`: validate-time renderings with every value the file declares
- :mod:`.regex`: profile regexes on RE2 (linear time)
- :mod:`.loader`: one file through the pipeline; several files merged
- :mod:`.reload`: :class:`ProfileDirectory`, hot reload of a directory
- :mod:`.choices`: allow-lists, and the names the cluster offers (``ClusterChoices``)
- :mod:`.options`: the one validator of user options and ``req_*`` resolution
- :mod:`.numbers`: number option values (magnitude, range, step)
- :mod:`.script`: batch script rendering and its directive checks
- :mod:`.sandbox`: the bounded Jinja2 sandbox and static template checks
- :mod:`.directives`: directive lines as ``sbatch`` reads them; the inert-word rule
- :mod:`.html_pattern`: whether a pattern may also be the browser's check
- :mod:`.form`: the spawn form (with ``templates/``)
- :mod:`.cli`: ``firecrestspawner validate / render / schema``

The names below are what ``from firecrestspawner.profiles import ...`` gives.
"""

from .checks import SCHEDULER_STATES
from .errors import Problem, ProfileError
from .loader import (
    PROFILE_SUFFIXES,
    LoadedFile,
    load_profile_file,
    load_profile_text,
    merge_profiles,
    profile_files,
    profile_schema,
)
from .models import Profile, ProfileSet
from .reload import ProfileDirectory

__all__ = [
    "PROFILE_SUFFIXES",
    "SCHEDULER_STATES",
    "LoadedFile",
    "Problem",
    "Profile",
    "ProfileDirectory",
    "ProfileError",
    "ProfileSet",
    "load_profile_file",
    "load_profile_text",
    "merge_profiles",
    "profile_files",
    "profile_schema",
]
