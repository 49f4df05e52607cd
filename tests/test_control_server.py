"""The control endpoint of a runtime opened in this process, reached over its real socket.

Nothing is mocked: the socket is a Unix socket in the project's state folder, the
clients are real connections (``ControlClient`` or raw bytes), the store is SQLite.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.control import (
    IMMEDIATE_UPGRADE_EVENTS,
    TIMEOUT_S,
    call,
    client_of,
    connect,
    exchange,
    greeter_project,
    mode,
    pointer,
    read_message,
    request,
    served_again,
    socket_of,
    state_dir,
)
from helpers.load import running
from helpers.project import Project, noodle_modules
from noodle_upgrade import Runtime
from noodle_upgrade.control.client import ControlClient
from noodle_upgrade.control.methods import METHODS, STREAMS
from noodle_upgrade.control.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_MESSAGE_BYTES,
    METHOD_NOT_FOUND,
    NOODLE_ERROR,
    PARSE_ERROR,
)
from noodle_upgrade.control.server import MAX_CONNECTIONS
from noodle_upgrade.errors import NoodleError

# ------------------------------------------------------- the socket and its pointer


def test_the_socket_is_private_named_by_the_pointer_and_removed_at_close(
    project: Project,
) -> None:
    greeter_project(project)
    sock = state_dir(project.root) / "control.sock"
    pointer_file = state_dir(project.root) / "control.json"
    rt = Runtime.open(project.root, control=True)
    try:
        assert stat.S_ISSOCK(os.stat(sock).st_mode)
        assert mode(sock) == 0o600
        assert mode(pointer_file) == 0o600
        assert pointer(project.root) == {
            "transport": "unix",
            "path": str(sock),
            "pid": os.getpid(),
        }
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
    finally:
        rt.close()
    assert not sock.exists()
    assert not pointer_file.exists()
    assert ControlClient.connect(state_dir(project.root)) is None


def test_control_is_on_by_default_and_off_with_noodle_control_0_or_control_false(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeter_project(project)
    pointer_file = state_dir(project.root) / "control.json"
    monkeypatch.delenv("NOODLE_CONTROL", raising=False)
    with Runtime.open(project.root):
        assert pointer_file.exists()
    with Runtime.open(project.root, control=False) as rt:
        assert not pointer_file.exists()
        assert rt.load("greeter").hello() == "1.0.0"
    monkeypatch.setenv("NOODLE_CONTROL", "0")
    with Runtime.open(project.root):
        assert not pointer_file.exists()
        assert ControlClient.connect(state_dir(project.root)) is None
    with Runtime.open(project.root, control=True):  # the argument wins over the variable
        assert pointer_file.exists()


def test_a_stale_socket_left_by_a_dead_process_is_replaced(project: Project) -> None:
    greeter_project(project)
    sock = state_dir(project.root) / "control.sock"
    # A process that served the project and died without cleaning up: its socket file
    # and its pointer stay behind, and nothing listens any more.
    script = (
        "import json, os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.bind(sys.argv[1])\n"
        "s.listen()\n"
        "open(sys.argv[2], 'w').write(json.dumps("
        "{'transport': 'unix', 'path': sys.argv[1], 'pid': os.getpid()}))\n"
        "os._exit(0)\n"
    )
    pointer_file = state_dir(project.root) / "control.json"
    done = subprocess.run(
        [sys.executable, "-c", script, str(sock), str(pointer_file)], timeout=TIMEOUT_S
    )
    assert done.returncode == 0
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    dead_pid = pointer(project.root)["pid"]
    assert ControlClient.connect(state_dir(project.root)) is None  # stale: nobody answers

    with Runtime.open(project.root, control=True):
        assert pointer(project.root)["pid"] == os.getpid() != dead_pid
        assert mode(sock) == 0o600
        with client_of(project.root) as client:
            assert client.call("status")["components"]["greeter"]["version"] == "1.0.0"
    assert not sock.exists()


def test_a_second_runtime_with_control_on_is_refused_and_leaves_nothing_behind(
    project: Project,
) -> None:
    greeter_project(project)
    sock = state_dir(project.root) / "control.sock"
    with Runtime.open(project.root, control=True) as first:
        served = pointer(project.root)
        inode = os.stat(sock).st_ino
        modules = noodle_modules()

        with pytest.raises(NoodleError) as refused:
            Runtime.open(project.root, control=True)
        assert refused.value.code == "control-in-use"
        assert "control=False" in str(refused.value)
        # Nothing of the refused runtime remains, and the first one's endpoint is intact.
        assert noodle_modules() == modules
        assert [t.name for t in threading.enumerate()].count("noodle: control") == 1
        assert pointer(project.root) == served
        assert os.stat(sock).st_ino == inode

        with Runtime.open(project.root, control=False) as second:
            assert second.load("greeter").hello() == "1.0.0"
        # Closing the one without control touched neither the socket nor the pointer.
        assert pointer(project.root) == served
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
        assert first.load("greeter").hello() == "1.0.0"


def test_a_long_state_path_serves_from_a_private_folder_and_is_still_guarded(
    tmp_path: Path,
) -> None:
    # A Unix socket path holds ~108 bytes: past that the socket lives in a private
    # temporary folder, and only the pointer says where.
    project = greeter_project(Project(tmp_path / ("deep-" * 25) / "project"))
    pointer_file = state_dir(project.root) / "control.json"
    with Runtime.open(project.root, control=True):
        sock = socket_of(project.root)
        assert sock.parent != state_dir(project.root)
        assert len(os.fsencode(sock)) <= 100
        assert mode(sock) == 0o600
        assert mode(sock.parent) == 0o700
        with client_of(project.root) as client:
            assert client.call("status")["live"] is True
        with pytest.raises(NoodleError) as refused:
            Runtime.open(project.root, control=True)
        assert refused.value.code == "control-in-use"
        assert socket_of(project.root) == sock  # the pointer still names the live one
    assert not pointer_file.exists()
    assert not sock.exists()
    assert not sock.parent.exists()  # the private folder goes too


# ------------------------------------------------------------------ the methods


def test_a_client_reads_plans_upgrades_and_rolls_back_the_live_runtime(
    project: Project,
) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True) as rt, client_of(project.root) as client:
        handle = rt.load("greeter")
        status = client.call("status")
        assert status["live"] is True
        assert status["project"] == str(project.root)
        assert status["components"]["greeter"]["version"] == "1.0.0"
        assert status["components"]["greeter"]["state"] == "active"
        assert client.call("components") == status["components"]

        plan = client.call("plan", component="greeter")
        assert plan["path"] == ["1.1.0"]
        assert client.call("plan", component="greeter", version="1.1.0")["path"] == ["1.1.0"]
        assert handle.hello() == "1.0.0"  # a plan changes nothing

        result = client.call("upgrade", component="greeter", version="1.1.0", actor="tester")
        assert isinstance(result, dict)
        assert result["success"] is True
        assert result["status"] == "succeeded"
        assert (result["from_version"], result["to_version"]) == ("1.0.0", "1.1.0")
        assert result["rollback_point"]
        assert handle.hello() == "1.1.0"  # the application's own handle sees it at once
        assert rt.version("greeter") == "1.1.0"
        points = client.call("status")["components"]["greeter"]["rollback_points"]
        assert result["rollback_point"] in points

        history = client.call("history")
        assert history[0]["id"] == result["id"]
        assert (history[0]["kind"], history[0]["status"]) == ("upgrade", "succeeded")
        assert history[0]["actor"] == "tester"
        assert client.call("history", component="greeter", limit=1) == history[:1]

        verified = client.call("audit")
        assert verified["ok"] is True
        assert verified == client.call("audit", action="verify")
        records = client.call("audit", action="export")
        assert {"upgrade.started", "upgrade.succeeded"} <= {r["event_type"] for r in records}
        assert len(records) == verified["records"]

        rolled = client.call("rollback", component="greeter")
        assert rolled["success"] is True
        assert (rolled["from_version"], rolled["to_version"]) == ("1.1.0", "1.0.0")
        assert handle.hello() == "1.0.0"
        history = client.call("history", component="greeter")
        assert [(h["kind"], h["actor"]) for h in history[:2]] == [
            ("rollback", "control"),  # the default actor of the endpoint
            ("upgrade", "tester"),
        ]
    # What the endpoint did is in the store, like anything the application does.
    with Runtime.open(project.root, control=False) as rt:
        assert rt.version("greeter") == "1.0.0"
        assert [h.kind for h in rt.history("greeter")][:2] == ["rollback", "upgrade"]


def test_submit_and_wait(project: Project) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True) as rt, client_of(project.root) as client:
        submitted = client.call("submit", component="greeter", version="1.1.0")
        result = client.call("wait", id=submitted["id"], timeout=TIMEOUT_S)
        assert result["id"] == submitted["id"]
        assert result["success"] is True
        assert rt.load("greeter").hello() == "1.1.0"
        with pytest.raises(NoodleError) as unknown:
            client.call("wait", id="up-nosuch")
        assert unknown.value.code == "unknown-request"


def test_a_refusal_on_the_runtime_side_comes_back_with_its_code(project: Project) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True) as rt, client_of(project.root) as client:
        with pytest.raises(NoodleError) as unknown:
            client.call("upgrade", component="nosuch")
        assert unknown.value.code == "unknown-component"
        assert "'nosuch'" in str(unknown.value)

        with pytest.raises(NoodleError) as rollback:
            client.call("rollback", component="greeter")
        assert rollback.value.code == "rollback-error"
        assert "no rollback point" in str(rollback.value)

        with pytest.raises(NoodleError) as version:
            client.call("upgrade", component="greeter", version="one.two")
        assert "'one.two'" in str(version.value)

        with pytest.raises(NoodleError) as parameter:
            client.call("upgrade", component="greeter", parameters={"nosuch": 1})
        assert parameter.value.code == "validation-error"

        # A refused upgrade is a result, not an error, exactly as through rt.upgrade.
        refused = client.call("upgrade", component="greeter", version="2.5.0")
        assert refused["success"] is False
        assert refused["status"] == "refused"
        assert "not in the component store" in refused["error_message"]

        # On the wire: the server-defined code, with the stable name in data.code.
        reply = call(socket_of(project.root), "plan", {"component": "nosuch"})
        assert reply["error"]["code"] == NOODLE_ERROR
        assert reply["error"]["data"] == {"code": "unknown-component"}
        assert reply["id"] == 1
        assert rt.version("greeter") == "1.0.0"
        assert client.call("status")["live"] is True  # the connection is still good


def test_an_unknown_method_is_method_not_found_listing_the_methods(project: Project) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True):
        reply = call(socket_of(project.root), "upgrades", {"component": "greeter"})
        assert reply["id"] == 1
        assert reply["error"]["code"] == METHOD_NOT_FOUND
        message = reply["error"]["message"]
        assert "'upgrades'" in message
        for method in [*METHODS, *STREAMS]:
            assert method in message
        with client_of(project.root) as client, pytest.raises(NoodleError) as caught:
            client.call("bogus")
        assert "unknown method 'bogus'" in str(caught.value)


@pytest.mark.parametrize(
    ("method", "params", "named", "says"),
    [
        ("upgrade", {}, "component", "required"),
        ("upgrade", {"version": "1.1.0"}, "component", "required"),
        ("upgrade", {"component": 5}, "component", "must be a string"),
        ("upgrade", {"component": ["greeter"]}, "component", "must be a string"),
        ("upgrade", {"component": "greeter", "version": 1.1}, "version", "must be a string"),
        ("upgrade", {"component": "greeter", "strategy": 3}, "strategy", "must be a string"),
        ("upgrade", {"component": "greeter", "actor": False}, "actor", "must be a string"),
        ("upgrade", {"component": "greeter", "parameters": [1]}, "parameters", "object"),
        ("upgrade", {"component": "greeter", "parameters": {"name": "x"}}, "parameters", "name"),
        (
            "upgrade",
            {"component": "greeter", "parameters": {"version": "1.1.0"}},
            "parameters",
            "version",
        ),
        ("submit", {"component": "greeter", "parameters": {"self": 1}}, "parameters", "self"),
        ("plan", {}, "component", "required"),
        ("rollback", {"component": None}, "component", "required"),
        ("rollback", {"component": "greeter", "to": 7}, "to", "must be a string"),
        ("history", {"limit": "ten"}, "limit", "must be an integer"),
        ("history", {"limit": True}, "limit", "must be an integer"),
        ("history", {"component": {"name": "greeter"}}, "component", "must be a string"),
        ("wait", {}, "id", "required"),
        ("wait", {"id": "x", "timeout": "soon"}, "timeout", "must be a number"),
        ("audit", {"action": "delete"}, "action", "verify or export"),
    ],
)
def test_bad_params_are_invalid_params_naming_the_param(
    project: Project, method: str, params: dict[str, Any], named: str, says: str
) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True) as rt:
        reply = call(socket_of(project.root), method, params)
        assert reply["id"] == 1
        assert reply["error"]["code"] == INVALID_PARAMS, reply
        assert f"param {named!r}" in reply["error"]["message"]
        assert says in reply["error"]["message"]
        assert rt.version("greeter") == "1.0.0"
        assert [h.kind for h in rt.history()] == []  # nothing was attempted


def test_one_connection_serves_many_requests_and_notifications_get_no_answer(
    project: Project,
) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True) as rt:
        data = (
            request("upgrade", {"component": "greeter", "version": "1.1.0"}, request_id=None)
            + b"\n   \n"  # blank lines are skipped
            + request("status", request_id="s")
            + b"not json at all\n"
            + request("nosuch", request_id=None)  # an unknown notification: silence too
            + request("history", {"limit": "x"}, request_id=3)
            + request("status", request_id=4)
        )
        replies = exchange(socket_of(project.root), data)
        assert [reply["id"] for reply in replies] == ["s", None, 3, 4]
        assert replies[0]["result"]["live"] is True
        assert replies[1]["error"]["code"] == PARSE_ERROR
        assert replies[2]["error"]["code"] == INVALID_PARAMS
        # The notification ran (an upgrade needs no answer to happen), in order.
        assert replies[3]["result"]["components"]["greeter"]["version"] == "1.1.0"
        assert rt.load("greeter").hello() == "1.1.0"


# ---------------------------------------------------------------------- events


def test_a_subscriber_receives_the_events_of_an_upgrade_another_client_makes(
    project: Project,
) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True):
        path = socket_of(project.root)
        with connect(path) as stream, stream.makefile("rb") as reader:
            stream.sendall(request("subscribe", request_id="sub"))
            ack = read_message(reader)
            assert ack == {"jsonrpc": "2.0", "id": "sub", "result": {"subscribed": True}}

            with client_of(project.root) as client:
                result = client.call("upgrade", component="greeter", version="1.1.0")
            assert result["success"] is True

            events = []
            while not events or events[-1]["kind"] != "upgrade.succeeded":
                message = read_message(reader)
                assert message is not None, f"the stream ended after {events}"
                assert message["jsonrpc"] == "2.0"
                assert message["method"] == "event"
                assert "id" not in message  # notifications: nothing to answer
                events.append(message["params"])
        mine = [event for event in events if event["data"].get("id") == result["id"]]
        assert [event["kind"] for event in mine] == IMMEDIATE_UPGRADE_EVENTS
        for event in mine:
            assert event["component"] == "greeter"
            assert isinstance(event["id"], int)
            assert isinstance(event["time"], float)
        assert mine[-1]["data"]["to_version"] == "1.1.0"
        # The stream's connection closed with the client; the runtime goes on serving.
        with client_of(project.root) as client:
            assert client.call("status")["components"]["greeter"]["version"] == "1.1.0"


def test_control_client_events_follow_the_runtime_until_it_closes(project: Project) -> None:
    greeter_project(project)
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    ended: list[BaseException] = []

    rt = Runtime.open(project.root, control=True)
    try:

        def follow() -> None:
            try:
                with client_of(project.root) as client:
                    for event in client.events():
                        received.put(event)
            except BaseException as exc:  # reported to the test below
                ended.append(exc)

        listener = threading.Thread(target=follow, name="follower", daemon=True)
        listener.start()
        with client_of(project.root) as client:
            # The listener subscribes on its own thread: ping with a refused upgrade
            # (it changes nothing, and it is an event) until it hears one.
            deadline = time.monotonic() + TIMEOUT_S
            while received.empty():
                assert time.monotonic() < deadline, "the subscriber never heard an event"
                pinged = client.call("upgrade", component="greeter", version="1.0.0")
                assert pinged["status"] == "refused"
                time.sleep(0.01)
            result = client.call("upgrade", component="greeter", version="1.1.0")
        kinds = []
        while "upgrade.succeeded" not in kinds:
            event = received.get(timeout=TIMEOUT_S)
            if event["data"].get("id") == result["id"]:
                kinds.append(event["kind"])
        assert kinds == IMMEDIATE_UPGRADE_EVENTS
    finally:
        rt.close()
    listener.join(TIMEOUT_S)
    assert not listener.is_alive(), "the event stream outlived the runtime"
    assert len(ended) == 1
    assert isinstance(ended[0], NoodleError)
    assert ended[0].code == "control-closed"


# ------------------------------------------------------------- hostile clients


def read_reply(sock: socket.socket) -> dict[str, Any] | None:
    with sock.makefile("rb") as reader:
        return read_message(reader)


def test_a_full_endpoint_tells_every_client_why_it_is_refused(project: Project) -> None:
    greeter_project(project)
    with Runtime.open(project.root, control=True):
        path = socket_of(project.root)
        held = [connect(path) for _ in range(MAX_CONNECTIONS)]
        try:
            for sock in held:  # each one answered: every slot is taken
                sock.sendall(request("status"))
                assert "result" in (read_reply(sock) or {})
            for attempt in range(20):
                client = client_of(project.root)
                # Whether the runtime hung up before the request went out or after, the
                # client reports the runtime's reason, never a broken pipe.
                time.sleep(0.005 * (attempt % 3))
                with client, pytest.raises(NoodleError) as refused:
                    client.call("status")
                assert "too many connections" in str(refused.value)
            command = [sys.executable, "-m", "noodle_upgrade.cli.main"]
            done = subprocess.run(
                [*command, "--project", str(project.root), "status", "--json"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            assert done.returncode == 1
            assert done.stderr == "noodle: error: too many connections\n"
        finally:
            for sock in held:
                sock.close()
        assert served_again(project.root)["live"] is True


def test_hostile_clients_never_disturb_the_application(
    project: Project, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    greeter_project(project)
    caplog.set_level(logging.ERROR)
    rt = Runtime.open(project.root, control=True)
    silent: socket.socket | None = None
    try:
        path = socket_of(project.root)
        handle = rt.load("greeter")
        with running(lambda: handle.hello(), threads=4) as load:
            load.progress(50)

            # 80 connections at once, more than the endpoint serves: each asks for the
            # status; MAX_CONNECTIONS get it, the others are told and closed.
            burst = [connect(path) for _ in range(80)]
            replies = []
            for sock in burst:
                # A refused one may be closed already; its answer is waiting anyway.
                with contextlib.suppress(OSError):
                    sock.sendall(request("status"))
                replies.append(read_reply(sock))
            for sock in burst:
                sock.close()
            served = [reply for reply in replies if reply and "result" in reply]
            refused = [reply for reply in replies if reply and "error" in reply]
            assert len(served) == MAX_CONNECTIONS
            assert len(refused) == 80 - MAX_CONNECTIONS
            assert all(reply["result"]["live"] is True for reply in served)
            for reply in refused:
                assert reply["error"] == {"code": INTERNAL_ERROR, "message": "too many connections"}
            load.progress(50)

            # Once they hung up, a normal client is served again.
            assert served_again(project.root)["live"] is True

            # A client that connects and sends nothing, for the rest of the test.
            silent = connect(path)

            # Every slot taken (the silent client holds one), and more clients come and
            # hang up at once: the refused ones find nobody to tell, quietly.
            held = [connect(path) for _ in range(MAX_CONNECTIONS - 1)]
            for sock in held:
                sock.sendall(request("status"))
                reply = read_reply(sock)
                assert reply is not None and "result" in reply  # admitted
            for _ in range(20):
                connect(path).close()
            for sock in held:
                sock.close()
            assert served_again(project.root)["live"] is True

            # Garbage bytes, then a good request: the connection survives the garbage.
            replies = exchange(
                path,
                b"\x00\xff\xfe garbage\n{not json\n"
                + b"[" * 200_000
                + b"\n"
                + b'{"jsonrpc":"2.0","id":'
                + b"9" * 5000
                + b',"method":"status"}\n'
                + request("status", request_id=2),
            )
            assert [reply["id"] for reply in replies] == [None, None, None, None, 2]
            assert [reply["error"]["code"] for reply in replies[:4]] == [PARSE_ERROR] * 4
            assert replies[4]["result"]["live"] is True
            load.progress(50)

            # Half a JSON object, then the client stops sending: a parse error.
            (reply,) = exchange(path, b'{"jsonrpc": "2.0", "id": 1, "method": "sta')
            assert reply["error"]["code"] == PARSE_ERROR
            # Half a JSON object, then the client vanishes without reading anything.
            with connect(path) as sock:
                sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "up')

            # A 10 MB line without a newline: an error, then the runtime hangs up.
            with connect(path) as sock, sock.makefile("rb") as reader:
                # The runtime stops reading after MAX_MESSAGE_BYTES: the send fails.
                with contextlib.suppress(OSError):
                    sock.sendall(b"x" * (10 << 20))
                reply = read_message(reader)
                assert reply is not None
                assert reply["error"]["code"] == INVALID_REQUEST
                assert f"longer than {MAX_MESSAGE_BYTES} bytes" in reply["error"]["message"]
                # Closed (a reset: our unread bytes were still in its queue).
                with contextlib.suppress(ConnectionResetError):
                    assert read_message(reader) is None
            load.progress(50)

            # Through all of it the endpoint still steers the application.
            with client_of(project.root) as client:
                result = client.call("upgrade", component="greeter", version="1.1.0")
                assert result["success"] is True
                assert client.call("status")["components"]["greeter"]["version"] == "1.1.0"
            load.progress(50)
        outcome = load.stop()
        assert outcome.error_count == 0, outcome.errors
        assert outcome.values() == {"1.0.0", "1.1.0"}
        assert handle.hello() == "1.1.0"
    finally:
        rt.close()  # with the silent client still connected: close does not wait for it
        if silent is not None:
            silent.close()
    assert not (state_dir(project.root) / "control.sock").exists()
    assert not (state_dir(project.root) / "control.json").exists()
    # Nothing a client sent reached the application's stderr or its error log.
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Exception occurred" not in err
    assert [r for r in caplog.records if r.name.startswith("noodle_upgrade")] == []
