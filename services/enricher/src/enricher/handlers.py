"""What the enricher does with each event it consumes."""

from __future__ import annotations

import uuid

from contracts import Category, EnrichmentCompleted, Envelope, ImportFailed, Phase, ValidationCompleted, topics
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
            await staging.lock_import(unit.conn, env.import_id)
            if env.event_type == "ValidatedBatch":
                if not await staging.stage_batch(unit.conn, env):
                    continue
            else:
                done: ValidationCompleted = env.payload
                if not await staging.record_marker(unit.conn, env, expected_batches=done.batch_count,
                                                   checksum=done.checksum):
                    continue
            await self._enrich_if_complete(unit, env.import_id)

    async def _enrich_if_complete(self, unit: Unit, import_id: uuid.UUID) -> None:
        try:
            staged = await staging.complete(unit.conn, import_id)
        except staging.ChecksumMismatch as exc:
            row = await unit.conn.fetchval("SELECT marker FROM staged_imports WHERE import_id = $1", import_id)
            marker = Envelope[ValidationCompleted].model_validate(row)
            failed = ImportFailed(phase=Phase.ENRICHMENT, code="checksum_mismatch", reason=str(exc))
            await unit.publish(topics.EVENTS, marker.follow(failed, producer=PRODUCER, stage_key="enrichment"))
            await staging.finish(unit.conn, import_id, "failed")
            return
        if staged is None:
            return
        marker = Envelope[ValidationCompleted].model_validate(staged.marker)
        category = Category(marker.payload.category)
        apply = inventory.Apply(marker.import_id, marker.tenant.client_account_id, marker.tenant.engagement_id,
                                marker.occurred_at)
        counts = await inventory.apply_import(unit.conn, category, apply)
        completed = EnrichmentCompleted(category=category, rows_applied=marker.payload.valid_count, **counts)
        await unit.publish(topics.EVENTS, marker.follow(completed, producer=PRODUCER, stage_key=""))
        await inventory.record_run(unit.conn, apply, category, completed.model_dump(mode="json"))
        await staging.finish(unit.conn, import_id, "applied")
