"""Kafka clients built from settings, and topic creation.

Every Kafka client of the product (producers, consumers, admin clients; the services, the key
ring, rebuilds, replay, the watermark reader, the dashboard) takes its connection options from
``kafka_client_options``: bootstrap list, security protocol, TLS context and SASL credentials.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

from contracts import topics
from contracts.envelope import HEADER_EVENT_TYPE, header_value
from contracts.topic_config import topic_configs

from . import metrics
from .settings import SASL_PROTOCOLS, TLS_PROTOCOLS, ServiceSettings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class CountingProducer(AIOKafkaProducer):
    """A producer that counts what the broker acknowledged (tributary_events_produced_total).

    Every publish of a service goes through ``send`` (``send_and_wait`` too), so one
    callback per message here counts them all; a message is a batch of rows, not a row.
    """

    async def send(self, topic: str, value: Any = None, key: Any = None, partition: Any = None,
                   timestamp_ms: Any = None, headers: Any = None) -> asyncio.Future[Any]:
        future = await super().send(topic, value, key, partition, timestamp_ms, headers)
        event_type = header_value(headers, HEADER_EVENT_TYPE) or "unknown"
        future.add_done_callback(lambda f: _count_acknowledged(f, topic, event_type))
        return future


def _count_acknowledged(future: asyncio.Future[Any], topic: str, event_type: str) -> None:
    if not future.cancelled() and future.exception() is None:
        metrics.EVENTS_PRODUCED.inc(1, topic, event_type)


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Connection options for any aiokafka client (producer, consumer, admin) from the settings.

    The result holds the SASL password in clear: pass it to the client, never log it.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers,
                               "security_protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        options["ssl_context"] = ssl_context(settings)
    if protocol in SASL_PROTOCOLS:
        assert settings.kafka_sasl_password is not None  # the settings reject SASL without one
        options |= {"sasl_mechanism": settings.kafka_sasl_mechanism,
                    "sasl_plain_username": settings.kafka_sasl_username,
                    "sasl_plain_password": settings.kafka_sasl_password.get_secret_value()}
    return options


def ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    """The TLS context of the Kafka clients: the CA file (else the system's CAs), the client certificate."""
    for var, path in (("CAFILE", settings.kafka_ssl_cafile), ("CERTFILE", settings.kafka_ssl_certfile),
                      ("KEYFILE", settings.kafka_ssl_keyfile)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"TRIBUTARY_KAFKA_SSL_{var}: no file {path}")
    context = create_ssl_context(cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile,
                                 keyfile=settings.kafka_ssl_keyfile)
    # Only the host-name match is relaxed; the certificate chain is still verified.
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def make_admin(settings: ServiceSettings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka_client_options(settings), **options)


def make_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    # acks=all without idempotence: brokers without InitProducerId (tansu) work, and
    # duplicates are recognised by deterministic event ids instead.
    return CountingProducer(
        **kafka_client_options(settings),
        client_id=client_id,
        acks="all",
        linger_ms=2,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        compression_type=None,
    )


class FetchPacing:
    """A consumer's fetch wait, by how long it has found nothing (``ServiceSettings.fetch_idle_wait_ms``):
    ``fetch_max_wait_ms`` while messages flow, ``fetch_idle_wait_ms`` once none came for
    ``idle_after_s``, ``fetch_dormant_wait_ms`` once none came for ``fetch_dormant_after_s``.

    The first message after a quiet spell waits for the fetch in flight (at most that spell's wait);
    the fetches after it are short again. aiokafka (pinned) reads the wait from its fetcher for
    every request it builds; there is no public setter.
    """

    def __init__(self, consumer: AIOKafkaConsumer, settings: ServiceSettings, idle_after_s: float = 0.5, *,
                 busy_ms: int | None = None) -> None:
        self.consumer = consumer
        self.busy_ms = settings.fetch_max_wait_ms if busy_ms is None else busy_ms
        idle_ms = max(settings.fetch_idle_wait_ms, self.busy_ms)
        # Quiet for at least ``after`` seconds: wait ``ms``. Longest spell first; a wait never shortens.
        dormant_ms = max(settings.fetch_dormant_wait_ms, idle_ms)
        self.spells = ((max(settings.fetch_dormant_after_s, idle_after_s), dormant_ms), (idle_after_s, idle_ms))
        self.last_message = asyncio.get_running_loop().time()
        self.wait_ms = self.busy_ms

    @property
    def idle(self) -> bool:
        return self.wait_ms != self.busy_ms

    def _set(self, wait_ms: int) -> None:
        self.wait_ms = wait_ms
        fetcher = getattr(self.consumer, "_fetcher", None)
        if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
            fetcher._fetch_max_wait_ms = wait_ms  # noqa: SLF001 - see the class docstring

    def observe(self, got_messages: bool) -> None:
        now = asyncio.get_running_loop().time()
        if got_messages:
            self.last_message = now
            wait_ms = self.busy_ms
        else:
            quiet = now - self.last_message
            wait_ms = next((ms for after, ms in self.spells if quiet >= after), self.busy_ms)
        if wait_ms != self.wait_ms:
            self._set(wait_ms)


def make_consumer(settings: ServiceSettings, group_id: str, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **kafka_client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.max_poll_records,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=16 * MAX_MESSAGE_BYTES,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        rebalance_timeout_ms=30_000,
    )


def new_topics(settings: ServiceSettings, names: list[str]) -> list[NewTopic]:
    """The topics to create, each with its settings from ``contracts.topic_config`` (retention,
    cleanup policy, message size), the configured partitions and replication factor."""
    known = {c.name: c.configs() for c in topic_configs()}
    out = []
    for name in names:
        configs = known.get(name)
        if configs is None:  # not a product topic (a test's or a benchmark's): kept forever, like the log
            configs = {"cleanup.policy": "compact" if name in topics.COMPACTED else "delete",
                       "retention.ms": "-1", "max.message.bytes": str(MAX_MESSAGE_BYTES)}
        if settings.topic_min_insync_replicas is not None:
            configs = configs | {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
        out.append(NewTopic(name, num_partitions=settings.topic_partitions,
                            replication_factor=settings.topic_replication_factor, topic_configs=configs))
    return out


def _raise_topic_errors(response: Any) -> None:
    """A create-topics response's errors, except "already exists" (another process was first)."""
    for error in getattr(response, "topic_errors", ()):
        topic, code, message = error[0], error[1], (error[2] if len(error) > 2 else None)
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        raise for_code(code)(f"could not create topic {topic}: {message or 'no message'}")


async def ensure_topics(settings: ServiceSettings, names: tuple[str, ...] = topics.ALL,
                        *, with_dlq: bool = True, attempts: int = 30) -> None:
    """Create missing topics (and their DLQs) with their settings. Idempotent: an existing topic
    is left as it is. Retries while the broker starts."""
    wanted = list(names) + ([topics.dlq(n) for n in names] if with_dlq else [])
    for attempt in range(attempts):
        admin = make_admin(settings)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                try:
                    _raise_topic_errors(await admin.create_topics(new_topics(settings, missing)))
                except TopicAlreadyExistsError:
                    pass
            return
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            log.info("broker not reachable yet (%s), retrying", settings.kafka_bootstrap_servers)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
