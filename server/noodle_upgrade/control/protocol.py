"""JSON-RPC 2.0 messages of the control endpoint, one JSON object per line. Pure.

Bad input becomes a JSON-RPC error object; nothing here raises at a client's bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 1 << 20  # a request line longer than this closes the connection
# Before it authenticates, a TCP client gets to send one short line: an "authenticate".
MAX_UNAUTHENTICATED_BYTES = 4096

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOODLE_ERROR = -32000  # a refusal or misuse: ``data.code`` is the stable kebab-case name
UNAUTHENTICATED = -32001  # on TCP: no, or a wrong, token; ``data.code`` is "control-auth"

AUTHENTICATE = "authenticate"  # params {"token": ...}; the first request on a TCP connection

RequestId = str | int | None


@dataclass(frozen=True)
class Request:
    method: str
    params: dict[str, Any]
    id: RequestId
    notification: bool = False  # no "id" member at all: JSON-RPC expects no answer


@dataclass(frozen=True)
class ProtocolError(Exception):
    code: int
    message: str
    id: RequestId = None


def parse_request(line: bytes) -> Request:
    """One request from one line, or a ProtocolError saying what is wrong with it."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as exc:  # also too deep, or an int too long
        raise ProtocolError(PARSE_ERROR, f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(INVALID_REQUEST, "a request is a JSON object")
    request_id = message.get("id")
    if not (request_id is None or isinstance(request_id, str | int)) or isinstance(
        request_id, bool
    ):
        raise ProtocolError(INVALID_REQUEST, "id must be a string, a number, null or absent")
    if message.get("jsonrpc") != "2.0":
        raise ProtocolError(INVALID_REQUEST, 'jsonrpc must be "2.0"', request_id)
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError(INVALID_REQUEST, "method must be a non-empty string", request_id)
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError(INVALID_PARAMS, "params must be an object (by name)", request_id)
    return Request(method, params, request_id, notification="id" not in message)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def result(request_id: RequestId, value: Any) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: RequestId, code: int, message: str, data: Any = None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return encode({"jsonrpc": "2.0", "id": request_id, "error": body})


def notification(method: str, params: dict[str, Any]) -> bytes:
    return encode({"jsonrpc": "2.0", "method": method, "params": params})


def request(method: str, params: dict[str, Any], request_id: int) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
