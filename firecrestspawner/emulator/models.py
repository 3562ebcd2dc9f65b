"""Request bodies the emulator accepts: camelCase and snake_case, like the real server."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class _Request(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class JobDescriptionIn(_Request):
    working_directory: str
    script: str | None = None
    script_path: str | None = None
    name: str | None = None
    account: str | None = None
    partition: str | None = None
    reservation: str | None = None
    standard_input: str | None = None
    standard_output: str | None = None
    standard_error: str | None = None
    constraints: str | None = None
    env: dict[str, str] | list[str] = Field(default_factory=lambda: {"F7T_version": "v2.0.0"})


class SubmitIn(_Request):
    job: JobDescriptionIn


class PathIn(_Request):
    source_path: str = Field(validation_alias=AliasChoices("sourcePath", "source_path", "path"))


class MkdirIn(PathIn):
    parent: bool = False


class ChmodIn(PathIn):
    mode: str


def validation_detail(error: ValidationError, location: str = "body") -> str:
    """Every error with its whole location (``body.job.workingDirectory: Field required``)."""
    return "; ".join(
        ".".join([location, *(str(p) for p in e.get("loc", ()))]) + f": {e.get('msg', '')}"
        for e in error.errors()
    )


def validation_fields(error: ValidationError, location: str = "body") -> list[dict[str, Any]]:
    """``data.fields`` of a 400 validation answer, as FirecREST builds them.

    FirecREST names a field by the first part of its location only: a missing
    ``job.workingDirectory`` is reported as ``job``.
    """
    fields = []
    for e in error.errors():
        loc = [str(p) for p in e.get("loc", ())]
        fields.append(
            {"location": location, "name": loc[0] if loc else location, "message": e.get("msg", "")}
        )
    return fields
