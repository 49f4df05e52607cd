"""Run in a child process: an application that embeds a live runtime and keeps calling it.

Usage: ``python live_app.py PROJECT WORKDIR``. Opens the runtime on PROJECT with the
control endpoint on (the default), prints ``ready``, and calls ``greeter.hello()`` from
two threads until ``WORKDIR/stop`` appears. Each time the version a call returns differs
from the one before, it is appended to ``WORKDIR/seen`` (one line per change).

At the stop it writes ``WORKDIR/report.json`` (``{"calls": n, "errors": [...]}``) and
closes the runtime. When the stop file says ``crash`` it writes the report and then waits
to be killed with the runtime still open, so that it leaves its socket and pointer
behind as a crashed process does.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from noodle_upgrade import Runtime

THREADS = 2


def main(project: str, workdir: str) -> None:
    work = Path(workdir)
    stop, seen = work / "stop", work / "seen"
    errors: list[str] = []
    calls = [0] * THREADS
    lock = threading.Lock()
    last: list[str | None] = [None]
    finished = threading.Event()

    with Runtime.open(project) as rt:
        handle = rt.load("greeter")

        def serve(index: int) -> None:
            while not finished.is_set():
                try:
                    version = handle.hello()
                except Exception as exc:  # what the test wants to see never happen
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                calls[index] += 1
                with lock:
                    if version != last[0]:
                        last[0] = version
                        with seen.open("a") as stream:
                            stream.write(f"{version}\n")
                time.sleep(0.0005)

        threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        print("ready", flush=True)
        while not stop.exists():
            time.sleep(0.01)
        finished.set()
        for thread in threads:
            thread.join()
        pending = work / "report.json.tmp"
        pending.write_text(json.dumps({"calls": sum(calls), "errors": errors}))
        os.replace(pending, work / "report.json")
        if stop.read_text().strip() == "crash":
            time.sleep(600)  # killed here, the runtime still open


if __name__ == "__main__":
    main(*sys.argv[1:3])
