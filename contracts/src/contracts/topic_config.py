"""Broker-side settings of every topic: what a deployment's topic job creates.

One place for them, because three things must agree: the topic-creation jobs under
``deploy/`` (checked by ``tests/deploy``), the AsyncAPI document (``contracts.asyncapi``)
and docs/deployment.md.

A service also creates a missing topic at start-up (``tributary_runtime.broker.ensure_topics``)
with these same configs, its ``TRIBUTARY_TOPIC_PARTITIONS`` and ``TRIBUTARY_TOPIC_REPLICATION_FACTOR``
(default 1). An existing topic is left as it is either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import topics

# The largest message a service produces (its producer's max_request_size): a topic must
# accept it, and managed brokers default to about 1 MB.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Kept forever: the event log is the source of truth. Rebuilds read the input topics from
# offset 0 and `tributary replay` scans them, so deleting old segments loses state.
RETAIN_FOREVER = -1

# What each topic's message key is. Lifecycle and row topics share the import id, so an
# import's batches and markers keep their order within one partition.
KEYS: dict[str, str] = {
    topics.RECORDS: "import_id",
    topics.EVENTS: "import_id",
    topics.VALIDATED_RECORDS: "import_id",
    topics.FLOW_STATUS: "flow_id",
    topics.API_KEYS: "key_id",
}


@dataclass(frozen=True)
class TopicConfig:
    name: str
    key: str
    cleanup_policy: str
    retention_ms: int
    dead_letter_of: str | None = None

    @property
    def compacted(self) -> bool:
        return self.cleanup_policy == "compact"

    def configs(self) -> dict[str, str]:
        """The topic-level configs, as passed to ``kafka-topics.sh --config``."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }


def topic_configs() -> list[TopicConfig]:
    """Every topic a deployment needs, each followed by its dead-letter topic."""
    out: list[TopicConfig] = []
    for name in topics.ALL:
        out.append(TopicConfig(name, KEYS[name], "compact" if name in topics.COMPACTED else "delete",
                               RETAIN_FOREVER))
        # Dead letters are never compacted (two poison messages of one import share a key)
        # and kept forever: guarantee 4 says they are never dropped.
        out.append(TopicConfig(topics.dlq(name), KEYS[name], "delete", RETAIN_FOREVER, dead_letter_of=name))
    return out
