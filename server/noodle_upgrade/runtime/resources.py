"""The machine's load, for ``[policy.*]`` resource thresholds (psutil).

Only what a policy sets is measured. CPU is the busy share since the previous sample
(like ``psutil.cpu_percent(None)``, but with its own baseline: that function keeps one
per process, which the application may be using too).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TypedDict

import psutil

from noodle_upgrade.models import Policy


class Measured(TypedDict):
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None


class CpuSampler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = psutil.cpu_times()

    def percent(self) -> float:
        """Busy share of all CPUs since the previous call (or since this sampler began)."""
        with self._lock:
            now = psutil.cpu_times()
            before, self._last = self._last, now
        total = sum(now) - sum(before)
        if total <= 0:
            return 0.0
        idle = (now.idle - before.idle) + (
            getattr(now, "iowait", 0.0) - getattr(before, "iowait", 0.0)
        )
        return max(0.0, min(100.0, 100.0 * (1.0 - idle / total)))


def measure(policy: Policy, state_dir: Path, cpu: CpuSampler) -> Measured:
    disk_path = state_dir if state_dir.exists() else state_dir.parent
    return Measured(
        cpu_percent=cpu.percent() if policy.max_cpu_percent is not None else None,
        memory_percent=psutil.virtual_memory().percent
        if policy.max_memory_percent is not None
        else None,
        disk_percent=psutil.disk_usage(str(disk_path)).percent
        if policy.max_disk_percent is not None
        else None,
    )
