"""Decoding from the wire, with upcasting of older schema versions.

Consumers accept the current and older ``schema_version`` of every event (older
payloads are upcast step by step); a newer version, an unknown type or a body that
fails its model raises :class:`UndecodableEvent`, which consumers send to the DLQ.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import ValidationError

from .envelope import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, Envelope, Payload, header_value
from .events import ALL_EVENTS
from .history import MODELS as PREVIOUS_MODELS
from .history import UPCASTERS, Upcaster

REGISTRY: dict[str, type[Payload]] = {cls.EVENT_TYPE: cls for cls in ALL_EVENTS}


class UndecodableEvent(Exception):
    code = "undecodable"


class MalformedEvent(UndecodableEvent):
    code = "malformed"


class UnknownEventType(UndecodableEvent):
    code = "unknown_event_type"


class UnsupportedSchemaVersion(UndecodableEvent):
    code = "unsupported_schema_version"


@cache
def envelope_type(event_type: str) -> type[Envelope[Any]]:
    return Envelope[REGISTRY[event_type]]  # type: ignore[index,return-value]


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Lift a payload of an older ``version`` to the current one, one version at a time.

    Each older payload is first checked against its own version's model (when kept in
    ``contracts.history``), so a broken v1 is reported in v1's terms.
    """
    current = REGISTRY[event_type].SCHEMA_VERSION
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnsupportedSchemaVersion(f"{event_type} v{version} has no upcaster to v{version + 1}")
        model = PREVIOUS_MODELS.get((event_type, version))
        if model is not None:
            try:
                payload = model.model_validate(payload).model_dump(mode="json")
            except ValidationError as exc:
                raise MalformedEvent(f"{event_type} v{version}: {_describe(exc, prefix='payload')}") from None
        payload = step(payload)
        version += 1
    return payload


def decode(value: bytes | None, headers: Any = None) -> Envelope[Any]:
    if not value:
        raise MalformedEvent("empty message body")
    event_type = header_value(headers, HEADER_EVENT_TYPE)
    version_text = header_value(headers, HEADER_SCHEMA_VERSION)
    raw: dict[str, Any] | None = None
    if event_type is None or version_text is None:
        raw = _loads(value)
        event_type = raw.get("event_type")
        version_text = str(raw.get("schema_version"))
    if event_type not in REGISTRY:
        raise UnknownEventType(f"unknown event_type {event_type!r}")
    try:
        version = int(version_text)
    except (TypeError, ValueError):
        raise MalformedEvent(f"schema_version {version_text!r} is not an integer") from None
    current = REGISTRY[event_type].SCHEMA_VERSION
    if version > current:
        raise UnsupportedSchemaVersion(
            f"{event_type} schema_version {version} is newer than supported {current}"
        )
    model = envelope_type(event_type)
    try:
        if version == current and raw is None:
            try:
                envelope = model.model_validate_json(value)
            except ValidationError:
                raw = _loads(value)  # a body of another type or version explains the failure best
                _same(event_type, version, raw.get("event_type"), raw.get("schema_version"))
                raise
            _same(event_type, version, envelope.event_type, envelope.schema_version)
            return envelope
        raw = raw if raw is not None else _loads(value)
        _same(event_type, version, raw.get("event_type"), raw.get("schema_version"))
        payload = raw.get("payload")
        if not isinstance(payload, dict):
            raise MalformedEvent("payload: not a JSON object")
        raw["payload"] = upcast(event_type, version, payload)
        raw["schema_version"] = current
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MalformedEvent(_describe(exc)) from None


def _same(event_type: str, version: int, body_type: Any, body_version: Any) -> None:
    """The headers route the message, the body is what gets applied: they must agree."""
    if body_type != event_type:
        raise MalformedEvent(f"event_type header {event_type!r} and body {body_type!r} disagree")
    if str(body_version) != str(version):
        raise MalformedEvent(f"schema_version header {version} and body {body_version!r} disagree")


def _loads(value: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("event body is not a JSON object")
    return raw


def _describe(exc: ValidationError, prefix: str | None = None) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err["type"] == "json_invalid":
            return f"not JSON: {err['msg']}"
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
