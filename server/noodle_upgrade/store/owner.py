"""Which process runs an operation, so recovery never marks a live one interrupted.

Several processes may open one store (the application's runtime, a CLI, a second
worker); an in_progress operation is interrupted only when its process is gone.
"""

from __future__ import annotations

import os
import socket

# Operations this process is running now. Module state on purpose: two Store objects
# in one process must agree on what is still running.
_RUNNING: set[str] = set()


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def started(op_id: str) -> None:
    _RUNNING.add(op_id)


def finished(op_id: str) -> None:
    _RUNNING.discard(op_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def still_running(owner: str | None, op_id: str) -> bool:
    """Whether the process that began ``op_id`` may still be working on it."""
    if owner is None:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's process: only it can tell, so leave it alone
    pid = int(pid_text)
    if pid == os.getpid():
        return op_id in _RUNNING
    return _pid_alive(pid)
