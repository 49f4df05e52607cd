"""A gate that lets a stateful component be quiesced, like OTP's ``sys:suspend``.

Calls pass the gate; a swap closes it, waits for the calls inside to finish, moves the
state, and opens it again. Calls that arrive meanwhile wait and then enter the new
version, so no call is dropped and no write lands on a state that was already copied.
"""

from __future__ import annotations

import threading
import time


class Gate:
    __slots__ = ("_closed", "_condition", "_inside")

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._inside = 0
        self._closed = False

    def enter(self) -> None:
        with self._condition:
            while self._closed:
                self._condition.wait()
            self._inside += 1

    def leave(self) -> None:
        with self._condition:
            self._inside -= 1
            if self._closed and self._inside == 0:
                self._condition.notify_all()

    def close(self, timeout: float) -> bool:
        """Stop new calls and wait for the ones inside; False (and open) on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._closed = True
            while self._inside:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._open_locked()
                    return False
                self._condition.wait(remaining)
            return True

    def open(self) -> None:
        with self._condition:
            self._open_locked()

    def _open_locked(self) -> None:
        self._closed = False
        self._condition.notify_all()

    @property
    def calls_inside(self) -> int:
        return self._inside
