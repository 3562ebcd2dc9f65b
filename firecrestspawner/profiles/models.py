"""The site profile file format as frozen pydantic models, and what loading produces (pure).

These models are the single source of ``schemas/profile.schema.json``: the
schema is generated from them (:func:`generate_schema`) and a test checks that
the checked-in file is current. Every field carries a description, which
editors show through yaml-language-server and ``docs/profiles.md`` renders.

The option kinds (``kind: choice`` ... ``kind: scheduler_options``) are in
:mod:`.option_kinds` and re-exported here. The models hold what a file says; cross-field rules the schema cannot express
(duplicate ids, ``when`` targets, defaults inside their range, template
variables) live in :mod:`.checks`, which resolves each profile into a frozen
:class:`Profile`. A :class:`ProfileSet` is the profiles offered now.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from ..states import StateRegexes
from .durations import duration_seconds, format_duration, readable_duration
from .errors import ProfileError
from .fields import (
    CHOICE_PATTERN,
    DEFAULT_TEXT_PATTERN,
    DURATION_PATTERN,
    IDENT_PATTERN,
    PRINCIPAL_PATTERN,
    SCHEDULER_FLAG_PATTERN,
    SLUG_PATTERN,
    SYSTEM_PATTERN,
    ConfigDict,
    DisplayText,
    Field,
    LongText,
    Principal,
    Regex,
    ReqMap,
    Slug,
    StringConstraints,
    SystemName,
    Url,
    _accounts,
    _desc,
    _Model,
    _unix_groups,
    model_validator,
)
from .option_kinds import (
    OPTION_KINDS,
    BooleanOption,
    Choice,
    ChoiceOption,
    ClusterChoiceOption,
    DurationOption,
    IntegerOption,
    NumberOption,
    Option,
    SchedulerOptionsOption,
    TextOption,
    UenvImage,
    UenvOption,
    UenvView,
)
from .rules import (
    AllowedSchedulerOption,
    ClusterBound,
    DependentRule,
)

#: Where an editor fetches the schema: the raw file of the main branch (a URL that answers).
SCHEMA_ID = (
    "https://raw.githubusercontent.com/eth-cscs/firecrestspawner/main/schemas/profile.schema.json"
)
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# -- shared pieces -------------------------------------------------------------
class States(_Model):
    """Regular expressions that read the scheduler state string.

    The spawner matches them against ``job_status = "<STATE> <nodes>"`` exactly
    as the documented ``state_*_re`` traits do. A field left out takes the
    default of the system's scheduler (Slurm or PBS).
    """

    pending: Regex | None = Field(
        None,
        description="Matches `job_status` while the job waits in the queue (`state_pending_re`).",
    )
    running: Regex | None = Field(
        None, description="Matches `job_status` while the job runs (`state_running_re`)."
    )
    unknown: Regex | None = Field(
        None,
        description="Matches `job_status` when the scheduler does not answer (`state_unknown_re`); empty disables it.",
    )
    exechost: Regex | None = Field(
        None,
        description="Regex with at least one capture group that extracts the execution host from `job_status` (`state_exechost_re`).",
    )
    exechost_exp: str | None = Field(
        None,
        max_length=1000,
        description="If set, the exechost match is expanded with this template (`re.Match.expand`, e.g. `\\1.cluster.local`) to give the notebook host (`state_exechost_exp`).",
    )


class BatchScript(_Model):
    """The batch script template: exactly one of `template`, `template_file`, `builtin`.

    Templates are Jinja2 (sandboxed, undefined variables are errors) or, when
    they contain neither `{{` nor `{%`, Python `str.format` (`{cmd}`) as in
    the documented `batch_script` trait.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "minProperties": 1,
            "maxProperties": 1,
            "x-hint": "write exactly one of `template: |` (inline text), `template_file: <path>` or `builtin: slurm|pbs`",
        },
    )

    template: Annotated[str, StringConstraints(min_length=1, max_length=100000)] | None = Field(
        None, description="The template text, inline."
    )
    template_file: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None, description="Path of a template file, relative to the profile file."
    )
    builtin: Annotated[str, StringConstraints(pattern=IDENT_PATTERN)] | None = Field(
        None, description="Name of a template shipped with firecrestspawner: `slurm` or `pbs`."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchScript:
        given = [v for v in (self.template, self.template_file, self.builtin) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of template, template_file, builtin")
        return self


# -- profiles and the file -----------------------------------------------------
class ProfileSpec(_Model):
    """One way to run a notebook server: a system, a script, fixed values and options."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["system"]}, {"required": ["systems"]}]},
    )

    id: Slug = _desc("Identifier (slug): the form value, the key saved in spawner state.")
    display_name: DisplayText = _desc("Title shown in the spawn form.")
    description: LongText = Field("", description="Text shown under the title.")
    help: LongText = Field(
        "",
        description="Help in Markdown, shown under the description: `*emphasis*`, `**strong**`, `` `code` ``, links to http(s) or mailto, lists. Raw HTML is shown as text; other Markdown stays plain.",
    )
    system: SystemName | None = Field(
        None,
        description="Name of the FirecREST system, one of the file's `systems`. Write `system` or `systems`.",
    )
    systems: Annotated[list[SystemName], Field(min_length=2)] | None = Field(
        None,
        description="Several systems the user picks from in the form (a generated option `system`, the first is the default); options may depend on it with `when: {system: [...]}`. Write `system` or `systems`.",
    )
    default: bool = Field(False, description="Preselected in the form; at most one per file.")
    groups: list[Principal] | None = Field(
        None,
        description="Only members of these JupyterHub groups (or the `users`) see and may use this profile (not Unix groups: see `unix_groups`). None of `groups`, `users`, `accounts`, `unix_groups`: everyone; an empty list allows nobody.",
    )
    users: list[Principal] | None = Field(
        None, description="JupyterHub user names allowed besides `groups`."
    )
    accounts: list[Principal] | None = _accounts("see and may use this profile")
    unix_groups: list[Principal] | None = _unix_groups("see and may use this profile")
    batch_script: BatchScript | None = Field(
        None,
        description="The batch script. Default: the built-in template of the system's scheduler.",
    )
    req: ReqMap = Field(
        default_factory=dict,
        description="Fixed request variables (without `req_`); custom names are allowed and become template variables.",
    )
    states: States | None = Field(None, description="State regexes; override the system's.")
    legacy_lists: bool | None = Field(
        None,
        description="Expose each option value to the template also as a one-element list under the option id (`{{runtime[0]}}`), for templates written for the old HTML forms. Default: the file's setting.",
    )
    options: list[Option] = Field(
        default_factory=list, description="Fields the user may set, in form order."
    )

    @model_validator(mode="after")
    def _one_system_key(self) -> ProfileSpec:
        if (self.system is None) == (self.systems is None):
            raise ValueError("give exactly one of system (one system) or systems (several)")
        return self


class System(_Model):
    """A FirecREST system the profiles of this file use."""

    name: SystemName = _desc("The FirecREST system name (`req_host`).")
    display_name: DisplayText | None = Field(None, description="Label. Default: the name.")
    firecrest_url: Url | None = Field(
        None, description="FirecREST URL for this system. Default: the file's `firecrest_url`."
    )
    scheduler: Literal["slurm", "pbs"] = Field(
        "slurm",
        description="Scheduler type: selects default state regexes and the default built-in template.",
    )
    workdir: (
        Annotated[str, StringConstraints(pattern=r"^/[^\x00-\x1f\x7f]*$", max_length=1000)] | None
    ) = Field(
        None,
        description="Absolute base directory; a job runs in `<workdir>/<username>` (as the `workdir` trait). Default: the spawner's `workdir`.",
    )
    req: ReqMap = Field(
        default_factory=dict, description="Request variables for every profile on this system."
    )
    states: States | None = Field(None, description="State regexes for this system.")


class ProfileFile(_Model):
    """A site profile file: systems, shared defaults and the profiles offered."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="firecrestspawner site profile file",
        populate_by_name=True,
    )

    schema_: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, alias="$schema", description="URL or path of this schema, for editors."
    )
    version: Literal[1] = Field(1, description="Format version; only 1 exists.")
    firecrest_url: Url | None = Field(
        None,
        description="FirecREST base URL for the systems of this file. Default: the spawner's `firecrest_url`.",
    )
    legacy_lists: bool = Field(
        False, description="Default of `legacy_lists` for the profiles of this file."
    )
    systems: Annotated[list[System], Field(min_length=1)] = _desc(
        "The FirecREST systems the profiles run on."
    )
    defaults: ReqMap = Field(
        default_factory=dict,
        description="Request variables shared by every profile of this file (lowest precedence after the spawner configuration).",
    )
    profiles: Annotated[list[ProfileSpec], Field(min_length=1)] = _desc("The profiles.")


# -- what loading produces: resolved, frozen profiles ----------------------------
@dataclass(frozen=True)
class Profile:
    """A profile with everything a spawn needs, resolved from its file.

    ``defaults`` are the file's ``defaults`` plus the system's ``req``;
    ``fixed`` the profile's own ``req``. Options are the frozen models of
    this module. ``html_patterns`` maps the ``text`` options whose pattern the
    browser reads as Python does to that pattern (the form's ``pattern``
    attribute); the others get none.
    """

    id: str
    display_name: str
    description: str
    system: str
    scheduler: str
    firecrest_url: str | None
    workdir: str | None
    default: bool
    groups: tuple[str, ...] | None
    users: tuple[str, ...] | None
    template: str
    template_name: str
    defaults: Mapping[str, str]
    fixed: Mapping[str, str]
    states: StateRegexes
    options: tuple[Option, ...]
    legacy_lists: bool
    source: str
    spec: ProfileSpec = field(repr=False, compare=False)
    html_patterns: Mapping[str, str] = field(default_factory=dict)
    #: ``accounts`` / ``unix_groups`` allow-lists (cluster identity, see identity.py).
    accounts: tuple[str, ...] | None = None
    unix_groups: tuple[str, ...] | None = None
    #: A multi-system profile: the resolved profile of each system (this one among them).
    variants: Mapping[str, Profile] = field(default_factory=dict, repr=False, compare=False)

    def option(self, option_id: str) -> Option | None:
        for option in self.options:
            if option.id == option_id:
                return option
        return None


def freeze(mapping: Mapping[str, Any]) -> Mapping[str, str]:
    """A read-only copy of request values, as text."""
    return types.MappingProxyType({k: str(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class ProfileSet:
    """The profiles currently offered, in file and declaration order."""

    profiles: tuple[Profile, ...] = ()
    errors: tuple[ProfileError, ...] = ()

    def get(self, profile_id: str) -> Profile | None:
        for profile in self.profiles:
            if profile.id == profile_id:
                return profile
        return None

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.profiles)

    def __len__(self) -> int:
        return len(self.profiles)

    def __contains__(self, profile_id: object) -> bool:
        return any(p.id == profile_id for p in self.profiles)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.profiles)


# -- schema ---------------------------------------------------------------------
def _walk(node: Any) -> Any:
    """Tidy pydantic's output into the schema we publish.

    * ``anyOf: [X, {type: null}]`` (an optional field) becomes ``X``: a file
      writes the key or leaves it out, ``key: null`` is refused;
    * maps keyed by a pattern refuse other keys (pydantic checks dict keys too);
    * property titles are dropped (editors show descriptions).
    """
    if isinstance(node, list):
        return [_walk(value) for value in node]
    if not isinstance(node, dict):
        return node
    node = {key: _walk(value) for key, value in node.items()}
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of:
        rest = [branch for branch in any_of if branch != {"type": "null"}]
        del node["anyOf"]
        if node.get("default", 0) is None:
            del node["default"]
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
    if "patternProperties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    props = node.get("properties")
    if isinstance(props, dict):
        for sub in props.values():
            if isinstance(sub, dict):
                sub.pop("title", None)
    return node


def generate_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a profile file, generated from the models."""
    schema = _walk(ProfileFile.model_json_schema(mode="validation"))
    out: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID}
    out.update(schema)
    out["description"] = (
        "A firecrestspawner site profile file: the FirecREST systems of a site, "
        "defaults shared by its profiles, and the profiles users pick from."
    )
    return out


__all__ = [
    "CHOICE_PATTERN",
    "DEFAULT_TEXT_PATTERN",
    "DURATION_PATTERN",
    "IDENT_PATTERN",
    "OPTION_KINDS",
    "PRINCIPAL_PATTERN",
    "SCHEDULER_FLAG_PATTERN",
    "SLUG_PATTERN",
    "SYSTEM_PATTERN",
    "AllowedSchedulerOption",
    "BatchScript",
    "BooleanOption",
    "Choice",
    "ChoiceOption",
    "ClusterBound",
    "ClusterChoiceOption",
    "DependentRule",
    "DurationOption",
    "IntegerOption",
    "NumberOption",
    "Option",
    "Profile",
    "ProfileFile",
    "ProfileSet",
    "ProfileSpec",
    "SchedulerOptionsOption",
    "States",
    "System",
    "TextOption",
    "UenvImage",
    "UenvOption",
    "UenvView",
    "duration_seconds",
    "format_duration",
    "freeze",
    "generate_schema",
    "readable_duration",
]
