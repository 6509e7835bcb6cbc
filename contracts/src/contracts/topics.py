"""Topic names: the only place they are spelled."""

RECORDS = "imports.records.v1"
EVENTS = "imports.events.v1"
VALIDATED_RECORDS = "imports.validated-records.v1"
FLOW_STATUS = "flows.status.v1"
# API keys (hashes only), keyed by key id: every service builds its key ring from it.
API_KEYS = "access.api-keys.v1"

DLQ_SUFFIX = ".dlq"

ALL = (RECORDS, EVENTS, VALIDATED_RECORDS, FLOW_STATUS, API_KEYS)
# Status is a snapshot per flow, a key record the latest state of a key: compaction keeps the last per key.
COMPACTED = frozenset({FLOW_STATUS, API_KEYS})


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX
