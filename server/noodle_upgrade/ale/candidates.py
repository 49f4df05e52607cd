"""The template library: faster implementations of a library function for one signature.

A ``CandidateFamily`` says which signatures it accepts and writes a ``Candidate``: Python
source defining ``candidate(...)`` with the target's positional parameters, generated for
that one signature (a length or a shape can be baked in), and the float tolerance it
claims. ``CandidateProvider`` is what any generator implements; ``TemplateProvider`` offers
the built-in families. Nothing here runs a candidate: ``ale.sandbox`` judges each one
against the baseline on recorded and generated inputs, and only a candidate with no
mismatch can be routed to.

The families are honest about what numpy does (numpy 2.4, measured):

- ``py_dot``: ``numpy.dot`` of two short lists in pure Python. numpy converts both lists
  to arrays first, which costs more than the arithmetic. Floats: ``numpy.dot`` of one
  element returns the product itself (``-0.0·1.0`` is ``-0.0``), longer sums start from
  ``+0.0``; the result is a ``numpy.float64``, as numpy's. The order of the additions can
  differ from the BLAS kernel's (it does from 16 elements on here, and on CPUs whose
  kernel fuses multiply-adds), so float candidates claim a relative tolerance. Ints:
  numpy stores them as int64 and wraps on overflow; a sum of exact products reduced
  modulo 2**64 is the same number, and lists holding an int outside int64 (which numpy
  stores as uint64 or object) are handed to ``ndarray.dot`` as they are. Bools: numpy's
  dot of bools is "any pair both true".
- ``unrolled``: the same for floats, with the sum written out for a fixed length
  ``a[0]*b[0] + a[1]*b[1] + …``: no loop, no ``map``. Fixed-shape matrix kernels were
  measured and left out: reading a 2×2 array into Python and building the result array
  costs more than ``ndarray.dot`` on it.
- ``ndarray_dot``: ``numpy.matmul`` of two small 2-D float64 arrays as ``x1.dot(x2)``,
  1.5–2× as fast and bitwise equal — except with an inner dimension of 1, where
  ``dot`` returns the single product (``-0.0``) and ``matmul`` adds it to ``+0.0``: such
  shapes are not accepted.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from noodle_upgrade.ale.keys import ArrayPart, Part, SequencePart, parse_key
from noodle_upgrade.ale.model import Candidate, Signature
from noodle_upgrade.errors import NoodleError

EXACT: tuple[float, float] = (0.0, 0.0)
# Sums of a few products in another order, or with fused multiply-adds, differ by a few
# units in the last place; 1e-12 is ~4500 of them. Where the terms cancel to a result far
# below their size the difference can exceed it: the sandbox then rejects the candidate.
SUM_ORDER_TOLERANCE: tuple[float, float] = (1e-12, 0.0)


def candidate_id(function: str, signature_key: str, family: str) -> str:
    """The same 12 hex digits for the same function, signature and family, every time."""
    digest = hashlib.sha256(f"{function}\n{signature_key}\n{family}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Draft:
    """What a family writes for one signature, before it becomes a ``Candidate``."""

    body: str  # module-level source defining ``candidate``
    tolerance: tuple[float, float]


class CandidateProvider(Protocol):
    """Anything that proposes candidates for a function's signature."""

    def candidates(self, function: str, signature: Signature) -> list[Candidate]: ...


class CandidateFamily(ABC):
    """One kind of faster implementation, written out for each signature it accepts."""

    name: ClassVar[str]
    description: ClassVar[str]  # also says which signatures it accepts

    def accepts(self, function: str, signature: Signature) -> bool:
        return self._draft_for(function, signature) is not None

    def write(self, function: str, signature: Signature) -> Candidate:
        """The candidate for ``signature``; a ``NoodleError`` when it is not accepted."""
        draft = self._draft_for(function, signature)
        if draft is None:
            raise NoodleError(
                f"candidate family {self.name!r} does not accept {function}"
                f"({signature.key}); it accepts {self.description}",
                code="ale-signature-not-accepted",
            )
        header = f'"""{self.name} for {function}({signature.key})."""\n\n'
        return Candidate(
            id=candidate_id(function, signature.key, self.name),
            function=function,
            signature=signature.key,
            family=self.name,
            source=header + draft.body,
            tolerance=draft.tolerance,
            description=self.description,
        )

    def _draft_for(self, function: str, signature: Signature) -> Draft | None:
        parts = parse_key(signature.key) if signature.routable else None
        return None if parts is None else self._draft(function, parts)

    @abstractmethod
    def _draft(self, function: str, parts: tuple[Part, ...]) -> Draft | None:
        """The source for these argument shapes, or None when the family declines them."""


def _sequence_pair(function: str, parts: tuple[Part, ...]) -> tuple[str, int] | None:
    """(kind, length) when ``numpy.dot`` is given two lists (or two tuples) of one kind
    and length: numpy reads a tuple as it reads a list."""
    if function != "numpy.dot" or len(parts) != 2:
        return None
    first, second = parts
    if not (isinstance(first, SequencePart) and first == second):
        return None
    return first.kind, first.length


# The results are numpy scalars, as numpy.dot's are, made without calling float64(x) or
# int64(x) (~170 and ~600 ns): a numpy scalar plus a Python number is a numpy scalar of
# the same type, and -0.0 + x is x bit for bit, where +0.0 + x turns -0.0 into 0.0.

PY_DOT_SINGLE_FLOAT = """\
from numpy import float64

NEGATIVE_ZERO = float64(-0.0)


def candidate(a, b):
    # numpy returns the one product itself: -0.0·1.0 stays -0.0
    return NEGATIVE_ZERO + a[0] * b[0]
"""

PY_DOT_FLOAT = """\
from operator import mul
from numpy import float64

ZERO = float64(0.0)


def candidate(a, b):
    # numpy's sums start from +0.0: products that are all -0.0 add up to 0.0
    return ZERO + sum(map(mul, a, b))
"""

PY_DOT_INT = """\
from operator import mul
from numpy import asarray, int64

ZERO = int64(0)
INT64_LOW, INT64_END = -(2**63), 2**63


def candidate(a, b):
    both = a + b
    if min(both) < INT64_LOW or max(both) >= INT64_END:
        # numpy stores such ints as uint64, float64 or objects, with their own arithmetic
        return asarray(a).dot(asarray(b))
    # int64 wraps modulo 2**64, and so does a sum of products reduced modulo 2**64
    return ZERO + ((sum(map(mul, a, b)) - INT64_LOW) % 2**64 + INT64_LOW)
"""

PY_DOT_BOOL = """\
from operator import and_
from numpy import False_, True_


def candidate(a, b):
    # numpy's dot of bools is true when some pair is true on both sides
    return True_ if any(map(and_, a, b)) else False_
"""


class PyDot(CandidateFamily):
    name = "py_dot"
    description = (
        "numpy.dot of two Python lists (or two tuples) of the same length, 1 to 16, "
        "holding only floats, only ints or only bools, computed in pure Python"
    )
    MAX_LENGTH = 16
    TEMPLATES: ClassVar[dict[str, tuple[str, tuple[float, float]]]] = {
        "float": (PY_DOT_FLOAT, SUM_ORDER_TOLERANCE),
        "int": (PY_DOT_INT, EXACT),
        "bool": (PY_DOT_BOOL, EXACT),
    }

    def _draft(self, function: str, parts: tuple[Part, ...]) -> Draft | None:
        pair = _sequence_pair(function, parts)
        if pair is None:
            return None
        kind, length = pair
        if kind not in self.TEMPLATES or not 1 <= length <= self.MAX_LENGTH:
            return None
        if kind == "float" and length == 1:
            return Draft(PY_DOT_SINGLE_FLOAT, EXACT)
        body, tolerance = self.TEMPLATES[kind]
        return Draft(body, tolerance)


class Unrolled(CandidateFamily):
    name = "unrolled"
    description = (
        "numpy.dot of two Python lists (or two tuples) of the same length, 2 to 8, "
        "holding only floats, with the sum of products written out for that length"
    )
    LENGTHS = range(2, 9)  # py_dot's code for one element is already a single product

    def _draft(self, function: str, parts: tuple[Part, ...]) -> Draft | None:
        pair = _sequence_pair(function, parts)
        if pair is None or pair[0] != "float" or pair[1] not in self.LENGTHS:
            return None
        products = " + ".join(f"a[{i}] * b[{i}]" for i in range(pair[1]))
        # as PY_DOT_FLOAT: the numpy zero added last makes -0.0 0.0, as numpy's sums do
        body = (
            "from numpy import float64\n\nZERO = float64(0.0)\n\n\n"
            f"def candidate(a, b):\n    return ZERO + ({products})\n"
        )
        return Draft(body, SUM_ORDER_TOLERANCE)


class NdarrayDot(CandidateFamily):
    name = "ndarray_dot"
    description = (
        "numpy.matmul of two 2-D float64 arrays (C, F or strided) with dimensions of at "
        "most 32 and an inner dimension of at least 2, as x1.dot(x2)"
    )
    MAX_DIMENSION = 32

    def _draft(self, function: str, parts: tuple[Part, ...]) -> Draft | None:
        if function != "numpy.matmul" or len(parts) != 2:
            return None
        first, second = parts
        if not (isinstance(first, ArrayPart) and isinstance(second, ArrayPart)):
            return None
        if not self._small_float64_matrix(first) or not self._small_float64_matrix(second):
            return None
        inner = first.shape[1]
        if inner != second.shape[0] or inner < 2:
            return None
        return Draft("def candidate(x1, x2):\n    return x1.dot(x2)\n", EXACT)

    def _small_float64_matrix(self, part: ArrayPart) -> bool:
        return (
            part.dtype == "float64"
            and len(part.shape) == 2
            and all(dim <= self.MAX_DIMENSION for dim in part.shape)
        )


FAMILIES: tuple[CandidateFamily, ...] = (PyDot(), Unrolled(), NdarrayDot())


class TemplateProvider:
    """The built-in families: every candidate any of them writes for a signature."""

    def __init__(self, families: Sequence[CandidateFamily] = FAMILIES) -> None:
        self.families = tuple(families)

    def candidates(self, function: str, signature: Signature) -> list[Candidate]:
        return [
            family.write(function, signature)
            for family in self.families
            if family.accepts(function, signature)
        ]
