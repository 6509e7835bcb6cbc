"""The flow projector: dedupe, fold each flow's new events, save, publish its status."""

from __future__ import annotations

import uuid

from contracts import Envelope, FlowStatus, topics
from tributary_runtime import offsets
from tributary_runtime.consumer import Inbound, Unit

from . import flows
from .projection import EVENT_TYPES, Flow, apply, flow_id_of

PRODUCER = "flow-state"
__all__ = ["EVENT_TYPES", "FlowProjector"]


class FlowProjector:
    def __init__(self, *, publish_status: bool = True) -> None:
        self.publish_status = publish_status

    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        fresh = await offsets.first_seen(unit.conn, unit.group_id, [i.envelope.event_id for i in events])
        if len(fresh) == len(events):  # every id new, and distinct: nothing to drop
            envelopes = [i.envelope for i in events]
        else:
            envelopes = []
            for i in events:
                if i.envelope.event_id in fresh:
                    # Once per id within the batch too: a producer's retry often lands in the same fetch as
                    # the original, and both are "not seen before" by the ledger.
                    fresh.discard(i.envelope.event_id)
                    envelopes.append(i.envelope)
        if not envelopes:
            return
        # Each flow's events in log order, flows in the order they first appear. One dict operation per
        # event: a UUID key hashes and compares in Python, and a rebuild folds millions of events.
        by_flow: dict[uuid.UUID, list[Envelope]] = {}
        for e in envelopes:
            by_flow.setdefault(flow_id_of(e), []).append(e)
        loaded: dict[uuid.UUID, Flow] = await flows.load(unit.conn, list(by_flow))
        touched = []
        for fid, events_of_flow in by_flow.items():
            flow = loaded.get(fid)
            for env in events_of_flow:
                flow = apply(flow, env)
            touched.append(flow)
        await flows.save(unit.conn, touched, loaded.keys())
        if self.publish_status:
            for flow, events_of_flow in zip(touched, by_flow.values(), strict=True):
                await unit.publish(topics.FLOW_STATUS, events_of_flow[-1].follow(
                    status_of(flow), producer=PRODUCER, stage_key=f"status:{flow.version}",
                    occurred_at=flow.updated_at), key=str(flow.flow_id).encode())


def status_of(flow: Flow) -> FlowStatus:
    return FlowStatus(
        flow_id=flow.flow_id, child_flow_id=flow.child_flow_id, import_id=flow.import_id, category=flow.category,
        status=flow.status, child_status=flow.child_status, current_phase=flow.current_phase,
        progress_percentage=flow.progress_percentage, phase_state=flow.phase_state,
        error_message=flow.error_message, version=flow.version, updated_at=flow.updated_at,
    )
