"""A dead-lettered event holds back the rest of its import, not its partition (guarantee 4).

Import A's first record batch cannot be staged (a trigger in the validator's schema refuses A's
batches, as a bug or a constraint would): it goes to the DLQ and A fails. A's later batches reach
the validator after that and are parked behind it, not staged. Import B, on the same partitions,
completes meanwhile. Once the cause is gone, retrying A applies the dead letter and then what
waited behind it, in order, and A completes exactly once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from contracts import Envelope, ImportUploaded, Tenant, topics
from contracts.producer import RecordBatcher
from tributary_cli.client import TributaryClient
from tributary_cli.testing import sql, wait_until

pytestmark = pytest.mark.e2e

HEADER = ["hostname", "ip_address", "environment"]
ROWS, BATCH_ROWS = 20, 5


class Upstream:
    """One import's events, published by hand in the order the test chooses."""

    def __init__(self, bootstrap: str, tenant: Tenant, prefix: str, import_id: uuid.UUID, subnet: int) -> None:
        self.bootstrap, self.tenant, self.import_id, self.flow_id = bootstrap, tenant, import_id, uuid.uuid4()
        batcher = RecordBatcher("cmdb_export", max_rows=BATCH_ROWS)
        rows = [{"hostname": f"{prefix}-{i:03d}", "ip_address": f"10.7.{subnet}.{i}", "environment": "production"}
                for i in range(1, ROWS + 1)]
        self.batches = [b for b in (batcher.add(n, r) for n, r in enumerate(rows, start=1)) if b is not None]
        if (last := batcher.flush()) is not None:
            self.batches.append(last)
        self.marker = ImportUploaded(category="cmdb_export", filename=f"{prefix}.csv", file_format="events",
                                     record_count=batcher.record_count, batch_count=batcher.batch_count,
                                     checksum=batcher.checksum, columns=HEADER, source="upstream")

    def _send(self, sends: list[tuple[str, Any, str]]) -> None:
        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
            await producer.start()
            try:
                for topic, payload, stage_key in sends:
                    env = Envelope.wrap(payload, tenant=self.tenant, import_id=self.import_id, flow_id=self.flow_id,
                                        producer="upstream:test", stage_key=stage_key)
                    await producer.send_and_wait(topic, key=env.key, value=env.encode(), headers=env.headers())
            finally:
                await producer.stop()

        asyncio.run(run())

    def publish_marker(self) -> None:
        self._send([(topics.EVENTS, self.marker, "")])

    def publish_batches(self) -> None:
        self._send([(topics.RECORDS, b, str(b.batch_seq)) for b in self.batches])


def partition_of(import_id: uuid.UUID, partitions: int) -> int:
    return (murmur2(str(import_id).encode()) & 0x7FFFFFFF) % partitions


def partitions(bootstrap: str) -> tuple[int, int]:
    """Partitions of the records topic and of the events topic, as the broker reports them."""
    async def count() -> tuple[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            return (len(await producer.partitions_for(topics.RECORDS)),
                    len(await producer.partitions_for(topics.EVENTS)))
        finally:
            await producer.stop()

    return asyncio.run(count())


@contextmanager
def validator_refuses_batches_of(database_url: str, import_id: uuid.UUID) -> Iterator[None]:
    name = f"refuse_{import_id.hex}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE FUNCTION validator.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " RAISE EXCEPTION 'staging refuses this import (test)'; END $$")
        conn.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON validator.staged_batches FOR EACH ROW"
                     f" WHEN (NEW.import_id = '{import_id}'::uuid) EXECUTE FUNCTION validator.{name}()")
        try:
            yield
        finally:
            conn.execute(f"DROP TRIGGER {name} ON validator.staged_batches")
            conn.execute(f"DROP FUNCTION validator.{name}()")


def sequence_of(database_url: str, import_id: uuid.UUID) -> list[tuple[bool, str, int]]:
    rows = sql(database_url, "SELECT head, event_type, value FROM validator.dead_letter_sequences"
                             " WHERE group_id = 'validator' AND import_id = $1 ORDER BY position", import_id)
    return [(r["head"], r["event_type"], json.loads(r["value"])["payload"]["batch_seq"])
            for r in rows]


def assert_completed(flow: dict[str, Any]) -> None:
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    validation, enrichment = flow["child"]["phase_state"]["validation"], flow["child"]["phase_state"]["enrichment"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (ROWS, ROWS, 0)
    assert (enrichment["assets_created"], enrichment["assets_updated"]) == (ROWS, 0)
    timeline = [e["event_type"] for e in flow["timeline"]]
    assert timeline.count("ValidationCompleted") == 1 and timeline.count("EnrichmentCompleted") == 1


def test_a_dead_letter_parks_its_imports_later_events_and_a_retry_releases_them(
        client: TributaryClient, stack_env: dict[str, str], database_url: str, tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    counts = partitions(bootstrap)
    a_id = uuid.uuid4()
    # B shares A's partitions on both topics, so B flowing proves the partition is not blocked.
    b_id = next(i for i in iter(uuid.uuid4, None)
                if all(partition_of(i, n) == partition_of(a_id, n) for n in counts))
    a = Upstream(bootstrap, tenant, "parked", a_id, subnet=1)
    b = Upstream(bootstrap, tenant, "flowing", b_id, subnet=2)

    with validator_refuses_batches_of(database_url, a_id):
        # The marker first, so the dead letter finds A's set staging and marks it failed.
        a.publish_marker()
        wait_until("the validator to record A's marker", lambda: sql(
            database_url, "SELECT 1 FROM validator.staged_imports WHERE import_id = $1", a_id), timeout=90)
        a.publish_batches()
        wait_until("A's later batches to be parked", lambda: len(sequence_of(database_url, a_id)) == len(a.batches),
                   timeout=90)
        failed = client.wait_for_flow(a.flow_id)
        assert failed["master"]["status"] == "failed"
        assert failed["child"]["phase_state"]["validation"]["code"] == "dead_lettered"
        assert "staging refuses this import" in failed["child"]["phase_state"]["validation"]["reason"]

        b.publish_marker()
        b.publish_batches()
        assert_completed(client.wait_for_flow(b.flow_id))

        # The first batch is the head; the rest wait behind it, in order, none of them staged.
        assert sequence_of(database_url, a_id) == [(True, "RecordBatch", 1)] + [
            (False, "RecordBatch", seq) for seq in range(2, len(a.batches) + 1)]
        assert sql(database_url, "SELECT count(*) FROM validator.staged_batches WHERE import_id = $1",
                   a_id)[0][0] == 0

    response = client.retry_flow(a.flow_id)
    assert response.status_code == 202 and response.json()["phase"] == "validation", response.text
    flow = client.wait_for_flow(a.flow_id, after=response.json()["event_id"])
    assert_completed(flow)
    assert flow["child"]["phase_state"]["validation"]["attempt"] == 2
    assert sequence_of(database_url, a_id) == []
    assert sql(database_url, "SELECT count(*) FROM enricher.assets WHERE client_account_id = $1",
               tenant.client_account_id)[0][0] == 2 * ROWS
