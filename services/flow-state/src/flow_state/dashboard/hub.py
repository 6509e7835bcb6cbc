"""Live flow statuses for the dashboard: ``flows.status.v1`` read by this process, fanned out per tenant.

Why the status topic and not the projector's own changes: with several flow-state instances
each projector sees only its partitions of ``imports.events.v1``, but a browser is connected to
one instance and must see all of its tenant's flows. So every instance reads every partition of
the status topic, without a consumer group (nothing to commit, no rebalancing with the other
instances), from the end: what happened before a browser connected comes from the tables
(``snapshot`` below), what happens after comes from here.

A subscriber is one open event stream; it receives only statuses whose envelope names its
tenant (both client account and engagement). A subscriber that does not keep up (its queue is
full) is marked ``stale`` instead of slowing the others: its stream sends a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Tenant, topics
from contracts.codec import UndecodableEvent, decode
from contracts.envelope import HEADER_EVENT_TYPE, header_value
from tributary_runtime.broker import FetchPacing, kafka_client_options
from tributary_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

TenantKey = tuple[uuid.UUID, uuid.UUID]
# A status published just before a browser subscribed may reach the tables just after its snapshot
# was read (flow-state publishes, then commits): the last statuses seen are kept to close that gap.
RECENT = 5_000
QUEUE_SIZE = 1_000


def tenant_key(tenant: Tenant) -> TenantKey:
    return (tenant.client_account_id, tenant.engagement_id)


@dataclass(eq=False)
class Subscriber:
    tenant: TenantKey
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    stale: bool = False


class StatusHub:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.subscribers: set[Subscriber] = set()
        self.recent: OrderedDict[uuid.UUID, tuple[TenantKey, dict[str, Any]]] = OrderedDict()
        # Set once every partition has a position: a stream opened before would miss statuses.
        self.positioned = asyncio.Event()
        self.closed = False
        # Where reading stopped, so a reconnect after a broker error continues there instead of at the end.
        self._positions: dict[TopicPartition, int] = {}

    def subscribe(self, tenant: Tenant) -> Subscriber:
        sub = Subscriber(tenant_key(tenant))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def recent_for(self, tenant: Tenant) -> list[dict[str, Any]]:
        key = tenant_key(tenant)
        return [status for owner, status in self.recent.values() if owner == key]

    def close(self) -> None:
        """End every stream (a None in each queue) and refuse new ones: the process is stopping."""
        self.closed = True
        for sub in self.subscribers:
            while sub.queue.full():  # the stream ends anyway: what it has not sent yet can go
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)

    def dispatch(self, tenant: TenantKey, status: dict[str, Any]) -> None:
        flow_id = uuid.UUID(status["flow_id"])
        self.recent[flow_id] = (tenant, status)
        self.recent.move_to_end(flow_id)
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        for sub in self.subscribers:
            if sub.tenant == tenant:
                self._offer(sub, status)

    @staticmethod
    def _offer(sub: Subscriber, item: dict[str, Any] | None) -> None:
        try:
            sub.queue.put_nowait(item)
        except asyncio.QueueFull:
            sub.stale = True

    def handle(self, message: Any) -> None:
        """One status-topic message: decoded (upcast like any consumer's) and passed to its tenant's streams."""
        if header_value(message.headers, HEADER_EVENT_TYPE) not in (None, "FlowStatus"):
            return
        try:
            envelope = decode(message.value, message.headers)
        except UndecodableEvent as exc:
            # The DLQ is for consumers of record; a dashboard skips what it cannot show.
            log.warning("status message at %s/%s skipped: %s", message.partition, message.offset, exc)
            return
        self.dispatch(tenant_key(envelope.tenant), envelope.payload.model_dump(mode="json"))

    async def run(self) -> None:
        """Read the status topic until cancelled; broker errors are retried from the last position."""
        backoff = 0.5
        while not self.closed:
            consumer = AIOKafkaConsumer(
                **kafka_client_options(self.settings), group_id=None, enable_auto_commit=False,
                client_id="flow_state-dashboard", fetch_max_wait_ms=self.settings.fetch_idle_wait_ms,
                auto_offset_reset="latest")
            try:
                await consumer.start()
                await self._position(consumer)
                pacing = FetchPacing(consumer, self.settings, busy_ms=self.settings.fetch_idle_wait_ms)
                backoff = 0.5
                while not self.closed:
                    batches = await consumer.getmany(timeout_ms=1_000)
                    pacing.observe(bool(batches))
                    for tp, messages in batches.items():
                        for message in messages:
                            self.handle(message)
                        self._positions[tp] = messages[-1].offset + 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("status topic reader failed; reconnecting in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # refreshes metadata
        partitions = [TopicPartition(topics.FLOW_STATUS, p)
                      for p in sorted(consumer.partitions_for_topic(topics.FLOW_STATUS) or ())]
        if not partitions:
            raise RuntimeError(f"{topics.FLOW_STATUS} has no partitions yet")
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in self._positions]
        if fresh:
            await consumer.seek_to_end(*fresh)
        for tp in partitions:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
            else:
                self._positions[tp] = await consumer.position(tp)
        self.positioned.set()
