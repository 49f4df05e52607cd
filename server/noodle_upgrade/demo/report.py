"""What the demo measured: every upgrade and rollback it ran, and the summary numbers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from noodle_upgrade.demo.loadgen import LoadTotals
from noodle_upgrade.models import UpgradeResult, UpgradeStatus
from noodle_upgrade.runtime.cache import CacheStats

OperationKind = Literal["upgrade", "rollback"]


@dataclass(frozen=True)
class Operation:
    kind: OperationKind
    result: UpgradeResult
    started: float  # time.perf_counter() around the call, to find the calls it overlapped
    finished: float


class Ledger:
    """Every operation the demo asked the runtime for, in order."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def record(
        self, kind: OperationKind, result: UpgradeResult, started: float, finished: float
    ) -> None:
        self.operations.append(Operation(kind, result, started, finished))

    def _results(self, kind: OperationKind) -> list[UpgradeResult]:
        return [op.result for op in self.operations if op.kind == kind]

    @property
    def upgrades(self) -> int:
        """Successful upgrades."""
        return sum(r.success for r in self._results("upgrade"))

    @property
    def rollbacks(self) -> int:
        """Successful rollbacks the demo saw return: asked for, or automatic (a rollout the
        analysis rolled back). Blue-green switch-backs run on the engine's own thread and
        are counted from its events (see :func:`summarize`)."""
        manual = sum(r.success for r in self._results("rollback"))
        return manual + self.rolled_back

    @property
    def rolled_back(self) -> int:
        """Upgrades that went live on some calls and were rolled back automatically."""
        return sum(r.status is UpgradeStatus.ROLLED_BACK for r in self._results("upgrade"))

    @property
    def refused(self) -> int:
        """Upgrades that did not go through: refused, failed, or rolled back automatically."""
        return sum(not r.success for r in self._results("upgrade"))

    @property
    def strategies(self) -> list[str]:
        """The strategies the upgrades asked for, in first-use order."""
        names = [r.strategy for r in self._results("upgrade")]
        return list(dict.fromkeys(names))

    @property
    def switch_ms(self) -> list[float]:
        """Every measured switch (upgrades and rollbacks), in milliseconds."""
        return [
            float(op.result.metrics["switch_ms"])
            for op in self.operations
            if "switch_ms" in op.result.metrics
        ]

    @property
    def upgrade_total_ms(self) -> list[float]:
        return [
            float(r.metrics["total_ms"])
            for r in self._results("upgrade")
            if r.success and "total_ms" in r.metrics
        ]

    @property
    def windows(self) -> list[tuple[float, float]]:
        return [(op.started, op.finished) for op in self.operations]


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0.0 when there are none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def during(
    timings: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]]
) -> list[float]:
    """Latencies of the calls that overlapped one of ``windows``."""
    return [
        latency
        for start, latency in timings
        if any(start <= end and start + latency >= begin for begin, end in windows)
    ]


@dataclass(frozen=True)
class Summary:
    calls: int
    errors: int
    wrong_answers: int
    calls_per_s: float
    upgrades: int
    rollbacks: int  # asked for, plus automatic ones
    automatic_rollbacks: int  # rolled back by a rollout's analysis or a blue-green watch
    refused: int
    strategies: list[str]
    swap_p99_ms: float
    swap_max_ms: float
    upgrade_p50_ms: float
    call_p50_ms: float
    call_p99_ms: float
    call_p99_during_ops_ms: float
    audit_ok: bool
    audit_records: int
    state_ok: bool  # the memory manager's counters account for every call, nothing leaked
    steps_ok: bool  # every step ended as the story expects (e.g. the faulty release refused)
    cache_hits: int  # the compile cache (version-keyed: it empties itself on every swap)
    cache_misses: int
    cache_invalidations: int
    duration_s: float

    @property
    def ok(self) -> bool:
        return (
            self.errors == 0
            and self.wrong_answers == 0
            and self.audit_ok
            and self.state_ok
            and self.steps_ok
            and self.automatic_rollbacks >= 1
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = round(value, 4)
        data["ok"] = self.ok
        return data


def summarize(
    ledger: Ledger,
    totals: LoadTotals,
    timings: Sequence[tuple[float, float]],
    *,
    audit_ok: bool,
    audit_records: int,
    state_ok: bool,
    steps_ok: bool,
    automatic_rollbacks: int,
    switch_backs: int,
    cache: CacheStats,
    duration_s: float,
) -> Summary:
    """The summary; ``automatic_rollbacks`` and ``switch_backs`` (the blue-green ones among
    them) come from the engine's events, ``cache`` from the compile cache."""
    latencies_ms = [latency * 1e3 for _, latency in timings]
    during_ms = [latency * 1e3 for latency in during(timings, ledger.windows)]
    switches = ledger.switch_ms
    return Summary(
        calls=totals.calls,
        errors=totals.errors,
        wrong_answers=totals.wrong_answers,
        calls_per_s=totals.rate,
        upgrades=ledger.upgrades,
        rollbacks=ledger.rollbacks + switch_backs,
        automatic_rollbacks=automatic_rollbacks,
        refused=ledger.refused,
        strategies=ledger.strategies,
        swap_p99_ms=percentile(switches, 99),
        swap_max_ms=max(switches, default=0.0),
        upgrade_p50_ms=percentile(ledger.upgrade_total_ms, 50),
        call_p50_ms=percentile(latencies_ms, 50),
        call_p99_ms=percentile(latencies_ms, 99),
        call_p99_during_ops_ms=percentile(during_ms, 99),
        audit_ok=audit_ok,
        audit_records=audit_records,
        state_ok=state_ok,
        steps_ok=steps_ok,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        cache_invalidations=cache.invalidations,
        duration_s=duration_s,
    )
