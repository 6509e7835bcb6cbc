"""Wiring of the validator process: one consumer group over raw records and lifecycle events."""

from __future__ import annotations

from contracts import Phase, topics
from tributary_runtime.service import ConsumerSpec, run_service

from . import SCHEMA
from .handlers import EVENT_TYPES, ValidatorHandler
from .settings import ValidatorSettings


async def serve(settings: ValidatorSettings) -> None:
    consumer = ConsumerSpec(group_id="validator", topics=(topics.RECORDS, topics.EVENTS),
                            handler=ValidatorHandler(settings), event_types=EVENT_TYPES,
                            failure_phase=Phase.VALIDATION)
    await run_service(settings, name="validator", schema=SCHEMA, consumer=consumer)
