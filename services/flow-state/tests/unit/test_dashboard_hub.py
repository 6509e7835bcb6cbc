"""The dashboard's status hub: a status reaches only its tenant's streams; a slow stream is marked stale."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from contracts import Envelope, FlowStatus, Phase, Tenant
from flow_state.dashboard import hub as hub_module
from flow_state.dashboard.hub import StatusHub
from flow_state.settings import FlowStateSettings


def message(tenant: Tenant, flow_id: uuid.UUID, version: int) -> SimpleNamespace:
    status = FlowStatus(flow_id=flow_id, child_flow_id=uuid.uuid4(), import_id=uuid.uuid4(), category="cmdb_export",
                        status="running", child_status="running", current_phase=Phase.VALIDATION,
                        progress_percentage=25.0, phase_state={}, version=version,
                        updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    env = Envelope.wrap(status, tenant=tenant, import_id=status.import_id, flow_id=flow_id, user_id="u",
                        producer="flow-state", stage_key=f"status:{version}")
    return SimpleNamespace(value=env.encode(), headers=env.headers(), partition=0, offset=version)


def test_a_status_reaches_only_the_streams_of_its_tenant() -> None:
    hub = StatusHub(FlowStateSettings())
    alice = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    # Same client account, other engagement: another tenant all the same.
    alice_other = Tenant(client_account_id=alice.client_account_id, engagement_id=uuid.uuid4())
    bob = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    subs = {name: hub.subscribe(t) for name, t in (("alice", alice), ("alice_other", alice_other), ("bob", bob))}
    flow = uuid.uuid4()

    hub.handle(message(alice, flow, 1))

    assert subs["alice"].queue.qsize() == 1 and subs["alice"].queue.get_nowait()["flow_id"] == str(flow)
    assert (subs["alice_other"].queue.qsize(), subs["bob"].queue.qsize()) == (0, 0)
    assert [s["version"] for s in hub.recent_for(alice)] == [1]
    assert hub.recent_for(alice_other) == [] and hub.recent_for(bob) == []


def test_a_stream_that_falls_behind_is_marked_stale_not_waited_for(monkeypatch) -> None:
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 2)
    hub = StatusHub(FlowStateSettings())
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    slow, other = hub.subscribe(tenant), hub.subscribe(tenant)
    flow = uuid.uuid4()
    for version in (1, 2):
        hub.handle(message(tenant, flow, version))
    other.queue.get_nowait()
    hub.handle(message(tenant, flow, 3))
    assert (slow.stale, slow.queue.qsize()) == (True, 2)
    assert (other.stale, other.queue.qsize()) == (False, 2)
    # Closing ends every stream, a full one too (its unsent statuses make way for the end marker).
    hub.close()
    assert hub.closed
    for sub in (slow, other):
        assert list(sub.queue._queue)[-1] is None  # noqa: SLF001


def test_undecodable_and_other_messages_are_skipped() -> None:
    hub = StatusHub(FlowStateSettings())
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    sub = hub.subscribe(tenant)
    hub.handle(SimpleNamespace(value=b"not json", headers=[("event_type", b"FlowStatus")], partition=0, offset=0))
    hub.handle(SimpleNamespace(value=b"{}", headers=[("event_type", b"Other")], partition=0, offset=1))
    assert sub.queue.qsize() == 0 and hub.recent == {}
