"""The control endpoint over TCP on 127.0.0.1 with a token: the transport for systems
without Unix sockets (``control_transport = "tcp"``, or ``auto`` where they are missing).

Nothing is mocked: runtimes opened in this process and a real application process,
real TCP connections (``ControlClient``, the ``noodle`` CLI, raw bytes), SQLite stores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import noodle, noodle_json
from helpers.control import (
    TIMEOUT_S,
    authenticate,
    client_of,
    connect,
    exchange,
    greeter_project,
    mode,
    pointer,
    read_message,
    request,
    served_again,
    state_dir,
    tcp_address_of,
    token_of,
)
from helpers.live import LiveApp, assert_no_errors
from helpers.load import running
from helpers.project import Project
from noodle_upgrade import Runtime
from noodle_upgrade.control.client import ControlClient
from noodle_upgrade.control.protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_MESSAGE_BYTES,
    MAX_UNAUTHENTICATED_BYTES,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNAUTHENTICATED,
)
from noodle_upgrade.control.server import AUTHENTICATE_SECONDS
from noodle_upgrade.errors import NoodleError

TCP = {"control_transport": "tcp"}


def token_file(root: Path) -> Path:
    return state_dir(root) / "control.token"


def refuses_connections(address: tuple[str, int]) -> bool:
    try:
        connect(address).close()
    except ConnectionRefusedError:
        return True
    return False


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


# ------------------------------------------------------- the port, token and pointer


def test_the_endpoint_listens_on_loopback_with_a_private_token_the_pointer_names(
    project: Project,
) -> None:
    greeter_project(project)
    token = token_file(project.root)
    pointer_file = state_dir(project.root) / "control.json"
    # A token file someone left readable by all, and a umask that narrows nothing: the
    # runtime's own token file is private all the same, from its first byte.
    state_dir(project.root).mkdir(exist_ok=True)
    token.write_text("planted\n")
    token.chmod(0o644)
    with umask(0):
        rt = Runtime.open(project.root, settings=TCP, control=True)
    try:
        served = pointer(project.root)
        address = tcp_address_of(project.root)
        assert served == {
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": address[1],
            "token_file": str(token),
            "pid": os.getpid(),
        }
        assert mode(token) == 0o600
        assert mode(pointer_file) == 0o600
        secret = token_of(project.root)
        assert secret != "planted"
        assert len(secret) >= 43  # secrets.token_urlsafe(32)
        assert not (state_dir(project.root) / "control.sock").exists()
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
    finally:
        rt.close()
    assert not token.exists()
    assert not pointer_file.exists()
    assert refuses_connections(address)
    assert ControlClient.connect(state_dir(project.root)) is None
    with Runtime.open(project.root, settings=TCP, control=True):
        assert token_of(project.root) != secret  # a new token each time a runtime opens


def test_auto_listens_on_tcp_where_unix_sockets_cannot_be_bound(project: Project) -> None:
    greeter_project(project)
    # Something that is not a socket where the socket would go: it cannot be bound.
    (state_dir(project.root) / "control.sock").mkdir(parents=True)
    with Runtime.open(project.root, control=True) as rt:  # control_transport "auto"
        assert rt.settings.control_transport == "auto"
        assert pointer(project.root)["transport"] == "tcp"
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
    with pytest.raises(NoodleError) as refused:
        Runtime.open(project.root, settings={"control_transport": "unix"}, control=True)
    assert refused.value.code == "control-error"
    assert "set control_transport to tcp or auto" in str(refused.value)


def test_auto_listens_on_tcp_on_a_platform_without_unix_sockets(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeter_project(project)
    monkeypatch.delattr(socket, "AF_UNIX")  # as on Windows
    with Runtime.open(project.root, control=True):
        assert pointer(project.root)["transport"] == "tcp"
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
    with pytest.raises(NoodleError) as refused:
        Runtime.open(project.root, settings={"control_transport": "unix"}, control=True)
    assert refused.value.code == "config-error"
    assert "no Unix sockets" in str(refused.value)


@pytest.mark.parametrize("second", ["tcp", "auto"])
def test_a_second_runtime_is_refused_while_a_tcp_one_serves(project: Project, second: str) -> None:
    greeter_project(project)
    with Runtime.open(project.root, settings=TCP, control=True) as first:
        served, secret = pointer(project.root), token_of(project.root)
        with pytest.raises(NoodleError) as refused:
            Runtime.open(project.root, settings={"control_transport": second}, control=True)
        assert refused.value.code == "control-in-use"
        assert f"127.0.0.1:{served['port']}" in str(refused.value)
        assert pointer(project.root) == served
        assert token_of(project.root) == secret
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
        assert first.load("greeter").hello() == "1.0.0"


def finished_pid() -> int:
    """The pid of a process that has come and gone."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    assert done.wait(TIMEOUT_S) == 0
    return done.pid


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize(
    ("pid_alive", "port_open"),
    [(False, True), (True, False), (False, False)],
    ids=["process-gone-port-reused", "port-closed", "both-gone"],
)
def test_a_stale_tcp_pointer_is_taken_over(
    project: Project, transport: str, pid_alive: bool, port_open: bool
) -> None:
    greeter_project(project)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        if not port_open:
            listener.close()
        token = token_file(project.root)
        token.parent.mkdir(parents=True, exist_ok=True)
        token.write_text("stale-token\n")
        stale = {
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": port,
            "token_file": str(token),
            "pid": os.getpid() if pid_alive else finished_pid(),
        }
        (state_dir(project.root) / "control.json").write_text(json.dumps(stale))
        assert ControlClient.connect(state_dir(project.root)) is None  # nobody to reach
        if port_open:  # the port of a process that is gone may be someone else's now:
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):  # the client never sent it the token
                listener.accept()

        with Runtime.open(project.root, settings={"control_transport": transport}, control=True):
            assert pointer(project.root)["pid"] == os.getpid()
            assert pointer(project.root)["transport"] == transport
            if transport == "tcp":
                assert token_of(project.root) != "stale-token"
                assert mode(token) == 0o600
            else:
                assert not token.exists()
            with client_of(project.root) as client:
                assert client.call("status")["live"] is True
    finally:
        listener.close()
    assert not token.exists()


# --------------------------------------------------------------- authentication


def test_the_client_authenticates_and_a_wrong_or_missing_token_is_an_error(
    project: Project,
) -> None:
    greeter_project(project)
    with Runtime.open(project.root, settings=TCP, control=True) as rt:
        token, secret = token_file(project.root), token_of(project.root)
        with client_of(project.root) as client:
            assert client.call("authenticate", token=secret) == {"authenticated": True}
            assert client.call("upgrade", component="greeter")["success"] is True

        # The runtime is live, so the client must not pretend it is not: an error.
        token.write_text("not-the-token\n")
        with pytest.raises(NoodleError) as refused:
            ControlClient.connect(state_dir(project.root), timeout=TIMEOUT_S)
        assert refused.value.code == "control-auth"
        assert f"refused the token in {token}" in str(refused.value)
        assert f"pid {os.getpid()}" in str(refused.value)

        token.unlink()
        with pytest.raises(NoodleError) as unreadable:
            ControlClient.connect(state_dir(project.root), timeout=TIMEOUT_S)
        assert unreadable.value.code == "control-auth"
        assert f"wants the token in {token}, which cannot be read" in str(unreadable.value)

        token.write_text(secret)
        with client_of(project.root) as client:
            assert client.call("status")["components"]["greeter"]["version"] == "1.1.0"
        assert rt.load("greeter").hello() == "1.1.0"


def test_on_a_unix_socket_authenticate_simply_succeeds(project: Project) -> None:
    greeter_project(project)
    with Runtime.open(project.root, settings={"control_transport": "unix"}, control=True):
        path = Path(pointer(project.root)["path"])
        replies = exchange(
            path, request("status") + authenticate("anything") + request("status", request_id=2)
        )
        assert replies[0]["result"]["live"] is True
        assert replies[1] == {"jsonrpc": "2.0", "id": "auth", "result": {"authenticated": True}}
        assert replies[2]["result"]["live"] is True


def unauthenticated(says: str) -> dict[str, Any]:
    return {"code": UNAUTHENTICATED, "says": says, "data": {"code": "control-auth"}}


def rejections(token: str) -> list[tuple[str, bytes, dict[str, Any]]]:
    """What a client may send before it authenticates, and the one reply it gets back
    before the runtime hangs up: the good requests after it are never answered."""
    then = authenticate(token, "late") + request("status", request_id="after")
    upgrade = {"component": "greeter", "version": "1.1.0"}
    return [
        ("a request", request("status") + then, unauthenticated("not authenticated")),
        ("an upgrade", request("upgrade", upgrade) + then, unauthenticated("control.token")),
        ("a stream", request("subscribe") + then, unauthenticated("'authenticate'")),
        ("a wrong token", authenticate("nope") + then, unauthenticated("wrong token")),
        ("a prefix", authenticate(token[:-1]) + then, unauthenticated("wrong token")),
        ("a longer one", authenticate(token + "x") + then, unauthenticated("wrong token")),
        ("non-ASCII", authenticate("é" * len(token)) + then, unauthenticated("wrong token")),
        ("a number", request("authenticate", {"token": 7}) + then, unauthenticated("wrong")),
        ("no params", request("authenticate") + then, unauthenticated("wrong token")),
        ("garbage", b"\x00\xff garbage\n" + then, {"code": PARSE_ERROR, "says": "not JSON"}),
        ("an array", b"[1, 2]\n" + then, {"code": INVALID_REQUEST, "says": "JSON object"}),
    ]


def test_hostile_clients_on_tcp_never_disturb_the_application(
    project: Project, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    greeter_project(project)
    caplog.set_level(logging.ERROR)
    with Runtime.open(project.root, settings=TCP, control=True) as rt:
        address, secret = tcp_address_of(project.root), token_of(project.root)
        handle = rt.load("greeter")
        with running(lambda: handle.hello(), threads=4) as load:
            load.progress(50)

            for case, data, expected in rejections(secret):
                replies = exchange(address, data)
                assert len(replies) == 1, f"{case}: {replies}"
                error = replies[0]["error"]
                assert error["code"] == expected["code"], f"{case}: {error}"
                assert expected["says"] in error["message"], f"{case}: {error}"
                assert error.get("data") == expected.get("data"), f"{case}: {error}"
            # A notification gets no answer, authenticated or not; unauthenticated, it
            # ends the connection too, and the upgrade it asked for never ran.
            notification = request("upgrade", {"component": "greeter"}, request_id=None)
            assert exchange(address, notification + authenticate(secret)) == []
            load.progress(50)

            # The right token, then as many requests as the client likes; a wrong token
            # later on still ends the connection.
            replies = exchange(
                address,
                authenticate(secret)
                + request("status", request_id=2)
                + authenticate(secret, "again")
                + request("nosuch", request_id=3)
                + authenticate("nope", "wrong")
                + request("status", request_id=4),
            )
            assert [reply["id"] for reply in replies] == ["auth", 2, "again", 3, "wrong"]
            assert replies[0]["result"] == replies[2]["result"] == {"authenticated": True}
            assert replies[1]["result"]["live"] is True
            assert replies[3]["error"]["code"] == METHOD_NOT_FOUND
            assert replies[4]["error"]["code"] == UNAUTHENTICATED

            # 10 MB without a newline, before and after authenticating: an error, then
            # the runtime hangs up (before: after a few KB, not a MB).
            for prefix, limit in (
                (b"", MAX_UNAUTHENTICATED_BYTES),
                (authenticate(secret), MAX_MESSAGE_BYTES),
            ):
                with connect(address) as sock, sock.makefile("rb") as reader:
                    with contextlib.suppress(OSError):  # it stops reading: the send fails
                        sock.sendall(prefix + b"x" * (10 << 20))
                    if prefix:
                        assert read_message(reader) == {
                            "jsonrpc": "2.0",
                            "id": "auth",
                            "result": {"authenticated": True},
                        }
                    reply = read_message(reader)
                    assert reply is not None
                    assert reply["error"]["code"] == INVALID_REQUEST
                    assert f"longer than {limit} bytes" in reply["error"]["message"]
                    with contextlib.suppress(ConnectionResetError):  # our unread bytes
                        assert read_message(reader) is None
            load.progress(50)

            # A client that drips a byte now and then, and 80 that connect and say
            # nothing: each is told it did not authenticate in time and cut loose (or,
            # past the endpoint's 64 slots, told at once that it is full).
            with connect(address) as dripping, contextlib.ExitStack() as stack:
                dripping.sendall(b" ")
                silent = [stack.enter_context(connect(address)) for _ in range(80)]
                for _drip in range(int(TIMEOUT_S / 0.1)):
                    if select.select([dripping], [], [], 0.1)[0]:
                        break
                    with contextlib.suppress(OSError):
                        dripping.sendall(b" ")
                else:
                    pytest.fail("the dripping client was never cut off")
                late = unauthenticated(f"not authenticated within {AUTHENTICATE_SECONDS:g} s")
                full = {"code": INTERNAL_ERROR, "says": "too many connections"}
                told = []
                for sock in [dripping, *silent]:
                    with sock.makefile("rb") as reader:
                        reply = read_message(reader)
                        assert reply is not None
                        error = reply["error"]
                        told.append("late" if error["code"] == UNAUTHENTICATED else "full")
                        expected = late if told[-1] == "late" else full
                        assert expected["says"] in error["message"], error
                        assert read_message(reader) is None
                assert told[0] == "late"
            load.progress(50)

            # Through all of it the endpoint still steers the application.
            assert served_again(project.root)["live"] is True
            with client_of(project.root) as client:
                result = client.call("upgrade", component="greeter", version="1.1.0")
                assert result["success"] is True
            load.progress(50)
        outcome = load.stop()
        assert outcome.error_count == 0, outcome.errors
        assert outcome.values() == {"1.0.0", "1.1.0"}
        assert [h.kind for h in rt.history("greeter")] == ["upgrade"]  # nothing else ran
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [r for r in caplog.records if r.name.startswith("noodle_upgrade")] == []


# ------------------------------------------------------------- a real application


def test_the_cli_steers_an_application_over_tcp_and_takes_over_after_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = greeter_project(Project(tmp_path / "app")).root
    monkeypatch.setenv("NOODLE_CONTROL_TRANSPORT", "tcp")  # the application's setting
    app = LiveApp(root, tmp_path / "work")
    try:
        assert pointer(root)["transport"] == "tcp"
        assert pointer(root)["pid"] == app.process.pid
        assert mode(token_file(root)) == 0o600
        assert noodle_json(root, "status")["live"] is True

        # Strangers on the port: refused and cut off, the application unharmed.
        address, secret = tcp_address_of(root), token_of(root)
        for _case, data, expected in rejections(secret):
            (reply,) = exchange(address, data)
            assert reply["error"]["code"] == expected["code"]

        upgraded = noodle_json(root, "upgrade", "greeter", "1.1.0")
        assert upgraded["success"] is True
        app.sees("1.1.0")

        # A token file that is not the runtime's: an error naming it, not offline work.
        token_file(root).write_text("not-the-token\n")
        refused = noodle(root, "status", "--json")
        assert refused.returncode == 1
        assert refused.stdout == ""
        assert refused.stderr.count("\n") == 1
        assert f"refused the token in {token_file(root)}" in refused.stderr
        token_file(root).write_text(secret)
        assert noodle_json(root, "status")["components"]["greeter"]["version"] == "1.1.0"

        assert_no_errors(app.stop(crash=True))  # killed, its runtime still open
        assert pointer(root)["pid"] == app.process.pid
        assert token_file(root).exists()
    finally:
        app.close()

    # The crashed application's pointer is stale: the CLI works on the store...
    status = noodle_json(root, "status")
    assert status["live"] is False
    assert status["components"]["greeter"]["version"] == "1.1.0"
    # ...and the next application takes the endpoint over, with a new token.
    with Runtime.open(root, settings=TCP, control=True):
        assert pointer(root)["pid"] == os.getpid()
        assert token_of(root) != secret
        assert noodle_json(root, "status")["live"] is True
    assert not token_file(root).exists()
    assert not (state_dir(root) / "control.json").exists()
    assert noodle_json(root, "status")["live"] is False
