"""The control endpoint's JSON-RPC 2.0 messages, parsed and encoded (pure, no socket).

Whatever bytes a client sends, ``parse_request`` returns a request or raises a
``ProtocolError`` that the server sends back as a JSON-RPC error: nothing else escapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from noodle_upgrade.control import protocol
from noodle_upgrade.control.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOODLE_ERROR,
    PARSE_ERROR,
    ProtocolError,
    Request,
    parse_request,
)


def line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def decode(data: bytes) -> dict[str, Any]:
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1, "one message is one line"
    value: dict[str, Any] = json.loads(data)
    return value


# ------------------------------------------------------------------- valid requests


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            {"jsonrpc": "2.0", "id": 1, "method": "status"},
            Request("status", {}, 1),
        ),
        (
            {"jsonrpc": "2.0", "id": "abc", "method": "plan", "params": {"component": "g"}},
            Request("plan", {"component": "g"}, "abc"),
        ),
        (
            {"jsonrpc": "2.0", "id": 0, "method": "history", "params": {}},
            Request("history", {}, 0),
        ),
        (
            {"jsonrpc": "2.0", "id": -7, "method": "x", "extra": "ignored"},
            Request("x", {}, -7),
        ),
    ],
)
def test_a_valid_request_is_parsed(message: dict[str, Any], expected: Request) -> None:
    request = parse_request(line(message))
    assert request == expected
    assert not request.notification


def test_a_request_line_may_carry_surrounding_whitespace_and_utf8() -> None:
    data = b'  {"jsonrpc": "2.0", "id": "\xc3\xa9", "method": "status"}  \r\n'
    assert parse_request(data) == Request("status", {}, "é")


def test_a_request_without_id_is_a_notification() -> None:
    request = parse_request(line({"jsonrpc": "2.0", "method": "status", "params": {"a": 1}}))
    assert request == Request("status", {"a": 1}, None, notification=True)
    assert request.notification


# -------------------------------------------------------------------- bad requests


def refusal(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_request(data)
    return caught.value


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\n",
        b"{not json}\n",
        b'{"jsonrpc": "2.0", "id": 1, "meth',  # a frame cut in half
        b"\x00\xff\xfe\n",
        b"",
        b"[" * 100_000,  # nested deeper than the decoder's recursion limit
        b'{"a":' * 50_000,
        b'{"jsonrpc": "2.0", "method": "status", "id": ' + b"9" * 5000 + b"}",  # int too long
    ],
    ids=["word", "braces", "truncated", "binary", "empty", "deep-array", "deep-object", "long-int"],
)
def test_bytes_that_are_not_json_are_a_parse_error(data: bytes) -> None:
    error = refusal(data)
    assert error.code == PARSE_ERROR
    assert error.message.startswith("not JSON")
    assert error.id is None


@pytest.mark.parametrize("message", [[], [1, 2], "status", 42, None, True])
def test_json_that_is_not_an_object_is_an_invalid_request(message: Any) -> None:
    error = refusal(line(message))
    assert error.code == INVALID_REQUEST
    assert "object" in error.message
    assert error.id is None


@pytest.mark.parametrize(
    "jsonrpc", [None, "1.0", "2", 2.0, 2], ids=["absent", "1.0", "2", "float", "int"]
)
def test_a_wrong_jsonrpc_version_is_an_invalid_request_keeping_the_id(jsonrpc: Any) -> None:
    message: dict[str, Any] = {"id": 5, "method": "status"}
    if jsonrpc is not None:
        message["jsonrpc"] = jsonrpc
    error = refusal(line(message))
    assert error.code == INVALID_REQUEST
    assert "jsonrpc" in error.message
    assert error.id == 5


@pytest.mark.parametrize("method", [None, "", 5, ["status"], {"name": "status"}], ids=repr)
def test_a_missing_or_empty_method_is_an_invalid_request(method: Any) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": "r1"}
    if method is not None:
        message["method"] = method
    error = refusal(line(message))
    assert error.code == INVALID_REQUEST
    assert "method" in error.message
    assert error.id == "r1"


@pytest.mark.parametrize("params", [["g", "1.1.0"], "g", 3, None], ids=repr)
def test_params_that_are_not_an_object_are_invalid_params(params: Any) -> None:
    message = {"jsonrpc": "2.0", "id": 9, "method": "upgrade", "params": params}
    error = refusal(line(message))
    assert error.code == INVALID_PARAMS
    assert "params" in error.message
    assert error.id == 9


@pytest.mark.parametrize("request_id", [True, False, 1.5, [1], {"a": 1}], ids=repr)
def test_an_id_that_is_not_a_string_or_an_integer_is_refused_without_echoing_it(
    request_id: Any,
) -> None:
    error = refusal(line({"jsonrpc": "2.0", "id": request_id, "method": "status"}))
    assert error.code == INVALID_REQUEST
    assert "id" in error.message
    assert error.id is None  # a bad id is never sent back as if it were one


def test_the_error_codes_are_json_rpcs() -> None:
    assert (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR) == (
        -32700,
        -32600,
        -32601,
        -32602,
        -32603,
    )
    assert NOODLE_ERROR == -32000  # the server-defined range


# ------------------------------------------------------------------------- encoding


def test_result_and_error_shapes() -> None:
    assert decode(protocol.result(3, {"live": True})) == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"live": True},
    }
    assert decode(protocol.result("a", None)) == {"jsonrpc": "2.0", "id": "a", "result": None}
    assert decode(protocol.error(None, PARSE_ERROR, "not JSON")) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": PARSE_ERROR, "message": "not JSON"},
    }
    with_data = decode(protocol.error(7, NOODLE_ERROR, "busy", {"code": "busy"}))
    assert with_data["error"] == {"code": NOODLE_ERROR, "message": "busy", "data": {"code": "busy"}}


def test_notification_and_request_shapes() -> None:
    assert decode(protocol.notification("event", {"kind": "upgrade.started"})) == {
        "jsonrpc": "2.0",
        "method": "event",
        "params": {"kind": "upgrade.started"},
    }
    encoded = protocol.request("plan", {"component": "g"}, 12)
    assert decode(encoded) == {
        "jsonrpc": "2.0",
        "id": 12,
        "method": "plan",
        "params": {"component": "g"},
    }
    assert parse_request(encoded) == Request("plan", {"component": "g"}, 12)


def test_encoding_is_one_line_whatever_the_text_and_stringifies_the_rest() -> None:
    value = {"text": "two\nlines\r\u2028and é", "path": Path("/x")}
    encoded = protocol.result(1, value)
    message = decode(encoded)
    assert message["result"] == {"text": "two\nlines\r\u2028and é", "path": "/x"}
    assert b", " not in encoded and b": " not in encoded  # compact separators


def test_every_error_round_trips_through_the_parser_of_a_client() -> None:
    """What the server sends back for a bad request is itself valid, parseable JSON."""
    for data in (b"garbage", b"[]", line({"jsonrpc": "1.0", "id": 1, "method": "m"})):
        error = refusal(data)
        reply = decode(protocol.error(error.id, error.code, error.message))
        assert reply["error"]["code"] == error.code
        assert reply["id"] == error.id


def test_a_null_id_is_a_request_that_gets_an_answer() -> None:
    """JSON-RPC 2.0: only a message with no "id" member at all is a notification."""
    answered = parse_request(b'{"jsonrpc": "2.0", "method": "status", "id": null}')
    assert answered.id is None and not answered.notification
    silent = parse_request(b'{"jsonrpc": "2.0", "method": "status"}')
    assert silent.notification
