"""Identifier patterns, value types and the frozen base model of the profile format (pure).

Also where the model classes get ``BaseModel``, ``Field``, ``StringConstraints``,
``model_validator`` and ``ValidationError`` from: pydantic, or in a ``validate``
process :mod:`.lightmodels`. Shared by :mod:`.models` (the file format),
:mod:`.option_kinds` (its option kinds) and :mod:`.rules` (dependent limits and
the scheduler-option allow-list), which :mod:`.models` builds on. The patterns are also importable from
:mod:`.models`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

from .lightmodels import ENV

if TYPE_CHECKING or os.environ.get(ENV) != "1":
    from pydantic import BaseModel, ConfigDict, Field, StringConstraints
    from pydantic import ValidationError as ValidationError
    from pydantic import model_validator as model_validator
else:  # `firecrestspawner validate`: see lightmodels.py
    from .lightmodels import BaseModel, ConfigDict, Field, StringConstraints
    from .lightmodels import ValidationError as ValidationError
    from .lightmodels import model_validator as model_validator

# -- identifiers ---------------------------------------------------------------
#: Profile ids: slugs, safe in URLs, form values and job names.
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
#: Option ids and request-variable names: template identifiers.
IDENT_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: FirecREST system names.
SYSTEM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Choice keys (partitions, accounts, uenv images such as ``prgenv-gnu/24.11:v1``):
#: one shell word, no spaces, quotes or ``#``.
CHOICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@%+=-]{0,127}$"
#: Slurm time limits: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``.
DURATION_PATTERN = (
    r"^(?:\d{1,4}-\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?|\d{1,6}(?::\d{1,2}(?::\d{1,2})?)?)$"
)
#: Names in ``groups``/``users`` allow-lists (no control characters, no spaces).
PRINCIPAL_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,256}$"
#: The pattern a ``text`` option uses when it declares none: one safe shell word.
#: ``/`` and ``-`` are escaped so that browsers read it as Python does (see html_pattern.py).
DEFAULT_TEXT_PATTERN = r"[A-Za-z0-9._,:=@\/+\-]*"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
SystemName = Annotated[str, StringConstraints(pattern=SYSTEM_PATTERN)]
ChoiceKey = Annotated[str, StringConstraints(pattern=CHOICE_PATTERN)]
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
Principal = Annotated[str, StringConstraints(pattern=PRINCIPAL_PATTERN)]
DisplayText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Regex = Annotated[str, StringConstraints(max_length=1000)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2000)]
#: A fixed request value: a string, or a number YAML wrote without quotes.
ReqValue = Annotated[str, StringConstraints(max_length=20000)] | int
ReqMap = dict[Ident, ReqValue]
WhenValue = Annotated[str, StringConstraints(max_length=256)] | int | bool


def _desc(text: str) -> Any:
    return Field(description=text)


def _accounts(what: str) -> Any:
    """The description of an ``accounts`` allow-list (profiles, options, choices, images)."""
    return _desc_none(
        f"Only users who hold one of these Slurm accounts (projects) on the system, as FirecREST userinfo reports them, {what}. Any match of `groups`, `users`, `accounts`, `unix_groups` allows; userinfo not readable now: not allowed (docs/profile-visibility.md)."
    )


def _unix_groups(what: str) -> Any:
    return _desc_none(
        f"Only users in one of these Unix groups on the system (primary or supplementary, from FirecREST userinfo) {what}. Any match of `groups`, `users`, `accounts`, `unix_groups` allows."
    )


def _desc_none(text: str) -> Any:
    return Field(None, description=text)


class _Model(BaseModel):
    # defer_build: a class's validator is built when first used, not at import;
    # validating a file builds the one of ProfileFile (covering every nested
    # class) instead of one per class (``firecrestspawner validate`` start-up).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


#: Names of scheduler options in an allow-list: ``--long-name`` or ``-X``.
SCHEDULER_FLAG_PATTERN = r"^(?:--[a-z][a-z0-9-]{0,62}|-[A-Za-z])$"
SchedulerFlag = Annotated[str, StringConstraints(pattern=SCHEDULER_FLAG_PATTERN)]
