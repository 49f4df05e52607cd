"""Reaching a live runtime's control endpoint as any local client could: raw Unix sockets.

``ControlClient`` hides the JSON-RPC error codes (it raises ``NoodleError``); these
helpers show the bytes the runtime really sends back.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, BinaryIO

from helpers.project import Project, greeter_source
from noodle_upgrade import Runtime

TIMEOUT_S = 30.0  # a guard against a hang, never a speed check


def greeter_project(project: Project) -> Project:
    """``greeter`` 1.0.0 locked as active, 1.1.0 waiting in the store (an upgrade)."""
    project.constraints({"greeter": "==1.0.0"})
    project.add("greeter", "1.0.0", greeter_source("1.0.0"))
    Runtime.open(project.root, control=False).close()
    project.constraints({"greeter": ">=1,<3"})
    project.add("greeter", "1.1.0", greeter_source("1.1.0"))
    return project


def state_dir(root: Path) -> Path:
    return root / ".noodle"


def pointer(root: Path) -> dict[str, Any]:
    """``control.json``: where the live runtime's socket is and which process serves it."""
    value: dict[str, Any] = json.loads((state_dir(root) / "control.json").read_text())
    return value


def socket_of(root: Path) -> Path:
    return Path(pointer(root)["path"])


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


def request(method: str, params: Any = None, request_id: Any = 1) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if request_id is not None:
        message["id"] = request_id
    return json.dumps(message).encode() + b"\n"


def read_message(reader: BinaryIO) -> dict[str, Any] | None:
    """The next message on a connection, or None once the runtime closed it."""
    line = reader.readline()
    if not line:
        return None
    assert line.endswith(b"\n"), f"a message without its newline: {line[:200]!r}"
    message: dict[str, Any] = json.loads(line)
    return message


def exchange(path: Path, data: bytes) -> list[dict[str, Any]]:
    """Send ``data``, hang up our sending side, and return every message the runtime
    answered before it closed the connection."""
    with connect(path) as sock, sock.makefile("rb") as reader:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        messages = []
        while (message := read_message(reader)) is not None:
            messages.append(message)
        return messages


def call(path: Path, method: str, params: Any = None) -> dict[str, Any]:
    """One request on its own connection; the whole reply (``result`` or ``error``)."""
    (reply,) = exchange(path, request(method, params))
    return reply
