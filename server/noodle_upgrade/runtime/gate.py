"""A gate that lets a stateful component be quiesced, like OTP's ``sys:suspend``.

Calls pass the gate; a swap closes it, waits for the calls inside to finish, moves the
state, and opens it again. Calls that arrive meanwhile wait and then enter the new
version, so no call is dropped and no write lands on a state that was already copied.

The open gate costs a list append and a pop per call (each atomic in CPython) instead
of a lock round trip, which measured ~2× slower on a 2 µs call. A caller registers
first and checks the flag second, and the closer sets the flag first and counts
second, so one of the two always sees the other.
"""

from __future__ import annotations

import threading
import time

_POLL_SECONDS = 0.0002


class Gate:
    """``inside`` and ``closed`` are public so that a hot wrapper can inline the open
    path (append, check, pop) and call :meth:`wait_open` only when the gate is shut."""

    __slots__ = ("_opened", "closed", "inside")

    def __init__(self) -> None:
        self.inside: list[None] = []
        self.closed = False
        self._opened = threading.Event()
        self._opened.set()

    def enter(self) -> None:
        self.inside.append(None)
        if self.closed:
            self.wait_open()

    def wait_open(self) -> None:
        """Called registered while the gate is shut: step out, wait, and come back in."""
        while self.closed:
            self.inside.pop()
            self._opened.wait()
            self.inside.append(None)

    def leave(self) -> None:
        self.inside.pop()

    def close(self, timeout: float) -> bool:
        """Stop new calls and wait for the ones inside; False (and open) on timeout."""
        self._opened.clear()
        self.closed = True
        deadline = time.monotonic() + timeout
        while self.inside:
            if time.monotonic() >= deadline:
                self.open()
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def open(self) -> None:
        self.closed = False
        self._opened.set()
