"""What the enricher does with each event it consumes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import (
    Category,
    EnrichmentCompleted,
    Envelope,
    ImportReverted,
    ImportRevertCompleted,
    Phase,
    ValidatedBatch,
    ValidationCompleted,
    topics,
)
from tributary_runtime import flow_control, staging
from tributary_runtime.consumer import Inbound, Unit

from . import inventory, planner_statistics, tenants
from .policy import policy_for
from .revert import is_reverted, revert_import

PRODUCER = "enricher"
EVENT_TYPES = ("ValidatedBatch", "ValidationCompleted", "ImportReverted", *flow_control.EVENT_TYPES)
# A dead-lettered batch or marker leaves the import's staged set failed, ready for a retry.
ON_DEAD_LETTER = staging.fail_staged_on_dead_letter(marker_type=ValidationCompleted, batch_type=ValidatedBatch,
                                                    phase=Phase.ENRICHMENT, trim_cells=inventory.TRIM_CELLS)
# Imports with no source system of their own are ranked as this source.
DEFAULT_SOURCE = "upload"


class EnricherHandler:
    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        for inbound in events:
            env = inbound.envelope
            if env.event_type == "ImportReverted":
                await revert(unit, env)
                continue
            if env.event_type in flow_control.EVENT_TYPES:
                # Pause, resume, retry: a held or failed enrichment may run now.
                marker = await flow_control.apply(unit, env, phase=Phase.ENRICHMENT,
                                                  marker_type=ValidationCompleted, producer=PRODUCER)
            elif env.event_type == "ValidationCompleted" and env.payload.validate_only:
                continue  # a dry run: validation was the whole job
            else:
                marker = await staging.join(unit, env, marker_type=ValidationCompleted, phase=Phase.ENRICHMENT,
                                            producer=PRODUCER, trim_cells=inventory.TRIM_CELLS)
            if marker is not None:
                await enrich(unit, marker)


async def _apply_context(unit: Unit, env: Envelope[Any], category: Category, source: str | None,
                         rows: int = 0) -> inventory.Apply:
    policy = await policy_for(unit.conn, env.tenant.client_account_id, env.tenant.engagement_id, env.occurred_at)
    return inventory.Apply(env.import_id, env.tenant.client_account_id, env.tenant.engagement_id, env.occurred_at,
                           category, (source or DEFAULT_SOURCE).lower(), policy, rows)


async def enrich(unit: Unit, marker: Envelope[ValidationCompleted]) -> None:
    if await is_reverted(unit.conn, marker.import_id):
        # Reverted before it was applied: it never will be.
        await staging.finish(unit.conn, marker.import_id, "reverted")
        return
    started_at = datetime.now(UTC)
    # A retried enrichment (PhaseRetryRequested) publishes under ids of its own.
    attempt = await staging.attempt_of(unit.conn, marker.import_id)
    a = await _apply_context(unit, marker, Category(marker.payload.category), marker.payload.source_system,
                             marker.payload.valid_count)
    # Numbered before the ANALYZEs below: an apply that waits for another's numbering of the same
    # new tenant must not hold their locks, which the other may take next (a deadlock).
    await tenants.ensure(unit.conn, a.client_account_id, a.engagement_id)
    await staging.refresh_statistics(unit.conn, marker.import_id, marker.payload.valid_count,
                                     marker.payload.batch_count)
    await planner_statistics.refresh_if_stale(unit.conn, marker.payload.valid_count,
                                              dependencies=a.category is Category.APP_DISCOVERY)
    counts = await inventory.apply_import(unit.conn, a)
    await planner_statistics.refresh_after(unit.conn, marker.payload.valid_count,
                                           dependencies=a.category is Category.APP_DISCOVERY)
    completed = EnrichmentCompleted(category=a.category, rows_applied=marker.payload.valid_count,
                                    started_at=started_at, **counts)
    await unit.publish(topics.EVENTS, marker.follow(completed, producer=PRODUCER,
                                                    stage_key=staging.attempt_key("", attempt)))
    await inventory.record_run(unit.conn, a, completed.model_dump(mode="json"))
    await staging.finish(unit.conn, marker.import_id, "applied")


async def revert(unit: Unit, env: Envelope[ImportReverted]) -> None:
    category = await unit.conn.fetchval(
        "SELECT category FROM enrichment_runs WHERE import_id = $1", env.import_id)
    a = await _apply_context(unit, env, Category(category or Category.CMDB_EXPORT), None)
    outcome = await revert_import(unit.conn, a)
    if outcome is None:
        return  # reverted before: nothing more to undo
    done = ImportRevertCompleted(applied=outcome.applied, **outcome.counts)
    await unit.publish(topics.EVENTS, env.follow(done, producer=PRODUCER, stage_key="revert"))
