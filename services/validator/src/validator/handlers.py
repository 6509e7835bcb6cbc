"""What the validator does with each event it consumes."""

from __future__ import annotations

from contracts import ImportUploaded, Phase
from tributary_runtime import staging
from tributary_runtime.consumer import Inbound, Unit

from .validation import PRODUCER, Validation, validate_import

EVENT_TYPES = ("RecordBatch", "ImportUploaded")


class ValidatorHandler:
    def __init__(self, validation: Validation) -> None:
        self.validation = validation

    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        for inbound in events:
            marker = await staging.join(unit, inbound.envelope, marker_type=ImportUploaded,
                                        phase=Phase.VALIDATION, producer=PRODUCER)
            if marker is not None:
                await validate_import(unit, marker, self.validation)
