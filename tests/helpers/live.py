"""A REAL application process embedding a live runtime (``live_app.py``), for tests that
steer it from outside: the ``noodle`` CLI, raw clients of its endpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers.cli import environment
from helpers.control import TIMEOUT_S

LIVE_APP = Path(__file__).resolve().parent / "live_app.py"


class LiveApp:
    """The application process; ``stop`` returns what it reports about its own calls."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root, self.work = root, work
        work.mkdir()
        self.stderr = (work / "stderr").open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(LIVE_APP), str(root), str(work)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=environment(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "ready\n", f"the application did not start: {self.errors()}"

    def errors(self) -> str:
        return (self.work / "stderr").read_text()

    def seen(self) -> list[str]:
        path = self.work / "seen"
        text = path.read_text() if path.exists() else ""
        return [line for line in text.split("\n")[:-1]]  # complete lines only

    def sees(self, version: str) -> None:
        """Wait until the application's calls return ``version``."""
        deadline = time.monotonic() + TIMEOUT_S
        while not self.seen() or self.seen()[-1] != version:
            assert self.process.poll() is None, f"the application died: {self.errors()}"
            assert time.monotonic() < deadline, f"the application still sees {self.seen()}"
            time.sleep(0.01)

    def stop(self, *, crash: bool = False) -> dict[str, Any]:
        report = self.work / "report.json"
        (self.work / "stop").write_text("crash" if crash else "")
        if crash:
            deadline = time.monotonic() + TIMEOUT_S
            while not report.exists():
                assert self.process.poll() is None, f"the application died: {self.errors()}"
                assert time.monotonic() < deadline, "the application never reported"
                time.sleep(0.01)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(TIMEOUT_S)
        else:
            assert self.process.wait(TIMEOUT_S) == 0, self.errors()
        value: dict[str, Any] = json.loads(report.read_text())
        return value

    def __enter__(self) -> LiveApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT_S)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.stderr.close()


def assert_no_errors(report: dict[str, Any]) -> None:
    """The application's calls all succeeded, and it did make some."""
    assert report["errors"] == []
    assert report["calls"] > 0
