"""``tributary-contracts export-asyncapi [FILE]``: the AsyncAPI 3.0 document of every topic.

Generated from the code, never edited by hand: channels from ``contracts.topics`` and
``contracts.topic_config``, one message per event type and schema version from the
payload models (``contracts.codec.REGISTRY`` and ``contracts.history``), and the models'
JSON Schemas as ``components/schemas``. ``contracts/asyncapi.yaml`` is the committed copy;
a test fails when it is stale (``make asyncapi`` rewrites it).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import topics
from .access import ApiKeyRecord
from .codec import PREVIOUS_MODELS, REGISTRY, UndecodableEvent, envelope_type
from .envelope import HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, HEADER_TENANT, Envelope, Payload
from .events import LIFECYCLE, FlowStatus, RecordBatch, ValidatedBatch
from .topic_config import TopicConfig, topic_configs

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DEFAULT_PATH = Path("contracts/asyncapi.yaml")
SCHEMA_REF = "#/components/schemas/{model}"

# Which events travel on which topic (every event type is on exactly one).
TOPIC_EVENTS: dict[str, tuple[type[Payload], ...]] = {
    topics.RECORDS: (RecordBatch,),
    topics.EVENTS: LIFECYCLE,
    topics.VALIDATED_RECORDS: (ValidatedBatch,),
    topics.FLOW_STATUS: (FlowStatus,),
}

# Headers a consumer adds to a dead letter (tributary_runtime.dlq.dead_letter; a test checks
# the two agree). The original message's own headers are kept beside them.
DLQ_HEADERS: dict[str, str] = {
    "dlq.error_code": "why the message was dead-lettered (see the enum)",
    "dlq.error": "the reason for people, at most 2000 characters",
    "dlq.source_topic": "the topic the message was consumed from",
    "dlq.source_partition": "its partition there (decimal)",
    "dlq.source_offset": "its offset there (decimal): the original stays on the source topic",
    "dlq.consumer_group": "the consumer group that gave up on it",
}
# The handler kept failing after TRIBUTARY_HANDLER_MAX_ATTEMPTS attempts (the consumer loop);
# every other code is an UndecodableEvent's: the body could not be decoded at all.
HANDLER_FAILED = "handler_failed"

CHANNEL_TEXT: dict[str, tuple[str, str]] = {
    topics.RECORDS: ("Raw records", "Rows of an upload as parsed, in batches (ingest or an upstream producer, "
                     "then the ImportUploaded marker on imports.events.v1). Consumed by the validator."),
    topics.EVENTS: ("Import lifecycle", "Every lifecycle event of every import, keyed by import id so one "
                    "import's events stay in one partition, in causal order. Every service publishes here; "
                    "flow-state projects all of it."),
    topics.VALIDATED_RECORDS: ("Validated records", "Accepted rows normalised to the category's canonical "
                               "columns (validator), then ValidationCompleted on imports.events.v1. "
                               "Consumed by the enricher."),
    topics.FLOW_STATUS: ("Flow status", "A FlowStatus snapshot after every change of a flow (flow-state). "
                         "Compacted: the latest snapshot per flow id is kept. For dashboards."),
    topics.API_KEYS: ("API keys", "The state of every API key, hashes only (ingest). Compacted: the latest "
                      "record per key id is kept; every service reads the whole topic into its key ring. "
                      "A record with a null value (tombstone) removes the key."),
}


def _version() -> str:
    try:
        return metadata.version("tributary-contracts")
    except metadata.PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0"


def _message_id(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


class _Schemas:
    """components/schemas, filled from pydantic models with refs pointing into it."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        known = self.schemas.get(name)
        if known is not None and known != schema:
            raise ValueError(f"two different schemas are both named {name!r}")
        self.schemas[name] = schema

    def model(self, model: type[BaseModel], name: str, *, rename: dict[str, str] | None = None,
              properties: dict[str, Any] | None = None) -> str:
        """Add ``model`` as ``name``: its nested models under their own names (or ``rename``'s),
        ``properties`` replacing some of its own."""
        schema = model.model_json_schema(ref_template=SCHEMA_REF)
        rename = rename or {}
        schema = _rename_refs(schema, rename)
        for def_name, definition in schema.pop("$defs", {}).items():
            self.add(rename.get(def_name, def_name), definition)
        schema["title"] = name
        schema["properties"] |= properties or {}
        self.add(name, schema)
        return name


def _rename_refs(node: Any, rename: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rename_refs(v, rename) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = ref.rsplit("/", 1)[1]
            out["$ref"] = SCHEMA_REF.format(model=rename.get(target, target))
        return out
    if isinstance(node, list):
        return [_rename_refs(v, rename) for v in node]
    return node


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _event_message(schemas: _Schemas, event_type: str, payload: type[Payload], envelope: type[Envelope[Any]],
                   topic: str, *, current: bool) -> dict[str, Any]:
    version = payload.SCHEMA_VERSION
    message_id = _message_id(event_type, version)
    # The payload model of an older version has the same class name as the current one:
    # name both by type and version so neither hides the other.
    payload_name = f"{message_id}.payload"
    # The codec rejects a body whose type or version disagrees with its headers: say so.
    schemas.model(envelope, message_id, rename={payload.__name__: payload_name}, properties={
        "event_type": {"const": event_type, "type": "string", "title": "Event Type"},
        "schema_version": {"const": version, "type": "integer", "title": "Schema Version"},
    })
    key = topic_key(topic)
    summary = (payload.__doc__ or "").strip().split("\n\n")[0]
    message: dict[str, Any] = {
        "name": event_type,
        "title": f"{event_type} v{version}",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION],
            "properties": {
                HEADER_EVENT_TYPE: {"const": event_type, "type": "string",
                                    "description": "the body's event_type, to route or skip without parsing"},
                HEADER_SCHEMA_VERSION: {"const": str(version), "type": "string",
                                        "description": "the body's schema_version (decimal)"},
                HEADER_TENANT: {"type": "string", "format": "uuid",
                                "description": "the tenant's client account id"},
            },
        },
        "payload": _ref("schemas", message_id),
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    if summary:
        message["summary"] = " ".join(summary.split())
    if not current:
        message["description"] = (
            f"An earlier version, still accepted: consumers validate it against this schema and "
            f"upcast it to v{REGISTRY[event_type].SCHEMA_VERSION} (contracts.history). Producers "
            f"emit the current version only.")
    return message


def topic_key(topic: str) -> dict[str, Any]:
    field = next(c.key for c in topic_configs() if c.name == topic)
    key: dict[str, Any] = {"type": "string", "description": f"the {field}, UTF-8"}
    if field.endswith("_id") and field != "key_id":
        key["format"] = "uuid"
    return key


def dead_letter_codes() -> list[str]:
    """Every dlq.error_code a consumer writes: the codec's, then the handler's."""
    codes: list[str] = []
    pending: list[type[UndecodableEvent]] = [UndecodableEvent]
    while pending:
        cls = pending.pop(0)
        if cls.code not in codes:
            codes.append(cls.code)
        pending.extend(cls.__subclasses__())
    return [*codes, HANDLER_FAILED]


def _dead_letter_message() -> dict[str, Any]:
    properties: dict[str, Any] = {name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()}
    properties["dlq.error_code"]["enum"] = dead_letter_codes()
    properties["dlq.source_partition"]["pattern"] = "^[0-9]+$"
    properties["dlq.source_offset"]["pattern"] = "^[0-9]+$"
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a consumer gave up on: the original key and bytes, with the reason in headers.",
        "description": (
            "The value is the original message's value byte for byte (possibly not JSON, or an event "
            "of a version this consumer does not support); the key is the original key. The "
            "original headers are kept (except any dlq.* ones) and the dlq.* headers added. The "
            "import is marked failed with the reason (ImportFailed on imports.events.v1) when the "
            "message could be decoded."),
        "headers": {
            "type": "object",
            "required": sorted(DLQ_HEADERS),
            "properties": properties,
            "additionalProperties": {"type": "string"},
        },
        "payload": {"description": "the original message value, unchanged"},
    }


def _channel(config: TopicConfig, messages: dict[str, dict[str, str]], title: str, description: str) -> dict[str, Any]:
    topic_configuration: dict[str, Any] = {
        "cleanup.policy": [config.cleanup_policy],
        "retention.ms": config.retention_ms,
        "max.message.bytes": int(config.configs()["max.message.bytes"]),
    }
    return {
        "address": config.name,
        "title": title,
        "description": description,
        "messages": messages,
        "bindings": {"kafka": {"topicConfiguration": topic_configuration, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def channel_id(topic: str) -> str:
    """``imports.records.v1`` -> ``imports-records-v1``; a DLQ ends in ``-dlq``."""
    return topic.replace(".", "-")


def document() -> dict[str, Any]:
    schemas = _Schemas()
    messages: dict[str, dict[str, Any]] = {}
    channel_messages: dict[str, dict[str, dict[str, str]]] = {t: {} for t in topics.ALL}

    previous: dict[str, list[type[Payload]]] = {event_type: [] for event_type in REGISTRY}
    for (event_type, _), model in sorted(PREVIOUS_MODELS.items()):
        previous[event_type].append(model)
    for topic, events in TOPIC_EVENTS.items():
        for payload in events:
            event_type = payload.EVENT_TYPE
            versions = [(payload, envelope_type(event_type), True)]
            versions += [(old, Envelope[old], False) for old in previous[event_type]]  # type: ignore[valid-type]
            for model, envelope, current in versions:
                message_id = _message_id(event_type, model.SCHEMA_VERSION)
                messages[message_id] = _event_message(schemas, event_type, model, envelope, topic, current=current)
                channel_messages[topic][message_id] = _ref("messages", message_id)

    schemas.model(ApiKeyRecord, "ApiKeyRecord")
    messages["ApiKeyRecord"] = {
        "name": "ApiKeyRecord",
        "title": "API key record",
        "summary": " ".join((ApiKeyRecord.__doc__ or "").split()),
        "contentType": "application/json",
        "description": "Plain JSON, no envelope and no headers.",
        "payload": _ref("schemas", "ApiKeyRecord"),
        "bindings": {"kafka": {"key": topic_key(topics.API_KEYS), "bindingVersion": KAFKA_BINDING_VERSION}},
    }
    channel_messages[topics.API_KEYS]["ApiKeyRecord"] = _ref("messages", "ApiKeyRecord")
    messages["DeadLetter"] = _dead_letter_message()

    channels: dict[str, Any] = {}
    for config in topic_configs():
        if config.dead_letter_of is None:
            title, description = CHANNEL_TEXT[config.name]
            channels[channel_id(config.name)] = _channel(config, channel_messages[config.name], title, description)
        else:
            source = config.dead_letter_of
            channels[channel_id(config.name)] = _channel(
                config, {"DeadLetter": _ref("messages", "DeadLetter")}, f"{CHANNEL_TEXT[source][0]}: dead letters",
                f"Messages of {source} that a consumer could not decode or whose handler kept failing, "
                f"so the partition moves on. Keyed as the source.")

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Tributary events",
            "version": _version(),
            "description": (
                "Every Kafka topic of Tributary, generated from the contracts package "
                "(`tributary-contracts export-asyncapi`). Every event is JSON in one envelope; the "
                "headers event_type and schema_version repeat the body's so a consumer can route or "
                "skip a message without parsing it. Consumers accept the current and the previous "
                "schema_version of an event; a newer one goes to the topic's .dlq. Topic "
                "configuration (cleanup.policy, retention.ms, max.message.bytes) is what the "
                "deployment's topic job creates: see docs/deployment.md."),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"schemas": dict(sorted(schemas.schemas.items())), "messages": messages},
    }


def render() -> str:
    import yaml  # only the export needs it; producers importing contracts do not

    header = "# Generated by `tributary-contracts export-asyncapi` (make asyncapi). Do not edit.\n"
    return header + yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)


def export(path: Path = DEFAULT_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path
