"""Signature keys of real arguments, and route guards that never match a wrong call."""

from __future__ import annotations

import random
from typing import Any

import numpy
import pytest

from noodle_upgrade.ale.signature import MAX_ELEMENTS, from_key, route_guard, signature_of


class FloatList(list[float]):
    """A list subclass: never taken for a list by a route."""


@pytest.mark.parametrize(
    ("args", "key", "routable"),
    [
        (([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), "list[float](3), list[float](3)", True),
        (([1, 2], (3, 4)), "list[int](2), tuple[int](2)", True),
        (([True, False], [1.0, 2]), "list[bool](2), list[mixed](2)", True),
        (([1j], [numpy.float64(1.0)]), "list[complex](1), list[other](1)", False),
        (([], [1.0] * (MAX_ELEMENTS + 1)), f"list[?](0), list[?]({MAX_ELEMENTS + 1})", False),
        ((numpy.arange(6.0).reshape(2, 3),), "ndarray[float64](2,3)C", True),
        ((numpy.ones((2, 3), order="F"),), "ndarray[float64](2,3)F", True),
        ((numpy.ones((4, 4))[::2, ::2],), "ndarray[float64](2,2)N", True),
        ((numpy.arange(3, dtype=numpy.int32),), "ndarray[int32](3)C", True),
        ((numpy.float64(2.0), 3), "numpy.float64, int", True),
        ((numpy.array(1.5),), "ndarray[float64]()C", True),
        ((numpy.ones(2, dtype=">f8"),), "ndarray[>f8](2)C", False),
        ((numpy.array(["a"]),), "ndarray[str32](1)C", False),
        ((None, "text"), "None, str", False),
        ((FloatList([1.0]),), f"{__name__}.FloatList", False),
    ],
)
def test_keys_describe_what_the_arguments_are(
    args: tuple[Any, ...], key: str, routable: bool
) -> None:
    signature = signature_of("numpy.dot", args, {})
    assert (signature.key, signature.routable) == (key, routable)
    assert signature.parts == tuple(key.split(", "))
    assert from_key("numpy.dot", key) == signature  # what the store holds reads back


def test_keyword_arguments_are_named_and_make_a_call_unroutable() -> None:
    signature = signature_of("numpy.dot", ([1.0], [2.0]), {"out": numpy.empty(()), "a": 1})
    assert signature.key == "list[float](1), list[float](1), a=int, out=ndarray[float64]()C"
    assert signature.parts == ("list[float](1)", "list[float](1)")
    assert not signature.routable
    assert from_key("numpy.dot", signature.key) == signature


def test_unroutable_keys_get_no_guard() -> None:
    for key in ("", "None, str", "list[other](2)", "ndarray[>f8](2)C", "list[float](1), out=int"):
        assert route_guard(key) is None


def random_argument(rng: random.Random) -> Any:
    """Arguments of the kinds a guard must tell apart, near one another on purpose."""
    kind = rng.choice(["list", "tuple", "array", "slice", "scalar", "sublist"])
    length = rng.choice([0, 1, 2, 3, 8, 9, 64, 65])
    element = rng.choice([1.0, 1, True, 1j, numpy.float64(1.0)])
    values = [element] * length
    if values and rng.random() < 0.3:
        values[rng.randrange(length)] = rng.choice([2.0, 2, False])
    if kind == "list":
        return values
    if kind == "tuple":
        return tuple(values)
    if kind == "sublist":
        return FloatList(values)
    if kind == "scalar":
        return element
    shape = rng.choice([(3,), (2, 2), (2, 3), (1, 3), (3, 1), (0,), ()])
    dtype = rng.choice(["float64", "float32", "int64", "bool", "complex128"])
    array = numpy.zeros(shape, dtype=dtype, order=rng.choice(["C", "F"]))
    if kind == "slice" and array.ndim:
        return numpy.zeros((6, *shape[1:]), dtype=dtype)[::2]
    return array


def test_a_guard_matches_exactly_the_calls_whose_key_is_its_own() -> None:
    rng = random.Random(6)
    calls = [(random_argument(rng), random_argument(rng)) for _ in range(1500)]
    keys = sorted({signature_of("f", call, {}).key for call in calls})
    guards = [guard for key in keys if (guard := route_guard(key)) is not None]
    assert len(guards) > 100  # the sample covers many routable keys
    for call in calls:
        key = signature_of("f", call, {}).key
        for guard in guards:
            assert guard.matches(*call) == (key == guard.key), (call, guard.key)


def test_a_guard_rejects_subclasses_and_other_arities() -> None:
    guard = route_guard("list[float](2), list[float](2)")
    assert guard is not None
    assert guard.matches([1.0, 2.0], [3.0, 4.0])
    assert not guard.matches(FloatList([1.0, 2.0]), [3.0, 4.0])
    assert not guard.matches([1.0, 2.0])
    assert not guard.matches([1.0, 2.0], [3.0, 4.0], [5.0, 6.0])
