"""Schema evolution: ImportFailed v2 is emitted, v1 is upcast on decode, v3 is refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts import (
    REGISTRY,
    UPCASTERS,
    Envelope,
    ErrorInfo,
    ImportFailed,
    MalformedEvent,
    Tenant,
    UnsupportedSchemaVersion,
    decode,
)
from contracts.codec import upcast
from contracts.history import MODELS, import_failed_v1_to_v2
from contracts.schema_export import schemas

TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
IMPORT, FLOW = uuid.uuid4(), uuid.uuid4()
STARTED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

V1_PAYLOAD = {"phase": "validation", "code": "error_threshold", "reason": "8 of 10 rows are invalid",
              "details": {"invalid_count": 8, "record_count": 10}, "started_at": STARTED.isoformat()}
V2 = ImportFailed(phase="validation", started_at=STARTED, error=ErrorInfo(
    code="error_threshold", reason="8 of 10 rows are invalid", details={"invalid_count": 8, "record_count": 10}))


def envelope(payload=V2) -> Envelope:
    return Envelope.wrap(payload, tenant=TENANT, import_id=IMPORT, flow_id=FLOW, producer="validator",
                         stage_key="validation", occurred_at=datetime(2026, 3, 1, 9, 31, tzinfo=UTC))


def wire(payload: dict, version: int, *, headers: bool = True) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``envelope()`` on the wire with ``payload`` and ``schema_version`` replaced."""
    body = json.loads(envelope().encode()) | {"schema_version": version, "payload": payload}
    sent = [("event_type", b"ImportFailed"), ("schema_version", str(version).encode())] if headers else []
    return json.dumps(body).encode(), sent


def test_producers_emit_v2() -> None:
    env = envelope()
    assert ImportFailed.SCHEMA_VERSION == 2 and env.schema_version == 2
    assert dict(env.headers())["schema_version"] == b"2"
    body = json.loads(env.encode())
    assert body["schema_version"] == 2
    assert body["payload"]["error"] == {"code": "error_threshold", "reason": "8 of 10 rows are invalid",
                                        "details": {"invalid_count": 8, "record_count": 10}}
    assert "code" not in body["payload"]


def test_the_upcaster_groups_the_error() -> None:
    assert UPCASTERS[("ImportFailed", 1)] is import_failed_v1_to_v2
    original = dict(V1_PAYLOAD)
    assert import_failed_v1_to_v2(original) == {
        "phase": "validation", "started_at": STARTED.isoformat(),
        "error": {"code": "error_threshold", "reason": "8 of 10 rows are invalid",
                  "details": {"invalid_count": 8, "record_count": 10}}}
    assert original == V1_PAYLOAD  # the input is not modified


def test_v1_without_details_or_start_gets_v2_defaults() -> None:
    lifted = upcast("ImportFailed", 1, {"phase": "upload", "code": "gave_up", "reason": "source went away"})
    assert ImportFailed.model_validate(lifted) == ImportFailed(
        phase="upload", error=ErrorInfo(code="gave_up", reason="source went away"))


@pytest.mark.parametrize("with_headers", [True, False], ids=["headers", "body-only"])
def test_a_v1_event_decodes_to_the_same_event_as_its_v2(with_headers: bool) -> None:
    decoded = decode(*wire(V1_PAYLOAD, 1, headers=with_headers))
    assert decoded == envelope()
    assert decoded.schema_version == 2
    assert type(decoded.payload) is ImportFailed
    assert decoded.payload.error.details == {"invalid_count": 8, "record_count": 10}


def test_a_v2_event_decodes_as_is() -> None:
    env = envelope()
    assert decode(env.encode(), env.headers()) == env
    assert decode(*wire(json.loads(env.encode())["payload"], 2)) == env


def test_a_broken_v1_is_reported_in_v1_terms() -> None:
    without_reason = {k: v for k, v in V1_PAYLOAD.items() if k != "reason"}
    with pytest.raises(MalformedEvent, match=r"ImportFailed v1: payload\.reason: Field required"):
        decode(*wire(without_reason, 1))
    with pytest.raises(MalformedEvent, match=r"payload\.surprise: Extra inputs"):
        decode(*wire(V1_PAYLOAD | {"surprise": 1}, 1))
    # A v2 body labelled v1 is not silently accepted either.
    with pytest.raises(MalformedEvent, match="ImportFailed v1"):
        decode(*wire(json.loads(envelope().encode())["payload"], 1))
    # Nor a v1 body labelled v2.
    with pytest.raises(MalformedEvent, match=r"payload\.error: Field required"):
        decode(*wire(V1_PAYLOAD, 2))


def test_newer_and_unknown_older_versions_are_refused() -> None:
    v3 = {"phase": "validation", "error": {"code": "x", "reason": "y", "details": {}}, "severity": "fatal"}
    with pytest.raises(UnsupportedSchemaVersion, match="ImportFailed schema_version 3 is newer than supported 2"):
        decode(*wire(v3, 3))
    with pytest.raises(UnsupportedSchemaVersion, match="newer"):
        decode(*wire(v3, 3, headers=False))
    with pytest.raises(UnsupportedSchemaVersion, match="v0 has no upcaster"):
        decode(*wire(V1_PAYLOAD, 0))


def test_headers_and_body_must_agree_on_the_version() -> None:
    body, _ = wire(V1_PAYLOAD, 1)
    with pytest.raises(MalformedEvent, match="schema_version header 2 and body 1 disagree"):
        decode(body, [("event_type", b"ImportFailed"), ("schema_version", b"2")])
    v2_body = envelope().encode()
    with pytest.raises(MalformedEvent, match="schema_version header 1 and body 2 disagree"):
        decode(v2_body, [("event_type", b"ImportFailed"), ("schema_version", b"1")])
    with pytest.raises(MalformedEvent, match="event_type header 'PhaseProgress' and body 'ImportFailed' disagree"):
        decode(v2_body, [("event_type", b"PhaseProgress"), ("schema_version", b"1")])


def test_every_older_version_has_a_model_and_an_upcaster() -> None:
    for event_type, cls in REGISTRY.items():
        for version in range(1, cls.SCHEMA_VERSION):
            assert (event_type, version) in UPCASTERS, f"{event_type} v{version} cannot be upcast"
            assert (event_type, version) in MODELS, f"{event_type} v{version} has no model in contracts.history"
            assert MODELS[(event_type, version)].SCHEMA_VERSION == version
    assert set(UPCASTERS) == set(MODELS)


def test_both_versions_have_a_json_schema_that_tells_them_apart() -> None:
    import jsonschema  # locked (requirements.lock)
    exported = schemas()
    v1_schema, v2_schema = exported["ImportFailed.v1.json"], exported["ImportFailed.v2.json"]
    assert v1_schema["$id"].endswith(":v1") and v2_schema["$id"].endswith(":v2")
    v1_body = json.loads(wire(V1_PAYLOAD, 1)[0])
    v2_body = json.loads(envelope().encode())
    jsonschema.validate(v1_body, v1_schema)
    jsonschema.validate(v2_body, v2_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(v1_body, v2_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(v2_body, v1_schema)
