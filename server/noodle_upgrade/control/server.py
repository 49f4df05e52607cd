"""The control endpoint: JSON-RPC 2.0 that only the runtime's owner can reach.

The ``control_transport`` setting picks how it listens:

- ``unix``: a socket in the state folder, mode 0600. The file mode is the
  authentication: a connection is trusted as soon as it is open.
- ``tcp``: 127.0.0.1 on a port the system picks, for systems without Unix sockets. Any
  local user can connect there, so a random token sits in ``control.token`` (0600)
  beside the pointer, and a connection must first ``authenticate`` with it. Until it
  does, it may send one short line within ``AUTHENTICATE_SECONDS``; anything other than
  the right token gets an error and the connection is closed.
- ``auto`` (the default): Unix where the platform has it and the socket binds, else TCP.

``control.json`` beside them says how to reach the endpoint and which process serves it,
so clients find a live runtime and notice a stale one. Each connection has its own
thread: a slow, silent or hostile client holds only that thread. A line over
``MAX_MESSAGE_BYTES``, bad JSON or a bad request gets a JSON-RPC error; the
application's own threads never wait on a client.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import os
import queue
import secrets
import socket
import socketserver
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noodle_upgrade.control import protocol
from noodle_upgrade.control.methods import METHODS, STREAMS
from noodle_upgrade.errors import ConfigError, NoodleError
from noodle_upgrade.runtime.events import Event

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from noodle_upgrade.runtime.runtime import Runtime

log = logging.getLogger("noodle_upgrade.control")

POINTER = "control.json"
TOKEN_FILE = "control.token"
LOOPBACK = "127.0.0.1"
MAX_CONNECTIONS = 64
AUTHENTICATE_SECONDS = 5.0  # a TCP connection that has not authenticated by then is closed
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


class _DeadlineReader(io.RawIOBase):
    """A connection's receiving side. Until ``deadline`` is cleared, every read waits
    only for what is left of it, so a client that drips a byte now and then cannot
    stretch the time it has to authenticate; after that, reads wait ``IDLE_SECONDS``."""

    def __init__(self, connection: socket.socket, deadline: float | None) -> None:
        super().__init__()
        self._connection = connection
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self.deadline is None:
            self._connection.settimeout(IDLE_SECONDS)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the time to authenticate is over")
            self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.authenticated = self.server.token is None
        deadline = None if self.authenticated else time.monotonic() + AUTHENTICATE_SECONDS
        # Bounds a write before the first read (too many connections); reads set their own.
        self.connection.settimeout(IDLE_SECONDS if deadline is None else AUTHENTICATE_SECONDS)
        self.rfile.close()  # the socket stays open: replaced by a reader that keeps time
        self.reader = _DeadlineReader(self.connection, deadline)
        self.rfile = io.BufferedReader(self.reader)

    def handle(self) -> None:
        if not self.server.admit():
            with contextlib.suppress(OSError):  # the client may have hung up already
                message = protocol.error(None, protocol.INTERNAL_ERROR, "too many connections")
                self.wfile.write(message)
            return
        try:
            self._serve()
        except TimeoutError:
            if not self.authenticated:
                with contextlib.suppress(OSError):
                    self.wfile.write(_unauthenticated(None, _LATE))
        except (OSError, ValueError):
            pass  # the client went away or fell silent: nothing to answer
        finally:
            self.server.leave()

    def _serve(self) -> None:
        while True:
            limit = self._limit()
            line = self.rfile.readline(limit + 1)
            if not line:
                return
            if len(line) > limit:
                before = "" if self.authenticated else " before authenticating"
                message = f"request longer than {limit} bytes{before}; closing the connection"
                self.wfile.write(protocol.error(None, protocol.INVALID_REQUEST, message))
                return
            if line.strip() and self._answer(line):
                return

    def _limit(self) -> int:
        if self.authenticated:
            return protocol.MAX_MESSAGE_BYTES
        return protocol.MAX_UNAUTHENTICATED_BYTES

    def _answer(self, line: bytes) -> bool:
        """Answer one request; True when the connection is done: it was an event stream,
        or its client did not authenticate."""
        try:
            request = protocol.parse_request(line)
        except protocol.ProtocolError as exc:
            self.wfile.write(protocol.error(exc.id, exc.code, exc.message))
            return not self.authenticated
        if request.method == protocol.AUTHENTICATE:
            return not self._authenticate(request)
        if not self.authenticated:
            self._reply(request, _unauthenticated(request.id, _FIRST))
            return True
        if request.method in STREAMS:
            self._stream(request)
            return True
        self._reply(request, self.server.dispatch(request))
        return False

    def _reply(self, request: protocol.Request, reply: bytes) -> None:
        if not request.notification:
            self.wfile.write(reply)

    def _authenticate(self, request: protocol.Request) -> bool:
        if not self.server.accepts(request.params.get("token")):
            self._reply(request, _unauthenticated(request.id, _WRONG))
            return False
        self.authenticated = True
        self.reader.deadline = None
        self._reply(request, protocol.result(request.id, {"authenticated": True}))
        return True

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


_TOKEN_FROM = f"the token file control.json names ({TOKEN_FILE} in the state folder)"
_HOW = (
    f"a TCP connection's first request is {protocol.AUTHENTICATE!r} with params "
    f'{{"token": ...}} holding the content of {_TOKEN_FROM}; closing the connection'
)
_FIRST = f"not authenticated: {_HOW}"
_WRONG = f"wrong token: authenticate with the content of {_TOKEN_FROM}; closing the connection"
_LATE = f"not authenticated within {AUTHENTICATE_SECONDS:g} s: {_HOW}"


def _unauthenticated(request_id: protocol.RequestId, message: str) -> bytes:
    return protocol.error(request_id, protocol.UNAUTHENTICATED, message, {"code": "control-auth"})


def _event_params(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.time,
        "kind": event.kind,
        "component": event.component,
        "data": event.data,
    }


class _Server(socketserver.BaseServer):
    """What the endpoint holds whatever its transport: the runtime it serves, the token
    a connection must present (None: the transport itself authenticates), its slots."""

    daemon_threads = True
    # A burst of clients waits in the listen queue (the default, 5, makes a client that
    # connects with a timeout fail at once with EAGAIN, as if no runtime were there).
    request_queue_size = 2 * MAX_CONNECTIONS

    def __init__(
        self, address: str | tuple[str, int], runtime: Runtime, token: bytes | None
    ) -> None:
        self.runtime = runtime
        self.token = token
        self.closing = threading.Event()
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def admit(self) -> bool:
        return self._connections.acquire(blocking=False)

    def leave(self) -> None:
        self._connections.release()

    def accepts(self, token: object) -> bool:
        if self.token is None:
            return True
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.token)

    def dispatch(self, request: protocol.Request) -> bytes:
        method = METHODS.get(request.method)
        if method is None:
            known = ", ".join([*METHODS, *STREAMS, protocol.AUTHENTICATE])
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


class _TcpServer(_Server, socketserver.ThreadingTCPServer):
    pass


if hasattr(socket, "AF_UNIX"):  # socketserver has Unix servers only there

    class _UnixServer(_Server, socketserver.ThreadingUnixStreamServer):
        def server_bind(self) -> None:
            previous = os.umask(0o177)  # the socket is born 0600: no window for others
            try:
                super().server_bind()
            finally:
                os.umask(previous)


class ControlServer:
    """Serves one runtime; ``close`` stops it and removes what it left on disk."""

    def __init__(self, runtime: Runtime, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.pointer = state_dir / POINTER
        _take_over(self.pointer)
        self._files: list[Path] = []  # the socket or the token file, removed at close
        self._private_folder: Path | None = None  # a long state path's socket folder
        self._server, address = self._listen(runtime, state_dir)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),
            name="noodle: control",
            daemon=True,
        )
        self._thread.start()
        _write_private(self.pointer, json.dumps({**address, "pid": os.getpid()}))

    def _listen(self, runtime: Runtime, state_dir: Path) -> tuple[_Server, dict[str, Any]]:
        """The server and what the pointer says about it, by the transport setting."""
        transport = runtime.settings.control_transport
        unix = hasattr(socket, "AF_UNIX")
        if transport == "unix" and not unix:
            raise ConfigError(
                "control_transport 'unix': this platform has no Unix sockets "
                "(allowed here: tcp, auto)"
            )
        if transport == "tcp" or not unix:
            return self._listen_tcp(runtime, state_dir / TOKEN_FILE)
        try:
            return self._listen_unix(runtime, state_dir)
        except OSError as exc:
            if transport == "unix":
                raise NoodleError(
                    f"{state_dir}: cannot serve the control endpoint on a Unix socket there "
                    f"({exc}); set control_transport to tcp or auto",
                    code="control-error",
                ) from exc
            log.info("control endpoint: no Unix socket (%s); listening on TCP", exc)
            return self._listen_tcp(runtime, state_dir / TOKEN_FILE)

    def _listen_unix(self, runtime: Runtime, state_dir: Path) -> tuple[_Server, dict[str, Any]]:
        path = socket_path(state_dir)
        if path.parent != state_dir:
            self._private_folder = path.parent
        try:
            if path.exists():
                _remove_stale(path)
            server = _UnixServer(str(path), runtime, None)
        except BaseException:
            self._remove_private_folder()
            raise
        self._files.append(path)
        return server, {"transport": "unix", "path": str(path)}

    def _listen_tcp(self, runtime: Runtime, token_file: Path) -> tuple[_Server, dict[str, Any]]:
        token = secrets.token_urlsafe(32)
        server = _TcpServer((LOOPBACK, 0), runtime, token.encode())
        try:
            _write_private(token_file, f"{token}\n")
        except BaseException:
            server.server_close()
            raise
        self._files.append(token_file)
        port = int(server.socket.getsockname()[1])
        pointer = {
            "transport": "tcp",
            "host": LOOPBACK,
            "port": port,
            "token_file": str(token_file),
        }
        return server, pointer

    def close(self) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        for path in (*self._files, self.pointer):
            path.unlink(missing_ok=True)
        self._remove_private_folder()

    def _remove_private_folder(self) -> None:
        if self._private_folder is not None:
            with contextlib.suppress(OSError):
                self._private_folder.rmdir()


def read_pointer(pointer: Path) -> dict[str, Any] | None:
    """What ``control.json`` says, or None when there is none or it is unreadable."""
    try:
        content = json.loads(pointer.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def process_alive(pid: object) -> bool:
    """Whether the process a pointer names still runs (True when that cannot be told)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if os.name == "nt":  # os.kill there terminates the process whatever the signal
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        return True
    return True


def tcp_address(content: dict[str, Any]) -> tuple[str, int] | None:
    host, port = content.get("host"), content.get("port")
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        return None
    return host, port


def _take_over(pointer: Path) -> None:
    """Clear what a runtime that died left behind; refuse if one still serves here."""
    previous = read_pointer(pointer)
    if previous is None:
        return
    if previous.get("transport") == "tcp":
        address = tcp_address(previous)
        if address is not None and process_alive(previous.get("pid")) and _accepts(address):
            raise _in_use(f"{address[0]}:{address[1]}")
        # Its token file is ours to replace: the name is fixed, and nobody serves it.
        (pointer.parent / TOKEN_FILE).unlink(missing_ok=True)
        return
    # The pointer names the socket of a runtime serving this project even when that
    # socket lives outside the state folder (a long path): never steal it.
    path = previous.get("path")
    if isinstance(path, str) and Path(path).is_socket():
        _remove_stale(Path(path))


def _accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=AUTHENTICATE_SECONDS):
            return True
    except OSError:
        return False


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
    raise _in_use(str(path))


def _in_use(where: str) -> NoodleError:
    return NoodleError(
        f"{where}: another live runtime already serves this project; "
        "open it with control=False to run a second one",
        code="control-in-use",
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its first byte: a file left there
    (with whatever mode) is removed first, and O_EXCL refuses to follow a planted link."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)
