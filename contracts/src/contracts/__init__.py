"""Tributary event contracts."""

from . import topics
from .categories import PHASES, Category, Phase
from .codec import (
    REGISTRY,
    UPCASTERS,
    MalformedEvent,
    UndecodableEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
)
from .digest import batch_digest, import_checksum
from .envelope import Envelope, Payload, Tenant, deterministic_event_id
from .events import (
    AgentResult,
    EnrichmentCompleted,
    ErrorInfo,
    FlowPaused,
    FlowResumed,
    FlowStatus,
    ImportFailed,
    ImportReverted,
    ImportRevertCompleted,
    ImportUploaded,
    PhaseProgress,
    PhaseRetryRequested,
    RecordBatch,
    ValidatedBatch,
    ValidationCompleted,
)

__all__ = [
    "AgentResult",
    "PHASES",
    "REGISTRY",
    "UPCASTERS",
    "Category",
    "EnrichmentCompleted",
    "Envelope",
    "ErrorInfo",
    "FlowPaused",
    "FlowResumed",
    "FlowStatus",
    "ImportFailed",
    "ImportRevertCompleted",
    "ImportReverted",
    "ImportUploaded",
    "MalformedEvent",
    "Payload",
    "Phase",
    "PhaseProgress",
    "PhaseRetryRequested",
    "RecordBatch",
    "Tenant",
    "UndecodableEvent",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "ValidatedBatch",
    "ValidationCompleted",
    "batch_digest",
    "decode",
    "deterministic_event_id",
    "import_checksum",
    "topics",
]
