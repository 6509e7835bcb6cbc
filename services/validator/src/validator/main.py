"""Wiring of the validator process: one consumer group over raw records and lifecycle events,
and the findings API."""

from __future__ import annotations

from contracts import Phase, topics
from tributary_runtime import retention
from tributary_runtime.resources import Resources
from tributary_runtime.service import ConsumerSpec, run_service

from . import SCHEMA, findings
from .api import issues, policies
from .handlers import EVENT_TYPES, ON_DEAD_LETTER, ValidatorHandler
from .llm_usage import PgUsageLedger
from .settings import ValidatorSettings
from .validation import Validation

# The HTTP API (also what `tributary openapi` documents).
ROUTERS = (issues.router, policies.router, policies.rules_router)


async def serve(settings: ValidatorSettings) -> None:
    def handler(res: Resources) -> ValidatorHandler:
        return ValidatorHandler(Validation(settings, PgUsageLedger(res.db.pool)))

    consumer = ConsumerSpec(group_id="validator", topics=(topics.RECORDS, topics.EVENTS), handler=handler,
                            needs_resources=True, event_types=EVENT_TYPES, failure_phase=Phase.VALIDATION,
                            on_dead_letter=ON_DEAD_LETTER, sequenced=True,
                            # rows validated (valid or not), counted per import when its validation commits
                            rows_from={"ValidationCompleted": ("record_count", "validated")})
    await run_service(settings, name="validator", schema=SCHEMA, consumer=consumer, routers=ROUTERS,
                      background=(retention.purger(keep=findings.FAILED_ROW),))
