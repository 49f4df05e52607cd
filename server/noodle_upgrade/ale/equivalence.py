"""When a candidate's outcome counts as the baseline's (DESIGN §5).

The rules, in the order they are checked:

- **Exceptions**: when either side raises, both must raise, and the same exception type
  (messages may differ: numpy's wording is not part of its contract).
- **Type**: ``type(got) is type(expected)``: a ``float`` where numpy returns
  ``numpy.float64`` differs (``.item()``, ``.dtype``, ``isinstance`` checks tell).
- **Arrays and numpy scalars**: the same dtype, then the same shape, then the values.
- **Integers, bools and everything not a float**: exactly equal.
- **Floats** (and each part of a complex), with the candidate's ``(rtol, atol)``: NaN
  matches NaN at the same position (its sign and payload are not compared); infinities
  must be equal; finite values may differ by ``atol + rtol·|expected|``.
- **Signed zeros**: a zero must have the expected sign, tolerance or not. IEEE calls
  ``-0.0 == 0.0``, but a caller sees the difference (``1/x`` is ``-inf`` instead of
  ``inf``, ``math.copysign``, printing), and numpy's kernels are consistent about it:
  ``numpy.dot`` of one-element lists returns the product itself, ``-0.0`` for
  ``-0.0·1.0``, while longer sums start from ``+0.0``; ``numpy.matmul`` starts from
  ``+0.0`` where ``ndarray.dot`` of a single product does not.
- **Lists and tuples**: the same length, then element by element.

``describe`` writes the short text a ``Mismatch`` shows for inputs and results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy

DESCRIPTION_LIMIT = 160
ARRAY_ELEMENTS_SHOWN = 32

FloatArray = numpy.ndarray[Any, Any]


@dataclass(frozen=True)
class Outcome:
    """What one call did: returned ``value``, or raised ``error``."""

    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Difference:
    """Why two outcomes differ: a ``Mismatch`` reason and what each side gave."""

    reason: str  # "value", "type", "dtype", "shape" or "exception"
    expected: str
    got: str


def compare_outcomes(
    expected: Outcome, got: Outcome, tolerance: tuple[float, float]
) -> Difference | None:
    """None when ``got`` counts as ``expected``; otherwise the first difference found."""
    if expected.error is not None or got.error is not None:
        if (
            expected.error is not None
            and got.error is not None
            and type(expected.error) is type(got.error)
        ):
            return None
        return Difference("exception", _outcome_text(expected), _outcome_text(got))
    return compare(expected.value, got.value, tolerance)


def compare(expected: Any, got: Any, tolerance: tuple[float, float]) -> Difference | None:
    """None when the value ``got`` counts as ``expected`` under the module's rules."""
    if type(expected) is not type(got):
        return Difference("type", _type_name(expected), _type_name(got))
    if isinstance(expected, numpy.ndarray | numpy.generic | float | complex):
        return _compare_arrays(numpy.asarray(expected), numpy.asarray(got), tolerance)
    if isinstance(expected, list | tuple):
        return _compare_sequences(expected, got, tolerance)
    try:
        equal = bool(expected == got)
    except Exception:  # an == that raises or returns no truth value: compare the texts
        equal = repr(expected) == repr(got)
    return None if equal else Difference("value", describe(expected), describe(got))


def describe(value: Any) -> str:
    """A one-line description of ``value``, at most ``DESCRIPTION_LIMIT`` characters."""
    if isinstance(value, numpy.ndarray):
        shape = ",".join(str(dim) for dim in value.shape)  # as in signature keys
        text = f"ndarray[{value.dtype}]({shape}){_layout(value)} {_elements(value)}"
    elif isinstance(value, tuple):
        items = [describe(item) for item in value]
        text = f"({', '.join(items)}{',' if len(items) == 1 else ''})"
    else:
        text = repr(value)
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def _compare_sequences(
    expected: list[Any] | tuple[Any, ...], got: Any, tolerance: tuple[float, float]
) -> Difference | None:
    if len(expected) != len(got):
        return Difference("shape", f"length {len(expected)}", f"length {len(got)}")
    for index, (left, right) in enumerate(zip(expected, got, strict=True)):
        difference = compare(left, right, tolerance)
        if difference is not None:
            return Difference(
                difference.reason, f"[{index}] {difference.expected}", f"[{index}] {difference.got}"
            )
    return None


def _compare_arrays(
    expected: FloatArray, got: FloatArray, tolerance: tuple[float, float]
) -> Difference | None:
    if expected.dtype != got.dtype:
        return Difference("dtype", str(expected.dtype), str(got.dtype))
    if expected.shape != got.shape:
        return Difference("shape", str(expected.shape), str(got.shape))
    if expected.dtype.kind == "O":  # objects: element by element, by the rules above
        for index in numpy.ndindex(expected.shape):
            difference = compare(expected[index], got[index], tolerance)
            if difference is not None:
                where = f"at {list(index)}: " if index else ""
                return Difference(
                    difference.reason, where + difference.expected, where + difference.got
                )
        return None
    if expected.dtype.kind in "fc":
        differs = _float_differences(expected, got, tolerance)
    else:
        differs = numpy.asarray(expected != got)
    if not differs.any():
        return None
    index = numpy.unravel_index(int(numpy.argmax(differs)), differs.shape)
    where = f"at {[int(i) for i in index]}: " if index else ""
    return Difference(
        "value", where + repr(expected[index].item()), where + repr(got[index].item())
    )


def _float_differences(
    expected: FloatArray, got: FloatArray, tolerance: tuple[float, float]
) -> FloatArray:
    """A boolean array: True where ``got`` is not ``expected`` under the float rules."""
    if expected.dtype.kind == "c":
        real = _float_differences(expected.real, got.real, tolerance)
        return real | _float_differences(expected.imag, got.imag, tolerance)
    rtol, atol = tolerance
    expected_nan, got_nan = numpy.isnan(expected), numpy.isnan(got)
    with numpy.errstate(all="ignore"):  # inf − inf inside isclose is expected
        # isclose(a, b) scales rtol by |b|: the baseline's value is the reference
        close = numpy.isclose(got, expected, rtol=rtol, atol=atol)
    zero_sign = (expected == 0) & (got == 0) & (numpy.signbit(expected) != numpy.signbit(got))
    return numpy.asarray((expected_nan != got_nan) | (~expected_nan & ~close) | zero_sign)


def _outcome_text(outcome: Outcome) -> str:
    if outcome.error is None:
        return describe(outcome.value)
    text = f"{type(outcome.error).__name__}: {outcome.error}"
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _layout(array: FloatArray) -> str:
    if array.flags.c_contiguous:
        return "C"
    return "F" if array.flags.f_contiguous else "N"


def _elements(array: FloatArray) -> str:
    if array.size <= ARRAY_ELEMENTS_SHOWN:
        return repr(array.tolist())
    shown = array.reshape(-1)[:ARRAY_ELEMENTS_SHOWN].tolist()
    return repr(shown)[:-1] + f", … ({array.size} elements)]"
