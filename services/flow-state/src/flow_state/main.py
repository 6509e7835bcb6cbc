"""Wiring of the flow-state process: the flow projector and the query API."""

from __future__ import annotations

from contracts import Phase, topics
from tributary_runtime.service import ConsumerSpec, run_service

from . import SCHEMA, dashboard
from .api import flows, operations
from .handlers import EVENT_TYPES, FlowProjector
from .settings import FlowStateSettings

GROUP = "flow-state"

# The HTTP API (also what `tributary openapi` documents).
ROUTERS = (flows.router, operations.router, dashboard.router)


async def serve(settings: FlowStateSettings) -> None:
    consumer = ConsumerSpec(group_id=GROUP, topics=(topics.EVENTS,), handler=FlowProjector(),
                            event_types=EVENT_TYPES, failure_phase=Phase.COMPLETE)
    await run_service(settings, name="flow_state", schema=SCHEMA, consumer=consumer, routers=ROUTERS)
