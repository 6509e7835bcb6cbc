"""``python -m enricher.rebuild [--swap]``: the inventory rebuilt from the validated records and lifecycle events.

The handler is the live one. What it would publish (EnrichmentCompleted, ImportRevertCompleted,
ImportFailed on a checksum mismatch) is held back: a rebuild publishes nothing. The inventory
depends on the order in which imports were applied across partitions, so the topics are
replayed merged by message timestamp, the order the live consumer met them in. Inventory
policies are configuration (written by the API, not events): their versions are carried over
from the live schema, and each import is applied under the version in effect at its event time,
as live (enricher.policy). See tributary_runtime.rebuild and docs/operations.md.
"""

from __future__ import annotations

from contracts import topics
from tributary_runtime.checksums import TableCheck
from tributary_runtime.rebuild import RebuildSpec, main

from . import MIGRATIONS, SCHEMA, handlers
from .handlers import EVENT_TYPES, EnricherHandler
from .settings import EnricherSettings

GROUP = "enricher"  # the live consumer group (main.serve)

SPEC = RebuildSpec(
    service="enricher",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    group_id=GROUP,
    topics=(topics.VALIDATED_RECORDS, topics.EVENTS),
    event_types=EVENT_TYPES,
    handler=EnricherHandler,
    # Differences are reported per tenant (client account) where a table names it.
    tables=(
        TableCheck("assets", key=("asset_id",), group="client_account_id"),
        TableCheck("asset_claims", key=("asset_id", "import_id")),
        # Tenant numbers are handed out as tenants are first applied to, not derived from events.
        TableCheck("asset_identifiers", key=("client_account_id", "engagement_id", "kind", "value", "asset_id"),
                   exclude=("tenant_no",), group="client_account_id"),
        TableCheck("asset_dependencies", key=("dependency_id",), group="client_account_id"),
        TableCheck("dependency_claims", key=("dependency_id", "import_id")),
        TableCheck("parked_dependencies", key=("import_id", "row_number"), group="client_account_id"),
        TableCheck("duplicate_candidates", key=("import_id", "row_number"), group="client_account_id"),
        # counts.started_at is the enricher's wall clock when it began applying: not a function of the events.
        TableCheck("enrichment_runs", key=("import_id",), group="client_account_id",
                   expressions={"counts": "counts - 'started_at'"}),
        TableCheck("import_reverts", key=("import_id",), group="client_account_id"),
        # created_at / finished_at are now() at staging time. attempt counts how often the live phase ran: a
        # fault outside the log (the database refusing a write) fails an attempt live, the retry's succeeds,
        # and the replay succeeds at its first. The inventory it leaves is the same, and is verified.
        # rows_purged_at: when the retention deleted the rows (tributary_runtime.retention), a matter of
        # the clock; the rebuild stages the rows again, and its own retention deletes them in their turn.
        TableCheck("staged_imports", key=("import_id",),
                   exclude=("created_at", "finished_at", "attempt", "rows_purged_at"), group="client_account_id"),
        # Pauses and resumes seen per import (from FlowPaused / FlowResumed events); updated_at is now().
        TableCheck("flow_control", key=("import_id",), exclude=("updated_at",), group="client_account_id",
                   optional=True),
    ),
    group_label="tenant",
    carried=("inventory_policy_versions",),
    ordered=True,
    commit_after=("ValidationCompleted", "ImportReverted"),
    # What the live consumer writes when it dead-letters a message (keeps the staged set retryable).
    on_dead_letter=getattr(handlers, "ON_DEAD_LETTER", None),
    settings_factory=EnricherSettings,
)

if __name__ == "__main__":
    main(SPEC)
