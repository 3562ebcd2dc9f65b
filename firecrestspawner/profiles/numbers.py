"""Number option values: whole numbers and decimals, their range and step (pure).

A value from JSON may be an integer of any size or a float that is not finite;
both are refused before any arithmetic (so no conversion can overflow), with
an :class:`~.errors.OptionError` naming the option.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from . import models as m
from .errors import OptionError, short

#: Largest magnitude of a number (larger or not finite: refused before any arithmetic).
MAX_NUMBER = 2**53


def _check_magnitude(option: m.Option, value: Any, what: str) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(option.id, f"expected {what}, got {short(value)}")
        if abs(value) > MAX_NUMBER:
            raise OptionError(
                option.id, f"{short(value)} is too large (at most {MAX_NUMBER} in magnitude)"
            )


def check_integer(option: m.IntegerOption, value: Any) -> int:
    if isinstance(value, bool):
        raise OptionError(option.id, f"expected a whole number, got {short(value)}")
    _check_magnitude(option, value, "a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise OptionError(option.id, f"expected a whole number, got {short(value)}")
    _check_magnitude(option, value, "a whole number")
    _check_range(option, value, option.min, option.max, option.step)
    return value


def check_number(option: m.NumberOption, value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(option.id, f"expected a number, got {short(value)}")
    if isinstance(value, str) and re.fullmatch(
        r"[+-]?(?:\d{1,18}(?:\.\d{0,12})?|\.\d{1,12})", value.strip()
    ):
        value = float(value.strip())
    if not isinstance(value, (int, float)):
        raise OptionError(option.id, f"expected a number, got {short(value)}")
    _check_magnitude(option, value, "a number")
    value = float(value)
    _check_range(option, value, option.min, option.max, option.step)
    return value


def number_text(value: float) -> str:
    """A number as a request value: ``4`` for 4.0, ``1.5``, never an exponent."""
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _check_range(
    option: m.Option, value: float, lo: float | None, hi: float | None, step: float | None
) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        low = "-inf" if lo is None else f"{lo:g}"
        high = "inf" if hi is None else f"{hi:g}"
        raise OptionError(option.id, f"{value:g} is outside the allowed range {low} to {high}")
    if step is not None:
        base = lo if lo is not None else 0
        k = (value - base) / step
        if abs(k - round(k)) > 1e-9:
            raise OptionError(
                option.id, f"{value:g} is not allowed; use steps of {step:g} from {base:g}"
            )


__all__ = ["MAX_NUMBER", "check_integer", "check_number", "number_text"]
