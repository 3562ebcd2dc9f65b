"""The option kinds of the profile format: one frozen pydantic model per ``kind`` (pure).

Split from :mod:`.models`, which holds the profile, system and file models and
re-exports every name here (``from firecrestspawner.profiles import models as m;
m.ChoiceOption`` keeps working). :data:`Option` is the union ``ProfileSpec.options``
holds, told apart by ``kind``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from .fields import (
    DEFAULT_TEXT_PATTERN,
    ChoiceKey,
    DisplayText,
    Duration,
    Field,
    Ident,
    LongText,
    Principal,
    Regex,
    ReqMap,
    SchedulerFlag,
    StringConstraints,
    WhenValue,
    _accounts,
    _desc,
    _Model,
    _unix_groups,
    model_validator,
)
from .rules import AllowedSchedulerOption, ClusterBound, DependsOn, normalise_depends


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


__all__ = [
    "OPTION_KINDS",
    "BooleanOption",
    "Choice",
    "ChoiceOption",
    "ClusterChoiceOption",
    "DurationOption",
    "IntegerOption",
    "NumberOption",
    "Option",
    "SchedulerOptionsOption",
    "TextOption",
    "UenvImage",
    "UenvOption",
    "UenvView",
]
