"""Which process runs an operation, so recovery never marks a live one interrupted.

Several processes may open one store (the application's runtime, a CLI, a second
worker); an in_progress operation is interrupted only when its process is gone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

# Operations this process is running now. Module state on purpose: two Store objects
# in one process must agree on what is still running.
_RUNNING: set[str] = set()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), which a reused pid never shares;
    "Z" for a zombie, which is dead but not yet reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may contain spaces
    return "Z" if fields[0] == "Z" else fields[19]


def this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


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
    host, pid_text, started_at = [*owner.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's process: only it can tell, so leave it alone
    pid = int(pid_text)
    if pid == os.getpid():
        return op_id in _RUNNING
    if not _pid_alive(pid):
        return False
    now = _start_time(pid)
    if now == "Z":
        return False
    return not (started_at and now and now != started_at)  # a reused pid is another process
