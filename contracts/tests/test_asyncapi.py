"""contracts/asyncapi.yaml: current, a valid AsyncAPI 3.0 document, and true to the wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts import REGISTRY, topics
from contracts.access import ApiKeyRecord
from contracts.asyncapi import DLQ_HEADERS, channel_id, dead_letter_codes, document, render
from contracts.envelope import Envelope, Tenant
from contracts.events import ErrorInfo, FlowStatus, ImportFailed, RecordBatch
from contracts.history import MODELS as PREVIOUS_MODELS
from contracts.topic_config import topic_configs

COMMITTED = Path(__file__).parents[1] / "asyncapi.yaml"
SPEC_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0-schema.json"
TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document()


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> Any:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"external reference {ref}"
        target: Any = doc
        for part in ref[2:].split("/"):
            assert part in target, f"{ref} does not resolve"
            target = target[part]
        node = target
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _validator(doc: dict[str, Any], schema_name: str) -> jsonschema.Draft202012Validator:
    """A validator for one components/schemas entry, its $refs resolved within the document."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_committed_document_is_current(doc: dict[str, Any]) -> None:
    assert COMMITTED.exists(), "contracts/asyncapi.yaml missing: run `make asyncapi`"
    assert yaml.safe_load(COMMITTED.read_text()) == doc, "contracts/asyncapi.yaml is stale: run `make asyncapi`"
    # What is committed is exactly what the exporter writes (same PyYAML from the lock).
    assert COMMITTED.read_text() == render(), "contracts/asyncapi.yaml is stale: run `make asyncapi`"


def test_valid_against_the_asyncapi_3_schema(doc: dict[str, Any]) -> None:
    spec = json.loads(SPEC_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(spec).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:10])


def test_every_topic_is_a_channel(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    addresses = {channel["address"]: name for name, channel in doc["channels"].items()}
    wanted = set(topics.ALL) | {topics.dlq(t) for t in topics.ALL}
    assert set(addresses) == wanted
    for topic in wanted:
        assert addresses[topic] == channel_id(topic)


def test_compaction_and_retention(doc: dict[str, Any]) -> None:
    for config in topic_configs():
        binding = doc["channels"][channel_id(config.name)]["bindings"]["kafka"]
        policy = binding["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if config.name in topics.COMPACTED else ["delete"]), config.name
        assert binding["topicConfiguration"]["retention.ms"] == config.retention_ms
    assert {c.name for c in topic_configs() if c.compacted} == {topics.FLOW_STATUS, topics.API_KEYS}


def test_every_event_type_and_version_is_a_message_whose_payload_resolves(doc: dict[str, Any]) -> None:
    wanted = {f"{t}.v{cls.SCHEMA_VERSION}" for t, cls in REGISTRY.items()} | {f"{t}.v{v}" for t, v in PREVIOUS_MODELS}
    messages = doc["components"]["messages"]
    assert wanted <= set(messages)
    on_channels = [ref["$ref"].rsplit("/", 1)[1] for channel in doc["channels"].values()
                   for ref in channel["messages"].values()]
    for message_id in wanted:
        assert on_channels.count(message_id) == 1, f"{message_id} should be on exactly one channel"
        message = messages[message_id]
        payload = _resolve(doc, message["payload"])
        assert payload["type"] == "object" and {"event_id", "tenant", "import_id", "payload"} <= set(payload["required"])
        event_type = message["name"]
        assert payload["properties"]["event_type"]["const"] == event_type
        version = payload["properties"]["schema_version"]["const"]
        assert message_id == f"{event_type}.v{version}"
        headers = message["headers"]
        assert headers["type"] == "object" and {"event_type", "schema_version"} <= set(headers["required"])
        assert headers["properties"]["event_type"]["const"] == event_type
        assert headers["properties"]["schema_version"]["const"] == str(version)
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    for ref in _refs(doc):
        _resolve(doc, {"$ref": ref})


def test_keys(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert "flow_id" in messages["FlowStatus.v1"]["bindings"]["kafka"]["key"]["description"]
    assert "import_id" in messages["RecordBatch.v1"]["bindings"]["kafka"]["key"]["description"]
    assert "key_id" in messages["ApiKeyRecord"]["bindings"]["kafka"]["key"]["description"]


def test_dead_letter_channels(doc: dict[str, Any]) -> None:
    for topic in topics.ALL:
        channel = doc["channels"][channel_id(topics.dlq(topic))]
        assert [r["$ref"] for r in channel["messages"].values()] == ["#/components/messages/DeadLetter"]
    headers = doc["components"]["messages"]["DeadLetter"]["headers"]
    assert set(headers["required"]) == set(DLQ_HEADERS)
    assert headers["properties"]["dlq.error_code"]["enum"] == dead_letter_codes()
    assert {"malformed", "unknown_event_type", "unsupported_schema_version", "handler_failed"} <= set(
        dead_letter_codes())


def _wire(envelope: Envelope[Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return json.loads(envelope.encode()), {k: v.decode() for k, v in envelope.headers()}


def test_real_events_validate_against_their_messages(doc: dict[str, Any]) -> None:
    """Encoded events (body and headers) are instances of the schemas the document gives them."""
    import_id = uuid.uuid4()
    samples = [
        Envelope.wrap(RecordBatch(category="cmdb_export", batch_seq=1, columns=["hostname", "cpu"],
                                  row_numbers=[1, 2], rows=[["a", 2], ["b", None]]),
                      tenant=TENANT, import_id=import_id, producer="ingest", occurred_at=AT),
        Envelope.wrap(ImportFailed(phase="validation", error=ErrorInfo(code="error_threshold", reason="too many")),
                      tenant=TENANT, import_id=import_id, producer="validator", stage_key="validation"),
        Envelope.wrap(FlowStatus(flow_id=uuid.uuid4(), child_flow_id=uuid.uuid4(), import_id=import_id,
                                 category="cmdb_export", status="running", child_status="validating",
                                 current_phase="validation", progress_percentage=40.0, phase_state={},
                                 version=3, updated_at=AT),
                      tenant=TENANT, import_id=import_id, producer="flow_state"),
    ]
    messages = doc["components"]["messages"]
    for envelope in samples:
        body, headers = _wire(envelope)
        message_id = f"{envelope.event_type}.v{envelope.schema_version}"
        _validator(doc, message_id).validate(body)
        header_schema = {"components": doc["components"], **messages[message_id]["headers"]}
        jsonschema.Draft202012Validator(header_schema).validate(headers)
        # ...and not against another version's schema: the const event_type/schema_version tell them apart.
        other = "ImportFailed.v1" if message_id != "ImportFailed.v1" else "ImportFailed.v2"
        assert not _validator(doc, other).is_valid(body)

    v1 = _wire(samples[1])[0] | {"schema_version": 1, "payload": {"phase": "validation", "code": "x", "reason": "y"}}
    _validator(doc, "ImportFailed.v1").validate(v1)

    record = ApiKeyRecord(key_id="abc123", client_account_id=TENANT.client_account_id,
                          engagement_id=TENANT.engagement_id, key_hash="0" * 64, created_at=AT)
    _validator(doc, "ApiKeyRecord").validate(json.loads(record.model_dump_json()))
