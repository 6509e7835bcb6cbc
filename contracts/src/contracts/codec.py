"""Decoding from the wire, with upcasting of older schema versions.

Consumers accept the current and older ``schema_version`` of every event (older
payloads are upcast step by step); a newer version, an unknown type or a body that
fails its model raises :class:`UndecodableEvent`, which consumers send to the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import ValidationError

from .envelope import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, Envelope, Payload, header_value
from .events import ALL_EVENTS

REGISTRY: dict[str, type[Payload]] = {cls.EVENT_TYPE: cls for cls in ALL_EVENTS}

# (event_type, version) -> function turning a payload dict of that version into the next.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


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
    current = REGISTRY[event_type].SCHEMA_VERSION
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnsupportedSchemaVersion(f"{event_type} v{version} has no upcaster to v{version + 1}")
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
            return model.model_validate_json(value)
        raw = raw if raw is not None else _loads(value)
        if raw.get("event_type") != event_type:
            raise MalformedEvent("event_type header and body disagree")
        raw["payload"] = upcast(event_type, version, dict(raw.get("payload") or {}))
        raw["schema_version"] = current
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MalformedEvent(_describe(exc)) from None


def _loads(value: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("event body is not a JSON object")
    return raw


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err["type"] == "json_invalid":
            return f"not JSON: {err['msg']}"
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
