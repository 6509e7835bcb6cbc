"""Where each partition ends: its high watermark, read from a Fetch response.

Not ``AIOKafkaConsumer.end_offsets()`` alone. That is a ListOffsets(latest) request, and tansu
(0.6, the development and CI broker) answers it with the base offset of the partition's last
record *batch* plus one: a last batch of several records hides all but its first (a producer
that batched 7 sends as 4 + 3 is told 5, not 7; a bulk publish of thousands of events in a few
batches is told thousands short). Code that decides "read to the end" or "caught up" from it
stops early: a rebuild's bulk pass and catch-up rounds stop short of the log, a replay misses an
import's last messages. Apache Kafka answers both requests alike.

The high watermark in a Fetch response is right on tansu too (checked by
libs/runtime/tests/test_watermarks.py against a real broker), and aiokafka records it for every
partition a response covers, with records or without. So: take the listed end, fetch once from
just before it (the partition's last batch at most) and take the larger of the two.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from .broker import MAX_MESSAGE_BYTES, kafka_client_options
from .settings import ServiceSettings

TP = TopicPartition


async def high_watermarks(settings: ServiceSettings | str, partitions: Iterable[TP], *, timeout: float = 30.0
                          ) -> dict[TP, int]:
    """The offset after each partition's last message, now (a consumer of its own, no group).

    ``settings`` gives the connection (``kafka_client_options``); a bare bootstrap list (tests) is PLAINTEXT.
    """
    tps = list(dict.fromkeys(partitions))
    if not tps:
        return {}
    connection = (kafka_client_options(settings) if isinstance(settings, ServiceSettings)
                  else {"bootstrap_servers": settings})
    consumer = AIOKafkaConsumer(
        **connection, group_id=None, client_id="tributary-watermarks",
        enable_auto_commit=False,
        # An offset below the log start (retention) resets to the end: a fetch there still answers the watermark.
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,  # a fetch at the end of a partition answers at once rather than waiting for data
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES, fetch_max_bytes=16 * MAX_MESSAGE_BYTES)
    await consumer.start()
    try:
        listed = await consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(listed[tp] - 1, 0))
        deadline = time.monotonic() + timeout
        while unknown := [tp for tp in tps if consumer.highwater(tp) is None]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch response (high watermark) for {unknown} in {timeout:g}s")
            await consumer.getmany(*unknown, timeout_ms=100)
        return {tp: max(listed[tp], consumer.highwater(tp)) for tp in tps}
    finally:
        await consumer.stop()
