"""How the demo looks: a live rich view on a terminal, plain lines anywhere else.

Both views take the same calls from the demo (:class:`View`), so the story never cares
where it is shown. The live view is a table of the components (active version, the
rollout in progress with its share of calls and each step's verdict, the versions served
so far) over a scrolling log of steps and engine events; the plain view prints the same
log line by line. Every dynamic string goes into ``rich.text.Text`` rather than markup,
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
from noodle_upgrade.demo.monitor import LogLine, Rollout
from noodle_upgrade.demo.report import Summary
from noodle_upgrade.demo.steps import Demo, Step, StepOutcome

_STYLES = {"success": "green", "refused": "red", "info": "cyan"}
_TONES = {"info": "", "good": "green", "bad": "bold red", "warn": "yellow"}
_STATES = {
    "running": "bold yellow",
    "watching": "bold cyan",
    "promoted": "green",
    "done": "green",
    "rolled back": "magenta",
    "switched back": "magenta",
    "failed": "red",
    "refused": "red",
}
_BAR = 10  # characters of the share bar


class View(Protocol):
    def begin(self, demo: Demo) -> None: ...
    def step_started(self, index: int, total: int, step: Step) -> None: ...
    def step_finished(self, outcome: StepOutcome) -> None: ...
    def event(self, line: LogLine) -> None: ...
    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None: ...
    def close(self) -> None: ...


class _Base:
    TITLE = "NoodleCore Upgrade demo: a compiler and VM upgraded live, under load"

    def __init__(self, console: Console) -> None:
        self.console = console
        utf = (console.encoding or "").lower().replace("-", "").startswith("utf")
        self.utf = utf
        self.marks = {
            "success": "✔" if utf else "OK",
            "refused": "✘" if utf else "X",
            "info": "•" if utf else "-",
        }
        self.verdict_marks = {
            "pass": "✔" if utf else "+",
            "fail": "✘" if utf else "x",
            "inconclusive": "?",
        }
        self.arrow = "→" if utf else "->"

    def _text(self, value: str) -> str:
        if self.utf:
            return value
        return value.replace("→", "->").replace("…", "...").replace("×", "x").replace("–", "-")

    def indented(self, text: Text, indent: int, *, row: bool = False) -> RenderableType:
        """``text`` indented; on a wrapping console, continuation lines stay indented too.

        ``row``: exactly one screen row, cut with an ellipsis (the live screen counts rows).
        """
        if row:
            line = Text(" " * indent) + text
            line.no_wrap, line.overflow = True, "ellipsis"
            return line
        if self.console.soft_wrap:
            return Text(" " * indent) + text
        return Padding(text, (0, 0, 0, indent))

    def step_header(self, index: int, total: int, step: Step) -> Text:
        return Text(f"[{index}/{total}] {self._text(step.title)}", style="bold")

    def outcome_lines(self, outcome: StepOutcome, *, row: bool = False) -> list[RenderableType]:
        style = _STYLES[outcome.mark] if outcome.ok else "bold red"
        mark = self.marks[outcome.mark]
        head = Text(mark, style=style)
        head.append(" " + self._text(outcome.headline))
        if not outcome.ok:
            head.append("  (not what the demo expects)", style="bold red")
        lines = [self.indented(head, 2, row=row)]
        lines += [
            self.indented(Text(self._text(detail), style="dim"), 6, row=row)
            for detail in outcome.details
        ]
        return lines

    def event_line(self, line: LogLine, *, row: bool = False) -> RenderableType:
        text = Text(f"{line.at:5.1f}s ", style="dim")
        text.append(f"{line.component or '':<18} ", style="cyan")
        text.append(self._text(line.text), style=_TONES[line.tone])
        return self.indented(text, 4, row=row)

    def load_line(self, demo: Demo) -> Text:
        totals = demo.load.totals()
        line = Text(f"  load: {totals.calls:,} calls ({totals.rate:,.0f}/s), ")
        line.append(f"{totals.errors} errors", style="red" if totals.errors else "green")
        line.append(", ")
        line.append(
            f"{totals.wrong_answers} wrong answers",
            style="red" if totals.wrong_answers else "green",
        )
        cache = demo.toolchain.cache_stats()
        looked_up = cache.hits + cache.misses
        hit_rate = cache.hits / looked_up if looked_up else 0.0
        sep = " · " if self.utf else "; "
        line.append(
            f"{sep}compile cache: {hit_rate:.0%} hits, {cache.invalidations} invalidations"
            f"{sep}automatic rollbacks: {demo.monitor.automatic_rollbacks}"
        )
        line.overflow = "ellipsis"
        return line

    def _bar(self, share: float | None) -> Text:
        if share is None:
            return Text("")
        filled = round(share / 100 * _BAR)
        if self.utf:
            bar = Text("█" * filled, style="yellow") + Text("░" * (_BAR - filled), style="dim")
        else:
            bar = Text("#" * filled + "." * (_BAR - filled))
        return bar + Text(f" {share:g}%")

    def _rollout_cells(self, rollout: Rollout | None) -> tuple[Text, Text, Text]:
        if rollout is None:
            return Text(""), Text(""), Text("")
        style = _STATES.get(rollout.state, "")
        what = Text(f"{rollout.strategy} {self.arrow} {rollout.target} ")
        what.append(rollout.state, style=style)
        if rollout.phase:
            what.append(f" ({rollout.phase})", style="dim")
        verdicts = Text()
        for outcome in rollout.verdicts:
            mark = self.verdict_marks.get(outcome, "?")
            verdicts.append(mark, style="green" if outcome == "pass" else "red")
        share = self._bar(rollout.share) if rollout.in_progress else Text("")
        return what, share, verdicts

    def components_table(self, demo: Demo, *, live: bool) -> Table:
        table = Table(title=None, expand=False)
        for column in ("component", "active", "latest operation"):
            table.add_column(column, no_wrap=live)
        if live:
            table.add_column("share", no_wrap=True)
        table.add_column("steps", no_wrap=True)
        table.add_column("served so far", no_wrap=live)
        rollouts = demo.monitor.rollouts()
        for name, version in demo.versions().items():
            what, share, verdicts = self._rollout_cells(rollouts.get(name))
            served = Text(self._text(f" {self.arrow} ".join(demo.trail[name])))
            cells: list[Text] = [Text(name), Text(version, style="bold"), what]
            if live:
                cells.append(share)
            table.add_row(*cells, verdicts, served)
        return table

    def summary_table(self, summary: Summary) -> Table:
        table = Table("measure", "value", title="Summary", expand=False)
        rows = [
            ("calls", f"{summary.calls:,} ({summary.calls_per_s:,.0f}/s)"),
            ("client-visible errors", str(summary.errors)),
            ("wrong answers", str(summary.wrong_answers)),
            ("upgrades", str(summary.upgrades)),
            ("rollbacks (automatic)", f"{summary.rollbacks} ({summary.automatic_rollbacks})"),
            ("refused / failed / rolled-back upgrades", str(summary.refused)),
            ("strategies", ", ".join(summary.strategies)),
            ("switch p99 / max", f"{summary.swap_p99_ms:.3f} / {summary.swap_max_ms:.3f} ms"),
            ("upgrade p50 (whole operation)", f"{summary.upgrade_p50_ms:.2f} ms"),
            ("call p50 / p99", f"{summary.call_p50_ms:.3f} / {summary.call_p99_ms:.3f} ms"),
            ("call p99 during operations", f"{summary.call_p99_during_ops_ms:.3f} ms"),
            (
                "compile cache",
                f"{summary.cache_hits:,} hits, {summary.cache_misses:,} misses, "
                f"{summary.cache_invalidations} invalidations (recompiled after each swap)",
            ),
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
                    f"{summary.automatic_rollbacks} automatic rollback(s), audit chain intact",
                    style="bold green",
                )
            )
        else:
            problems = []
            if summary.errors or summary.wrong_answers:
                problems.append("calls failed or answered wrong")
            if summary.automatic_rollbacks < 1:
                problems.append("no automatic rollback happened")
            if not summary.steps_ok:
                problems.append("a step did not go as expected")
            if not summary.state_ok:
                problems.append("the memory manager's state does not add up")
            if not summary.audit_ok:
                problems.append("the audit chain is broken")
            parts.append(
                Text(
                    f"{self.marks['refused']} the demo found a problem: {'; '.join(problems)}",
                    style="bold red",
                )
            )
        return parts

    def final(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None:
        print_ = self.console.print
        print_(self.load_line(demo))
        print_(self.components_table(demo, live=False))
        print_(self.summary_table(summary))
        for part in self.verdict(summary, failures):
            print_(part)


class PlainView(_Base):
    """One line per step, outcome and engine event, printed as it happens: fine for
    pipes, logs and CI."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._lock = threading.Lock()  # engine events arrive from the engine's threads too

    def _print(self, *renderables: RenderableType) -> None:
        with self._lock:
            for renderable in renderables:
                self.console.print(renderable)

    def begin(self, demo: Demo) -> None:
        versions = ", ".join(f"{name} {version}" for name, version in demo.versions().items())
        self._print(
            Text(self.TITLE, style="bold"),
            Text(f"project {demo.root} (temporary)"),
            Text(f"active: {versions}"),
            Text(
                f"load: {demo.load.threads} threads compile and run random programs, "
                "every answer checked"
            ),
        )

    def step_started(self, index: int, total: int, step: Step) -> None:
        self._print(self.step_header(index, total, step))

    def step_finished(self, outcome: StepOutcome) -> None:
        self._print(*self.outcome_lines(outcome))

    def event(self, line: LogLine) -> None:
        self._print(self.event_line(line))

    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None:
        with self._lock:
            self.final(demo, summary, failures)

    def close(self) -> None:
        pass


class LiveView(_Base):
    """A live screen: the components table, the load counters and the latest log lines.

    The screen is transient and shows as much of the log as fits; when the demo ends it
    is replaced by the whole log, the final versions and the summary, so what stays in
    the scrollback is complete whatever the terminal's height.
    """

    REFRESH_PER_SECOND = 4  # a frame costs ~10-25 ms of the GIL the load also needs

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._demo: Demo | None = None
        self._log: list[RenderableType] = []  # the whole log, wrapped, for the scrollback
        self._rows: list[RenderableType] = []  # the same, one screen row per line
        self._lock = threading.Lock()
        self._live: Live | None = None

    def _render(self) -> RenderableType:
        demo = self._demo
        if demo is None:
            return Text("")
        table = self.components_table(demo, live=True)
        load = self.load_line(demo)
        load.no_wrap = True
        # title, the table's rows and its four rules, the load line
        room = max(3, self.console.height - table.row_count - 6)
        with self._lock:
            rows = self._rows[-room:]
        return Group(Text(self.TITLE, style="bold"), table, load, *rows)

    def begin(self, demo: Demo) -> None:
        self._demo = demo
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=self.REFRESH_PER_SECOND,
            transient=True,
            vertical_overflow="crop",
        )
        self._live.start()

    def _add(self, lines: list[RenderableType], rows: list[RenderableType]) -> None:
        with self._lock:
            self._log.extend(lines)
            self._rows.extend(rows)

    def step_started(self, index: int, total: int, step: Step) -> None:
        header = self.step_header(index, total, step)
        row = header.copy()
        row.no_wrap, row.overflow = True, "ellipsis"
        self._add([header], [row])

    def step_finished(self, outcome: StepOutcome) -> None:
        self._add(self.outcome_lines(outcome), self.outcome_lines(outcome, row=True))

    def event(self, line: LogLine) -> None:
        self._add([self.event_line(line)], [self.event_line(line, row=True)])

    def end(self, demo: Demo, summary: Summary, failures: Sequence[Failure]) -> None:
        self.close()
        self.console.print(Text(self.TITLE, style="bold"))
        with self._lock:
            log = list(self._log)
        for line in log:
            self.console.print(line)
        self.final(demo, summary, failures)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_view(file: TextIO, *, live: bool) -> View:
    """A live view on an interactive terminal when asked for, plain lines otherwise."""
    console = Console(file=file, highlight=False)
    if live and console.is_terminal and not console.is_dumb_terminal:
        return LiveView(console)
    # Plain lines go to logs and pipes: never wrap them at an assumed width, and give the
    # tables room there (a terminal keeps its own width).
    width = None if console.is_terminal else max(console.width, 120)
    return PlainView(Console(file=file, highlight=False, soft_wrap=True, width=width))
