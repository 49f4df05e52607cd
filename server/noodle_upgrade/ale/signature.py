"""What a call's arguments look like: the signature key, and the cheap route guard.

Pure: no I/O, and numpy is only looked at when it is already imported (no value can be an
array otherwise), so describing arguments never imports it.

**The key.** One description per positional argument, joined by ``", "``:

- a Python list or tuple: ``list[float](3)``: the element kind (``float``, ``int``,
  ``bool``, ``complex``, ``mixed`` when they differ, ``other`` for anything else) and the
  length. Kinds go by exact type (``True`` is a ``bool``, a ``numpy.float64`` element is
  ``other``). Only lists of at most ``MAX_ELEMENTS`` elements are looked through: a longer
  one, or an empty one, is ``list[?](n)``;
- a numpy array: ``ndarray[float64](2,3)C``: the dtype (its name, or ``dtype.str`` such
  as ``>f8`` in a non-native byte order), the shape (``(8)`` in one dimension, ``()`` in
  none) and the layout: ``C`` when C-contiguous, else ``F`` when Fortran-contiguous, else
  ``N``;
- anything else: its type's name (``float``, ``None``, ``numpy.float64``, ``mymod.Thing``).

Keyword arguments follow as ``name=description``, sorted by name; they make a call
unroutable (``Signature.routable`` is False), and so does any part a candidate could not
be proven equivalent on: a list of ``other`` or unknown elements, a non-numeric or
non-native array, an object that is not a number.

**The route guard** (``route_guard``) is what the dispatcher tests on a routed call
instead of computing the key: one boolean expression over the positional arguments that
checks the exact type of each, then only what the key adds to that type: a list's length
and element types, an array's dtype (by identity with numpy's canonical instance), shape
and layout (the strides, when no dimension is 0 or 1). The dispatcher inlines the
expressions of all its routes into the wrapper's own code, so a routed call pays for
attribute reads and comparisons, not for function calls: the guard of
``list[float](3), list[float](3)`` is two type tests, two ``len`` and six element type
tests, where building the key costs microseconds.

The trade-off, which must stay in this direction: a guard that passes means the call's
key is the route's key (the tests check both directions on many generated arguments), so
a route never serves a call it was not validated for. The guard may fail on a call whose
key matches only when an array's dtype equals the route's without being numpy's canonical
instance (a dtype with metadata): that call goes to the original, never served wrongly,
only not sped up. Subclasses of ``list``, ``float`` or ``ndarray`` never match a route:
their key is their own type name.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from noodle_upgrade.ale.model import Signature

# Beyond this many elements a list's kind is not looked up: describing it would cost as
# much as the call, and no candidate beats numpy on long lists anyway.
MAX_ELEMENTS = 64
# Lists up to this length get a guard with one test per element; longer ones a set of types.
UNROLL_MAX = 8
_CACHE_SIZE = 1024  # distinct array heads and parts remembered

SEPARATOR = ", "
ROUTABLE_KINDS = frozenset({"float", "int", "bool", "complex", "mixed"})

_ELEMENT_KINDS: dict[type, str] = {float: "float", int: "int", bool: "bool", complex: "complex"}
_KIND_TYPES: dict[str, type] = {kind: cls for cls, kind in _ELEMENT_KINDS.items()}
_SEQUENCES: dict[str, type] = {"list": list, "tuple": tuple}
_NUMBER_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "complex": complex}

_SEQUENCE_PART = re.compile(r"(?P<container>list|tuple)\[(?P<kind>\w+|\?)\]\((?P<length>\d+)\)")
_ARRAY_PART = re.compile(r"ndarray\[(?P<dtype>[^\]]+)\]\((?P<shape>[\d,]*)\)(?P<order>[CFN])")
# numpy's names of the numeric dtypes (and of their scalar types), native byte order only.
_NUMERIC_DTYPE = re.compile(
    r"bool|u?int(8|16|32|64)|float(16|32|64|96|128)|complex(64|128|192|256)"
)


# -- the key --------------------------------------------------------------------------


def signature_of(function: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Signature:
    """The signature of a call of ``function`` with ``args`` and ``kwargs``. Never raises."""
    key, parts, routable = describe_call(args, kwargs)
    return Signature(function=function, key=key, parts=parts, routable=routable)


def describe_call(
    args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[str, tuple[str, ...], bool]:
    """``signature_of`` without the record: (key, parts, routable), for the dispatcher's
    sampled calls, where every microsecond is paid again every sample."""
    parts = tuple(map(describe, args))
    if kwargs:
        named = [f"{name}={describe(kwargs[name])}" for name in sorted(kwargs)]
        return SEPARATOR.join((*parts, *named)), parts, False
    return SEPARATOR.join(parts), parts, all(map(_routable_part, parts))


def from_key(function: str, key: str) -> Signature:
    """The ``Signature`` a stored ``key`` stands for: parts and routability read back."""
    texts = key.split(SEPARATOR) if key else []
    parts = tuple(text for text in texts if "=" not in text)
    routable = len(parts) == len(texts) and all(_routable_part(part) for part in parts)
    return Signature(function=function, key=key, parts=parts, routable=routable)


def describe(value: Any) -> str:
    """One argument's part of the key."""
    cls = type(value)
    if cls is list or cls is tuple:
        return f"{cls.__name__}[{_element_kind(value)}]({len(value)})"
    numpy = sys.modules.get("numpy")
    if numpy is not None and cls is numpy.ndarray:
        return _array_head(value.dtype, value.shape) + _layout(value)
    return type_name(cls)


# Programs use a handful of dtypes and shapes: their text is computed once (numpy's
# dtype.name alone is computed in Python and costs microseconds).
_array_heads: dict[tuple[Any, tuple[int, ...]], str] = {}


def _array_head(dtype: Any, shape: tuple[int, ...]) -> str:
    head = _array_heads.get((dtype, shape))
    if head is None:
        name = dtype.name if dtype.isnative else dtype.str
        head = f"ndarray[{name}]({','.join(map(str, shape))})"
        if len(_array_heads) < _CACHE_SIZE:
            _array_heads[dtype, shape] = head
    return head


def type_name(cls: type) -> str:
    if cls is type(None):
        return "None"
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _element_kind(items: list[Any] | tuple[Any, ...]) -> str:
    if not items or len(items) > MAX_ELEMENTS:
        return "?"
    types = set(map(type, items))
    if len(types) == 1:
        return _ELEMENT_KINDS.get(types.pop(), "other")
    kinds = {_ELEMENT_KINDS.get(cls, "other") for cls in types}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _layout(array: Any) -> str:
    flags = array.flags
    return "C" if flags.c_contiguous else "F" if flags.f_contiguous else "N"


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _routable_part(part: str) -> bool:
    sequence = _SEQUENCE_PART.fullmatch(part)
    if sequence is not None:
        return sequence["kind"] in ROUTABLE_KINDS
    array = _ARRAY_PART.fullmatch(part)
    if array is not None:
        return _NUMERIC_DTYPE.fullmatch(array["dtype"]) is not None
    if part in _NUMBER_TYPES:
        return True
    module, _, name = part.rpartition(".")
    return module == "numpy" and _NUMERIC_DTYPE.fullmatch(name) is not None


# -- the route guard --------------------------------------------------------------------


@dataclass(frozen=True)
class RouteGuard:
    """How the dispatcher recognises calls of one signature without computing its key.

    ``template`` is a Python expression over the positional arguments, written ``{0}``,
    ``{1}``, … (``test`` fills in their names): the exact type of each, then what the
    type leaves open (a list's length and element types; an array's dtype, shape and
    layout). The other names it uses are in ``constants``, unique to this guard, so that
    the tests of many guards can be inlined into one function (``compile_finder``, and
    the dispatcher's wrapper). The test passing implies the call's key is ``key``.
    """

    key: str
    types: tuple[type, ...]
    template: str
    constants: Mapping[str, Any]

    def test(self, names: Sequence[str]) -> str:
        return self.template.format(*names)

    def matches(self, *args: Any) -> bool:
        return len(args) == len(self.types) and self._check(*args) is True

    @functools.cached_property
    def _check(self) -> Callable[..., Any]:
        return compile_finder([(self, True)], len(self.types))


GUARD_HELPERS: Mapping[str, Any] = {"_element_kind": _element_kind, "_layout": _layout}
_guard_numbers = itertools.count()


def route_guard(key: str) -> RouteGuard | None:
    """The guard of a routable key; None when the key cannot be routed."""
    signature = from_key("", key)
    if not signature.routable or not signature.parts:
        return None
    prefix = f"_g{next(_guard_numbers)}_"
    types: list[type] = []
    tests: list[str] = []
    constants: dict[str, Any] = {}
    for index, part in enumerate(signature.parts):
        arg, name = f"{{{index}}}", f"{prefix}a{index}"
        cls = _part_guard(part, arg, name, tests, constants)
        if cls is None:
            return None
        constants[f"{name}_type"] = cls
        types.append(cls)
    type_tests = [f"type({{{index}}}) is {prefix}a{index}_type" for index in range(len(types))]
    template = " and ".join(type_tests + tests)
    return RouteGuard(key=key, types=tuple(types), template=template, constants=constants)


def compile_finder(entries: Sequence[tuple[RouteGuard, Any]], arity: int) -> Callable[..., Any]:
    """One function of ``arity`` positional arguments returning the value of the first
    entry whose guard passes, else None: every test inlined, no call per guard."""
    names = [f"a{index}" for index in range(arity)]
    lines = [f"def find({', '.join(names)}):"]
    namespace: dict[str, Any] = dict(GUARD_HELPERS)
    for index, (guard, value) in enumerate(entries):
        if len(guard.types) != arity:
            continue
        lines += [f"    if {guard.test(names)}:", f"        return _value{index}"]
        namespace.update(guard.constants)
        namespace[f"_value{index}"] = value
    lines.append("    return None")
    exec(compile("\n".join(lines) + "\n", "<ale route finder>", "exec"), namespace)
    find: Callable[..., Any] = namespace["find"]
    return find


def _part_guard(
    part: str, arg: str, name: str, tests: list[str], constants: dict[str, Any]
) -> type | None:
    """The type of one part, its tests on ``arg`` appended to ``tests`` (constants named
    from ``name``); None if it cannot be guarded."""
    sequence = _SEQUENCE_PART.fullmatch(part)
    if sequence is not None:
        length = int(sequence["length"])
        _sequence_tests(arg, name, sequence["kind"], length, tests, constants)
        return _SEQUENCES[sequence["container"]]
    array = _ARRAY_PART.fullmatch(part)
    if array is not None:
        return _array_tests(arg, name, array, tests, constants)
    if part in _NUMBER_TYPES:
        return _NUMBER_TYPES[part]
    return _numpy_scalar_type(part)


def _sequence_tests(
    arg: str, name: str, kind: str, length: int, tests: list[str], constants: dict[str, Any]
) -> None:
    tests.append(f"len({arg}) == {length}")
    if kind == "mixed":
        tests.append(f"_element_kind({arg}) == 'mixed'")
        return
    constants[f"{name}_element"] = _KIND_TYPES[kind]
    if length <= UNROLL_MAX:
        tests.extend(f"type({arg}[{i}]) is {name}_element" for i in range(length))
    else:
        constants[f"{name}_only"] = {_KIND_TYPES[kind]}
        tests.append(f"set(map(type, {arg})) == {name}_only")


def _array_tests(
    arg: str, name: str, part: re.Match[str], tests: list[str], constants: dict[str, Any]
) -> type | None:
    numpy = _import_numpy()
    if numpy is None:
        return None
    dtype = numpy.dtype(part["dtype"])
    shape = tuple(int(dim) for dim in part["shape"].split(",") if dim)
    constants[f"{name}_dtype"] = dtype
    constants[f"{name}_shape"] = shape
    tests.append(f"{arg}.dtype is {name}_dtype")
    tests.append(f"{arg}.shape == {name}_shape")
    if part["order"] == "C" and 0 not in shape and 1 not in shape:
        # Without empty or size-1 dimensions C-contiguity is having the canonical strides;
        # comparing them skips numpy's flags object.
        constants[f"{name}_strides"] = _c_strides(shape, dtype.itemsize)
        tests.append(f"{arg}.strides == {name}_strides")
    else:
        tests.append(f"_layout({arg}) == {part['order']!r}")
    ndarray: type = numpy.ndarray
    return ndarray


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    return tuple(itemsize * math.prod(shape[index + 1 :]) for index in range(len(shape)))


def _numpy_scalar_type(part: str) -> type | None:
    module, _, name = part.rpartition(".")
    numpy = _import_numpy() if module == "numpy" else None
    if numpy is None:
        return None
    found = getattr(numpy, name, None)
    return found if isinstance(found, type) and issubclass(found, numpy.generic) else None


def _import_numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None
    return numpy
