"""Calling through a Handle vs calling the module directly (goal: ≤ 1.05×).

Interleaved rounds, minimum per side: the machines are shared and noisy, so the ratio
of two minima from one run is the number to read, not the absolute times.
"""

from __future__ import annotations

import sys
import tempfile
import timeit
from pathlib import Path

from noodle_upgrade import Runtime
from noodle_upgrade.scaffold import write_component, write_project

SOURCE = """
def tokenize(text):
    return text.split()
"""
ROUNDS, NUMBER = 15, 200_000


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder), {"lexer": ">=1"})
        write_component(root, "lexer", "1.0.0", SOURCE)
        with Runtime.open(root, settings={"control_enabled": False}) as rt:
            handle = rt.load("lexer")
            module = sys.modules[handle.tokenize.__module__]
            direct = timeit.Timer("m.tokenize('1 + 2')", globals={"m": module})
            routed = timeit.Timer("h.tokenize('1 + 2')", globals={"h": handle})
            best_direct = best_handle = float("inf")
            for _ in range(ROUNDS):
                best_direct = min(best_direct, direct.timeit(NUMBER) / NUMBER)
                best_handle = min(best_handle, routed.timeit(NUMBER) / NUMBER)
    ratio = best_handle / best_direct
    print(f"direct module call   {best_direct * 1e9:8.1f} ns")
    print(f"call through Handle  {best_handle * 1e9:8.1f} ns")
    print(f"handle/direct ratio  {ratio:8.3f}  (goal ≤ 1.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
