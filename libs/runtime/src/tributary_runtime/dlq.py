"""Dead letters: the original bytes, on ``<topic>.dlq``, with the reason in headers."""

from __future__ import annotations

from typing import Any

from contracts import topics


def dead_letter(message: Any, *, code: str, reason: str, consumer_group: str) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) of the dead letter for a consumed aiokafka message."""
    headers = [(k, v) for k, v in (message.headers or ()) if not k.startswith("dlq.")]
    headers += [
        ("dlq.error_code", code.encode()),
        ("dlq.error", reason[:2000].encode("utf-8", "replace")),
        ("dlq.source_topic", message.topic.encode()),
        ("dlq.source_partition", str(message.partition).encode()),
        ("dlq.source_offset", str(message.offset).encode()),
        ("dlq.consumer_group", consumer_group.encode()),
    ]
    return topics.dlq(message.topic), message.key, message.value, headers
