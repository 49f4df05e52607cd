"""The control endpoint: JSON-RPC 2.0 over a Unix socket only its owner can open.

The socket lives in the state folder (mode 0600); ``control.json`` beside it says where
it is and which process serves it, so clients find a live runtime and notice a stale
one. Each connection has its own thread: a slow, silent or hostile client holds only
that thread. A line over ``MAX_MESSAGE_BYTES``, bad JSON or a bad request gets a
JSON-RPC error; the application's own threads never wait on a client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import socketserver
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noodle_upgrade.control import protocol
from noodle_upgrade.control.methods import METHODS, STREAMS
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.runtime.events import Event

if TYPE_CHECKING:
    from noodle_upgrade.runtime.runtime import Runtime

log = logging.getLogger("noodle_upgrade.control")

POINTER = "control.json"
MAX_CONNECTIONS = 64
IDLE_SECONDS = 600.0  # a connection that sends nothing for this long is closed
STREAM_BACKLOG = 1024  # events queued for a slow subscriber before it is dropped
STREAM_POLL_SECONDS = 0.5
SHUTDOWN_POLL_SECONDS = 0.02  # how soon close() is noticed (runtimes open and close often)
_UNIX_PATH_MAX = 100  # sockaddr_un holds ~108 bytes; keep a margin


def socket_path(state_dir: Path) -> Path:
    """``<state>/control.sock``, or a short private folder when that path is too long."""
    preferred = state_dir / "control.sock"
    if len(os.fsencode(preferred)) <= _UNIX_PATH_MAX:
        return preferred
    return Path(tempfile.mkdtemp(prefix="noodle-")) / "control.sock"


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(IDLE_SECONDS)

    def handle(self) -> None:
        if not self.server.admit():
            with contextlib.suppress(OSError):  # the client may have hung up already
                message = protocol.error(None, protocol.INTERNAL_ERROR, "too many connections")
                self.wfile.write(message)
            return
        try:
            self._serve()
        except (OSError, ValueError):
            pass  # the client went away or timed out: nothing to answer
        finally:
            self.server.leave()

    def _serve(self) -> None:
        while line := self.rfile.readline(protocol.MAX_MESSAGE_BYTES + 1):
            if len(line) > protocol.MAX_MESSAGE_BYTES:
                limit = protocol.MAX_MESSAGE_BYTES
                message = f"request longer than {limit} bytes; closing the connection"
                self.wfile.write(protocol.error(None, protocol.INVALID_REQUEST, message))
                return
            if not line.strip():
                continue
            if self._answer(line):
                return

    def _answer(self, line: bytes) -> bool:
        """Answer one request; True when the connection became an event stream."""
        try:
            request = protocol.parse_request(line)
        except protocol.ProtocolError as exc:
            self.wfile.write(protocol.error(exc.id, exc.code, exc.message))
            return False
        if request.method in STREAMS:
            self._stream(request)
            return True
        reply = self.server.dispatch(request)
        if not request.notification:
            self.wfile.write(reply)
        return False

    def _stream(self, request: protocol.Request) -> None:
        events: queue.Queue[Event] = queue.Queue(STREAM_BACKLOG)
        overflowed = threading.Event()

        def deliver(event: Event) -> None:  # on the publisher's thread: never block it
            try:
                events.put_nowait(event)
            except queue.Full:
                overflowed.set()

        unsubscribe = self.server.runtime.subscribe(deliver)
        try:
            self.wfile.write(protocol.result(request.id, {"subscribed": True}))
            while not overflowed.is_set() and not self.server.closing.is_set():
                try:
                    event = events.get(timeout=STREAM_POLL_SECONDS)
                except queue.Empty:
                    continue
                self.wfile.write(protocol.notification("event", _event_params(event)))
            if overflowed.is_set():
                message = f"more than {STREAM_BACKLOG} events behind; closing the stream"
                self.wfile.write(protocol.error(None, protocol.INTERNAL_ERROR, message))
        finally:
            unsubscribe()


def _event_params(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.time,
        "kind": event.kind,
        "component": event.component,
        "data": event.data,
    }


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    # A burst of clients waits in the listen queue (the default, 5, makes a client that
    # connects with a timeout fail at once with EAGAIN, as if no runtime were there).
    request_queue_size = 2 * MAX_CONNECTIONS

    def __init__(self, path: Path, runtime: Runtime) -> None:
        self.runtime = runtime
        self.closing = threading.Event()
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        previous = os.umask(0o177)  # the socket is born 0600: no window for others
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(previous)

    def admit(self) -> bool:
        return self._connections.acquire(blocking=False)

    def leave(self) -> None:
        self._connections.release()

    def dispatch(self, request: protocol.Request) -> bytes:
        method = METHODS.get(request.method)
        if method is None:
            known = ", ".join([*METHODS, *STREAMS])
            message = f"unknown method {request.method!r} (methods: {known})"
            return protocol.error(request.id, protocol.METHOD_NOT_FOUND, message)
        try:
            return protocol.result(request.id, method(self.runtime, request.params))
        except protocol.ProtocolError as exc:
            return protocol.error(request.id, exc.code, exc.message)
        except NoodleError as exc:
            return protocol.error(
                request.id, protocol.NOODLE_ERROR, exc.message, {"code": exc.code}
            )
        except Exception as exc:  # a bug of ours must not take the application down
            log.exception("control method %s failed", request.method)
            message = f"{type(exc).__name__}: {exc}"
            return protocol.error(request.id, protocol.INTERNAL_ERROR, message)


class ControlServer:
    """Serves one runtime; ``close`` stops it and removes its socket and pointer."""

    def __init__(self, runtime: Runtime, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.pointer = state_dir / POINTER
        # The pointer names the socket of a runtime serving this project even when that
        # socket lives outside the state folder (a long path): never steal it.
        previous = _pointed(self.pointer)
        if previous is not None and previous.is_socket():
            _remove_stale(previous)
        self.path = socket_path(state_dir)
        if self.path.exists():
            _remove_stale(self.path)
        self._server = _Server(self.path, runtime)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),
            name="noodle: control",
            daemon=True,
        )
        self._thread.start()
        _write_private(
            self.pointer, {"transport": "unix", "path": str(self.path), "pid": os.getpid()}
        )

    def close(self) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        for path in (self.path, self.pointer):
            path.unlink(missing_ok=True)
        if self.path.parent != self.pointer.parent:  # the private folder of a long path
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()


def _pointed(pointer: Path) -> Path | None:
    try:
        return Path(json.loads(pointer.read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_stale(path: Path) -> None:
    """A socket file left by a process that died; refuse to steal a live one's."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise NoodleError(
        f"{path}: another live runtime already serves this project; "
        "open it with control=False to run a second one",
        code="control-in-use",
    )


def _write_private(path: Path, content: dict[str, Any]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        json.dump(content, stream)
