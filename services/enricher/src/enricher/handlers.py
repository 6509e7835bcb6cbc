"""What the enricher does with each event it consumes."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import Category, EnrichmentCompleted, Envelope, Phase, ValidationCompleted, topics
from tributary_runtime import staging
from tributary_runtime.consumer import Inbound, Unit

from . import inventory

PRODUCER = "enricher"
EVENT_TYPES = ("ValidatedBatch", "ValidationCompleted")


class EnricherHandler:
    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        for inbound in events:
            env = inbound.envelope
            if env.event_type == "ValidationCompleted" and env.payload.validate_only:
                continue  # a dry run: validation was the whole job
            marker = await staging.join(unit, env, marker_type=ValidationCompleted, phase=Phase.ENRICHMENT,
                                        producer=PRODUCER)
            if marker is not None:
                await enrich(unit, marker)


async def enrich(unit: Unit, marker: Envelope[ValidationCompleted]) -> None:
    category = Category(marker.payload.category)
    started_at = datetime.now(UTC)
    apply = inventory.Apply(marker.import_id, marker.tenant.client_account_id, marker.tenant.engagement_id,
                            marker.occurred_at)
    counts = await inventory.apply_import(unit.conn, category, apply)
    completed = EnrichmentCompleted(category=category, rows_applied=marker.payload.valid_count,
                                    started_at=started_at, **counts)
    await unit.publish(topics.EVENTS, marker.follow(completed, producer=PRODUCER, stage_key=""))
    await inventory.record_run(unit.conn, apply, category, completed.model_dump(mode="json"))
    await staging.finish(unit.conn, marker.import_id, "applied")
