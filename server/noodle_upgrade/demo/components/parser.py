"""The parser: tokens → syntax tree.

1.x trees are tuples: ``("int", 7)``, ``("var", "x")`` or ``(op, left, right)`` with op
one of ``+ - *``.
2.0.0 is a breaking release: ``parse`` is renamed ``parse_program`` and returns node
objects, so the optimizer and the bytecode generator, which require ``parser <2``, would
break; the runtime refuses it and names them.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release
from noodle_upgrade.scaffold import ManifestValue

PARSER_1_0_0 = '''\
"""Parser 1.0.0: recursive descent; * binds tighter than + and -, all left-associative."""


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.position = 0

    def peek(self):
        return self.tokens[self.position]

    def take(self):
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, kind):
        token = self.take()
        if token[0] != kind:
            raise SyntaxError(f"expected {kind!r}, found {token[1]!r} (token {self.position})")

    def sum(self):
        node = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            operator = self.take()[1]
            node = (operator, node, self.product())
        return node

    def product(self):
        node = self.atom()
        while self.peek() == ("op", "*"):
            self.take()
            node = ("*", node, self.atom())
        return node

    def atom(self):
        kind, value = self.take()
        if kind == "int":
            return ("int", value)
        if kind == "name":
            return ("var", value)
        if kind == "(":
            node = self.sum()
            self.expect(")")
            return node
        raise SyntaxError(f"unexpected {value or kind!r} (token {self.position})")


def parse(tokens):
    parser = _Parser(tokens)
    tree = parser.sum()
    parser.expect("end")
    return tree
'''

PARSER_2_0_0 = '''\
"""Parser 2.0.0: typed nodes. Breaking: ``parse`` is now ``parse_program``."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class BinOp:
    operator: str
    left: object
    right: object


PRECEDENCE = {"+": 1, "-": 1, "*": 2}


def parse_program(tokens):
    """Precedence climbing over the same tokens as 1.x."""
    position = 0

    def atom():
        nonlocal position
        kind, value = tokens[position]
        position += 1
        if kind == "int":
            return Num(value)
        if kind == "name":
            return Var(value)
        if kind == "(":
            node = climb(1)
            if tokens[position][0] != ")":
                raise SyntaxError(f"expected ')' at token {position}")
            position += 1
            return node
        raise SyntaxError(f"unexpected {value or kind!r} at token {position}")

    def climb(minimum):
        nonlocal position
        node = atom()
        while tokens[position][0] == "op" and PRECEDENCE[tokens[position][1]] >= minimum:
            operator = tokens[position][1]
            position += 1
            node = BinOp(operator, node, climb(PRECEDENCE[operator] + 1))
        return node

    tree = climb(1)
    if tokens[position][0] != "end":
        raise SyntaxError(f"unexpected {tokens[position][1]!r} at token {position}")
    return tree
'''

_NEEDS: dict[str, ManifestValue] = {"dependencies": {"lexer": ">=1.0,<2"}}

RELEASES = (
    Release(
        "parser",
        "1.0.0",
        "recursive descent, tuple trees",
        PARSER_1_0_0,
        manifest={"type": "compiler", "critical": True, **_NEEDS},
    ),
    Release(
        "parser",
        "2.0.0",
        "typed nodes; parse() renamed parse_program() (breaking)",
        PARSER_2_0_0,
        manifest={"type": "compiler", "critical": True, "upgrade_from": ["1.0.0"], **_NEEDS},
    ),
)
