"""Reaching a live runtime's control endpoint as any local client could: raw sockets,
and ``ControlClient`` (``client_of``).

``ControlClient`` hides the JSON-RPC error codes (it raises ``NoodleError``); the raw
helpers show the bytes the runtime really sends back. An endpoint is a Unix socket's
path, or the (host, port) of the TCP transport.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any, BinaryIO

from helpers.project import Project, greeter_source
from noodle_upgrade import Runtime
from noodle_upgrade.control.client import ControlClient
from noodle_upgrade.errors import NoodleError

# What a live watcher sees of one immediate upgrade: its start, its four stages, its end.
IMMEDIATE_UPGRADE_EVENTS = ["upgrade.started", *["upgrade.stage"] * 4, "upgrade.succeeded"]

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


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def client_of(root: Path) -> ControlClient:
    client = ControlClient.connect(state_dir(root), timeout=TIMEOUT_S)
    assert client is not None, "no live runtime answers on the pointer's socket"
    return client


def served_again(root: Path) -> dict[str, Any]:
    """The status, once a connection is admitted again: the slots of clients that hung
    up free up as their threads notice, which is soon but not instant."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            with client_of(root) as client:
                status: dict[str, Any] = client.call("status")
                return status
        except NoodleError as exc:
            assert "too many connections" in str(exc), exc
            assert time.monotonic() < deadline, "the endpoint never took clients again"
            time.sleep(0.01)


def socket_of(root: Path) -> Path:
    return Path(pointer(root)["path"])


Endpoint = Path | tuple[str, int]


def tcp_address_of(root: Path) -> tuple[str, int]:
    """Where a runtime opened with ``control_transport = "tcp"`` listens."""
    value = pointer(root)
    return value["host"], value["port"]


def token_of(root: Path) -> str:
    """The content of the token file the pointer names, as a client reads it."""
    return Path(pointer(root)["token_file"]).read_text().strip()


def authenticate(token: str, request_id: Any = "auth") -> bytes:
    return request("authenticate", {"token": token}, request_id)


def connect(endpoint: Endpoint) -> socket.socket:
    if isinstance(endpoint, tuple):
        return socket.create_connection(endpoint, timeout=TIMEOUT_S)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        sock.connect(str(endpoint))
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


def exchange(endpoint: Endpoint, data: bytes) -> list[dict[str, Any]]:
    """Send ``data``, hang up our sending side, and return every message the runtime
    answered before it closed the connection."""
    with connect(endpoint) as sock, sock.makefile("rb") as reader:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        messages = []
        while (message := read_message(reader)) is not None:
            messages.append(message)
        return messages


def call(endpoint: Endpoint, method: str, params: Any = None) -> dict[str, Any]:
    """One request on its own connection; the whole reply (``result`` or ``error``)."""
    (reply,) = exchange(endpoint, request(method, params))
    return reply
