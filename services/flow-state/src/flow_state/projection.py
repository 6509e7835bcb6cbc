"""The flow projection: a pure function from a flow and one lifecycle event to the next flow.

No clock, no randomness: timestamps come from the events, ids are derived, so replaying
the same events always produces the same flows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from contracts import Envelope, Phase

# The phases' names, the keys of phase_state and steps: ``Phase.X.value`` is an enum property call,
# and a fold reads them several times per event.
NAME = {p: p.value for p in Phase}
VALIDATION, ENRICHMENT, COMPLETE = NAME[Phase.VALIDATION], NAME[Phase.ENRICHMENT], NAME[Phase.COMPLETE]
FLOW_TYPE = "data_import"
FLOW_PHASES = [{"name": p.value, "is_required": p is not Phase.COMPLETE} for p in Phase]
SUPPORTED_OPERATIONS = ["create", "pause", "resume", "retry_phase"]
CHILD_NAMESPACE = uuid.UUID("0d3e9a52-6f1b-4d44-8a7e-1c2b3d4e5f60")

# Progress at the start of each phase; a phase's PhaseProgress fills the span to the next.
PHASE_START = {Phase.UPLOAD: 0.0, Phase.VALIDATION: 25.0, Phase.ENRICHMENT: 60.0, Phase.COMPLETE: 100.0}
NEXT_PHASE = {Phase.UPLOAD: Phase.VALIDATION, Phase.VALIDATION: Phase.ENRICHMENT, Phase.ENRICHMENT: Phase.COMPLETE}
TERMINAL = frozenset({"completed", "failed"})


def flow_id_of(envelope: Envelope[Any]) -> uuid.UUID:
    return envelope.flow_id or uuid.uuid5(CHILD_NAMESPACE, f"flow:{envelope.import_id}")


def child_flow_id(flow_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(CHILD_NAMESPACE, f"child:{flow_id}")


@dataclass(frozen=True)
class Flow:
    flow_id: uuid.UUID
    child_flow_id: uuid.UUID
    import_id: uuid.UUID
    client_account_id: uuid.UUID
    engagement_id: uuid.UUID
    user_id: str
    flow_name: str
    category: str | None
    status: str
    child_status: str
    current_phase: Phase
    progress_percentage: float
    phase_state: dict[str, Any]
    agent_state: dict[str, Any]
    configuration: dict[str, Any]
    data_import_completed: bool
    data_validation_completed: bool
    field_mapping_completed: bool
    asset_enrichment_completed: bool
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int
    # Processing steps by name (upload, validation, enrichment), as the seed's ImportProcessingStep.
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: tuple[dict[str, Any], ...] = field(default=(), compare=False)


_FIELDS = frozenset(f.name for f in fields(Flow))


def _with(flow: Flow, **changes: Any) -> Flow:
    """``dataclasses.replace`` without re-running ``__init__``: a copy of the flow with ``changes``.

    A flow goes through a few of these per event, and ``replace`` (an ``__init__`` call and a frozen
    ``__setattr__`` per field) was a fifth of a rebuild's time. Same result, still a new object:
    the projection stays a pure function.
    """
    if not changes.keys() <= _FIELDS:
        raise TypeError(f"Flow has no field(s) {sorted(changes.keys() - _FIELDS)}")
    new = object.__new__(Flow)
    new.__dict__.update(flow.__dict__, **changes)
    return new


# What every new flow starts with, apart from what its first event says. Its dicts are shared by every
# new flow: the projection never changes a dict in place, it builds the next one.
_NEW = {"category": None, "status": "running", "child_status": "running", "current_phase": Phase.UPLOAD,
        "progress_percentage": 0.0, "phase_state": {}, "agent_state": {},
        "configuration": {"flow_type": FLOW_TYPE, "phases": FLOW_PHASES, "supported_operations": SUPPORTED_OPERATIONS},
        "data_import_completed": False, "data_validation_completed": False, "field_mapping_completed": False,
        "asset_enrichment_completed": False, "error_message": None, "completed_at": None, "version": 0,
        "steps": {}, "timeline": ()}


def new_flow(envelope: Envelope[Any]) -> Flow:
    """The flow an import's first event finds (built as ``_with`` builds, without the dataclass's
    frozen ``__init__``: a rebuild creates one per import)."""
    flow_id = flow_id_of(envelope)
    tenant = envelope.tenant
    new = object.__new__(Flow)
    new.__dict__.update(
        _NEW, flow_id=flow_id, child_flow_id=child_flow_id(flow_id), import_id=envelope.import_id,
        client_account_id=tenant.client_account_id, engagement_id=tenant.engagement_id, user_id=envelope.user_id,
        flow_name=f"Data Import {envelope.import_id}", created_at=envelope.occurred_at,
        updated_at=envelope.occurred_at)
    return new


def apply(flow: Flow | None, envelope: Envelope[Any]) -> Flow:
    before = flow or new_flow(envelope)
    event_type = envelope.event_type
    step = _STEPS.get(event_type)
    at = envelope.occurred_at
    # The payload as JSON, once: the timeline's detail and the steps' outputs are cut from it.
    data = envelope.payload.model_dump(mode="json")
    after = before
    if step is not None and (before.status not in TERMINAL or event_type in AFTER_END):
        after = step(before, envelope.payload, data, at)
    # The timeline row as flows.save writes it: ids and times stay typed (no text round trip per event).
    entry = {"seq": after.version + 1, "event_id": envelope.event_id, "event_type": event_type,
             "producer": envelope.producer, "occurred_at": at, "phase": NAME[after.current_phase],
             "detail": _detail(event_type, data)}
    changes = {"version": after.version + 1, "updated_at": max(after.updated_at, at),
               "timeline": (*after.timeline, entry)}
    if after is before:
        return _with(after, **changes)
    # A step returns its input or a copy it made in this call, which nothing else has seen yet:
    # completing that copy in place saves a second copy per event (a rebuild folds millions).
    after.__dict__.update(changes)
    return after


# Payload fields the timeline leaves out: the step outputs and the phase state carry them.
_NOT_IN_DETAIL = frozenset({"columns", "field_mapping", "details"})


def _detail(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The timeline's view of a payload (``data``, its JSON; shared with the step, so not changed)."""
    if event_type == "PhaseProgress":
        return data
    if event_type == "ImportFailed":  # the timeline shows the error's code and reason flat
        error = data["error"]
        data = {k: v for k, v in data.items() if k != "error"} | {"code": error["code"], "reason": error["reason"]}
    return {k: v for k, v in data.items() if k not in _NOT_IN_DETAIL and v not in (None, [], {})}


def _phase(flow: Flow, phase: Phase, **values: Any) -> dict[str, Any]:
    name = NAME[phase]
    return flow.phase_state | {name: flow.phase_state.get(name, {}) | values}


STEP_ORDER = {Phase.UPLOAD: 1, Phase.VALIDATION: 2, Phase.ENRICHMENT: 3}
# Phases a service can run again from what it staged (the validator's rows, the enricher's batches).
RETRYABLE = (Phase.VALIDATION, Phase.ENRICHMENT)
REVERT_STEP = {"step_name": "revert", "step_order": 4, "status": "running", "description": "Reverting the import",
               "records_processed": 0, "output": {}, "error_message": None, "started_at": None,
               "completed_at": None}


def _step(steps: dict[str, dict[str, Any]], phase: Phase, **values: Any) -> dict[str, dict[str, Any]]:
    """``steps`` (a flow's) with one step updated (created running on first mention)."""
    name = NAME[phase]
    current = steps.get(name) or {
        "step_name": name, "step_order": STEP_ORDER[phase], "status": "running",
        "description": f"{name} of the import", "records_processed": 0, "output": {},
        "error_message": None, "started_at": None, "completed_at": None}
    return steps | {name: current | values}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _uploaded(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    iso = at.isoformat()
    category = data["category"]
    phase_state = _phase(flow, Phase.UPLOAD, status="completed", record_count=p.record_count,
                         batch_count=p.batch_count, filename=p.filename, file_format=p.file_format,
                         size_bytes=p.size_bytes, source=p.source, completed_at=iso)
    phase_state = phase_state | {VALIDATION: {"status": "running", "started_at": iso}}
    steps = _step(
        flow.steps, Phase.UPLOAD, status="completed", records_processed=p.record_count,
        description=f"Received {p.file_format} {p.filename!r}: {p.record_count} rows in {p.batch_count} batches",
        output={"filename": p.filename, "file_format": p.file_format, "size_bytes": p.size_bytes,
                "batch_count": p.batch_count, "source": p.source, "validate_only": p.validate_only},
        started_at=_iso(p.started_at) or iso, completed_at=iso)
    steps = _step(steps, Phase.VALIDATION, started_at=iso,
                  description=f"Validating {p.record_count} {category} rows")
    return _held_if_paused(_with(
        flow, steps=steps, category=category, flow_name=p.flow_name or f"Data Import - {category}",
        current_phase=Phase.VALIDATION, progress_percentage=max(flow.progress_percentage, PHASE_START[Phase.VALIDATION]),
        data_import_completed=True, phase_state=phase_state,
        configuration=flow.configuration | {"import_category": category,
                                            "validate_only": p.validate_only, "filename": p.filename},
    ), Phase.VALIDATION)


def _progress(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    if p.phase != flow.current_phase or p.rows_total == 0 or flow.status not in ("running", "paused"):
        return flow
    start = PHASE_START[p.phase]
    span = PHASE_START[NEXT_PHASE[p.phase]] - start
    pct = round(start + span * min(p.rows_done / p.rows_total, 1.0), 2)
    return _with(flow, progress_percentage=max(flow.progress_percentage, pct),
                   phase_state=_phase(flow, p.phase, rows_done=p.rows_done, rows_total=p.rows_total),
                   steps=_step(flow.steps, p.phase, records_processed=p.rows_done))


def _validated(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    iso = at.isoformat()
    counts = {k: getattr(p, k) for k in ("record_count", "valid_count", "invalid_count", "error_count",
                                         "warning_count")}
    phase_state = _phase(flow, Phase.VALIDATION, status="completed", verdict=p.verdict, completed_at=iso,
                         field_mapping=p.field_mapping, **counts)
    agent_state = flow.agent_state | {"validation": {"rules_applied": p.rules_applied, "verdict": p.verdict}}
    agents = data["agent_results"]
    agent_state = agent_state | {"validation": agent_state["validation"] | {
        "agent_results": agents, "mapping_template": p.mapping_template, "extra_columns": p.extra_columns}}
    phase_state = phase_state | {VALIDATION: phase_state[VALIDATION] | {
        "findings_by_rule": p.findings_by_rule, "mapping_template": p.mapping_template,
        "validate_only": p.validate_only}}
    names = ", ".join(a.agent for a in p.agent_results)
    steps = _step(flow.steps, Phase.VALIDATION, status="completed", records_processed=p.record_count,
                  description=f"Ran {len(p.agent_results)} validation agents for {flow.category}: {names}",
                  output=counts | {"verdict": p.verdict, "agent_results": agents,
                                   "findings_by_rule": p.findings_by_rule, "mapping_template": p.mapping_template},
                  started_at=_iso(p.started_at) or flow.steps.get(VALIDATION, {}).get("started_at"),
                  completed_at=iso)
    validated = {"data_validation_completed": True, "field_mapping_completed": bool(p.field_mapping),
                 "agent_state": agent_state,
                 "child_status": "paused" if flow.status == "paused" and not p.validate_only else p.verdict}
    if p.validate_only:
        return _complete(_with(flow, phase_state=phase_state, steps=steps, **validated), at)
    steps = _step(steps, Phase.ENRICHMENT, started_at=iso,
                  description=f"Enriching the inventory with {p.valid_count} accepted rows")
    phase_state = phase_state | {ENRICHMENT: {"status": "running", "started_at": iso}}
    return _held_if_paused(_with(
        flow, current_phase=Phase.ENRICHMENT, phase_state=phase_state, steps=steps, **validated,
        progress_percentage=max(flow.progress_percentage, PHASE_START[Phase.ENRICHMENT])), Phase.ENRICHMENT)


def _enriched(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    iso = at.isoformat()
    counts = {k: v for k, v in data.items() if k not in ("category", "started_at")}
    steps = _step(flow.steps, Phase.ENRICHMENT, status="completed", records_processed=p.rows_applied, output=counts,
                  started_at=_iso(p.started_at) or flow.steps.get(ENRICHMENT, {}).get("started_at"),
                  completed_at=iso)
    return _complete(flow, at, asset_enrichment_completed=True, steps=steps,
                     phase_state=_phase(flow, Phase.ENRICHMENT, status="completed", completed_at=iso, **counts))


def _complete(flow: Flow, at: datetime, **changes: Any) -> Flow:
    """The flow completed at ``at``, with ``changes`` (of the phase that completed it) applied first."""
    phase_state = changes.pop("phase_state", flow.phase_state)
    child_status = flow.child_status
    if child_status in ("running", "paused"):  # the verdict of validation, else plain completed
        child_status = phase_state.get(VALIDATION, {}).get("verdict") or "completed"
    phase_state = _pause_ended(phase_state, at)
    return _with(flow, **changes, status="completed", child_status=child_status, current_phase=Phase.COMPLETE,
                 progress_percentage=100.0, completed_at=at,
                 phase_state=phase_state | {COMPLETE: {"status": "completed",
                                                                   "completed_at": at.isoformat()}})


def _failed(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    flow = _with(flow, phase_state=_pause_ended(flow.phase_state, at))
    error = p.error
    step = flow.steps.get(NAME[p.phase], {})
    steps = flow.steps
    if p.phase in STEP_ORDER:
        steps = _step(flow.steps, p.phase, status="failed", error_message=error.reason, completed_at=_iso(at),
                      output=step.get("output", {}) | {"code": error.code, **error.details},
                      started_at=_iso(p.started_at) or step.get("started_at") or _iso(at))
    return _with(flow, steps=steps, status="failed", child_status="failed", error_message=error.reason,
                   completed_at=at,
                   phase_state=_phase(flow, p.phase, status="failed", code=error.code, reason=error.reason,
                                      details=error.details, failed_at=at.isoformat()))


def _held_if_paused(flow: Flow, phase: Phase) -> Flow:
    """A phase reached while the flow is paused does not start: its owner holds it until the resume.

    Its step is not created until then (a step is running, completed or failed); the phase's
    state says paused.
    """
    if flow.status != "paused":
        return flow
    held = flow.steps.get(NAME[phase], {})
    return _with(flow, steps={k: v for k, v in flow.steps.items() if k != NAME[phase]},
                   phase_state=flow.phase_state | {NAME[phase]: {
                       "status": "paused", "step_description": held.get("description")}})


def _pause_ended(phase_state: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A pause that came after the last boundary ends with the flow (there was nothing left to hold)."""
    pause = phase_state.get("pause", {})
    if pause.get("status") != "paused":
        return phase_state
    return phase_state | {"pause": pause | {"status": "ended", "ended_at": at.isoformat()}}


def _paused(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    """Takes effect at the next phase boundary: a phase already running finishes, the next one waits."""
    if flow.status != "running":
        return flow
    pause = flow.phase_state.get("pause", {})
    pause = pause | {"status": "paused", "reason": p.reason, "paused_at": at.isoformat(),
                     "phase": NAME[flow.current_phase], "pauses": pause.get("pauses", 0) + 1}
    return _with(flow, status="paused", child_status="paused", phase_state=flow.phase_state | {"pause": pause})


def _resumed(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    """Back to running; a phase that was held starts now."""
    if flow.status != "paused":
        return flow
    pause = flow.phase_state.get("pause", {}) | {"status": "resumed", "resumed_at": at.isoformat()}
    flow = _with(flow, status="running", phase_state=flow.phase_state | {"pause": pause},
                   child_status=flow.phase_state.get(VALIDATION, {}).get("verdict") or "running")
    phase = flow.current_phase
    held = flow.phase_state.get(NAME[phase], {})
    if held.get("status") == "paused":  # the held phase starts now
        description = held.get("step_description") or f"{NAME[phase]} of the import"
        flow = _with(flow, steps=_step(flow.steps, phase, status="running", started_at=_iso(at), description=description),
                       phase_state=flow.phase_state | {NAME[phase]: {"status": "running",
                                                                     "started_at": at.isoformat()}})
    return flow


def _retry_requested(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    """The one way out of ``failed``: the failed phase runs again, from its staged rows."""
    if flow.status != "failed" or p.phase not in RETRYABLE:
        return flow
    before = flow.phase_state.get(NAME[p.phase], {})
    earlier = [*before.get("previous_attempts", []),
               {k: before.get(k) for k in ("code", "reason", "failed_at")}]
    attempt = before.get("attempt", 1) + 1
    phase_state = flow.phase_state | {NAME[p.phase]: {
        "status": "running", "started_at": at.isoformat(), "attempt": attempt, "previous_attempts": earlier}}
    steps = _step(flow.steps, p.phase, status="running", error_message=None, completed_at=None, started_at=_iso(at),
                  output={"attempt": attempt},
                  description=f"{NAME[p.phase]} of the import, attempt {attempt}")
    return _with(flow, status="running", child_status="running", error_message=None, completed_at=None,
                   current_phase=p.phase, phase_state=phase_state, steps=steps)


def _revert_requested(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    if flow.phase_state.get("revert", {}).get("status") == "reverted":
        return flow
    steps = flow.steps | {"revert": REVERT_STEP | {"started_at": at.isoformat(),
                                                   "description": f"Reverting the import: {p.reason or 'requested'}"}}
    return _with(flow, steps=steps, phase_state=flow.phase_state | {
        "revert": {"status": "requested", "reason": p.reason, "requested_at": at.isoformat()}})


def _reverted(flow: Flow, p: Any, data: dict[str, Any], at: datetime) -> Flow:
    counts = data
    revert = flow.phase_state.get("revert", {}) | {"status": "reverted", "completed_at": at.isoformat(), **counts}
    step = flow.steps.get("revert", REVERT_STEP) | {
        "status": "completed", "completed_at": at.isoformat(), "output": counts,
        "records_processed": p.assets_removed + p.assets_restored + p.dependencies_removed,
        "description": ("Reverted: removed what only this import contributed, restored what it overwrote"
                        if p.applied else "Reverted before it was applied: nothing reached the inventory")}
    flow = _with(flow, phase_state=flow.phase_state | {"revert": revert}, steps=flow.steps | {"revert": step})
    if flow.status not in TERMINAL:  # reverted before enrichment: it ends here
        flow = _complete(flow, at)
    return _with(flow, child_status="reverted")


# A finished flow can still be reverted; a failed one can have its failed phase retried.
AFTER_END = frozenset({"ImportReverted", "ImportRevertCompleted", "PhaseRetryRequested"})

_STEPS = {
    "ImportUploaded": _uploaded,
    "PhaseProgress": _progress,
    "ValidationCompleted": _validated,
    "EnrichmentCompleted": _enriched,
    "ImportFailed": _failed,
    "FlowPaused": _paused,
    "FlowResumed": _resumed,
    "PhaseRetryRequested": _retry_requested,
    "ImportReverted": _revert_requested,
    "ImportRevertCompleted": _reverted,
}
EVENT_TYPES = tuple(_STEPS)
