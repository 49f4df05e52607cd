"""Run in a child process: open a project, upgrade one component, then wait to be killed.

Usage: ``python upgrade_and_wait.py PROJECT COMPONENT VERSION MARKER``. After the upgrade
returns, its status is written to MARKER and the process sleeps until it is killed.
(An upgrade whose health check hangs never gets that far: the test watches for a marker
the health check writes itself.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from noodle_upgrade import Runtime


def main(project: str, component: str, version: str, marker: str) -> None:
    with Runtime.open(project) as rt:
        result = rt.upgrade(component, version)
        # Written aside and renamed: the test never sees a marker without its contents.
        pending = Path(f"{marker}.tmp")
        pending.write_text(f"{result.status} {rt.version(component)}\n")
        os.replace(pending, marker)
        time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:5])
