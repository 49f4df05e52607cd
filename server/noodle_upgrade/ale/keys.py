"""Signature keys read back into the argument shapes they describe.

``ale.signature`` writes the key of a call (its module docstring is the format) and
decides which keys are routable. The candidate families and the edge-case generator
need the shapes back from the text, without the arguments: this module reads the parts
of a *routable* key into records. An unroutable key (a keyword argument, a list of
``other`` elements, a non-numeric array) gives None: no call with it is ever routed, so
no candidate is written for it and no case is generated.

- ``list[KIND](N)`` / ``tuple[KIND](N)``: ``SequencePart``, KIND one of ``float``,
  ``int``, ``bool``, ``complex`` (every element of exactly that type) or ``mixed``;
- ``ndarray[DTYPE](D0,D1,…)ORDER``: ``ArrayPart``, a numeric dtype in native byte order,
  ORDER ``C``, ``F`` or ``N`` (strided, neither);
- ``float``, ``int``, ``bool``, ``complex`` or ``numpy.float64`` and the like:
  ``ScalarPart``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from noodle_upgrade.ale.signature import from_key

_SEQUENCE = re.compile(r"(?P<container>list|tuple)\[(?P<kind>\w+)\]\((?P<length>\d+)\)")
_ARRAY = re.compile(r"ndarray\[(?P<dtype>[^\]]+)\]\((?P<shape>[\d,]*)\)(?P<order>[CFN])")


@dataclass(frozen=True)
class SequencePart:
    """A list or tuple of ``length`` elements of one ``kind`` (or ``mixed``)."""

    container: str  # "list" or "tuple"
    kind: str
    length: int

    @property
    def size(self) -> int:
        return self.length


@dataclass(frozen=True)
class ArrayPart:
    """A numpy array: dtype name (``float64``), shape, and ``C``/``F``/``N`` layout."""

    dtype: str
    shape: tuple[int, ...]
    order: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ScalarPart:
    """One number: ``float``, ``int``, ``bool``, ``complex`` or a numpy scalar type."""

    type_name: str

    @property
    def size(self) -> int:
        return 1


Part = SequencePart | ArrayPart | ScalarPart


def parse_key(key: str) -> tuple[Part, ...] | None:
    """The parts of a routable ``key``; None when calls with it are never routed."""
    signature = from_key("", key)
    if not signature.routable or not signature.parts:
        return None
    return tuple(_part(text) for text in signature.parts)


def _part(text: str) -> Part:
    sequence = _SEQUENCE.fullmatch(text)
    if sequence is not None:
        return SequencePart(sequence["container"], sequence["kind"], int(sequence["length"]))
    array = _ARRAY.fullmatch(text)
    if array is not None:
        shape = tuple(int(dim) for dim in array["shape"].split(",") if dim)
        return ArrayPart(array["dtype"], shape, array["order"])
    return ScalarPart(text)
