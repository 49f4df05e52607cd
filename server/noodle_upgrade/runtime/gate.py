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
    __slots__ = ("_closed", "_inside", "_opened")

    def __init__(self) -> None:
        self._inside: list[None] = []
        self._closed = False
        self._opened = threading.Event()
        self._opened.set()

    def enter(self) -> None:
        while True:
            self._inside.append(None)
            if not self._closed:
                return
            self._inside.pop()
            self._opened.wait()

    def leave(self) -> None:
        self._inside.pop()

    def close(self, timeout: float) -> bool:
        """Stop new calls and wait for the ones inside; False (and open) on timeout."""
        self._opened.clear()
        self._closed = True
        deadline = time.monotonic() + timeout
        while self._inside:
            if time.monotonic() >= deadline:
                self.open()
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def open(self) -> None:
        self._closed = False
        self._opened.set()

    @property
    def calls_inside(self) -> int:
        return len(self._inside)
