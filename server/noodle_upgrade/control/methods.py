"""What the control endpoint offers: one function per JSON-RPC method.

Each takes the runtime and the request's params (by name) and returns plain JSON data.
Wrong params are an INVALID_PARAMS error naming the param and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from noodle_upgrade.control.protocol import INVALID_PARAMS, ProtocolError

if TYPE_CHECKING:
    from noodle_upgrade.runtime.runtime import Runtime

Method = Callable[["Runtime", dict[str, Any]], Any]


_KINDS = {str: "a string", int: "an integer", dict: "an object", float: "a number"}


def _param(params: dict[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    value = params.get(name)
    if value is None:
        if required:
            raise ProtocolError(INVALID_PARAMS, f"param {name!r} is required")
        return None
    accepted = (int, float) if kind is float else (kind,)
    if not isinstance(value, accepted) or isinstance(value, bool):
        raise ProtocolError(INVALID_PARAMS, f"param {name!r} must be {_KINDS[kind]}, got {value!r}")
    return value


def _actor(params: dict[str, Any]) -> str:
    return _param(params, "actor", str) or "control"


def status(rt: Runtime, params: dict[str, Any]) -> Any:
    return rt.status()


def components(rt: Runtime, params: dict[str, Any]) -> Any:
    return rt.status()["components"]


def plan(rt: Runtime, params: dict[str, Any]) -> Any:
    component = _param(params, "component", str, required=True)
    return rt.plan(component, _param(params, "version", str)).to_dict()


_NOT_PARAMETERS = ("self", "name", "version", "strategy", "actor")  # rt.upgrade's own


def _upgrade_arguments(params: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    keywords = dict(_param(params, "parameters", dict) or {})
    if clash := sorted(set(keywords) & set(_NOT_PARAMETERS)):
        raise ProtocolError(
            INVALID_PARAMS,
            f"param 'parameters' holds strategy parameters only, not {', '.join(clash)} "
            "(component, version, strategy and actor are params of their own)",
        )
    keywords.update(strategy=_param(params, "strategy", str), actor=_actor(params))
    component = _param(params, "component", str, required=True)
    return component, _param(params, "version", str), keywords


def upgrade(rt: Runtime, params: dict[str, Any]) -> Any:
    component, version, keywords = _upgrade_arguments(params)
    return rt.upgrade(component, version, **keywords).to_dict()


def submit(rt: Runtime, params: dict[str, Any]) -> Any:
    component, version, keywords = _upgrade_arguments(params)
    return {"id": rt.submit(component, version, **keywords)}


def wait(rt: Runtime, params: dict[str, Any]) -> Any:
    timeout = _param(params, "timeout", float)
    return rt.wait(_param(params, "id", str, required=True), timeout).to_dict()


def rollback(rt: Runtime, params: dict[str, Any]) -> Any:
    component = _param(params, "component", str, required=True)
    to, reason = _param(params, "to", str), _param(params, "reason", str)
    return rt.rollback(component, to=to, actor=_actor(params), reason=reason).to_dict()


def approve(rt: Runtime, params: dict[str, Any]) -> Any:
    return rt.approve(_param(params, "id", str, required=True), actor=_actor(params)).to_dict()


def reject(rt: Runtime, params: dict[str, Any]) -> Any:
    proposal_id = _param(params, "id", str, required=True)
    return rt.reject(proposal_id, reason=_param(params, "reason", str), actor=_actor(params))


def check(rt: Runtime, params: dict[str, Any]) -> Any:
    return rt.check_for_updates(actor=_actor(params))


def pending(rt: Runtime, params: dict[str, Any]) -> Any:
    return rt.pending()


def history(rt: Runtime, params: dict[str, Any]) -> Any:
    entries = rt.history(_param(params, "component", str), _param(params, "limit", int))
    return [entry.to_dict() for entry in entries]


def audit(rt: Runtime, params: dict[str, Any]) -> Any:
    action = _param(params, "action", str) or "verify"
    if action == "verify":
        return rt.store.verify_audit().to_dict()
    if action == "export":
        return rt.store.export_audit()
    raise ProtocolError(INVALID_PARAMS, f"param 'action' must be verify or export, got {action!r}")


METHODS: dict[str, Method] = {
    "status": status,
    "components": components,
    "plan": plan,
    "upgrade": upgrade,
    "submit": submit,
    "wait": wait,
    "rollback": rollback,
    "approve": approve,
    "reject": reject,
    "check": check,
    "pending": pending,
    "history": history,
    "audit": audit,
}
STREAMS = ("subscribe",)  # a connection that asks for these becomes an event stream
