"""What the validator does with each event it consumes."""

from __future__ import annotations

from contracts import ImportUploaded, Phase, RecordBatch
from tributary_runtime import flow_control, staging
from tributary_runtime.consumer import Inbound, Unit

from .validation import PRODUCER, Validation, validate_import

EVENT_TYPES = ("RecordBatch", "ImportUploaded", *flow_control.EVENT_TYPES)
# A dead-lettered batch or marker leaves the import's staged set failed, ready for a retry.
ON_DEAD_LETTER = staging.fail_staged_on_dead_letter(marker_type=ImportUploaded, batch_type=RecordBatch,
                                                    phase=Phase.VALIDATION)


class ValidatorHandler:
    def __init__(self, validation: Validation) -> None:
        self.validation = validation

    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        for inbound in events:
            env = inbound.envelope
            if env.event_type in flow_control.EVENT_TYPES:
                # Pause, resume, retry: a held or failed validation may run now.
                marker = await flow_control.apply(unit, env, phase=Phase.VALIDATION, marker_type=ImportUploaded,
                                                  producer=PRODUCER)
            else:
                marker = await staging.join(unit, env, marker_type=ImportUploaded, phase=Phase.VALIDATION,
                                            producer=PRODUCER)
            if marker is not None:
                await validate_import(unit, marker, self.validation)
