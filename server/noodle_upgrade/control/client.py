"""A client of a live runtime's control endpoint (the CLI uses it).

``connect`` follows ``control.json`` by its transport: a Unix socket needs nothing more;
on TCP the client reads the token file and authenticates before it returns. A pointer
nobody answers is stale (None: the caller works offline); a runtime that answers but
refuses us is an error (``control-auth``), never a silent fall back to the store.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noodle_upgrade.control import protocol
from noodle_upgrade.control.server import (
    AUTHENTICATE_SECONDS,
    POINTER,
    process_alive,
    read_pointer,
    tcp_address,
)
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
        pointer_file = state_dir / POINTER
        pointer = read_pointer(pointer_file)
        if pointer is None:
            return None
        transport = pointer.get("transport", "unix")
        if transport == "tcp":
            return cls._connect_tcp(pointer_file, pointer, timeout)
        if transport == "unix":
            return cls._connect_unix(pointer, timeout)
        raise NoodleError(
            f"{pointer_file}: transport {transport!r} is not one this noodle speaks "
            "(unix, tcp); upgrade noodle-upgrade to reach that runtime",
            code="control-error",
        )

    @classmethod
    def _connect_unix(cls, pointer: dict[str, Any], timeout: float | None) -> ControlClient | None:
        path = pointer.get("path")
        if not isinstance(path, str):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            return None
        return cls(sock)

    @classmethod
    def _connect_tcp(
        cls, pointer_file: Path, pointer: dict[str, Any], timeout: float | None
    ) -> ControlClient | None:
        address = tcp_address(pointer)
        # A dead process's port may serve someone else by now: never send it the token.
        if address is None or not process_alive(pointer.get("pid")):
            return None
        try:
            sock = socket.create_connection(address, timeout=timeout)
        except OSError:
            return None
        client = cls(sock)
        try:
            client._authenticate(pointer_file, pointer, timeout)
        except BaseException:
            client.close()
            raise
        return client

    def _authenticate(
        self, pointer_file: Path, pointer: dict[str, Any], timeout: float | None
    ) -> None:
        where = f"the live runtime {pointer_file} names (pid {pointer.get('pid')})"
        token_file = Path(str(pointer.get("token_file")))
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise NoodleError(
                f"{where} wants the token in {token_file}, which cannot be read: "
                f"{exc.strerror or exc}",
                code="control-auth",
            ) from None
        # The runtime answers at once or closes an unauthenticated connection after
        # AUTHENTICATE_SECONDS: waiting twice that long cannot hang on a live one.
        self._socket.settimeout(2 * AUTHENTICATE_SECONDS if timeout is None else timeout)
        try:
            self.call(protocol.AUTHENTICATE, token=token)
        except NoodleError as exc:
            if exc.code != "control-auth":
                raise  # the runtime's own reason, "too many connections" say
            raise NoodleError(
                f"{where} refused the token in {token_file} (the runtime writes that file "
                "when it opens: was it changed since?)",
                code="control-auth",
            ) from None
        except (OSError, ValueError) as exc:
            raise NoodleError(
                f"{where} did not answer its authentication: {exc}", code="control-auth"
            ) from None
        self._socket.settimeout(timeout)

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
