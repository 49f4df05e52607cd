"""Blue-green's warm window: after the switch the old version stays loaded and ready,
and the new one is watched for ``switchback_delay`` seconds.

A failed health check or an error rate past the threshold switches back at once, by
the ordinary rollback (a reference switch: the old version is still loaded, and no
migration runs again). ``rt.upgrade`` has already returned when the window opens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from noodle_upgrade.engine.step_analysis import Accumulated, SideSample, analyse_step, merged
from noodle_upgrade.errors import HotSwapError
from noodle_upgrade.runtime.loader import LoadedVersion, run_health_check
from noodle_upgrade.runtime.rollout import TICK_SECONDS, Publish, thresholds
from noodle_upgrade.runtime.routing import Split, split_call
from noodle_upgrade.runtime.slot import ComponentSlot
from noodle_upgrade.runtime.strategies import StrategyConfig

log = logging.getLogger("noodle_upgrade.blue_green")

HEALTH_EVERY_TICKS = 10


class WarmWindow:
    def __init__(
        self,
        slot: ComponentSlot,
        old: LoadedVersion,
        new: LoadedVersion,
        config: StrategyConfig,
        publish: Publish,
        switch_back: Callable[[str], Any],
        health_timeout: float,
        closed: Callable[[WarmWindow], None],
    ) -> None:
        self.slot, self.old, self.new = slot, old, new
        self.config, self.publish, self.switch_back = config, publish, switch_back
        self.health_timeout = health_timeout
        self.closed = closed
        self.split = Split(retry_on_stable=new.descriptor.idempotent)
        self.split.set_share(100)
        # Every call goes to the new version; an idempotent one's failure is retried on
        # the warm old one, and every call is counted for the watch.
        if new.descriptor.stateful:  # its calls pass the gate: count them there
            slot.measure(self.split)
        else:
            slot.route(
                old, lambda name, new_fn, old_fn: split_call(self.split, name, old_fn, new_fn)
            )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="noodle: blue-green", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """End the window early (another operation on the component is starting)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _watch(self) -> None:
        ends = time.monotonic() + self.config["switchback_delay"]
        seen = Accumulated()  # bounded: the window may see millions of calls
        ticks = 0
        while not self._stop.wait(TICK_SECONDS):
            so_far = seen.add(merged([new for _, new in self.split.take().values()]))
            ticks += 1
            verdict = analyse_step(
                SideSample(),
                so_far,
                baseline=None,
                thresholds=thresholds(self.config),
                health_error=self._health_error() if ticks % HEALTH_EVERY_TICKS == 0 else None,
                check_latency=False,
            )
            if verdict.failed:
                self.publish(
                    "blue_green.switch_back", reason=verdict.reason, **verdict.measurements
                )
                self._close()
                self._switch_back(verdict.reason)
                return
            if time.monotonic() >= ends:
                break
        self._close()
        self.publish(
            "blue_green.window_closed", calls=seen.successes + seen.errors, errors=seen.errors
        )

    def _close(self) -> None:
        if self.slot.active is self.new:
            self.slot.unroute()
        self.closed(self)

    def _switch_back(self, reason: str) -> None:
        try:
            self.switch_back(f"blue-green watch: {reason}")
        except Exception:  # a thread of ours: say why the old version is not back
            log.exception("blue-green switch back of %s failed", self.slot.name)
            self.publish("blue_green.switch_back_failed", reason=reason)

    def _health_error(self) -> str | None:
        try:
            run_health_check(self.new, self.health_timeout)
        except HotSwapError as exc:
            return exc.message
        return None
