"""Pause, resume and retry in the projection: still a pure function of the events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts import (
    EnrichmentCompleted,
    Envelope,
    ErrorInfo,
    FlowPaused,
    FlowResumed,
    ImportFailed,
    ImportUploaded,
    PhaseProgress,
    PhaseRetryRequested,
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


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


UPLOADED = event(ImportUploaded(category="cmdb_export", filename="a.csv", file_format="csv", record_count=10,
                                batch_count=1, checksum="x"), 0)
VALIDATED = event(ValidationCompleted(category="cmdb_export", verdict="completed_with_errors", record_count=10,
                                      valid_count=9, invalid_count=1, error_count=1, batch_count=1, checksum="y"), 20)
ENRICHED = event(EnrichmentCompleted(category="cmdb_export", rows_applied=9, assets_created=9), 40)


def fold(events):
    flow = None
    for e in events:
        flow = apply(flow, e)
    return flow


def failed(seconds: int, code: str = "error_threshold") -> Envelope:
    return event(ImportFailed(phase="validation", error=ErrorInfo(code=code, reason=f"{code} at {seconds}")), seconds)


def test_a_pause_mid_validation_holds_enrichment_until_the_resume() -> None:
    paused = event(FlowPaused(reason="window"), 10)
    progress = event(PhaseProgress(phase="validation", rows_done=5, rows_total=10), 15)
    flow = fold([UPLOADED, paused, progress, VALIDATED])
    # The running validation finished (and reported progress); enrichment has not started.
    assert (flow.status, flow.child_status, flow.current_phase.value) == ("paused", "paused", "enrichment")
    assert flow.steps["validation"]["status"] == "completed" and "enrichment" not in flow.steps
    assert flow.phase_state["enrichment"]["status"] == "paused"
    assert flow.phase_state["pause"] == {"status": "paused", "reason": "window", "paused_at": at(10),
                                         "phase": "validation", "pauses": 1}
    assert flow.progress_percentage == 60.0

    resumed = apply(flow, event(FlowResumed(), 30))
    assert (resumed.status, resumed.child_status) == ("running", "completed_with_errors")
    assert resumed.steps["enrichment"]["status"] == "running"
    assert resumed.steps["enrichment"]["started_at"] == at(30)
    assert resumed.steps["enrichment"]["description"] == "Enriching the inventory with 9 accepted rows"
    assert resumed.phase_state["pause"]["status"] == "resumed"

    done = apply(resumed, ENRICHED)
    assert (done.status, done.child_status, done.progress_percentage) == ("completed", "completed_with_errors", 100.0)
    assert [t["event_type"] for t in done.timeline] == [
        "ImportUploaded", "FlowPaused", "PhaseProgress", "ValidationCompleted", "FlowResumed", "EnrichmentCompleted"]


def test_a_pause_before_the_upload_marker_holds_validation() -> None:
    flow = fold([event(FlowPaused(), -5), UPLOADED])
    assert (flow.status, flow.current_phase.value) == ("paused", "validation")
    assert "validation" not in flow.steps and flow.phase_state["validation"]["status"] == "paused"
    flow = fold([event(FlowPaused(), -5), UPLOADED, event(FlowResumed(), 5)])
    assert flow.steps["validation"]["status"] == "running"
    assert flow.steps["validation"]["description"] == "Validating 10 cmdb_export rows"


def test_a_pause_after_the_last_boundary_ends_with_the_flow() -> None:
    flow = fold([UPLOADED, VALIDATED, event(FlowPaused(), 30), ENRICHED])
    assert (flow.status, flow.child_status) == ("completed", "completed_with_errors")
    assert flow.phase_state["pause"]["status"] == "ended"


def test_pause_and_resume_do_nothing_where_they_do_not_apply() -> None:
    done = fold([UPLOADED, VALIDATED, ENRICHED])
    for late in (event(FlowPaused(), 50), event(FlowResumed(), 51), event(PhaseRetryRequested(phase="validation"), 52)):
        after = apply(done, late)
        assert (after.status, after.phase_state, after.steps) == (done.status, done.phase_state, done.steps)
    running = fold([UPLOADED])
    assert apply(running, event(FlowResumed(), 1)).status == "running"
    twice = fold([UPLOADED, event(FlowPaused(), 1), event(FlowPaused(), 2)])
    assert twice.phase_state["pause"]["pauses"] == 1


def test_a_retry_is_the_one_way_out_of_failed() -> None:
    first = fold([UPLOADED, failed(10)])
    assert (first.status, first.error_message) == ("failed", "error_threshold at 10")

    retried = apply(first, event(PhaseRetryRequested(phase="validation"), 20))
    assert (retried.status, retried.child_status, retried.current_phase.value) == ("running", "running", "validation")
    assert retried.error_message is None and retried.completed_at is None
    step = retried.steps["validation"]
    assert (step["status"], step["error_message"], step["started_at"], step["completed_at"]) == (
        "running", None, at(20), None)
    assert retried.phase_state["validation"] == {
        "status": "running", "started_at": at(20), "attempt": 2,
        "previous_attempts": [{"code": "error_threshold", "reason": "error_threshold at 10", "failed_at": at(10)}]}

    events = [UPLOADED, failed(10), event(PhaseRetryRequested(phase="validation"), 20), failed(30),
              event(PhaseRetryRequested(phase="validation"), 40),
              event(VALIDATED.payload, 50), event(ENRICHED.payload, 60)]
    flow = fold(events)
    assert (flow.status, flow.child_status) == ("completed", "completed_with_errors")
    assert flow.phase_state["validation"]["attempt"] == 3
    assert [a["failed_at"] for a in flow.phase_state["validation"]["previous_attempts"]] == [at(10), at(30)]
    assert [s["status"] for s in flow.steps.values()] == ["completed", "completed", "completed"]
    assert fold(events) == flow  # replay gives the same flow


def test_a_retry_of_a_phase_nobody_can_run_again_is_ignored() -> None:
    for phase in ("upload", "complete"):
        flow = fold([UPLOADED, failed(10), event(PhaseRetryRequested(phase=phase), 20)])
        assert (flow.status, flow.error_message) == ("failed", "error_threshold at 10")
