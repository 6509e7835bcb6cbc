"""Topic names: the only place they are spelled."""

RECORDS = "imports.records.v1"
EVENTS = "imports.events.v1"
VALIDATED_RECORDS = "imports.validated-records.v1"
FLOW_STATUS = "flows.status.v1"

DLQ_SUFFIX = ".dlq"

ALL = (RECORDS, EVENTS, VALIDATED_RECORDS, FLOW_STATUS)
# Status is a snapshot per flow: compaction keeps the latest one per key.
COMPACTED = frozenset({FLOW_STATUS})


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX
