"""Quantities with units: ``64``, ``"64 GiB"``, ``"500m"`` (millicores), ``"2.5 TiB"``.

Every resource of an organisation declares its unit once (``resources: {memory: {unit: GiB}}``).
Amounts in the organisation file may be bare numbers (already in that unit) or strings with a unit;
strings are converted to the resource's unit, and a unit of another dimension (``"4 GHz"`` for
memory) is an error that says which unit was expected.
"""

from __future__ import annotations

import math
import re

# Each unit maps to (dimension, factor to the dimension's base unit).
_UNITS: dict[str, tuple[str, float]] = {
    # bytes
    "b": ("bytes", 1.0),
    "kb": ("bytes", 1e3),
    "mb": ("bytes", 1e6),
    "gb": ("bytes", 1e9),
    "tb": ("bytes", 1e12),
    "kib": ("bytes", 2.0**10),
    "mib": ("bytes", 2.0**20),
    "gib": ("bytes", 2.0**30),
    "tib": ("bytes", 2.0**40),
    "ki": ("bytes", 2.0**10),
    "mi": ("bytes", 2.0**20),
    "gi": ("bytes", 2.0**30),
    "ti": ("bytes", 2.0**40),
    # cpu
    "cores": ("cpu", 1.0),
    "core": ("cpu", 1.0),
    "vcpu": ("cpu", 1.0),
    "vcpus": ("cpu", 1.0),
    "cpu": ("cpu", 1.0),
    "m": ("cpu", 1e-3),
    "millicores": ("cpu", 1e-3),
    # cpu frequency (Bitbrains measures CPU in MHz)
    "hz": ("frequency", 1.0),
    "khz": ("frequency", 1e3),
    "mhz": ("frequency", 1e6),
    "ghz": ("frequency", 1e9),
    # countables
    "gpu": ("gpu", 1.0),
    "gpus": ("gpu", 1.0),
    "units": ("count", 1.0),
    "count": ("count", 1.0),
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$")


class UnitError(ValueError):
    """An amount's unit is unknown or of another dimension than its resource's unit."""


def known_unit(unit: str) -> bool:
    """Whether ``unit`` is a unit this module can convert (free-form units are allowed too)."""
    return unit.lower() in _UNITS


def parse_quantity(value: object, unit: str, *, what: str = "amount") -> float:
    """Convert ``value`` to a float in ``unit``.

    Parameters
    ----------
    value
        A number (taken as already in ``unit``) or a string such as ``"64 GiB"`` or ``"500m"``.
    unit
        The resource's declared unit. A unit this module does not know (say ``"licences"``)
        accepts only bare numbers or strings in exactly that unit.
    what
        What the amount is, for the error message.

    Raises
    ------
    UnitError
        When the string cannot be read or its unit does not convert to ``unit``.
    """
    if isinstance(value, bool):
        raise UnitError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"{what} must be a number or a string such as '64 GiB', got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise UnitError(f"{what} {value!r} is not a number with an optional unit, such as '64 GiB'")
    number = float(match.group(1))
    given = match.group(2)
    if not given or given.lower() == unit.lower():
        return number
    src = _UNITS.get(given.lower())
    dst = _UNITS.get(unit.lower())
    if src is None:
        raise UnitError(f"{what} {value!r} has the unknown unit {given!r}; write it in {unit}")
    if dst is None or src[0] != dst[0]:
        raise UnitError(
            f"{what} {value!r} is in {given}, which does not convert to this resource's unit "
            f"{unit!r}; write it in {unit}"
        )
    converted = number * src[1] / dst[1]
    if not math.isfinite(converted):
        raise UnitError(f"{what} {value!r} is not finite")
    return converted
