"""How the demo looks: a live rich view on a terminal, plain step lines anywhere else.

Both views take the same calls from the demo (:class:`View`), so the story never cares
where it is shown. Every dynamic string goes into ``rich.text.Text`` rather than markup,
so error messages with brackets (``[components]``) print as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from noodle_upgrade.demo.loadgen import Failure
from noodle_upgrade.demo.report import Summary
from noodle_upgrade.demo.steps import Demo, Step, StepOutcome

_STYLES = {"success": "green", "refused": "red", "info": "cyan"}


class View(Protocol):
    def begin(self, demo: Demo) -> None: ...
    def step_started(self, index: int, total: int, step: Step) -> None: ...
    def step_finished(self, outcome: StepOutcome) -> None: ...
    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None: ...
    def close(self) -> None: ...


class _Base:
    def __init__(self, console: Console) -> None:
        self.console = console
        utf = (console.encoding or "").lower().replace("-", "").startswith("utf")
        self.marks = {
            "success": "✔" if utf else "OK",
            "refused": "✘" if utf else "X",
            "info": "•" if utf else "-",
        }
        self.arrow = "→" if utf else "->"

    def _text(self, value: str) -> str:
        return value if self.arrow == "→" else value.replace("→", "->").replace("…", "...")

    def indented(self, text: Text, indent: int) -> RenderableType:
        """``text`` indented; on a wrapping console, continuation lines stay indented too."""
        if self.console.soft_wrap:
            return Text(" " * indent) + text
        return Padding(text, (0, 0, 0, indent))

    def outcome_lines(self, outcome: StepOutcome) -> list[RenderableType]:
        style = _STYLES[outcome.mark] if outcome.ok else "bold red"
        mark = self.marks[outcome.mark]
        head = Text(mark, style=style)
        head.append(" " + self._text(outcome.headline))
        if not outcome.ok:
            head.append("  (not what the demo expects)", style="bold red")
        lines = [self.indented(head, 2)]
        lines += [
            self.indented(Text(self._text(detail), style="dim"), 6) for detail in outcome.details
        ]
        return lines

    def load_line(self, demo: Demo) -> Text:
        totals = demo.load.totals()
        line = Text(f"  load: {totals.calls:,} calls ({totals.rate:,.0f}/s), ")
        line.append(f"{totals.errors} errors", style="red" if totals.errors else "green")
        line.append(", ")
        line.append(
            f"{totals.wrong_answers} wrong answers",
            style="red" if totals.wrong_answers else "green",
        )
        return line

    def components_table(self, demo: Demo) -> Table:
        table = Table("component", "active", "served so far", title=None, expand=False)
        versions = demo.versions()
        for name, version in versions.items():
            table.add_row(name, version, f" {self.arrow} ".join(demo.trail[name]))
        return table

    def summary_table(self, summary: Summary) -> Table:
        table = Table("measure", "value", title="Summary", expand=False)
        rows = [
            ("calls", f"{summary.calls:,} ({summary.calls_per_s:,.0f}/s)"),
            ("client-visible errors", str(summary.errors)),
            ("wrong answers", str(summary.wrong_answers)),
            ("upgrades", str(summary.upgrades)),
            ("rollbacks", str(summary.rollbacks)),
            ("refused / failed upgrades", str(summary.refused)),
            ("strategies", ", ".join(summary.strategies)),
            ("switch p99 / max", f"{summary.swap_p99_ms:.3f} / {summary.swap_max_ms:.3f} ms"),
            ("upgrade p50 (load, check, switch)", f"{summary.upgrade_p50_ms:.2f} ms"),
            ("call p50 / p99", f"{summary.call_p50_ms:.3f} / {summary.call_p99_ms:.3f} ms"),
            ("call p99 during operations", f"{summary.call_p99_during_ops_ms:.3f} ms"),
            ("memory state accounted", "yes" if summary.state_ok else "NO"),
            ("steps as expected", "yes" if summary.steps_ok else "NO"),
            (
                "audit chain",
                f"intact, {summary.audit_records} records" if summary.audit_ok else "BROKEN",
            ),
            ("duration", f"{summary.duration_s:.1f} s"),
        ]
        for measure, value in rows:
            table.add_row(measure, value)
        return table

    def verdict(self, summary: Summary, failures: Sequence[Failure]) -> list[RenderableType]:
        parts: list[RenderableType] = []
        for failure in failures:
            parts.append(
                Text(
                    f"  {failure.source!r} with {dict(failure.inputs)}: expected "
                    f"{failure.expected}, {failure.outcome}",
                    style="red",
                )
            )
        if summary.ok:
            parts.append(
                Text(
                    f"{self.marks['success']} every answer right, no client-visible error, "
                    "audit chain intact",
                    style="bold green",
                )
            )
        else:
            parts.append(
                Text(f"{self.marks['refused']} the demo found a problem", style="bold red")
            )
        return parts


class PlainView(_Base):
    """One line per event, printed as it happens: fine for pipes, logs and CI."""

    def begin(self, demo: Demo) -> None:
        print_ = self.console.print
        print_(
            Text(
                "NoodleCore Upgrade demo: a compiler and VM upgraded live, under load", style="bold"
            )
        )
        print_(Text(f"project {demo.root} (temporary)"))
        versions = ", ".join(f"{name} {version}" for name, version in demo.versions().items())
        print_(Text(f"active: {versions}"))
        print_(
            Text(
                f"load: {demo.load.threads} threads compile and run random programs, "
                "every answer checked"
            )
        )

    def step_started(self, index: int, total: int, step: Step) -> None:
        self.console.print(Text(f"[{index}/{total}] {self._text(step.title)}", style="bold"))

    def step_finished(self, outcome: StepOutcome) -> None:
        for line in self.outcome_lines(outcome):
            self.console.print(line)

    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None:
        self.console.print(self.load_line(demo))
        self.console.print(self.components_table(demo))
        self.console.print(self.summary_table(summary))
        for part in self.verdict(summary, failures):
            self.console.print(part)

    def close(self) -> None:
        pass


class LiveView(_Base):
    """A live screen: the components' versions, the load counters and the latest steps.

    The screen is transient and shows as much of the step log as fits; when the demo
    ends it is replaced by the whole log, the final versions and the summary, so what
    stays in the scrollback is complete whatever the terminal's height.
    """

    TITLE = "NoodleCore Upgrade demo: a compiler and VM upgraded live, under load"

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._demo: Demo | None = None
        self._log: list[RenderableType] = []
        self._lock = threading.Lock()
        self._live: Live | None = None

    def _render(self) -> RenderableType:
        demo = self._demo
        if demo is None:
            return Text("")
        table = self.components_table(demo)
        room = max(3, self.console.height - table.row_count - 9)
        with self._lock:
            log = self._log[-room:]
        return Group(Text(self.TITLE, style="bold"), table, self.load_line(demo), Text(""), *log)

    def begin(self, demo: Demo) -> None:
        self._demo = demo
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
            vertical_overflow="crop",
        )
        self._live.start()

    def _add(self, *lines: RenderableType) -> None:
        with self._lock:
            self._log.extend(lines)

    def step_started(self, index: int, total: int, step: Step) -> None:
        self._add(Text(f"[{index}/{total}] {self._text(step.title)}", style="bold"))

    def step_finished(self, outcome: StepOutcome) -> None:
        self._add(*self.outcome_lines(outcome))

    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None:
        self.close()
        print_ = self.console.print
        print_(Text(self.TITLE, style="bold"))
        with self._lock:
            log = list(self._log)
        for line in log:
            print_(line)
        print_(self.load_line(demo))
        print_(self.components_table(demo))
        print_(self.summary_table(summary))
        for part in self.verdict(summary, failures):
            print_(part)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_view(file: TextIO, *, live: bool) -> View:
    """A live view on an interactive terminal when asked for, plain lines otherwise."""
    console = Console(file=file, highlight=False)
    if live and console.is_terminal and not console.is_dumb_terminal:
        return LiveView(console)
    # Plain lines go to logs and pipes: never wrap them at an assumed width.
    return PlainView(Console(file=file, highlight=False, soft_wrap=True))
