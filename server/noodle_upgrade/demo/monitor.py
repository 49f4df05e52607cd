"""Watching the engine: its events (``rt.subscribe``) turned into what the demo shows.

The engine reports every step of every operation as an event: ``upgrade.started``,
``rollout.step`` (a canary's share going up, a shadow phase, a rolling batch),
``rollout.analysis`` (each step's verdict), ``upgrade.<status>``, ``rollback.<status>``,
``blue_green.switch_back`` and ``blue_green.window_closed``. The :class:`Monitor` keeps
the state of the latest operation on each component (for the live table), turns each
event into a :class:`LogLine` (for the scrolling log), counts the automatic rollbacks,
and lets a step wait for an event that comes later from the engine's own threads (a
blue-green window closing, or switching back).

Subscribers run on the thread that publishes, inside the engine's operation: everything
here only updates its own state under its own lock and never calls the runtime back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from noodle_upgrade.runtime.events import Event
from noodle_upgrade.runtime.runtime import Runtime

Tone = Literal["info", "good", "bad", "warn"]
RolloutState = Literal[
    "running", "watching", "promoted", "rolled back", "switched back", "failed", "refused", "done"
]


@dataclass(frozen=True)
class LogLine:
    at: float  # seconds since the monitor started
    component: str | None
    text: str
    tone: Tone


@dataclass
class Rollout:
    """The latest operation on one component, as its events tell it."""

    strategy: str
    target: str  # the version it goes to
    state: RolloutState = "running"
    phase: str = ""  # "step 2/3", "A/A", "shadow", "batch 1/4", "warm window"
    share: float | None = None  # percent of calls (or of a pool) on the new version
    verdicts: list[str] = field(default_factory=list)  # each analysed step's outcome

    @property
    def in_progress(self) -> bool:
        return self.state in ("running", "watching")


def _ms(value: object) -> str:
    return f"{value:.3f} ms" if isinstance(value, int | float) else "-"


class Monitor:
    """Subscribed to ``rt``'s events from construction until :meth:`close`."""

    def __init__(self, rt: Runtime) -> None:
        self._origin = time.perf_counter()
        self._changed = threading.Condition()
        self._rollouts: dict[str, Rollout] = {}
        self._events: list[Event] = []
        self._listeners: list[Callable[[LogLine], None]] = []
        self._switching_back: set[str] = set()
        self.automatic_rollbacks = 0  # rolled back by analysis, post-check or blue-green watch
        self.switch_backs = 0  # of which by a blue-green watch (rollbacks the engine ran)
        self._unsubscribe = rt.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def listen(self, listener: Callable[[LogLine], None]) -> None:
        """Call ``listener`` with every log line from now on (on the publishing thread)."""
        self._listeners.append(listener)

    # -- reading --------------------------------------------------------------------------

    def rollouts(self) -> dict[str, Rollout]:
        """A copy of the latest operation on each component."""
        with self._changed:
            return {
                name: replace(rollout, verdicts=list(rollout.verdicts))
                for name, rollout in self._rollouts.items()
            }

    def mark(self) -> int:
        """A position in the event stream, for :meth:`wait_for`."""
        with self._changed:
            return len(self._events)

    def wait_for(
        self, component: str, kinds: Collection[str], *, since: int, timeout: float
    ) -> Event | None:
        """The first event of one of ``kinds`` on ``component`` after the mark ``since``;
        ``None`` if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events[since:]:
                    if event.component == component and event.kind in kinds:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    # -- the events -----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            line = self._apply(event)
            self._changed.notify_all()
        if line is not None:
            for listener in list(self._listeners):
                listener(line)

    def _line(self, event: Event, text: str, tone: Tone = "info") -> LogLine:
        return LogLine(time.perf_counter() - self._origin, event.component, text, tone)

    def _rollout(self, name: str, data: Mapping[str, Any]) -> Rollout:
        rollout = self._rollouts.get(name)
        if rollout is None:  # refused before it started, or an event we did not see begin
            rollout = Rollout(str(data.get("strategy") or "-"), str(data.get("to_version", "?")))
            self._rollouts[name] = rollout
        return rollout

    def _apply(self, event: Event) -> LogLine | None:
        kind, name, data = event.kind, event.component, event.data
        if name is None or kind == "component.activated" or kind.endswith(".stage"):
            return None  # the stages of an operation are too quick to show one by one
        if kind.startswith(("proposal.", "update.")):
            return None  # the demo steers every upgrade itself; proposals would only wait
        if kind == "upgrade.started":
            strategy, target = str(data.get("strategy")), str(data.get("to_version"))
            self._rollouts[name] = Rollout(strategy, target)
            return self._line(event, f"{strategy}: {data.get('from_version')} → {target} started")
        if kind == "upgrade.refused":  # refused by validation: it never started
            self._rollouts[name] = Rollout("upgrade", str(data.get("to_version") or "?"))
        rollout = self._rollout(name, data)
        if kind == "rollout.step":
            return self._step(event, rollout, data)
        if kind == "rollout.analysis":
            outcome = str(data.get("outcome"))
            rollout.verdicts.append(outcome)
            tone: Tone = "good" if outcome == "pass" else "bad"
            where = f"{data.get('share'):g}%" if data.get("share") else f"step {data.get('step')}"
            return self._line(event, f"analysis {where}: {outcome}: {data.get('reason')}", tone)
        if kind.startswith("upgrade."):
            return self._upgrade_done(event, rollout, kind.removeprefix("upgrade."), data)
        if kind.startswith("rollback."):
            return self._rollback_done(event, kind.removeprefix("rollback."), data)
        if kind == "blue_green.switch_back":
            self._switching_back.add(name)
            rollout.phase = "switching back"
            text = f"warm-window watch: {data.get('reason')}: switching back"
            return self._line(event, text, "warn")
        if kind == "blue_green.window_closed":
            rollout.state, rollout.phase, rollout.share = "promoted", "", None
            calls = data.get("calls")
            watched = f" after watching {calls:,} calls" if isinstance(calls, int) and calls else ""
            text = f"warm window closed{watched}: {rollout.target} stays, the old one is released"
            return self._line(event, text, "good")
        return self._line(event, f"{kind} {dict(data)}")

    def _step(self, event: Event, rollout: Rollout, data: Mapping[str, Any]) -> LogLine:
        step, share, target = data.get("step"), float(data.get("share") or 0.0), rollout.target
        rollout.share = share
        if "phase" in data:  # shadow: step 0 is the A/A phase, step 1 the shadow proper
            if step == 0:
                rollout.phase = "A/A"
                text = "A/A: the stable version's results compared with themselves first"
            else:
                rollout.phase = "shadow"
                text = f"shadow: copies of calls go to {target}, compared, never served"
            return self._line(event, text)
        of = data.get("of")
        if "replaced" in data:  # rolling: a batch of the pool's instances replaced
            rollout.phase = f"batch {step}/{of}"
            text = f"batch {step}/{of}: {data['replaced']} instance(s) now {target} ({share:g}%)"
            return self._line(event, text)
        rollout.phase = f"step {step}/{of}"
        return self._line(event, f"step {step}/{of}: {share:g}% of calls → {target}")

    def _upgrade_done(
        self, event: Event, rollout: Rollout, status: str, data: Mapping[str, Any]
    ) -> LogLine:
        code = data.get("error_code") or data.get("code")
        message = data.get("error_message") or data.get("error")
        target = str(data.get("to_version") or rollout.target)
        rollout.target = target
        rollout.phase = ""
        if status == "succeeded":
            switch = _ms(dict(data.get("metrics") or {}).get("switch_ms"))
            if data.get("strategy") == "blue_green":
                rollout.state, rollout.phase, rollout.share = "watching", "warm window", 100.0
                text = f"switched to {target} (switch {switch}); the old version stays warm"
                return self._line(event, text, "good")
            rollout.state, rollout.share = "promoted", None
            return self._line(event, f"{target} promoted (switch {switch})", "good")
        rollout.share = None
        if status == "rolled_back":
            rollout.state = "rolled back"
            self.automatic_rollbacks += 1
            return self._line(event, f"{target} rolled back automatically [{code}]", "warn")
        rollout.state = "refused" if status == "refused" else "failed"
        what = "refused" if status == "refused" else "failed before the switch"
        return self._line(event, f"{target} {what} [{code}]: {message}", "warn")

    def _rollback_done(self, event: Event, status: str, data: Mapping[str, Any]) -> LogLine:
        name = str(event.component)
        back = name in self._switching_back
        self._switching_back.discard(name)
        if status != "succeeded":
            text = f"rollback {status}: {data.get('error_message') or data.get('error')}"
            return self._line(event, text, "bad")
        target = str(data.get("to_version"))
        switch = _ms(dict(data.get("metrics") or {}).get("switch_ms"))
        if back:
            self.automatic_rollbacks += 1
            self.switch_backs += 1
            rollout = self._rollouts[name]
            rollout.state, rollout.phase, rollout.share = "switched back", "", None
            return self._line(event, f"switched back to the warm {target} ({switch})", "warn")
        self._rollouts[name] = Rollout("rollback", target, state="done")
        text = f"rolled back {data.get('from_version')} → {target} (switch {switch})"
        return self._line(event, text, "good")
