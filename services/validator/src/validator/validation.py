"""Validating a fully staged import: findings, verdict, accepted rows, completion marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts import (
    Category,
    Envelope,
    ImportFailed,
    ImportUploaded,
    Phase,
    ValidatedBatch,
    ValidationCompleted,
    topics,
)
from contracts.producer import RecordBatcher
from tributary_runtime import staging
from tributary_runtime.consumer import Unit
from tributary_runtime.progress import ProgressReporter

from . import findings as findings_repo
from .field_mapping import map_header, missing_required
from .rules import RULE_IDS, findings_for
from .settings import ValidatorSettings

PRODUCER = "validator"


@dataclass
class Tally:
    record_count: int = 0
    errors: int = 0
    warnings: int = 0
    invalid_rows: set[int] = field(default_factory=set)


def mapped(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {mapping.get(k, k): v for k, v in row.items()}


async def validate_import(unit: Unit, marker: Envelope[ImportUploaded], settings: ValidatorSettings) -> None:
    upload = marker.payload
    category = Category(upload.category)
    conn = unit.conn
    mapping = map_header(category, upload.columns)
    run = {"import_id": marker.import_id, "client_account_id": marker.tenant.client_account_id,
           "engagement_id": marker.tenant.engagement_id, "category": category.value, "field_mapping": mapping}

    missing = missing_required(category, mapping)
    if missing:
        reason = f"required column(s) missing: {', '.join(missing)}"
        await _fail(unit, marker, run, upload.record_count, "required_column", reason,
                    {"missing_columns": missing, "field_mapping": mapping})
        return

    # Pass 1: every row's findings, so the verdict is known before anything is published.
    tally = Tally()
    progress = ProgressReporter(unit, marker, Phase.VALIDATION, upload.record_count, PRODUCER)
    async for chunk in staging.iter_rows(conn, marker.import_id, settings.validation_chunk_rows):
        found = []
        for row_number, row in chunk:
            row_findings = findings_for(category, row_number, mapped(row, mapping))
            for f in row_findings:
                if f.severity == "error":
                    tally.errors += 1
                    tally.invalid_rows.add(row_number)
                else:
                    tally.warnings += 1
            found.extend(row_findings)
        tally.record_count += len(chunk)
        await findings_repo.write_findings(conn, marker.import_id, found)
        await progress.advance(tally.record_count)

    invalid = len(tally.invalid_rows)
    valid = tally.record_count - invalid
    counts = {"record_count": tally.record_count, "valid_count": valid, "invalid_count": invalid,
              "error_count": tally.errors, "warning_count": tally.warnings}
    rate = invalid / tally.record_count if tally.record_count else 0.0
    if tally.record_count == 0 or rate > settings.max_error_rate:
        reason = ("the import has no rows" if tally.record_count == 0 else
                  f"{invalid} of {tally.record_count} rows are invalid ({rate:.0%}), above the "
                  f"{settings.max_error_rate:.0%} threshold")
        await _fail(unit, marker, run | counts, tally.record_count, "error_threshold", reason, counts)
        return

    # Pass 2: publish the accepted rows, normalised, then the completion marker.
    batcher = RecordBatcher(category, max_rows=settings.validated_batch_rows, payload_type=ValidatedBatch)
    if not upload.validate_only:
        async for chunk in staging.iter_rows(conn, marker.import_id, settings.validation_chunk_rows):
            for row_number, row in chunk:
                if row_number in tally.invalid_rows:
                    continue
                batch = batcher.add(row_number, mapped(row, mapping))
                if batch is not None:
                    await _publish_batch(unit, marker, batch)
        batch = batcher.flush()
        if batch is not None:
            await _publish_batch(unit, marker, batch)

    verdict = "completed_with_errors" if invalid else "completed"
    done = ValidationCompleted(
        category=category, verdict=verdict, batch_count=batcher.batch_count, checksum=batcher.checksum,
        validate_only=upload.validate_only, field_mapping=mapping, rules_applied=list(RULE_IDS), **counts,
    )
    await unit.publish(topics.EVENTS, marker.follow(done, producer=PRODUCER, stage_key=""))
    await findings_repo.record_run(conn, run | counts | {"verdict": verdict})
    await staging.finish(conn, marker.import_id, "validated")


async def _publish_batch(unit: Unit, marker: Envelope[ImportUploaded], batch: ValidatedBatch) -> None:
    await unit.publish(topics.VALIDATED_RECORDS,
                       marker.follow(batch, producer=PRODUCER, stage_key=str(batch.batch_seq)))


async def _fail(unit: Unit, marker: Envelope[Any], run: dict[str, Any], record_count: int, code: str,
                reason: str, details: dict[str, Any]) -> None:
    failed = ImportFailed(phase=Phase.VALIDATION, code=code, reason=reason, details=details)
    await unit.publish(topics.EVENTS, marker.follow(failed, producer=PRODUCER, stage_key="validation"))
    defaults = {"record_count": record_count, "valid_count": 0, "invalid_count": 0, "error_count": 0,
                "warning_count": 0}
    await findings_repo.record_run(conn=unit.conn, run=defaults | run | {
        "verdict": "failed", "failure_code": code, "failure_reason": reason})
    await staging.finish(unit.conn, marker.import_id, "failed")
