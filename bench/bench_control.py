"""Round trip of ``status`` over the control endpoint, against calling ``rt.status()``
in the process: what a CLI, an editor or the dashboard pays to look at a live runtime.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

from common import LEXER_SOURCE, header, project, table
from noodle_upgrade import Runtime
from noodle_upgrade.control.client import ControlClient
from noodle_upgrade.scaffold import write_component

CALLS = 2_000


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def main() -> int:
    header("The control endpoint: status round trip")
    with project({f"lexer{n}": ">=1" for n in range(10)}) as root:
        for n in range(10):
            write_component(root, f"lexer{n}", "1.0.0", LEXER_SOURCE)
        measured: dict[str, list[float]] = {}
        for transport in ("unix", "tcp"):
            settings = {"control_transport": transport, "watch_enabled": False}
            with Runtime.open(root, control=True, settings=settings) as rt:
                client = ControlClient.connect(rt.project.state_dir)
                assert client is not None, "the runtime serves no control endpoint"
                with client:
                    measured.setdefault("rt.status() in process", timed(rt.status, CALLS))
                    measured[f"status over {transport}"] = timed(
                        partial(client.call, "status"), CALLS
                    )
    rows = [
        [
            label,
            f"{statistics.median(values):.0f}",
            f"{sorted(values)[int(len(values) * 0.99)]:.0f}",
        ]
        for label, values in measured.items()
    ]
    print(f"10 components, {CALLS} calls each; microseconds")
    print(table(["measure", "p50", "p99"], rows))
    local = statistics.median(measured["rt.status() in process"])
    for transport in ("unix", "tcp"):
        ratio = statistics.median(measured[f"status over {transport}"]) / local
        print(f"round trip over {transport} / in-process (p50): {ratio:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
