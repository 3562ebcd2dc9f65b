"""The site profile file format as frozen pydantic models, and what loading produces (pure).

These models are the single source of ``schemas/profile.schema.json``: the
schema is generated from them (:func:`generate_schema`) and a test checks that
the checked-in file is current. Every field carries a description, which
editors show through yaml-language-server and ``docs/profiles.md`` renders.

The models hold what a file says; cross-field rules the schema cannot express
(duplicate ids, ``when`` targets, defaults inside their range, template
variables) live in :mod:`.checks`, which resolves each profile into a frozen
:class:`Profile`. A :class:`ProfileSet` is the profiles offered now.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

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
    ChoiceKey,
    DisplayText,
    Duration,
    Ident,
    LongText,
    Principal,
    Regex,
    ReqMap,
    SchedulerFlag,
    Slug,
    SystemName,
    Url,
    WhenValue,
    _desc,
    _Model,
)
from .rules import (
    AllowedSchedulerOption,
    ClusterBound,
    DependentRule,
    DependsOn,
    normalise_depends,
)

#: Where an editor fetches the schema: the raw file of the main branch (a URL that answers).
SCHEMA_ID = (
    "https://raw.githubusercontent.com/eth-cscs/firecrestspawner/main/schemas/profile.schema.json"
)
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _accounts(what: str) -> Any:
    return _desc_none(
        f"Only users who hold one of these Slurm accounts (projects) on the system, as FirecREST userinfo reports them, {what}. Any match of `groups`, `users`, `accounts`, `unix_groups` allows; userinfo not readable now: not allowed (docs/profile-visibility.md)."
    )


def _unix_groups(what: str) -> Any:
    return _desc_none(
        f"Only users in one of these Unix groups on the system (primary or supplementary, from FirecREST userinfo) {what}. Any match of `groups`, `users`, `accounts`, `unix_groups` allows."
    )


def _desc_none(text: str) -> Any:
    return Field(None, description=text)


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


# -- options -------------------------------------------------------------------
class _OptionBase(_Model):
    id: Ident = _desc(
        "Identifier of the option: the form field name, the key in `user_options` and, unless `req` says otherwise, the request variable it sets."
    )
    display_name: DisplayText = _desc("Label shown in the spawn form.")
    description: LongText = Field("", description="Help text shown under the field.")
    help: LongText = Field(
        "",
        description="Help in Markdown, shown under the field: `*emphasis*`, `**strong**`, `` `code` ``, links to http(s) or mailto, lists. Raw HTML is shown as text; other Markdown stays plain.",
    )
    req: Ident | None = Field(
        None,
        description="Name of the request variable this option sets, without the `req_` prefix (`partition` sets `req_partition`, template variable `partition`). Default: the option id.",
    )
    when: dict[Ident, list[WhenValue]] | None = Field(
        None,
        description="Show (and use) this option only when each named option, declared above this one, has one of the listed values. Values of a hidden option are ignored.",
    )
    groups: list[Principal] | None = Field(
        None,
        description="Only members of these groups see this option; others get the profile value.",
    )
    users: list[Principal] | None = Field(
        None, description="Only these users (and members of `groups`) see this option."
    )
    accounts: list[Principal] | None = _accounts("see this option")
    unix_groups: list[Principal] | None = _unix_groups("see this option")
    depends_on: DependsOn | None = Field(
        None,
        description='Limits, default and choices that depend on options declared above: `{option id: {value: {min, max, default, choices}}}`, e.g. `{partition: {debug: {max: "30"}}}`. A rule holds while that option is active and has that value; what it gives replaces the option\'s own. See [Dependent options](#dependent-options).',
    )

    _keys = model_validator(mode="before")(normalise_depends)

    @property
    def req_name(self) -> str:
        return self.req or self.id


class Choice(_Model):
    """One entry of a `choice` option."""

    display_name: DisplayText = _desc("Label of the choice.")
    description: LongText = Field("", description="Help text for the choice.")
    req: ReqMap = Field(
        default_factory=dict,
        description="Request variables this choice sets besides the option's own (for example `gres: gpu:4`); they win over the profile's fixed values.",
    )
    groups: list[Principal] | None = Field(
        None, description="Only members of these groups may pick this choice."
    )
    users: list[Principal] | None = Field(
        None, description="Only these users may pick this choice."
    )
    accounts: list[Principal] | None = _accounts("may pick this choice")
    unix_groups: list[Principal] | None = _unix_groups("may pick this choice")


class ChoiceOption(_OptionBase):
    """A pick from a static list. The choice key becomes the request value."""

    kind: Literal["choice"] = _desc("A pick from the static `choices`.")
    choices: Annotated[dict[ChoiceKey, Choice], Field(min_length=1)] = _desc(
        "The choices, keyed by the value the option sets (one shell word, e.g. a partition name). Order is kept."
    )
    default: ChoiceKey | None = Field(
        None, description="Key of the preselected choice. Default: the first."
    )


class ClusterChoiceOption(_OptionBase):
    """A pick from names FirecREST reports for the profile's system."""

    kind: Literal["cluster_choice"] = _desc(
        "A pick from names read from FirecREST's status endpoints."
    )
    source: Literal["partitions", "reservations", "accounts", "nodes"] = _desc(
        "Where the names come from: `partitions`, active `reservations`, the user's `accounts` (from userinfo; the groups when the site has no accounting), `nodes`."
    )
    ttl: int = Field(
        300, ge=0, le=86400, description="Seconds the list is cached per system and user."
    )
    fallback: list[ChoiceKey] = Field(
        default_factory=list,
        description="Names offered when FirecREST cannot be reached in time.",
    )
    allow: list[ChoiceKey] | None = Field(
        None, description="If set, only these names are offered even when the cluster reports more."
    )
    filter: Regex | None = Field(
        None,
        description="Full-match regex (RE2, linear time) a name must satisfy to be offered (e.g. `gpu-.*`).",
    )
    required: bool = Field(
        True,
        description="Whether a value must be picked. When false the empty value means none (e.g. no reservation).",
    )
    default: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        None,
        description="Preselected name. Default: the first name offered, or none when `required` is false.",
    )


class IntegerOption(_OptionBase):
    """A whole number with limits."""

    kind: Literal["integer"] = _desc("A whole number.")
    min: int | None = Field(None, description="Smallest allowed value.")
    max: int | None = Field(None, description="Largest allowed value.")
    step: int | None = Field(None, ge=1, description="Allowed values are `min + k*step`.")
    default: int | None = Field(None, description="Preselected value. Default: `min`, else 1.")
    cluster_max: ClusterBound | None = Field(
        None,
        description="Also at most what FirecREST reports for the partition picked in a `cluster_choice` option (its `totalNodes` or `cpus`).",
    )


class NumberOption(_OptionBase):
    """A number with limits."""

    kind: Literal["number"] = _desc("A number (integer or decimal).")
    min: float | None = Field(None, description="Smallest allowed value.")
    max: float | None = Field(None, description="Largest allowed value.")
    step: float | None = Field(None, gt=0, description="Allowed values are `min + k*step`.")
    default: float | None = Field(None, description="Preselected value. Default: `min`, else 0.")


class DurationOption(_OptionBase):
    """A Slurm time limit; the request value is normalised to `HH:MM:SS`."""

    kind: Literal["duration"] = _desc(
        "A time limit in Slurm format: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`."
    )
    min: Duration | None = Field(None, description="Shortest allowed time limit.")
    max: Duration | None = Field(None, description="Longest allowed time limit.")
    default: Duration | None = Field(
        None, description="Preselected time limit. Default: `max`, else `min`, else 1 hour."
    )


class TextOption(_OptionBase):
    """Free text, constrained by a full-match regex."""

    kind: Literal["text"] = _desc("Free text.")
    pattern: Regex = Field(
        DEFAULT_TEXT_PATTERN,
        description="Regex the whole value must match, checked by the server with RE2 (linear time: no backreferences, lookaround, atomic groups or possessive quantifiers; `\\d`, `\\w`, `\\s` are ASCII). The form also gives it to the browser (HTML `pattern`) when it means the same in the browser's regex dialect (JavaScript, `v` flag: escape `-`, `/`, `|`, brackets and braces inside `[...]`, no `\\d`/`\\w`/`\\s`); `firecrestspawner validate` warns when it does not. Default: one shell word of letters, digits and `._,:=@/+-`.",
    )
    max_length: int = Field(256, ge=1, le=4096, description="Longest allowed value, in characters.")
    required: bool = Field(False, description="Whether the value may be empty.")
    default: Annotated[str, StringConstraints(max_length=4096)] = Field(
        "", description="Preset value."
    )
    placeholder: Annotated[str, StringConstraints(max_length=200)] = Field(
        "", description="Hint shown in the empty field."
    )


class SchedulerOptionsOption(_OptionBase):
    """Extra scheduler options the user types, each from the administrator's allow-list.

    Written on one line, separated by spaces: `--exclusive --constraint=gpu`
    (or `--constraint gpu`; `-l place=excl` for a one-letter option). Each
    becomes its own directive line (`#SBATCH --constraint=gpu`).
    """

    kind: Literal["scheduler_options"] = _desc(
        "Extra scheduler options from an allow-list, each rendered as its own directive line."
    )
    allow: Annotated[dict[SchedulerFlag, AllowedSchedulerOption], Field(min_length=1)] = _desc(
        "The options a user may give, by name as the scheduler spells it (`--constraint`, `-l`)."
    )
    max_options: int = Field(8, ge=1, le=64, description="Most options in one value.")
    max_length: int = Field(512, ge=1, le=4096, description="Longest value, in characters.")
    default: Annotated[str, StringConstraints(max_length=4096)] = Field(
        "", description="Preset value, e.g. `--exclusive`."
    )
    placeholder: Annotated[str, StringConstraints(max_length=200)] = Field(
        "", description="Hint shown in the empty field."
    )


class BooleanOption(_OptionBase):
    """A checkbox."""

    kind: Literal["boolean"] = _desc("A checkbox.")
    default: bool = Field(False, description="Whether the box is ticked initially.")
    true_value: Annotated[str, StringConstraints(max_length=1000)] = Field(
        "1", description="Request value when ticked."
    )
    false_value: Annotated[str, StringConstraints(max_length=1000)] = Field(
        "", description="Request value when not ticked (empty, so `{% if x %}` works)."
    )


class UenvView(_Model):
    """A view of a uenv image."""

    display_name: DisplayText | None = Field(None, description="Label. Default: the view name.")
    description: LongText = Field("", description="Help text.")


class UenvImage(_Model):
    """A uenv image and the views it offers."""

    display_name: DisplayText | None = Field(None, description="Label. Default: the image name.")
    description: LongText = Field("", description="Help text.")
    views: dict[ChoiceKey, UenvView] = Field(
        default_factory=dict,
        description="Views of the image, each a choice of its own. Empty: the image has no views.",
    )
    default_view: ChoiceKey | None = Field(
        None, description="Preselected view. Default: the first view."
    )
    req: ReqMap = Field(
        default_factory=dict, description="Request variables set when this image is picked."
    )
    groups: list[Principal] | None = Field(
        None, description="Only members of these groups may pick this image."
    )
    users: list[Principal] | None = Field(None, description="Only these users may pick this image.")
    accounts: list[Principal] | None = _accounts("may pick this image")
    unix_groups: list[Principal] | None = _unix_groups("may pick this image")


class UenvOption(_OptionBase):
    """A uenv image and one of its views.

    The form sends the image as `<id>` and the view as `<id>_view`; the REST
    API may also send `{"image": ..., "view": ...}` under `<id>`.
    """

    kind: Literal["uenv"] = _desc("A uenv image and one of its views.")
    images: Annotated[dict[ChoiceKey, UenvImage], Field(min_length=1)] = _desc(
        "The images, keyed by uenv label (e.g. `prgenv-gnu/24.11:v1`)."
    )
    view_req: Ident = Field(
        "uenv_view", description="Request variable that receives the view (default `uenv_view`)."
    )
    default: ChoiceKey | None = Field(None, description="Preselected image. Default: the first.")
    required: bool = Field(True, description="Whether an image must be picked.")


Option = Annotated[
    ChoiceOption
    | ClusterChoiceOption
    | IntegerOption
    | NumberOption
    | DurationOption
    | TextOption
    | BooleanOption
    | UenvOption
    | SchedulerOptionsOption,
    Field(discriminator="kind"),
]
OPTION_KINDS = (
    "choice",
    "cluster_choice",
    "integer",
    "number",
    "duration",
    "text",
    "boolean",
    "uenv",
    "scheduler_options",
)


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
