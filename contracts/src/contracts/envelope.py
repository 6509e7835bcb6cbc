"""The one envelope every event travels in, and its wire encoding.

Headers repeat ``event_type`` and ``schema_version`` so a consumer can route or skip
a message without parsing the body.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

# Fixed namespace for deterministic event ids (uuid5). Never change it: duplicates
# emitted after a crash are recognised by their id.
EVENT_NAMESPACE = uuid.UUID("5b0f3c7e-2d47-4d0b-9a53-7f1e9b1c2a10")

HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_TENANT = "client_account_id"


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_account_id: uuid.UUID
    engagement_id: uuid.UUID


class Payload(BaseModel):
    """Base of every event payload. Subclasses set EVENT_TYPE and SCHEMA_VERSION."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


P = TypeVar("P", bound=Payload)


def deterministic_event_id(import_id: uuid.UUID | str, event_type: str, stage_key: str = "") -> uuid.UUID:
    """Id of an event a service may emit twice (after a crash): same inputs, same id."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{import_id}:{event_type}:{stage_key}")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    producer: str
    tenant: Tenant
    user_id: str = "system"
    import_id: uuid.UUID
    flow_id: uuid.UUID | None = None
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: P

    @classmethod
    def wrap(
        cls,
        payload: P,
        *,
        tenant: Tenant,
        import_id: uuid.UUID,
        producer: str,
        flow_id: uuid.UUID | None = None,
        user_id: str = "system",
        stage_key: str | None = None,
        event_id: uuid.UUID | None = None,
        correlation_id: uuid.UUID | None = None,
        causation_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope[P]:
        """Build an envelope. ``stage_key`` makes the id deterministic."""
        if event_id is None:
            event_id = (
                deterministic_event_id(import_id, payload.EVENT_TYPE, stage_key)
                if stage_key is not None
                else uuid.uuid4()
            )
        return Envelope[type(payload)](  # type: ignore[index]
            event_id=event_id,
            event_type=payload.EVENT_TYPE,
            schema_version=payload.SCHEMA_VERSION,
            occurred_at=occurred_at or utcnow(),
            producer=producer,
            tenant=tenant,
            user_id=user_id,
            import_id=import_id,
            flow_id=flow_id,
            correlation_id=correlation_id or import_id,
            causation_id=causation_id,
            payload=payload,
        )

    def follow(self, payload: P, *, producer: str, stage_key: str | None = None,
               occurred_at: datetime | None = None) -> Envelope[P]:
        """An event caused by this one: same tenant, import, flow, user and correlation."""
        return Envelope.wrap(
            payload,
            tenant=self.tenant,
            import_id=self.import_id,
            flow_id=self.flow_id,
            user_id=self.user_id,
            producer=producer,
            stage_key=stage_key,
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            occurred_at=occurred_at,
        )

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_EVENT_TYPE, self.event_type.encode()),
            (HEADER_SCHEMA_VERSION, str(self.schema_version).encode()),
            (HEADER_TENANT, str(self.tenant.client_account_id).encode()),
        ]

    @property
    def key(self) -> bytes:
        return str(self.import_id).encode()


_BYTES = (bytes, bytearray)  # a tuple: ``bytes | bytearray`` would build a union on every call


def header_value(headers: Any, name: str) -> str | None:
    for k, v in headers or ():
        if k == name:
            return v.decode() if isinstance(v, _BYTES) else str(v)
    return None


__all__ = [
    "EVENT_NAMESPACE",
    "Envelope",
    "HEADER_EVENT_TYPE",
    "HEADER_SCHEMA_VERSION",
    "Payload",
    "Tenant",
    "deterministic_event_id",
    "header_value",
    "utcnow",
]
