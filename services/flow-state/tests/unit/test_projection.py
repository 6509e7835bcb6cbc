"""The flow projection is a pure function of the events: fold them, replay them, compare."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

from contracts import (
    EnrichmentCompleted,
    Envelope,
    ErrorInfo,
    ImportFailed,
    ImportUploaded,
    PhaseProgress,
    Tenant,
    ValidationCompleted,
)
from flow_state.projection import apply

TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
IMPORT, FLOW = uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(payload, seconds: int) -> Envelope:
    return Envelope.wrap(payload, tenant=TENANT, import_id=IMPORT, flow_id=FLOW, producer="test",
                         occurred_at=T0 + timedelta(seconds=seconds))


UPLOADED = event(ImportUploaded(category="cmdb_export", filename="a.csv", file_format="csv", record_count=10,
                                batch_count=1, checksum="x"), 0)
PROGRESS = event(PhaseProgress(phase="validation", rows_done=5, rows_total=10), 1)
VALIDATED = event(ValidationCompleted(category="cmdb_export", verdict="completed_with_errors", record_count=10,
                                      valid_count=9, invalid_count=1, error_count=1, batch_count=1, checksum="y",
                                      field_mapping={"Host": "hostname"}), 2)
ENRICHED = event(EnrichmentCompleted(category="cmdb_export", rows_applied=9, assets_created=9), 3)


def fold(events):
    flow = None
    for e in events:
        flow = apply(flow, e)
    return flow


def test_a_full_import_completes_with_errors() -> None:
    flow = fold([UPLOADED, PROGRESS, VALIDATED, ENRICHED])
    assert (flow.status, flow.child_status, flow.current_phase.value) == ("completed", "completed_with_errors",
                                                                          "complete")
    assert flow.progress_percentage == 100.0
    assert flow.data_import_completed and flow.data_validation_completed and flow.field_mapping_completed
    assert flow.asset_enrichment_completed
    assert flow.phase_state["validation"]["invalid_count"] == 1
    assert flow.phase_state["enrichment"]["assets_created"] == 9
    assert flow.completed_at == T0 + timedelta(seconds=3)
    assert flow.version == 4 and [t["seq"] for t in flow.timeline] == [1, 2, 3, 4]


def test_progress_moves_within_the_phase_span_and_never_backwards() -> None:
    flow = fold([UPLOADED])
    assert flow.progress_percentage == 25.0 and flow.current_phase.value == "validation"
    halfway = apply(flow, PROGRESS)
    assert halfway.progress_percentage == 42.5
    earlier = apply(halfway, event(PhaseProgress(phase="validation", rows_done=2, rows_total=10), 2))
    assert earlier.progress_percentage == 42.5


def test_failure_is_terminal_and_keeps_the_reason() -> None:
    failed = event(ImportFailed(phase="validation", error=ErrorInfo(code="required_column", reason="hostname missing")),
                   1)
    flow = fold([UPLOADED, failed, VALIDATED])
    assert (flow.status, flow.child_status, flow.error_message) == ("failed", "failed", "hostname missing")
    assert flow.phase_state["validation"]["code"] == "required_column"
    assert not flow.data_validation_completed  # events after a terminal state change nothing but the timeline


def test_replay_is_deterministic() -> None:
    events = [UPLOADED, PROGRESS, VALIDATED, ENRICHED]
    assert fold(events) == fold(list(events))
    assert fold(events).child_flow_id == fold(events).child_flow_id


def test_validate_only_stops_after_validation() -> None:
    dry = event(ValidationCompleted(category="cmdb_export", verdict="completed", record_count=10, valid_count=10,
                                    invalid_count=0, batch_count=0, checksum="z", validate_only=True), 2)
    flow = fold([UPLOADED, dry])
    assert (flow.status, flow.current_phase.value, flow.asset_enrichment_completed) == ("completed", "complete",
                                                                                        False)


def test_each_phase_records_a_processing_step() -> None:
    from contracts import AgentResult

    validated = event(ValidationCompleted(
        category="cmdb_export", verdict="completed_with_errors", record_count=10, valid_count=9, invalid_count=1,
        error_count=1, batch_count=1, checksum="y", field_mapping={"Host": "hostname"},
        agent_results=[AgentResult(agent="schema", status="errors", error_count=1),
                       AgentResult(agent="format", status="passed")],
        started_at=T0 + timedelta(milliseconds=500)), 2)
    flow = fold([UPLOADED, PROGRESS, validated, ENRICHED])
    steps = flow.steps
    assert [(s["step_order"], s["step_name"], s["status"], s["records_processed"])
            for s in sorted(steps.values(), key=lambda s: s["step_order"])] == [
        (1, "upload", "completed", 10), (2, "validation", "completed", 10), (3, "enrichment", "completed", 9)]
    validation = steps["validation"]
    assert validation["description"] == "Ran 2 validation agents for cmdb_export: schema, format"
    assert validation["started_at"] == (T0 + timedelta(milliseconds=500)).isoformat()
    assert validation["completed_at"] == (T0 + timedelta(seconds=2)).isoformat()
    assert validation["output"]["verdict"] == "completed_with_errors"
    assert [a["agent"] for a in validation["output"]["agent_results"]] == ["schema", "format"]
    assert steps["enrichment"]["output"]["assets_created"] == 9


def test_a_failed_phase_fails_its_step_with_the_reason() -> None:
    error = ErrorInfo(code="error_threshold", reason="too many invalid rows", details={"invalid_count": 8})
    failed = event(ImportFailed(phase="validation", error=error), 2)
    flow = fold([UPLOADED, PROGRESS, failed])
    step = flow.steps["validation"]
    assert (step["status"], step["error_message"], step["records_processed"]) == (
        "failed", "too many invalid rows", 5)
    assert step["output"] == {"code": "error_threshold", "invalid_count": 8}
    assert "enrichment" not in flow.steps


def test_a_completed_flow_shows_its_revert() -> None:
    from contracts import ImportReverted, ImportRevertCompleted

    requested = event(ImportReverted(reason="wrong file"), 10)
    done = event(ImportRevertCompleted(applied=True, assets_removed=9), 11)
    flow = fold([UPLOADED, PROGRESS, VALIDATED, ENRICHED, requested, done])
    assert (flow.status, flow.child_status) == ("completed", "reverted")
    assert flow.phase_state["revert"]["status"] == "reverted"
    assert flow.phase_state["revert"]["assets_removed"] == 9
    assert flow.phase_state["revert"]["reason"] == "wrong file"
    assert (flow.steps["revert"]["step_order"], flow.steps["revert"]["status"]) == (4, "completed")
    # Replaying the same events again changes nothing.
    assert fold([UPLOADED, PROGRESS, VALIDATED, ENRICHED, requested, done]) == flow


def test_a_v1_import_failed_from_the_log_projects_like_its_v2() -> None:
    """Events written before ImportFailed v2 are upcast on decode: a replay gives the same flow."""
    import json

    from contracts import decode

    v2 = event(ImportFailed(phase="validation", error=ErrorInfo(
        code="error_threshold", reason="too many invalid rows", details={"invalid_count": 8})), 2)
    body = json.loads(v2.encode())
    body["schema_version"] = 1
    body["payload"] = {"phase": "validation", "code": "error_threshold", "reason": "too many invalid rows",
                       "details": {"invalid_count": 8}}
    v1 = decode(json.dumps(body).encode(), [("event_type", b"ImportFailed"), ("schema_version", b"1")])
    assert v1 == v2
    by_v1, by_v2 = fold([UPLOADED, PROGRESS, v1]), fold([UPLOADED, PROGRESS, v2])
    assert by_v1 == by_v2
    assert by_v1.timeline[-1]["detail"] == by_v2.timeline[-1]["detail"] == {
        "phase": "validation", "code": "error_threshold", "reason": "too many invalid rows"}
    assert by_v1.phase_state["validation"]["details"] == {"invalid_count": 8}


def test_folding_changes_no_flow_it_started_from_nor_another_new_flow() -> None:
    # The fold builds each next flow from new dicts; a new flow starts from a template shared by all.
    events = [UPLOADED, PROGRESS, VALIDATED, ENRICHED]
    states, flow = [], None
    for e in events:
        flow = apply(flow, e)
        states.append((flow, copy.deepcopy(flow.__dict__)))
    other = apply(None, event(ImportFailed(phase="upload", error=ErrorInfo(code="bad_file", reason="no rows")), 0))
    for e in events:  # every state folded again, and another new flow failed meanwhile
        for state, _ in states:
            apply(state, e)
    assert [state.__dict__ for state, _ in states] == [snapshot for _, snapshot in states]
    assert apply(None, UPLOADED).phase_state == {"upload": states[0][1]["phase_state"]["upload"],
                                                 "validation": states[0][1]["phase_state"]["validation"]}
    assert other.status == "failed" and apply(None, PROGRESS).phase_state == {}
