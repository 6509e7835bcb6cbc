"""Wiring of the enricher process: one consumer group over validated records and lifecycle events,
and the inventory API."""

from __future__ import annotations

from contracts import Phase, topics
from tributary_runtime import retention
from tributary_runtime.service import ConsumerSpec, run_service

from . import SCHEMA
from .api import assets, candidates, dependencies, imports, policy
from .handlers import EVENT_TYPES, ON_DEAD_LETTER, EnricherHandler
from .settings import EnricherSettings

# The HTTP API (also what `tributary openapi` documents).
ROUTERS = (imports.router, assets.router, dependencies.router, candidates.router, policy.router)


async def serve(settings: EnricherSettings) -> None:
    consumer = ConsumerSpec(group_id="enricher", topics=(topics.VALIDATED_RECORDS, topics.EVENTS),
                            handler=EnricherHandler(), event_types=EVENT_TYPES, failure_phase=Phase.ENRICHMENT,
                            on_dead_letter=ON_DEAD_LETTER, sequenced=True,
                            # rows applied to the inventory, counted per import when its enrichment commits
                            rows_from={"EnrichmentCompleted": ("rows_applied", "applied")})
    await run_service(settings, name="enricher", schema=SCHEMA, consumer=consumer, routers=ROUTERS,
                      background=(retention.purger(),))
