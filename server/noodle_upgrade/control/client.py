"""A client of a live runtime's control endpoint (the CLI uses it)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noodle_upgrade.control import protocol
from noodle_upgrade.control.server import POINTER
from noodle_upgrade.errors import NoodleError


class ControlClient:
    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._reader = sock.makefile("rb")
        self._next_id = 0

    @classmethod
    def connect(cls, state_dir: Path, timeout: float | None = None) -> ControlClient | None:
        """The live runtime serving this state folder, or None when there is none (no
        pointer, or a pointer left behind by a process that is gone)."""
        try:
            pointer = json.loads((state_dir / POINTER).read_text())
            path = str(pointer["path"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            return None
        return cls(sock)

    def close(self) -> None:
        self._reader.close()
        self._socket.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> Any:
        """Call ``method``; a refusal or misuse on the runtime's side raises NoodleError."""
        self._next_id += 1
        # A runtime that hung up (too many connections) said why first: read it below.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._socket.sendall(protocol.request(method, params, self._next_id))
        return _unwrap(self._read())

    def events(self) -> Iterator[dict[str, Any]]:
        """Subscribe and yield every event the runtime publishes, as it happens."""
        self.call("subscribe")
        while True:
            message = self._read()
            if "error" in message:
                _unwrap(message)
            yield message["params"]

    def _read(self) -> dict[str, Any]:
        line = self._reader.readline()
        if not line:
            raise NoodleError("the runtime closed the control connection", code="control-closed")
        message: dict[str, Any] = json.loads(line)
        return message


def _unwrap(message: dict[str, Any]) -> Any:
    error = message.get("error")
    if error is None:
        return message.get("result")
    data = error.get("data") or {}
    raise NoodleError(str(error.get("message")), code=str(data.get("code", "control-error")))
