"""The lexer: source text → tokens.

Tokens are tuples: ``("int", 42)``, ``("name", "x")``, ``("op", "+")``, ``("(", "(")``,
``(")", ")")`` and a final ``("end", "")``. Both versions produce the same tokens; 1.1.0
is a regular-expression scanner that is faster and also accepts tabs and newlines
between tokens.
"""

from __future__ import annotations

from noodle_upgrade.demo.components.release import Release

LEXER_1_0_0 = '''\
"""Lexer 1.0.0: a character-by-character scanner. Only spaces separate tokens."""

_DIGITS = "0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_OPERATORS = "+-*"
_PARENS = "()"


def tokenize(source):
    tokens = []
    position, length = 0, len(source)
    while position < length:
        char = source[position]
        if char == " ":
            position += 1
        elif char in _DIGITS:
            start = position
            while position < length and source[position] in _DIGITS:
                position += 1
            tokens.append(("int", int(source[start:position])))
        elif char in _LETTERS:
            start = position
            while position < length and source[position] in _LETTERS + _DIGITS:
                position += 1
            tokens.append(("name", source[start:position]))
        elif char in _OPERATORS:
            tokens.append(("op", char))
            position += 1
        elif char in _PARENS:
            tokens.append((char, char))
            position += 1
        else:
            raise SyntaxError(f"unexpected character {char!r} at offset {position}")
    tokens.append(("end", ""))
    return tokens
'''

LEXER_1_1_0 = '''\
"""Lexer 1.1.0: one regular expression; any whitespace separates tokens."""

import re

TOKEN = re.compile(
    r"(?P<int>[0-9]+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[-+*])|(?P<paren>[()])"
    r"|(?P<space>\\s+)|(?P<bad>.)",
    re.DOTALL,
)


def tokenize(source):
    tokens = []
    append = tokens.append
    for match in TOKEN.finditer(source):
        kind = match.lastgroup
        text = match.group()
        if kind == "int":
            append(("int", int(text)))
        elif kind == "name" or kind == "op":
            append((kind, text))
        elif kind == "paren":
            append((text, text))
        elif kind == "bad":
            raise SyntaxError(f"unexpected character {text!r} at offset {match.start()}")
    append(("end", ""))
    return tokens


def health():
    expected = [("int", 1), ("op", "+"), ("(", "("), ("name", "x"), (")", ")"), ("end", "")]
    return tokenize("1\\t+\\n(x )") == expected
'''

RELEASES = (
    Release(
        "lexer",
        "1.0.0",
        "character scanner, spaces only",
        LEXER_1_0_0,
        manifest={"type": "compiler"},
    ),
    Release(
        "lexer",
        "1.1.0",
        "regex scanner: faster, accepts tabs and newlines",
        LEXER_1_1_0,
        manifest={"type": "compiler", "health_check": "lexer:health"},
    ),
)
