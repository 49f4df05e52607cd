"""ALE interception, recording and routing on real numpy, real SQLite files, real processes."""

from __future__ import annotations

import inspect
import pickle
import pydoc
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
from numpy import dot as dot_taken_before_enable

from helpers.cli import TIMEOUT_S, assert_one_line_error, environment
from helpers.project import Project
from noodle_upgrade import ale
from noodle_upgrade.ale.dispatcher import WARM_SAMPLES
from noodle_upgrade.ale.model import Candidate, Status
from noodle_upgrade.ale.recorder import Limits
from noodle_upgrade.errors import ValidationError
from noodle_upgrade.store import Store
from noodle_upgrade.store.ale import AleStore, SignatureRecord, load_input

ORIGINAL_DOT = numpy.dot
ORIGINAL_MATMUL = numpy.matmul
LISTS_KEY = "list[float](3), list[float](3)"
ARRAYS_KEY = "ndarray[float64](8)C, ndarray[float64](8)C"
HOUR = 3600.0  # no background flush during a test: flushes happen where the test says


@pytest.fixture(autouse=True)
def disabled_after() -> Iterator[None]:
    """Whatever a test does, numpy is itself again afterwards."""
    yield
    ale.disable()
    assert numpy.dot is ORIGINAL_DOT and numpy.matmul is ORIGINAL_MATMUL


def call_dot_on_lists(a: list[float], b: list[float]) -> Any:
    return numpy.dot(a, b)  # the call site the tests look for


LISTS_SITE = f"{Path(__file__).resolve()}:{call_dot_on_lists.__code__.co_firstlineno + 1}"


def signatures(db_path: Path) -> dict[tuple[str, str], SignatureRecord]:
    with Store.open(db_path) as store:
        found = AleStore(store).signatures()
    return {(record.function, record.signature): record for record in found}


def function_calls(db_path: Path) -> dict[str, int]:
    with Store.open(db_path) as store:
        return AleStore(store).function_calls()


def promote(db_path: Path, key: str, source: str, *, function: str = "numpy.dot") -> str:
    """A candidate for ``key`` stored and promoted, as `noodle ale approve` would."""
    with Store.open(db_path) as store:
        ale_store = AleStore(store)
        candidate = Candidate(
            id=f"c{len(ale_store.candidates())}",
            function=function,
            signature=key,
            family="test",
            source=source,
        )
        ale_store.insert_candidate(candidate, status=Status.VALIDATED)
        ale_store.set_status(candidate.id, Status.PROMOTED, actor="test")
    return candidate.id


MARKER_SOURCE = "def candidate(a, b):\n    return ('routed', len(a))\n"


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args] if not code else [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=environment(),
        cwd=cwd,
    )


# -- interception -----------------------------------------------------------------------


def test_disable_restores_the_very_objects_it_replaced(db_path: Path) -> None:
    ale.enable(db_path)
    assert numpy.dot is not ORIGINAL_DOT and numpy.matmul is not ORIGINAL_MATMUL
    ale.disable()
    assert numpy.dot is ORIGINAL_DOT and numpy.matmul is ORIGINAL_MATMUL
    ale.disable()  # idempotent
    assert numpy.dot is ORIGINAL_DOT


def test_originals_come_back_when_the_block_raises(db_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), ale.enable(db_path, flush_seconds=HOUR):
        call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        _ = 1 / 0
    assert numpy.dot is ORIGINAL_DOT and numpy.matmul is ORIGINAL_MATMUL
    assert signatures(db_path)["numpy.dot", LISTS_KEY].sites == {LISTS_SITE: 1}


def test_a_second_enable_extends_the_session(db_path: Path) -> None:
    first = ale.enable(db_path, targets=["numpy.dot"])
    wrapper = numpy.dot
    assert numpy.matmul is ORIGINAL_MATMUL
    second = ale.enable(db_path, targets=["numpy.dot", "numpy.matmul"])
    assert second is first and numpy.dot is wrapper  # the dot wrapper was left alone
    assert numpy.matmul is not ORIGINAL_MATMUL
    assert second.targets == ("numpy.dot", "numpy.matmul")


def test_unknown_or_uncallable_targets_are_refused_and_nothing_is_patched(db_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        ale.enable(db_path, ["numpy.dot", "numpy.dott", "nodots", "numpy.pi", "nosuchmodule.f"])
    message = refused.value.message
    for part in ("numpy.dott", "nodots", "numpy.pi", "not callable", "nosuchmodule", "module."):
        assert part in message
    assert "'numpy.dot' (" not in message  # the good one is not blamed
    assert numpy.dot is ORIGINAL_DOT and ale.current() is None
    assert not db_path.exists()


def test_enable_on_another_store_is_refused(db_path: Path, tmp_path: Path) -> None:
    session = ale.enable(db_path)
    with pytest.raises(ValidationError, match="already enabled"):
        ale.enable(tmp_path / "other.db")
    assert ale.current() is session and numpy.dot is not ORIGINAL_DOT


@pytest.mark.parametrize("rate", [0, -0.5, 1.5, "often"])
def test_a_sample_rate_outside_zero_one_is_refused(db_path: Path, rate: Any) -> None:
    with pytest.raises(ValidationError, match="sample_rate"):
        ale.enable(db_path, sample_rate=rate)
    assert numpy.dot is ORIGINAL_DOT


def test_the_wrapper_reads_like_the_original(db_path: Path) -> None:
    ale.enable(db_path)
    assert inspect.signature(numpy.dot) == inspect.signature(ORIGINAL_DOT)
    assert numpy.dot.__doc__ == ORIGINAL_DOT.__doc__
    assert numpy.dot.__name__ == "dot" and numpy.dot.__module__ == "numpy"
    assert "dot(a, b, out=None)" in pydoc.render_doc(numpy.dot)
    assert numpy.matmul.nin == 2 and numpy.matmul.__name__ == "matmul"
    assert pickle.loads(pickle.dumps(numpy.dot)) is numpy.dot


def test_a_name_taken_with_from_import_before_enable_is_not_intercepted(db_path: Path) -> None:
    with ale.enable(db_path, flush_seconds=HOUR):
        for _ in range(3):
            dot_taken_before_enable([1.0, 2.0], [3.0, 4.0])
        numpy.dot([1.0, 2.0], [3.0, 4.0])
    assert function_calls(db_path)["numpy.dot"] == 1


UNROUTED_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("numpy.dot", ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), {}),
    ("numpy.dot", ([1, 2, 3], [4, 5, 6]), {}),
    ("numpy.dot", ([True, False], [True, True]), {}),
    ("numpy.dot", (numpy.arange(8.0), numpy.arange(8.0)), {}),
    ("numpy.dot", (numpy.ones((2, 3)), numpy.ones((3, 2))), {}),
    ("numpy.dot", (3, 4), {}),
    ("numpy.dot", (numpy.arange(3.0), numpy.arange(3.0), numpy.empty(())), {}),
    ("numpy.dot", (numpy.arange(3.0),), {"b": numpy.arange(3.0)}),
    ("numpy.matmul", (numpy.ones((2, 2)), numpy.ones((2, 2))), {}),
    ("numpy.matmul", (numpy.ones((2, 2)), numpy.ones((2, 2))), {"dtype": numpy.float32}),
    ("numpy.matmul", (numpy.arange(6).reshape(2, 3), numpy.arange(6).reshape(3, 2)), {}),
]


@pytest.mark.parametrize(("target", "args", "kwargs"), UNROUTED_CALLS)
def test_an_unrouted_call_returns_what_the_original_returns(
    db_path: Path, target: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    original = {"numpy.dot": ORIGINAL_DOT, "numpy.matmul": ORIGINAL_MATMUL}[target]
    expected = original(*args, **kwargs)
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR):
        wrapped = getattr(numpy, target.rpartition(".")[2])
        got = [wrapped(*args, **kwargs) for _ in range(3)]  # sampled and unsampled alike
    for result in got:
        assert type(result) is type(expected)
        assert getattr(result, "dtype", None) == getattr(expected, "dtype", None)
        assert numpy.array_equal(result, expected)


def test_an_unrouted_call_raises_what_the_original_raises(db_path: Path) -> None:
    with pytest.raises(ValueError) as expected:
        ORIGINAL_DOT(numpy.ones(3), numpy.ones(4))
    with ale.enable(db_path), pytest.raises(ValueError) as got:
        numpy.dot(numpy.ones(3), numpy.ones(4))
    assert str(got.value) == str(expected.value)


# -- recording --------------------------------------------------------------------------


def test_sampled_calls_are_recorded_with_signature_and_call_site(db_path: Path) -> None:
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR):
        for _ in range(5):
            call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        numpy.dot(numpy.arange(8.0), numpy.arange(8.0))
        fortran = numpy.ones((2, 3), order="F")
        numpy.matmul(fortran, numpy.ones((3, 2))[::1, :])
        numpy.matmul(numpy.ones((4, 4))[::2, ::2], numpy.ones((2, 2)))
        numpy.dot(numpy.arange(3.0), numpy.arange(3.0), out=numpy.empty(()))
        numpy.dot([1, 2], [True, 2.5])
    found = signatures(db_path)
    lists = found["numpy.dot", LISTS_KEY]
    assert (lists.calls, lists.sampled) == (5, 5) and lists.sites == {LISTS_SITE: 5}
    assert lists.total_ns > 0
    assert set(found) == {
        ("numpy.dot", LISTS_KEY),
        ("numpy.dot", ARRAYS_KEY),
        ("numpy.matmul", "ndarray[float64](2,3)F, ndarray[float64](3,2)C"),
        ("numpy.matmul", "ndarray[float64](2,2)N, ndarray[float64](2,2)C"),
        ("numpy.dot", "ndarray[float64](3)C, ndarray[float64](3)C, out=ndarray[float64]()C"),
        ("numpy.dot", "list[int](2), list[mixed](2)"),
    }
    this_file = str(Path(__file__).resolve())
    assert all(site.startswith(this_file + ":") for r in found.values() for site in r.sites)
    assert function_calls(db_path) == {"numpy.dot": 8, "numpy.matmul": 2}


def test_one_call_in_n_is_sampled_and_stands_for_n(db_path: Path) -> None:
    with ale.enable(db_path, sample_rate=1 / 16, warm_seconds=0.0, flush_seconds=HOUR):
        for _ in range(1600):
            call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    lists = signatures(db_path)["numpy.dot", LISTS_KEY]
    assert lists.sampled == 1600 // 16
    assert 1600 - 16 < lists.calls <= 1600  # an estimate within one interval
    assert function_calls(db_path)["numpy.dot"] == 1600  # exact


def test_warm_up_samples_every_early_call_up_to_its_cap(db_path: Path) -> None:
    with ale.enable(db_path, sample_rate=1 / 1000, warm_seconds=HOUR, flush_seconds=HOUR):
        for _ in range(WARM_SAMPLES + 200):
            call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert signatures(db_path)["numpy.dot", LISTS_KEY].sampled == WARM_SAMPLES


def test_usage_is_written_in_one_transaction_per_flush_not_per_call(db_path: Path) -> None:
    statements: list[str] = []
    with Store.open(db_path) as store:
        store._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        session = ale.enable(store, sample_rate=1, flush_seconds=HOUR)
        for index in range(200):
            call_dot_on_lists([1.0, 2.0, float(index)], [4.0, 5.0, 6.0])
            numpy.dot(numpy.arange(8.0), numpy.arange(8.0))
        written_before_flush = [s for s in statements if s.startswith("BEGIN IMMEDIATE")]
        assert written_before_flush == [] and signatures(db_path) == {}
        session.flush()
        ale.disable()
    transactions = [s for s in statements if s.startswith("BEGIN IMMEDIATE")]
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(transactions) == 1  # disable found nothing new to write
    assert len(inserts) < 60  # rows of aggregates and kept inputs, not 400 calls
    assert signatures(db_path)["numpy.dot", LISTS_KEY].calls == 200


def test_what_was_recorded_is_flushed_when_the_process_exits(db_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import numpy
        from noodle_upgrade import ale
        ale.enable({str(db_path)!r}, flush_seconds=3600)
        for _ in range(7):
            numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        """
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert signatures(db_path)["numpy.dot", LISTS_KEY].calls == 7


def test_the_reservoir_keeps_k_real_inputs(db_path: Path) -> None:
    limits = Limits(reservoir_size=4)
    made = [([1.0, 2.0, float(i)], [4.0, 5.0, 6.0]) for i in range(50)]
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR, limits=limits):
        for a, b in made:
            call_dot_on_lists(a, b)
    with Store.open(db_path) as store:
        blobs = AleStore(store).input_blobs("numpy.dot", LISTS_KEY)
    kept = [load_input(blob) for blob in blobs]
    assert len(kept) == 4
    assert all(any(list(args) == list(pair) for pair in made) for args in kept)


def test_no_inputs_are_kept_when_told_not_to(db_path: Path) -> None:
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR, keep_inputs=False):
        for _ in range(20):
            call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    with Store.open(db_path) as store:
        assert AleStore(store).input_blobs("numpy.dot", LISTS_KEY) == []
    assert signatures(db_path)["numpy.dot", LISTS_KEY].calls == 20


def test_inputs_larger_than_the_cap_are_not_kept(db_path: Path) -> None:
    limits = Limits(max_input_bytes=1000)
    big = numpy.arange(1000.0)
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR, limits=limits):
        numpy.dot(big, big)
        numpy.dot(numpy.arange(8.0), numpy.arange(8.0))
    with Store.open(db_path) as store:
        ale_store = AleStore(store)
        assert (
            ale_store.input_blobs("numpy.dot", "ndarray[float64](1000)C, ndarray[float64](1000)C")
            == []
        )
        assert len(ale_store.input_blobs("numpy.dot", ARRAYS_KEY)) == 1


def test_distinct_signatures_past_the_cap_are_counted_together(db_path: Path) -> None:
    with ale.enable(
        db_path, warm_seconds=HOUR, flush_seconds=HOUR, limits=Limits(max_signatures=3)
    ):
        for length in range(1, 7):
            numpy.dot([1.0] * length, [2.0] * length)
    found = signatures(db_path)
    assert len(found) == 4 and found["numpy.dot", "(other)"].calls == 3


def test_threads_calling_together_lose_no_counts(db_path: Path) -> None:
    threads, calls = 8, 2000
    session = ale.enable(db_path, sample_rate=1 / 32, flush_seconds=HOUR)
    start = threading.Barrier(threads)

    def hammer() -> None:
        start.wait()
        for _ in range(calls):
            numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert session.stats()["numpy.dot"].calls == threads * calls
    ale.disable()
    assert function_calls(db_path)["numpy.dot"] == threads * calls
    estimated = signatures(db_path)["numpy.dot", LISTS_KEY].calls
    assert threads * calls - 32 * threads <= estimated <= threads * calls


# -- routes -----------------------------------------------------------------------------


def test_refresh_routes_serves_a_newly_promoted_candidate(db_path: Path) -> None:
    session = ale.enable(db_path, flush_seconds=HOUR)
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    promote(db_path, LISTS_KEY, MARKER_SOURCE)
    assert ale.refresh_routes() == 1
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == ("routed", 3)
    # Only calls with exactly the route's signature are served by it.
    assert numpy.dot([1.0, 2.0, 3.0, 4.0], [4.0, 5.0, 6.0, 7.0]) == 60.0
    assert numpy.dot([1, 2, 3], [4, 5, 6]) == 32
    assert numpy.dot([1.0, 2.0, 3], [4.0, 5.0, 6.0]) == 32.0
    assert numpy.dot(a=[1.0, 2.0, 3.0], b=[4.0, 5.0, 6.0]) == ("routed", 3)  # bound alike
    assert numpy.dot(numpy.arange(3.0), numpy.arange(3.0), numpy.empty(())) == 5.0
    assert session.stats()["numpy.dot"].routes == 1


def test_a_new_process_serves_the_routes_left_in_the_store(db_path: Path) -> None:
    promote(db_path, LISTS_KEY, MARKER_SOURCE)
    promote(
        db_path,
        "ndarray[float64](2,2)C, ndarray[float64](2,2)C",
        "def candidate(x1, x2):\n    return 'matmul routed'\n",
        function="numpy.matmul",
    )
    code = textwrap.dedent(
        f"""
        import numpy
        from noodle_upgrade import ale
        ale.enable({str(db_path)!r})
        print(numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
        print(numpy.matmul(numpy.ones((2, 2)), numpy.ones((2, 2))))
        print(numpy.matmul(numpy.ones((2, 2), order="F")[::1], numpy.ones((2, 2)).T))
        """
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["('routed', 3)", "matmul routed"]
    assert "routed" not in done.stdout.splitlines()[2]  # other layouts: the original


def test_routes_change_under_calling_threads_without_a_wrong_answer(db_path: Path) -> None:
    candidate_id = promote(db_path, LISTS_KEY, MARKER_SOURCE)
    session = ale.enable(db_path, sample_rate=1 / 8, flush_seconds=HOUR)
    answers: set[Any] = set()
    failures: list[BaseException] = []
    done = threading.Event()

    def call() -> None:
        try:
            while not done.is_set():
                answers.add(numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
                answers.add(numpy.dot([1.0, 2.0], [3.0, 4.0]))
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=call) for _ in range(4)]
    for worker in workers:
        worker.start()
    with Store.open(db_path) as store:
        for flip in range(40):
            serving = flip % 2 == 1
            status = Status.PROMOTED if serving else Status.DEMOTED
            AleStore(store).set_status(candidate_id, status, actor="test")
            session.refresh_routes()
            expected = ("routed", 3) if serving else 32.0
            assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == expected
    done.set()
    for worker in workers:
        worker.join()
    assert failures == []
    assert answers <= {32.0, ("routed", 3), 11.0}


def test_a_candidate_that_raises_falls_back_to_the_original(db_path: Path) -> None:
    promote(db_path, LISTS_KEY, "def candidate(a, b):\n    raise RuntimeError('boom')\n")
    session = ale.enable(db_path, flush_seconds=HOUR)
    assert session.stats()["numpy.dot"].routes == 1
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    stats = session.stats()["numpy.dot"]
    assert (stats.fallbacks, stats.routes) == (1, 0)  # retired here after the first
    session.refresh_routes()
    assert session.stats()["numpy.dot"].routes == 0  # and not brought back by a refresh


class RecordingHook:
    """A promotion hook that admits what it is told to and remembers what it heard."""

    def __init__(self, admit: bool) -> None:
        self.admitting = admit
        self.heard: list[tuple[tuple[Any, ...], object, int]] = []

    def admit(self) -> bool:
        return self.admitting

    def on_call(self, args: tuple[Any, ...], result_or_exc: object, duration_ns: int) -> None:
        self.heard.append((args, result_or_exc, duration_ns))


def test_a_hook_hears_every_call_its_candidate_served_and_its_failure(db_path: Path) -> None:
    promote(db_path, LISTS_KEY, MARKER_SOURCE)
    promote(db_path, "list[float](2), list[float](2)", "def candidate(a, b):\n    return 1 / 0\n")
    hooks: dict[str, RecordingHook] = {}

    def make_hook(record: Any, original: Any) -> RecordingHook:
        assert original is ORIGINAL_DOT
        return hooks.setdefault(record.signature, RecordingHook(admit=True))

    ale.enable(db_path, hooks=make_hook, flush_seconds=HOUR)
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == ("routed", 3)
    assert numpy.dot([1.0, 2.0], [3.0, 4.0]) == 11.0
    ((args, result, duration),) = hooks[LISTS_KEY].heard
    assert args == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) and result == ("routed", 3)
    assert duration > 0
    ((_, failure, _),) = hooks["list[float](2), list[float](2)"].heard
    assert isinstance(failure, ZeroDivisionError)


def test_a_canary_serves_only_what_its_hook_admits(db_path: Path) -> None:
    candidate_id = promote(db_path, LISTS_KEY, MARKER_SOURCE)
    with Store.open(db_path) as store:
        AleStore(store).set_status(candidate_id, Status.CANARY, actor="test")
    ale.enable(db_path, flush_seconds=HOUR)
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0  # no hook: no share
    ale.disable()
    hook = RecordingHook(admit=False)
    ale.enable(db_path, hooks=lambda record, original: hook, flush_seconds=HOUR)
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    hook.admitting = True
    assert numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == ("routed", 3)
    assert len(hook.heard) == 1


# -- inside an application, and without code changes ---------------------------------------


def test_enable_works_next_to_an_open_runtime(project: Project) -> None:
    project.constraints({})
    with project.open(control_enabled=False) as rt:
        with ale.enable(rt, flush_seconds=HOUR):  # shares the runtime's store
            numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        with ale.enable(project.root, flush_seconds=HOUR):  # a connection of its own
            numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        rt.status()  # the runtime's store is still open and usable
    assert signatures(project.db_path)["numpy.dot", LISTS_KEY].calls == 2


def write_script(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "app.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    return script


def test_run_records_a_script_without_code_changes(project: Project) -> None:
    project.constraints({})
    script = write_script(
        project.root / "src",
        """
        import sys
        import numpy
        print(sys.argv)
        for _ in range(4):
            numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])  # line 6
        sys.exit(3)
        """,
    )
    done = run_python(
        "", "-m", "noodle_upgrade.ale", "run", str(script), "--project", "x", cwd=project.root
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == repr([str(script), "--project", "x"])
    lists = signatures(project.db_path)["numpy.dot", LISTS_KEY]
    assert lists.calls == 4 and lists.sites == {f"{script}:6": 4}


def test_run_flushes_and_reports_a_script_that_raises(project: Project) -> None:
    project.constraints({})
    script = write_script(
        project.root,
        """
        import numpy
        numpy.dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        raise KeyError("boom")
        """,
    )
    done = run_python(
        "", "-m", "noodle_upgrade.ale", "run", "--project", str(project.root), str(script)
    )
    assert done.returncode == 1
    assert "KeyError: 'boom'" in done.stderr
    assert signatures(project.db_path)["numpy.dot", LISTS_KEY].calls == 1


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["run", "--targets", "numpy.nope", "app.py"], ["numpy.nope", "module.attribute"]),
        (["run", "--project", "missing", "app.py"], ["noodle.toml", "not found"]),
        (["run", "absent.py"], ["absent.py", "no such script"]),
        ([], ["required"]),
    ],
)
def test_run_errors_are_one_line(project: Project, args: list[str], parts: list[str]) -> None:
    project.constraints({})
    write_script(project.root, "print('ran')\n")
    done = run_python("", "-m", "noodle_upgrade.ale", *args, cwd=project.root)
    assert_one_line_error(done, *parts)
    assert "ran" not in done.stdout


def test_store_rows_are_readable_by_plain_sqlite(db_path: Path) -> None:
    with ale.enable(db_path, warm_seconds=HOUR, flush_seconds=HOUR):
        call_dot_on_lists([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT s.signature, t.site, t.calls FROM ale_sites AS t "
            "JOIN ale_signatures AS s ON s.id = t.signature_id"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [(LISTS_KEY, LISTS_SITE, 1)]
