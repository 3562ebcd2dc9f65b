"""The profile models without pydantic, for ``firecrestspawner validate`` only (pure).

A ``validate`` process (a pre-commit hook runs it on every commit) would spend
most of its time importing pydantic and building the model classes. Every
text it hands to the models has already passed the JSON Schema (which is
generated from the models, and a test keeps it current), so there is nothing
left for pydantic to refuse: the data only has to become the same frozen
objects. With ``_FIRECRESTSPAWNER_LIGHT_MODELS=1`` in the environment (set by
:func:`firecrestspawner.cli.main` for ``validate`` alone), :mod:`.fields` takes
``BaseModel``, ``Field`` and friends from here, and the class declarations of
:mod:`.models`, :mod:`.option_kinds` and :mod:`.rules` build plain classes that:

* take defaults and ``default_factory`` values, aliases, ``mode="before"`` and
  ``mode="after"`` model validators, nested models, discriminated unions (by
  ``kind``) and pydantic's lax number rules (an int for a float field becomes a
  float, an integral float for an int field an int);
* answer ``model_validate``, ``model_copy(update=...)``, ``model_fields_set``,
  ``model_dump(exclude_none=...)``, ``==`` and ``hash`` as pydantic does.

They check no constraint: the schema pass did. ``tests/profiles/test_lightmodels.py``
runs ``validate`` both ways on every profile file of the repository and
compares the results (reports and the loaded profiles).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

#: The environment variable that selects these classes (read once, by :mod:`.fields`).
ENV = "_FIRECRESTSPAWNER_LIGHT_MODELS"

_MISSING: Any = object()


class FieldInfo:
    """What ``Field(...)`` declares (only what construction needs)."""

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        discriminator: str | None = None,
        **_constraints: Any,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.discriminator = discriminator


def Field(default: Any = _MISSING, **kwargs: Any) -> Any:
    return FieldInfo(default, **kwargs)


def StringConstraints(**_constraints: Any) -> None:
    """Constraints are the schema's to check; nothing is left of them here."""
    return None


ConfigDict = dict


class ValidationError(ValueError):
    """Raised only for data the schema would have refused (as pydantic's, for the loader)."""

    def errors(self) -> list[dict[str, Any]]:
        return [{"loc": (), "msg": str(self)}]


class _Validator:
    def __init__(self, mode: str, func: Callable[..., Any]) -> None:
        self.mode = mode
        self.func = func


def model_validator(*, mode: str) -> Callable[[Callable[..., Any]], Any]:
    return lambda func: _Validator(mode, func)


class _Spec:
    """A field: its name, the key it is read from, its default."""

    __slots__ = ("default", "factory", "key", "name")

    def __init__(self, name: str, info: FieldInfo | Any) -> None:
        self.name = name
        if isinstance(info, FieldInfo):
            self.key = info.alias or name
            self.default, self.factory = info.default, info.default_factory
        else:
            self.key, self.default, self.factory = name, info, None


class BaseModel:
    """A frozen record built from data the schema accepted (see the module docstring)."""

    model_config: dict[str, Any] = {}
    _fields: dict[str, _Spec] = {}
    _before: tuple[Callable[..., Any], ...] = ()
    _after: tuple[Callable[..., Any], ...] = ()
    _hints: dict[str, Any] | None = None
    _fields_set: frozenset[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(cls._fields)
        before, after = list(cls._before), list(cls._after)
        for name, value in list(vars(cls).items()):
            if isinstance(value, _Validator):
                (before if value.mode == "before" else after).append(value.func)
                delattr(cls, name)
        for name in inspect.get_annotations(cls):
            if name.startswith("_") or name == "model_config":
                continue
            info = cls.__dict__.get(name, _MISSING)
            fields[name] = _Spec(name, info)
            if name in cls.__dict__:
                delattr(cls, name)
        cls._fields, cls._before, cls._after = fields, tuple(before), tuple(after)
        cls._hints = None

    # -- construction ----------------------------------------------------------------
    @classmethod
    def model_validate(cls, data: Any) -> Any:
        for func in cls._before:
            data = func(data)
        if isinstance(data, cls):
            return data
        hints = cls._type_hints()
        obj = object.__new__(cls)
        given: set[str] = set()
        for spec in cls._fields.values():
            if spec.key in data:
                value = _convert(hints[spec.name], data[spec.key])
                given.add(spec.name)
            elif spec.name in data and spec.key != spec.name:
                value = _convert(hints[spec.name], data[spec.name])
                given.add(spec.name)
            elif spec.factory is not None:
                value = spec.factory()
            elif spec.default is _MISSING:
                raise ValidationError(f"{cls.__name__}: {spec.key!r} is required")
            else:
                value = spec.default
            object.__setattr__(obj, spec.name, value)
        object.__setattr__(obj, "_fields_set", frozenset(given))
        for func in cls._after:
            func(obj)
        return obj

    @classmethod
    def _type_hints(cls) -> dict[str, Any]:
        if cls._hints is None:
            cls._hints = typing.get_type_hints(cls, include_extras=True)
        return cls._hints

    # -- what callers use of a pydantic model ----------------------------------------
    @property
    def model_fields_set(self) -> set[str]:
        return set(self._fields_set)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        obj = object.__new__(type(self))
        obj.__dict__.update(self.__dict__)
        for name, value in (update or {}).items():
            object.__setattr__(obj, name, value)
        object.__setattr__(obj, "_fields_set", self._fields_set | set(update or ()))
        return obj

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        out = {}
        for name in self._fields:
            value = _dump(getattr(self, name), exclude_none)
            if not (exclude_none and value is None):
                out[name] = value
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, n) for n in self._fields)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"


def _dump(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, dict):
        return {k: _dump(v, exclude_none) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v, exclude_none) for v in value]
    return value


def _convert(hint: Any, value: Any) -> Any:
    """``value`` (already valid for ``hint``) as pydantic would hand it out."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(hint)
        for info in meta:
            if isinstance(info, FieldInfo) and info.discriminator and isinstance(value, dict):
                return _pick(inner, info.discriminator, value)
        return _convert(inner, value)
    if origin is typing.Union or origin is types.UnionType:
        if value is None:
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value)
        plain = [
            (typing.get_origin(a) is typing.Annotated and typing.get_args(a)[0]) or a for a in args
        ]
        if type(value) in plain:
            return value
        models = [a for a in plain if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(value, dict) and len(models) == 1:
            return models[0].model_validate(value)
        if type(value) is int and float in plain:
            return float(value)
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    if isinstance(hint, type):
        if issubclass(hint, BaseModel):
            return hint.model_validate(value)
        if hint is float and type(value) is int:
            return float(value)
        if hint is int and type(value) is float and value.is_integer():
            return int(value)
    return value


def _pick(union: Any, key: str, value: dict[str, Any]) -> Any:
    for cls in typing.get_args(union):
        tag = typing.get_args(cls._type_hints()[key])
        if value.get(key) in tag:
            return cls.model_validate(value)
    raise ValidationError(f"no model for {key}={value.get(key)!r}")  # the schema refuses it


__all__ = [
    "ENV",
    "BaseModel",
    "ConfigDict",
    "Field",
    "StringConstraints",
    "ValidationError",
    "model_validator",
]
