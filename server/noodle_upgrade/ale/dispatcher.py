"""The wrapper installed over a target (``numpy.dot``): count, sample, route.

**The unrouted path** is what every call pays, so it is a counter and one comparison:
``n = next(counter)``; ``if n < gate`` call the original. ``gate`` is the number of the
call to sample next, or 0 while a route is live. The wrapper is generated with the
original's own parameters (``dot(a, b, out=…)``, ``matmul(x1, x2, /, out=…, **kwargs)``)
so that the common call forwards its arguments as they came, without ``*args``
re-packing; optional parameters default to a private sentinel and are forwarded only
when given, so the original sees exactly the call that was made. Its state is read from
the globals of its own namespace (see ``_TEMPLATE``). ``itertools.count`` counts: ``next``
on it is one C call, atomic under the GIL, so threads lose no counts. Measured on a
2-core VM (``bench/bench_ale_dispatch.py``): a forwarding Python function alone adds ~8%
to ``numpy.dot`` on two 8-element arrays, the counter ~8% more; that is the floor of any
interception in Python.

**Sampled calls** (every ``interval``-th call, and every call during a short warm-up so
that short scripts record something) compute the full signature, time the original with
``perf_counter_ns`` and hand key, duration and call site (``path:line`` of the caller) to
the recorder. A sample stands for the calls since the previous one (its weight), so the
recorded calls per signature add up to the calls made. A sampled call that raises is
passed on unrecorded: no candidate is wanted for a call the library refuses.

**Routed calls**: the wrapper's code is rewritten whenever the routes change (its
``__code__`` is swapped, so the function installed as ``numpy.dot`` stays the same
object) with each route's guard (``ale.signature.RouteGuard``: exact types, then length
and element types, or dtype, shape and layout) inlined, and the candidate called
directly: no lookup, no call per guard. A route may carry a ``RouteHook``
(``ale.promotion``): it decides which calls a canary takes (``admit``) and hears about
every call the candidate served (``on_call``). An exception inside a candidate never
reaches the caller: the original serves that call, the route is retired in this process,
and the hook is told (it demotes the candidate in the store).

Only calls that pass exactly the target's required positional arguments are routed; a
keyword or an optional argument sends the call to the original.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import keyword
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from inspect import Parameter
from time import perf_counter_ns
from types import FrameType, MappingProxyType
from typing import Any, Protocol

from noodle_upgrade.ale.model import Candidate
from noodle_upgrade.ale.recorder import site_of
from noodle_upgrade.ale.signature import GUARD_HELPERS, RouteGuard, compile_finder, describe_call
from noodle_upgrade.errors import NoodleError
from noodle_upgrade.store.ale import CandidateRecord

log = logging.getLogger("noodle_upgrade.ale")

WARM_SECONDS = 1.0  # every call is sampled this long after a target is wrapped…
WARM_SAMPLES = 256  # …but no more calls than this

_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})
_route_numbers = itertools.count()


class _Missing:
    """The default of a wrapper's optional parameters: "not given", never forwarded."""

    def __repr__(self) -> str:
        return "<not given>"


_MISSING = _Missing()


class RouteHook(Protocol):
    """What ``ale.promotion`` attaches to a route (canary share, shadow comparison).

    Both methods run on the caller's thread, inside the intercepted call: keep them
    short. Exceptions they raise are logged and never reach the caller.
    """

    def admit(self) -> bool:
        """Whether this call goes to the candidate; False serves it with the original."""
        ...

    def on_call(
        self, args: tuple[Any, ...], result_or_exc: object, duration_ns: int
    ) -> tuple[Any] | None:
        """The candidate served ``args``: its result, or the exception it raised (the
        caller then got the original's result, and the route is retired here), and how
        long the candidate took. ``(value,)`` makes the caller get ``value`` instead of the
        candidate's result (a shadow that found a mismatch has the original's)."""
        ...


# Given a live candidate and the target's original, the hook for its route, or None.
HookFactory = Callable[[CandidateRecord, Callable[..., Any]], RouteHook | None]


class Sink(Protocol):
    """Where sampled calls go: ``Recorder.record``."""

    def record(
        self,
        function: str,
        key: str,
        routable: bool,
        site: str,
        duration_ns: int | None,
        weight: int,
        args: tuple[Any, ...] | None,
    ) -> None: ...


@dataclass(eq=False, slots=True)
class Route:
    """A live candidate, ready to serve the calls its guard recognises."""

    record: CandidateRecord
    guard: RouteGuard
    candidate: Callable[..., Any]
    hook: RouteHook | None = None
    # Names the route in the wrappers it is inlined into; one per route, so rewriting a
    # wrapper for the same routes adds no names.
    number: int = field(init=False, default_factory=lambda: next(_route_numbers))


@dataclass(frozen=True)
class DispatchStats:
    function: str
    calls: int  # every call the wrapper received (exact)
    fallbacks: int  # candidate exceptions, each served by the original instead
    routes: int  # routes live now


def compile_candidate(candidate: Candidate) -> Callable[..., Any]:
    """The ``candidate`` function its source defines."""
    namespace: dict[str, Any] = {"__name__": f"noodle_upgrade.ale.candidate_{candidate.id}"}
    try:
        exec(compile(candidate.source, f"<ale candidate {candidate.id}>", "exec"), namespace)
    except Exception as exc:
        raise NoodleError(
            f"ALE candidate {candidate.id} for {candidate.function}({candidate.signature}) "
            f"does not load: {type(exc).__name__}: {exc}",
            code="ale-candidate-invalid",
        ) from exc
    function: Callable[..., Any] | None = namespace.get("candidate")
    if not callable(function):
        raise NoodleError(
            f"ALE candidate {candidate.id} for {candidate.function}({candidate.signature}) "
            "defines no function named 'candidate'",
            code="ale-candidate-invalid",
        )
    return function


class Dispatcher:
    """One intercepted target: ``wrapper`` replaces it; the rest steers the wrapper.

    A target whose parameters Python cannot read (``inspect.signature`` fails) is
    wrapped with ``*args, **kwargs`` and recorded, but never routed: a route needs to
    know which arguments are the positional ones.
    """

    def __init__(
        self,
        function: str,
        original: Callable[..., Any],
        sink: Sink,
        *,
        interval: int,
        warm_seconds: float = WARM_SECONDS,
        warm_samples: int = WARM_SAMPLES,
    ) -> None:
        self.function = function
        self.original = original
        self._sink = sink
        self._interval = interval
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._next_sample = 0
        self._last_sampled = -1
        self._warm_until = time.monotonic() + warm_seconds
        self._warm_left = warm_samples
        self._routes: tuple[Route, ...] = ()
        self._find: Callable[..., Route | None] = _no_route  # for the calls slow() routes
        self._retired: set[str] = set()  # candidates that raised here: never routed again
        self._fallbacks = 0
        self._record_failed = False
        self._code = _WrapperCode(self)
        self.wrapper = self._code.wrapper
        parameters = self._code.params
        # How many positional arguments a routable call has (None: never routed).
        self._arity = len(parameters.required) if parameters is not _GENERIC else None
        self._optional = parameters.optional
        self.wrapper.__noodle_ale__ = self  # type: ignore[attr-defined]

    @property
    def calls(self) -> int:
        return _count_of(self._counter)

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._routes

    def stats(self) -> DispatchStats:
        return DispatchStats(
            function=self.function,
            calls=self.calls,
            fallbacks=self._fallbacks,
            routes=len(self._routes),
        )

    def set_interval(self, interval: int) -> None:
        with self._lock:
            self._interval = interval
            if self._warm_left == 0:
                self._next_sample = min(self._next_sample, self.calls + interval)
            self._update_gates()

    def set_routes(self, routes: Iterable[Route]) -> None:
        """Serve these routes from now on (the first one per signature wins)."""
        kept: dict[str, Route] = {}
        for route in routes:
            if route.record.id not in self._retired:
                kept.setdefault(route.guard.key, route)
        chosen = tuple(kept.values())
        find = _no_route
        if chosen and self._arity is not None:
            find = compile_finder([(route.guard, route) for route in chosen], self._arity)
        with self._lock:
            self._routes, self._find = chosen, find
            self._code.route(chosen)
            self._update_gates()

    # -- what the wrapper calls ------------------------------------------------------------

    def slow(self, n: int, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """A call that is sampled, or that the wrapper cannot route itself."""
        weight = self._sample_weight(n)
        if weight:
            return self._sampled(args, kwargs, weight, sys._getframe(2))
        route = self._route_for(args, kwargs)
        return self.serve(route, args) if route is not None else self.original(*args, **kwargs)

    def serve(self, route: Route, args: tuple[Any, ...]) -> Any:
        """The candidate's answer, or the original's when it raises or the hook declines."""
        hook = route.hook
        if hook is None:
            try:
                return route.candidate(*args)
            except Exception as exc:
                return self.fall_back(route, args, exc, 0)
        if not _admitted(hook, route):
            return self.original(*args)
        start = perf_counter_ns()
        try:
            result = route.candidate(*args)
        except Exception as exc:
            return self.fall_back(route, args, exc, perf_counter_ns() - start)
        replaced = _notify(hook, route, args, result, perf_counter_ns() - start)
        return result if replaced is None else replaced[0]

    def fall_back(
        self, route: Route, args: tuple[Any, ...], exc: Exception, duration_ns: int
    ) -> Any:
        """The candidate raised: retire its route here, tell its hook, serve the original."""
        with self._lock:
            self._fallbacks += 1
            self._retired.add(route.record.id)
            remaining = [r for r in self._routes if r is not route]
        self.set_routes(remaining)
        log.warning(
            "ALE: candidate %s for %s(%s) raised %s: %s; the original serves these calls again",
            route.record.id,
            self.function,
            route.record.signature,
            type(exc).__name__,
            exc,
        )
        if route.hook is not None:
            _notify(route.hook, route, args, exc, duration_ns)
        return self.original(*args)

    # -- inside -----------------------------------------------------------------------------

    def _route_for(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Route | None:
        if kwargs or len(args) != self._arity:
            return None
        return self._find(*args)

    def _sampled(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], weight: int, caller: FrameType
    ) -> Any:
        site = site_of(caller.f_code.co_filename, caller.f_lineno)
        route = self._route_for(args, kwargs)
        if route is not None:
            self._record(route.record.signature, True, site, None, weight, None)
            return self.serve(route, args)
        key, routable = self._describe(args, kwargs)
        start = perf_counter_ns()
        result = self.original(*args, **kwargs)
        duration = perf_counter_ns() - start
        self._record(key, routable, site, duration, weight, args if routable else None)
        return result

    def _describe(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, bool]:
        """The call's key and routability, optional parameters named even when given by
        position: a call that gives them is not routable, and its key says so."""
        arity = self._arity
        if arity is not None and len(args) > arity:
            named = dict(zip(self._optional, args[arity:], strict=False))
            extra = args[arity + len(named) :]  # *args beyond the optional parameters
            args, kwargs = args[:arity] + extra, {**named, **kwargs}
        key, _, routable = describe_call(args, kwargs)
        return key, routable

    def _sample_weight(self, n: int) -> int:
        """0 when call ``n`` is not sampled, else how many calls its sample stands for."""
        if n < self._next_sample:
            return 0
        with self._lock:
            if n < self._next_sample:
                return 0
            weight = n - self._last_sampled if n > self._last_sampled else 1
            self._last_sampled = max(n, self._last_sampled)
            self._next_sample = n + self._current_interval()
            self._update_gates()
            return weight

    def _current_interval(self) -> int:
        """Until the next sample: 1 while warming up (this sample counts), else interval."""
        if self._warm_left > 0:
            self._warm_left -= 1
            if self._warm_left > 0 and time.monotonic() < self._warm_until:
                return 1
            self._warm_left = 0
        return self._interval

    def _update_gates(self) -> None:
        # Under self._lock. Unrouted: below the next sample the original, from it slow().
        # Routed: below the next sample the wrapper routes itself, from it slow().
        gate = 0 if self._routes else self._next_sample
        self._code.steer(gate, self._next_sample)

    def _record(
        self,
        key: str,
        routable: bool,
        site: str,
        duration_ns: int | None,
        weight: int,
        args: tuple[Any, ...] | None,
    ) -> None:
        try:
            self._sink.record(self.function, key, routable, site, duration_ns, weight, args)
        except Exception:  # recording must never break the call it watches
            if not self._record_failed:
                self._record_failed = True
                log.exception("ALE: recording a call of %s failed", self.function)


def _no_route(*args: Any) -> None:
    return None


def _admitted(hook: RouteHook, route: Route) -> bool:
    try:
        return bool(hook.admit())
    except Exception:
        log.exception("ALE: the hook of candidate %s failed to admit a call", route.record.id)
        return False


def _notify(
    hook: RouteHook, route: Route, args: tuple[Any, ...], outcome: object, duration_ns: int
) -> tuple[Any] | None:
    try:
        return hook.on_call(args, outcome, duration_ns)
    except Exception:
        log.exception("ALE: the hook of candidate %s failed on a call", route.record.id)
        return None


def _count_of(counter: itertools.count[int]) -> int:
    # itertools.count shows its next value in its repr; reading it must not advance it.
    return int(repr(counter)[len("count(") : -1])


# -- the generated wrapper ------------------------------------------------------------

_PREFIX = "_ale_"


@dataclass(frozen=True)
class _Parameters:
    """The original's parameters as the wrapper copies them."""

    text: str  # the wrapper's parameter list
    required: tuple[str, ...]  # forwarded as they are, by position
    optional: tuple[str, ...]  # default to the sentinel; forwarded only when given
    rest: bool  # *args
    keywords: bool  # keyword-only parameters or **kwargs, gathered in one **kwargs


_GENERIC = _Parameters(f"*{_PREFIX}rest, **{_PREFIX}kw", (), (), rest=True, keywords=True)


def _parameters(original: Callable[..., Any]) -> _Parameters | None:
    """How to copy the original's parameters; None when its signature is unknown or odd."""
    try:
        params = list(inspect.signature(original).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in positional]
    if any(not name.isidentifier() or keyword.iskeyword(name) for name in names):
        return None
    if any(name.startswith(_PREFIX) for name in names):
        return None
    pieces: list[str] = []
    required: list[str] = []
    optional: list[str] = []
    for index, param in enumerate(params):
        if param.kind not in positional:
            continue
        if param.default is Parameter.empty:
            if optional:
                return None  # a required parameter after an optional one: not Python
            required.append(param.name)
            pieces.append(param.name)
        else:
            optional.append(param.name)
            pieces.append(f"{param.name}={_PREFIX}M")
        following = params[index + 1] if index + 1 < len(params) else None
        if param.kind is Parameter.POSITIONAL_ONLY and (
            following is None or following.kind is not Parameter.POSITIONAL_ONLY
        ):
            pieces.append("/")
    rest = any(p.kind is Parameter.VAR_POSITIONAL for p in params)
    keywords = any(p.kind in (Parameter.KEYWORD_ONLY, Parameter.VAR_KEYWORD) for p in params)
    if rest:
        pieces.append(f"*{_PREFIX}rest")
    if keywords:
        pieces.append(f"**{_PREFIX}kw")
    return _Parameters(", ".join(pieces), tuple(required), tuple(optional), rest, keywords)


# The wrapper's state lives in the globals of its own namespace, not in closure cells: a
# call copies every cell of a closure into its frame, while a global is read only where
# it is used, and rebinding one does not unspecialise the loads (3.11 caches them on the
# dict's keys). So the unrouted path pays for what it reads: the counter and a gate.
# {routing} is the routes' guards, inlined: the wrapper's code is rewritten when they
# change (``__code__`` is swapped, so the function, installed as numpy.dot, stays the same).
_TEMPLATE = """\
def {name}({params}):
    _ale_n = _ale_next(_ale_counter)
    if {plain}:
        if _ale_n < _ale_gate:
            return _ale_original({required})
        if _ale_n < _ale_sample_gate:
{routing}
        return _ale_slow(_ale_n, ({required_tuple}), _ale_NOKW)
    _ale_args, _ale_kwargs = _ale_pack(({required_tuple}), ({optional_tuple}), {rest}, {kw})
    if _ale_n < _ale_gate:
        return _ale_original(*_ale_args, **_ale_kwargs)
    return _ale_slow(_ale_n, _ale_args, _ale_kwargs)
"""
_ROUTING_INDENT = " " * 12


class _WrapperCode:
    """Writes the wrapper, and rewrites its code when the routes change."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        original = dispatcher.original
        self.params = _parameters(original) or _GENERIC
        name = getattr(original, "__name__", "")
        if not (isinstance(name, str) and name.isidentifier()) or name.startswith(_PREFIX):
            name = f"{_PREFIX}wrapper"
        self._name = name
        self._namespace: dict[str, Any] = {
            "__builtins__": __builtins__,
            "_ale_next": next,
            "_ale_counter": dispatcher._counter,
            "_ale_original": original,
            "_ale_gate": 0,  # below: the original serves, unrouted and unsampled
            "_ale_sample_gate": 0,  # below (from _ale_gate on): the wrapper routes the call
            "_ale_M": _MISSING,
            "_ale_NOKW": _NO_KWARGS,
            "_ale_pack": _packer(self.params.optional),
            "_ale_slow": dispatcher.slow,
            "_ale_serve": dispatcher.serve,
            "_ale_fall_back": dispatcher.fall_back,
            **GUARD_HELPERS,
        }
        self.wrapper = self._compile(())
        _dress(self.wrapper, original)

    def route(self, routes: Sequence[Route]) -> None:
        """Rewrite the wrapper to test these routes' guards itself, in this order."""
        self.wrapper.__code__ = self._compile(routes).__code__

    def steer(self, gate: int, sample_gate: int) -> None:
        # Dict stores: atomic, and they leave the wrapper's specialised loads valid.
        self._namespace["_ale_sample_gate"] = sample_gate
        self._namespace["_ale_gate"] = gate

    def _compile(self, routes: Sequence[Route]) -> Callable[..., Any]:
        params = self.params
        plain = [f"{p} is _ale_M" for p in params.optional]
        plain += [f"not {_PREFIX}rest"] if params.rest else []
        plain += [f"not {_PREFIX}kw"] if params.keywords else []
        source = _TEMPLATE.format(
            name=self._name,
            params=params.text,
            plain=" and ".join(plain) or "True",
            required=", ".join(params.required),
            required_tuple=_tuple_text(params.required),
            optional_tuple=_tuple_text(params.optional),
            rest=f"{_PREFIX}rest" if params.rest else "()",
            kw=f"{_PREFIX}kw" if params.keywords else "None",
            routing="\n".join(_ROUTING_INDENT + line for line in self._routing(routes)),
        )
        # New names only (unique per guard and route): code still running keeps its own.
        namespace = self._namespace
        exec(compile(source, f"<ale wrapper of {self._name}>", "exec"), namespace)
        compiled: Callable[..., Any] = namespace.pop(self._name)
        return compiled

    def _routing(self, routes: Sequence[Route]) -> list[str]:
        """The body that serves a routed call: each guard in turn, else the original."""
        required = self.params.required
        if self.params is _GENERIC:
            return ["pass  # unknown parameters: never routed"]
        args, args_tuple = ", ".join(required), _tuple_text(required)
        lines: list[str] = []
        for route in routes:
            if len(route.guard.types) != len(required):
                continue
            number = route.number
            self._namespace.update(route.guard.constants)
            self._namespace[f"_ale_route_{number}"] = route
            self._namespace[f"_ale_candidate_{number}"] = route.candidate
            lines.append(f"if {route.guard.test(required)}:")
            if route.hook is not None:
                lines.append(f"    return _ale_serve(_ale_route_{number}, ({args_tuple}))")
                continue
            lines += [
                "    try:",
                f"        return _ale_candidate_{number}({args})",
                "    except Exception as _ale_exc:",
                f"        return _ale_fall_back(_ale_route_{number}, ({args_tuple}), _ale_exc, 0)",
            ]
        return [*lines, f"return _ale_original({args})"]


def _tuple_text(names: tuple[str, ...]) -> str:
    return "".join(f"{name}, " for name in names)


def _packer(
    optional: tuple[str, ...],
) -> Callable[..., tuple[tuple[Any, ...], Mapping[str, Any]]]:
    """Rebuilds a call's (args, kwargs) from the wrapper's parameters, as it was made."""

    def pack(
        required: tuple[Any, ...],
        given: tuple[Any, ...],
        rest: tuple[Any, ...],
        kw: Mapping[str, Any] | None,
    ) -> tuple[tuple[Any, ...], Mapping[str, Any]]:
        args = list(required)
        kwargs: dict[str, Any] = dict(kw) if kw else {}
        skipped = False
        for name, value in zip(optional, given, strict=True):
            if value is _MISSING:
                skipped = True
            elif skipped:  # after a gap only keywords can have given it
                kwargs[name] = value
            else:
                args.append(value)
        args.extend(rest)
        return tuple(args), kwargs

    return pack


def _dress(wrapper: Callable[..., Any], original: Callable[..., Any]) -> None:
    """Make the wrapper read like the original: name, doc, signature (``help``), and the
    original's public attributes (a ufunc's ``nin``, ``reduce``…)."""
    functools.update_wrapper(wrapper, original)
    for name in dir(original):
        if name.startswith("_") or hasattr(wrapper, name):
            continue
        try:
            setattr(wrapper, name, getattr(original, name))
        except AttributeError:
            continue
