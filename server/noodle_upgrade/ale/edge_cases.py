"""Inputs a candidate is judged on besides the recorded ones (DESIGN §5).

Random inputs miss what breaks fast paths: integer overflow, empty inputs, bools,
``-0.0``, ``inf·0``, NaN, strided views, lists mixing ints and floats. This module writes
those inputs for one signature key, and only inputs the key describes: a candidate for
``list[float](3), list[float](3)`` is never fed a list of ints or of four floats, because
the dispatcher will never route such a call to it.

A case is a labelled tuple of positional arguments. Special values are laid out so they
meet across the arguments: in ``inf·0`` the first argument starts with ``inf`` where the
second starts with ``0.0``, so a dot product or a matrix product multiplies them. Values
are tiled to the part's length (a list) or size (an array, row-major, then laid out C,
F or strided as the key says). Everything is deterministic: the same key gives the same
cases, so a verdict can be reproduced.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy

from noodle_upgrade.ale.keys import ArrayPart, Part, ScalarPart, SequencePart, parse_key

TYPICAL_COUNT = 6
PYTHON_NUMBERS = frozenset({"float", "int", "bool", "complex"})
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Fill = Sequence[Any]  # element values, repeated to the part's size
Pattern = tuple[Fill, Fill]  # the fill of the even-numbered arguments, of the odd-numbered

INF, NAN = math.inf, math.nan
FLOAT_PATTERNS: dict[str, Pattern] = {
    "signed zeros: -0.0·1.0": ([-0.0], [1.0]),
    "signed zeros: 0.0·-1.0": ([0.0], [-1.0]),
    "signed zeros: mixed": ([-0.0, 0.0], [1.0, 1.0]),
    "inf·0": ([INF, 1.0], [0.0, 1.0]),
    "NaN": ([NAN, 1.0], [1.0, 2.0]),
    "inf": ([INF, 1.0], [2.0, 1.0]),
    "inf − inf": ([INF, -INF], [1.0, 1.0]),
    "overflow to inf": ([1e308, 1e308], [10.0, 10.0]),
    "underflow to zero": ([1e-200, -1e-200], [1e-200, 1e-200]),
    "subnormals": ([5e-324, 2.5e-308], [1.0, 0.5]),
    "wide magnitudes": ([1e300, 1e-300, -1.0], [1e-300, 1e300, 1.0]),
}
BOOL_PATTERNS: dict[str, Pattern] = {
    "bools: all False": ([False], [True]),
    "bools: all True": ([True], [True]),
    "bools: no overlap": ([True, False], [False, True]),
    "bools: one overlap": ([False, True], [True, True]),
}
# Python ints a list may hold that numpy does not store as int64: uint64, object, overflow.
BEYOND_INT64_PATTERNS: dict[str, Pattern] = {
    "int beyond int64 (uint64)": ([2**63, 1], [1, 1]),
    "int beyond int64, with a negative": ([2**63, -1], [1, 1]),
    "int beyond uint64": ([2**64 + 1, 1], [1, 1]),
    "int below int64": ([INT64_MIN - 1, 1], [1, 1]),
}
MIXED_PATTERNS: dict[str, Pattern] = {
    "mixed: ints and floats": ([1, 2.5], [3, 0.5]),
    "mixed: int beyond float precision": ([2**53 + 1, 0.5], [1.0, 2]),
    "mixed: bools and floats": ([True, 1.5], [2.0, False]),
    "mixed: ints and bools": ([True, 2], [3, False]),
    "mixed: int beyond float range": ([10**400, 1.0], [1.0, 1]),
}
NEUTRAL: dict[str, Fill] = {
    "float": [1.0],
    "complex": [1 + 0j],
    "int": [1],
    "bool": [True],
    "mixed": [1, 1.0],
}


@dataclass(frozen=True)
class Case:
    """Positional arguments for one call, and what they test (shown in a mismatch)."""

    label: str
    args: tuple[Any, ...]


def edge_cases(key: str) -> list[Case]:
    """The special inputs for the signature ``key``; none when calls with it are never
    routed (``keys.parse_key``)."""
    parts = _readable(key)
    if parts is None:
        return []
    if all(part.size == 0 for part in parts):
        return [Case("empty", tuple(_realise(part, []) for part in parts))]
    per_part = [_patterns(part) for part in parts]
    labels = list(dict.fromkeys(label for patterns in per_part for label in patterns))
    cases = []
    for label in labels:
        args = []
        for index, (part, patterns) in enumerate(zip(parts, per_part, strict=True)):
            pattern = patterns.get(label)
            fill = pattern[index % 2] if pattern else NEUTRAL[_element_kind(part)]
            args.append(_realise(part, fill))
        cases.append(Case(label, tuple(args)))
    return cases


def typical_inputs(key: str, count: int = TYPICAL_COUNT) -> list[Case]:
    """Ordinary random values for ``key`` (seeded by the key: the same every time)."""
    parts = _readable(key)
    if parts is None:
        return []
    rng = random.Random(zlib.crc32(key.encode()))
    return [
        Case(f"typical #{number}", tuple(_realise(part, _random_fill(part, rng)) for part in parts))
        for number in range(count)
    ]


def _readable(key: str) -> tuple[Part, ...] | None:
    """The key's parts when every one holds elements this module can write."""
    parts = parse_key(key)
    if parts is None or any(_element_kind(part) not in NEUTRAL for part in parts):
        return None
    return parts


def _element_kind(part: Part) -> str:
    """float, complex, int, bool or mixed; "" for a dtype no pattern exists for."""
    if isinstance(part, SequencePart):
        return part.kind
    if isinstance(part, ScalarPart) and part.type_name in PYTHON_NUMBERS:
        return part.type_name
    kind = _dtype(part).kind
    return {"f": "float", "c": "complex", "i": "int", "u": "int", "b": "bool"}.get(kind, "")


def _dtype(part: ArrayPart | ScalarPart) -> numpy.dtype[Any]:
    """The dtype of an array, or of a numpy scalar type (``numpy.float32``)."""
    name = part.dtype if isinstance(part, ArrayPart) else part.type_name.removeprefix("numpy.")
    try:
        return numpy.dtype(name)
    except TypeError:
        return numpy.dtype(object)


def _int_limits(part: Part) -> tuple[int, int, bool]:
    """The lowest and highest value, and whether the part holds Python ints (unbounded:
    numpy stores them as int64 only while they fit)."""
    if isinstance(part, SequencePart) or part == ScalarPart("int"):
        return INT64_MIN, INT64_MAX, True
    info = numpy.iinfo(_dtype(part))
    return int(info.min), int(info.max), False


def _int_patterns(part: Part) -> dict[str, Pattern]:
    low, high, python_ints = _int_limits(part)
    signed = low < 0
    patterns: dict[str, Pattern] = {
        "integer overflow: products": ([high // 2 + 1, 3], [4, 5]),
        "integer overflow: sum": ([high, high], [1, 1]),
        "integer limits": ([high, low], [-1 if signed else 1, -1 if signed else 1]),
        "integer zeros": ([0], [7]),
    }
    if signed:
        patterns["negative integers"] = ([-3, 5], [4, -6])
    if python_ints:
        patterns |= BEYOND_INT64_PATTERNS
    return patterns


def _complex_patterns() -> dict[str, Pattern]:
    both: dict[str, Pattern] = {
        label: ([complex(v, v) for v in even], [complex(v, v) for v in odd])
        for label, (even, odd) in FLOAT_PATTERNS.items()
    }
    return both | {"imaginary units": ([1j], [1j])}


def _patterns(part: Part) -> dict[str, Pattern]:
    kind = _element_kind(part)
    if kind == "float":
        return FLOAT_PATTERNS
    if kind == "complex":
        return _complex_patterns()
    if kind == "int":
        return _int_patterns(part)
    if kind == "bool":
        return BOOL_PATTERNS
    return MIXED_PATTERNS  # the last kind left: _readable lets no other through


def _random_value(kind: str, part: Part, rng: random.Random) -> Callable[[int], Any]:
    """A function of the element's position giving a random value of ``kind``."""
    if kind == "float":
        return lambda _: rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-2, 2)
    if kind == "complex":
        return lambda _: complex(rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0))
    if kind == "int":
        low, high, _ = _int_limits(part)
        low, high = max(low, -1000), min(high, 1000)
        return lambda _: rng.randint(low, high)
    if kind == "bool":
        return lambda _: rng.random() < 0.5
    # mixed, the last kind left: floats and ints by turns
    return lambda i: rng.randint(-1000, 1000) if i % 2 else rng.uniform(-1.0, 1.0)


def _random_fill(part: Part, rng: random.Random) -> list[Any]:
    value = _random_value(_element_kind(part), part, rng)
    return [value(i) for i in range(part.size)]


def _realise(part: Part, fill: Fill) -> Any:
    """``fill`` repeated to the part's size: a list, a tuple, a number, or an array laid
    out as the key says."""
    elements = [fill[i % len(fill)] for i in range(part.size)] if fill else []
    if isinstance(part, SequencePart):
        return elements if part.container == "list" else tuple(elements)
    with numpy.errstate(all="ignore"):  # 1e308 stored as float32 becomes inf, as meant
        if isinstance(part, ScalarPart):
            value = elements[0]
            return value if part.type_name in PYTHON_NUMBERS else _dtype(part).type(value)
        data = numpy.array(elements, dtype=_dtype(part)).reshape(part.shape)
    if part.order == "F":
        return numpy.asfortranarray(data)
    if part.order == "N":
        return _strided(data)
    return numpy.ascontiguousarray(data)


def _strided(data: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
    """A view holding ``data``'s values that is neither C- nor F-contiguous.

    Every other element of a buffer twice as long along one axis; an array of one
    element is contiguous whatever its strides, and comes back as such.
    """
    view = data
    for axis in reversed(range(data.ndim)):
        shape = list(data.shape)
        shape[axis] *= 2
        wide = numpy.zeros(shape, dtype=data.dtype)
        every_other = tuple(
            slice(None, None, 2) if index == axis else slice(None) for index in range(data.ndim)
        )
        wide[every_other] = data
        view = wide[every_other]
        if not (view.flags.c_contiguous or view.flags.f_contiguous):
            return view
    return view
