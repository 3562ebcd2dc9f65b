"""JSON Schema errors -> :class:`~.errors.Problem` s with a message and a hint (pure).

The file is validated against the schema generated from :mod:`.models`;
*every* error is collected (for the option ``oneOf``, only the errors of the
branch ``kind`` names), then each is turned into one problem that says what
is wrong in the file's own terms and what to write instead: unknown keys with
the closest allowed one, types in words, pattern hints per pattern, and the
schema's own ``x-hint``. Positions come from the parsed YAML document.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from . import models as m
from .errors import Problem, describe_type, json_path, short
from .parse import position


def _schema() -> dict[str, Any]:
    """The models' schema as published (the file is tested to equal ``generate_schema()``).

    Read from the file, not generated: pydantic's schema generation costs ~60 ms,
    paid by every ``firecrestspawner validate`` (a pre-commit hook).
    """
    from .loader import profile_schema  # loader imports this module

    return profile_schema()


@lru_cache(maxsize=1)
def schema_validator() -> jsonschema.Draft202012Validator:
    """A validator of the models' schema (the checked-in file is tested to equal it)."""
    return jsonschema.Draft202012Validator(_schema())


def schema_errors(data: Any) -> list[jsonschema.ValidationError]:
    """Every schema error of a parsed document, in path order.

    A valid document (the common case) is recognised by :func:`validity_checker`
    first, about five times faster; the errors of any other come from the full
    validator as before.
    """
    if validity_checker().is_valid(data):
        return []
    return sorted(
        schema_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
    )


@lru_cache(maxsize=1)
def validity_checker() -> jsonschema.Draft202012Validator:
    """A validator that answers *whether* a document is valid, as :func:`schema_validator` does.

    The option list's ``oneOf`` is discriminated by ``kind``: every branch
    requires ``kind`` with its own ``const``, so an option whose ``kind`` names
    a branch can be valid under that branch only, and ``oneOf`` holds exactly
    when that branch does. This validator checks that one branch instead of all
    eight (it yields *an* error, not jsonschema's); anything else, and every
    ``oneOf`` whose branches are not of that shape (checked here, against the
    schema), goes through jsonschema's own ``oneOf``.
    """
    schema = _schema()
    defs = schema.get("$defs", {})
    base = jsonschema.Draft202012Validator
    plain_one_of = base.VALIDATORS["oneOf"]

    def one_of(validator: Any, branches: Any, instance: Any, sub: Any) -> Any:
        index = _discriminated(branches, instance, sub, defs)
        if index is None:
            yield from plain_one_of(validator, branches, instance, sub)
            return
        for error in validator.descend(instance, branches[index], schema_path=index):
            yield error
            return

    checker = jsonschema.validators.extend(base, {"oneOf": one_of})
    return checker(schema)


def _discriminated(branches: Any, instance: Any, schema: Any, defs: Any) -> int | None:
    """The index of the only branch ``instance`` can be valid under, or None (no proof)."""
    found = schema.get("discriminator") if isinstance(schema, dict) else None
    if not (isinstance(found, dict) and isinstance(instance, dict)):
        return None
    name, mapping = found.get("propertyName"), found.get("mapping")
    if not isinstance(name, str) or not isinstance(mapping, dict):
        return None
    value = instance.get(name)
    if not isinstance(value, str) or value not in mapping:
        return None
    refs = [b.get("$ref") if isinstance(b, dict) and len(b) == 1 else None for b in branches]
    prefix = "#/$defs/"
    for ref in refs:
        # Every branch must require the name with its own const: else no proof.
        if not (isinstance(ref, str) and ref.startswith(prefix)):
            return None
        target = defs.get(ref[len(prefix) :])
        if not isinstance(target, dict) or name not in target.get("required", ()):
            return None
        const = (target.get("properties") or {}).get(name, {}).get("const")
        if mapping.get(const) != ref:
            return None
    return refs.index(mapping[value]) if mapping[value] in refs else None


_PATTERN_HINTS = {
    m.SLUG_PATTERN: "use lowercase letters, digits and '-', e.g. `gpu-large`",
    m.IDENT_PATTERN: "use lowercase letters, digits and '_', starting with a letter, e.g. `partition`",
    m.SYSTEM_PATTERN: "use the FirecREST system name: letters, digits, '.', '_' or '-'",
    m.CHOICE_PATTERN: "one word of letters, digits and `._:/@%+=-`; no spaces, quotes or '#'",
    m.DURATION_PATTERN: "write a Slurm time such as `30` (minutes), `1:00:00` or `1-00:00:00`, and quote it in TOML",
    m.PRINCIPAL_PATTERN: "a user or group name without spaces or control characters",
    m.SCHEDULER_FLAG_PATTERN: "write the option as the scheduler spells it: `--exclusive` or `-l`",
}


_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def kind_branch(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError] | None:
    """For the option ``oneOf``, the errors of the branch ``kind`` names."""
    instance = error.instance
    if not isinstance(instance, dict) or "kind" not in error.schema.get("discriminator", {}).get(
        "propertyName", ""
    ):
        return None
    kind = instance.get("kind")
    if kind not in m.OPTION_KINDS:
        return None
    index = m.OPTION_KINDS.index(kind)
    return [
        e
        for e in error.context or ()
        if e.relative_schema_path and e.relative_schema_path[0] == index
    ]


def schema_problems(
    errors: Iterable[jsonschema.ValidationError], name: str, doc: Any
) -> list[Problem]:
    """One problem per error (several for unknown keys), at the position of its node."""
    problems: list[Problem] = []
    for error in errors:
        parts = list(error.absolute_path)
        path = error.json_path
        hint = error.schema.get("x-hint", "") if isinstance(error.schema, dict) else ""
        v = error.validator
        if v == "oneOf" and all(set(b) == {"required"} for b in error.validator_value):
            keys = [f"`{b['required'][0]}`" for b in error.validator_value]
            message = "write exactly one of " + ", ".join(keys)
            hint = "`system:` names one system; `systems:` a list the user picks from"
        elif v == "oneOf":
            branch = kind_branch(error)
            if branch is not None:
                problems.extend(schema_problems(branch, name, doc))
                continue
            kind = error.instance.get("kind") if isinstance(error.instance, dict) else None
            if isinstance(error.instance, dict) and kind is None:
                message = "missing required key 'kind'"
            elif isinstance(error.instance, dict):
                message = f"unknown option kind {short(kind)}"
                parts = [*parts, "kind"]
                path = json_path(parts)
            else:
                message = f"expected a mapping, got {describe_type(error.instance)}"
            hint = "`kind:` is one of " + ", ".join(m.OPTION_KINDS)
        elif v == "anyOf":
            sub = [e for e in error.context or () if e.validator != "type"]
            if sub and all(e.validator != "anyOf" for e in sub):
                problems.extend(schema_problems([best_match(sub)], name, doc))
                continue
            kinds = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
            names = " or ".join(_TYPE_NAMES.get(str(k), str(k)) for k in kinds)
            message = f"expected {names}, got {describe_type(error.instance)}"
            hint = hint or "write a single value"
        elif v == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            patterns = error.schema.get("patternProperties")
            if patterns:
                extra = [k for k in extra if not any(re.search(p, k) for p in patterns)]
            for key in extra or [None]:
                if patterns:
                    pattern = next(iter(patterns))
                    message = f"{key!r} is not a valid name"
                    hint = _PATTERN_HINTS.get(pattern, f"names must match {pattern}")
                    if isinstance(key, str) and key.startswith("req_"):
                        hint = f"write `{key[4:]}`: names here have no `req_` prefix"
                else:
                    message = f"unknown key {key!r}"
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = (f"did you mean `{close[0]}`? " if close else "") + (
                        "allowed keys: " + ", ".join(allowed)
                    )
                line, col = position(doc, parts, key=key)
                problems.append(Problem(name, json_path([*parts, key]), message, hint, line, col))
            continue
        elif v == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            key_desc = error.schema.get("properties", {}).get(missing[0], {}).get("description", "")
            message = f"missing required key {missing[0]!r}"
            hint = hint or (f"add `{missing[0]}:`" + (f" ({key_desc})" if key_desc else ""))
        elif v == "type":
            wanted = _TYPE_NAMES.get(error.validator_value, str(error.validator_value))
            message = f"expected {wanted}, got {describe_type(error.instance)}"
            if error.instance is not None:
                message += f" {short(error.instance)}"
            if error.instance is None:
                hint = "write a value, or leave the key out to get the default"
            elif error.validator_value == "boolean" and isinstance(error.instance, str):
                hint = "write true or false (YAML 1.2 reads yes, no, on and off as text)"
            elif error.validator_value == "array":
                hint = "write a list: one `- item` per line, or [a, b]"
            elif error.validator_value == "string" and isinstance(
                error.instance, (int, float, bool)
            ):
                hint = hint or 'quote the value, e.g. "1:00:00" or "no"'
        elif v == "pattern":
            message = f"{short(error.instance)} is not valid here"
            hint = hint or _PATTERN_HINTS.get(
                error.validator_value, f"must match {error.validator_value}"
            )
        elif v in ("const", "enum"):
            allowed_values = [error.validator_value] if v == "const" else error.validator_value
            message = f"{short(error.instance)} is not allowed"
            hint = hint or "use one of: " + ", ".join(short(a) for a in allowed_values)
        elif v in ("minProperties", "maxProperties"):
            message = "give exactly one of the keys" if hint else "wrong number of keys"
        elif v in ("minItems", "minLength"):
            message = "must not be empty"
        else:
            # No message of our own: jsonschema's best match among the error and
            # the errors of its branches, with its own message and path.
            best = best_match([error]) or error
            message = best.message
            parts, path = list(best.absolute_path), best.json_path
            if best is not error and isinstance(best.schema, dict):
                hint = hint or best.schema.get("x-hint", "")
        if not hint:
            hint = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
            hint = hint.split("\n")[0]
        line, col = position(doc, parts)
        problems.append(Problem(name, path, message, hint, line, col))
    return problems


__all__ = ["kind_branch", "schema_errors", "schema_problems", "schema_validator"]
