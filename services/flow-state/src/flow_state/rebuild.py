"""``python -m flow_state.rebuild [--swap]``: the flow tables rebuilt from ``imports.events.v1``.

The projection code is the live one (``FlowProjector`` over ``projection.apply``), with the
status topic switched off: a rebuild publishes nothing. See tributary_runtime.rebuild for the
procedure and docs/operations.md for the runbook.
"""

from __future__ import annotations

from functools import partial

from contracts import topics
from tributary_runtime.checksums import TableCheck
from tributary_runtime.rebuild import RebuildSpec, main

from . import MIGRATIONS, SCHEMA
from .handlers import EVENT_TYPES, FlowProjector
from .main import GROUP
from .settings import FlowStateSettings

SPEC = RebuildSpec(
    service="flow-state",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    group_id=GROUP,
    topics=(topics.EVENTS,),
    event_types=EVENT_TYPES,
    handler=partial(FlowProjector, publish_status=False),  # picklable: parallel readers get the spec
    # Every column of the flow tables is a function of the events (timestamps come from them).
    tables=(
        TableCheck("master_flows", key=("flow_id",), group="flow_id"),
        TableCheck("child_flows", key=("id",), group="flow_id"),
        TableCheck("flow_timeline", key=("flow_id", "seq"), group="flow_id"),
        TableCheck("processing_steps", key=("flow_id", "step_name"), group="flow_id"),
    ),
    group_label="flow",
    batch=5000,  # lifecycle events are small and the projector folds a batch in memory: fewer, larger transactions
    settings_factory=FlowStateSettings,
)

if __name__ == "__main__":
    main(SPEC)
