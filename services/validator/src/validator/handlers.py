"""What the validator does with each event it consumes."""

from __future__ import annotations

import uuid

from contracts import Envelope, ImportFailed, ImportUploaded, Phase, topics
from tributary_runtime import staging
from tributary_runtime.consumer import Inbound, Unit

from .settings import ValidatorSettings
from .validation import PRODUCER, validate_import

EVENT_TYPES = ("RecordBatch", "ImportUploaded")


class ValidatorHandler:
    def __init__(self, settings: ValidatorSettings) -> None:
        self.settings = settings

    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        for inbound in events:
            env = inbound.envelope
            await staging.lock_import(unit.conn, env.import_id)
            if env.event_type == "RecordBatch":
                if not await staging.stage_batch(unit.conn, env):
                    continue
            else:
                upload: ImportUploaded = env.payload
                if not await staging.record_marker(unit.conn, env, expected_batches=upload.batch_count,
                                                   checksum=upload.checksum):
                    continue
            await self._validate_if_complete(unit, env.import_id)

    async def _validate_if_complete(self, unit: Unit, import_id: uuid.UUID) -> None:
        try:
            staged = await staging.complete(unit.conn, import_id)
        except staging.ChecksumMismatch as exc:
            row = await unit.conn.fetchval("SELECT marker FROM staged_imports WHERE import_id = $1", import_id)
            marker = Envelope[ImportUploaded].model_validate(row)
            failed = ImportFailed(phase=Phase.VALIDATION, code="checksum_mismatch", reason=str(exc))
            await unit.publish(topics.EVENTS, marker.follow(failed, producer=PRODUCER, stage_key="validation"))
            await staging.finish(unit.conn, import_id, "failed")
            return
        if staged is None:
            return
        marker = Envelope[ImportUploaded].model_validate(staged.marker)
        await validate_import(unit, marker, self.settings)
