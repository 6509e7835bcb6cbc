"""Raw limits of this machine, and the seed's row-by-row approach as a baseline.

* Broker: the import's rows encoded exactly as ingest publishes them (``RecordBatch`` events
  in the shared envelope, 1,000 rows per batch, one key so one partition), produced with the
  services' producer settings (acks=all) to a scratch topic, then consumed back with the
  services' consumer settings. Encoding happens before the clock starts.
* PostgreSQL: the same rows ``COPY``'d (asyncpg ``copy_records_to_table``) into a scratch
  table of text columns, 20,000 rows per COPY; the CSV is read between COPYs, off the clock.
* Baseline: the seed document's ``_find_or_create_asset`` loop, per valid CMDB row a SELECT
  by name, type and tenant, then an INSERT or an UPDATE, in one transaction, against a copy
  of the enricher's ``assets`` table in a scratch schema (asyncpg, prepared statements: a
  generous version of the seed's ORM loop, which also flushes per insert).
"""

from __future__ import annotations

import asyncio
import csv
import ipaddress
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts import Envelope, Tenant
from contracts.categories import Category
from contracts.producer import RecordBatcher
from tributary_runtime.broker import make_consumer, make_producer
from tributary_runtime.settings import ServiceSettings


def _encoded_batches(path: Path, category: str, tenant: Tenant) -> list[tuple[bytes, bytes, list]]:
    import_id, flow_id = uuid.uuid4(), uuid.uuid4()
    batcher = RecordBatcher(Category(category))
    out: list[tuple[bytes, bytes, list]] = []

    def add(batch: Any) -> None:
        if batch is not None:
            env = Envelope.wrap(batch, tenant=tenant, import_id=import_id, flow_id=flow_id, user_id="bench",
                                producer="bench", stage_key=str(batch.batch_seq))
            out.append((env.key, env.encode(), env.headers()))

    with path.open(newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=1):
            add(batcher.add(n, {k: (v if v != "" else None) for k, v in row.items()}))
    add(batcher.flush())
    return out


async def broker_limit(bootstrap: str, path: Path, category: str) -> dict[str, Any]:
    messages = await asyncio.to_thread(_encoded_batches, path, category,
                                       Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    total_bytes = sum(len(v) for _, v, _ in messages)
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap)
    producer = make_producer(settings, "bench-raw")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, key=k, value=v, headers=h) for k, v, h in messages]
        await asyncio.gather(*futures)
        produce_s = time.perf_counter() - started
    finally:
        await producer.stop()
    consumer = make_consumer(settings, None, "bench-raw")  # type: ignore[arg-type] - no group: assign
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got, got_bytes = 0, 0
        started = time.perf_counter()
        while got < len(messages):
            for batch in (await consumer.getmany(tp, timeout_ms=1000)).values():
                got += len(batch)
                got_bytes += sum(len(m.value or b"") for m in batch)
        consume_s = time.perf_counter() - started
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    except Exception:  # noqa: BLE001 - scratch topic; the broker is in-memory anyway
        pass
    finally:
        await admin.close()
    assert got_bytes == total_bytes, (got_bytes, total_bytes)
    return {"messages": len(messages), "bytes": total_bytes, "produce_seconds": round(produce_s, 3),
            "consume_seconds": round(consume_s, 3), "round_trip_seconds": round(produce_s + consume_s, 3),
            "produce_mb_s": round(total_bytes / produce_s / 1e6, 1), "consume_mb_s": round(total_bytes / consume_s / 1e6, 1)}


async def copy_limit(database_url: str, path: Path, chunk: int = 20_000) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    table = f"raw_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench_scratch")
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            cols = [f"c{i}" for i in range(len(header))]
            await conn.execute(f"CREATE TABLE bench_scratch.{table} ({', '.join(c + ' text' for c in cols)})")
            rows, seconds = 0, 0.0
            while True:
                records = [tuple(r) for _, r in zip(range(chunk), reader)]
                if not records:
                    break
                started = time.perf_counter()
                await conn.copy_records_to_table(table, schema_name="bench_scratch", records=records, columns=cols)
                seconds += time.perf_counter() - started
                rows += len(records)
        counted = await conn.fetchval(f"SELECT count(*) FROM bench_scratch.{table}")
        assert counted == rows
        return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds)}
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS bench_scratch.{table}")
        await conn.close()


BASELINE_DDL = """
CREATE SCHEMA IF NOT EXISTS bench_baseline;
DROP TABLE IF EXISTS bench_baseline.assets;
CREATE TABLE bench_baseline.assets (
    asset_id          uuid PRIMARY KEY,
    client_account_id uuid NOT NULL,
    engagement_id     uuid NOT NULL,
    name              text NOT NULL,
    asset_type        text,
    hostname          text,
    ip_address        text,
    environment       text,
    criticality       text,
    operating_system  text,
    serial_number     text,
    attributes        jsonb NOT NULL DEFAULT '{}',
    discovery_source  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_lookup ON bench_baseline.assets (client_account_id, engagement_id, name, asset_type);
"""


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


async def row_by_row_baseline(database_url: str, path: Path) -> dict[str, Any]:
    """The seed's loop: per record a SELECT, then an INSERT or an UPDATE (no set-based statement)."""
    import json

    rows = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if _valid_ip(r["IP Address"]):
                rows.append(r)
    tenant = (uuid.uuid4(), uuid.uuid4())
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(BASELINE_DDL)
        find = await conn.prepare("SELECT asset_id FROM bench_baseline.assets WHERE name = $1 AND asset_type = $2"
                                  " AND client_account_id = $3 AND engagement_id = $4")
        insert = await conn.prepare(
            "INSERT INTO bench_baseline.assets (asset_id, client_account_id, engagement_id, name, asset_type,"
            " hostname, ip_address, environment, criticality, operating_system, serial_number, attributes,"
            " discovery_source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'cmdb_import')")
        update = await conn.prepare(
            "UPDATE bench_baseline.assets SET ip_address = $2, environment = $3, criticality = $4,"
            " operating_system = $5, serial_number = $6, attributes = $7, updated_at = now() WHERE asset_id = $1")
        created = updated = 0
        started = time.perf_counter()
        async with conn.transaction():
            for r in rows:
                attrs = json.dumps({"owner": r["Owner"], "location": r["Location"]})
                asset_id = await find.fetchval(r["Host Name"], r["Asset Type"], *tenant)
                if asset_id is None:
                    await insert.fetch(uuid.uuid4(), *tenant, r["Host Name"], r["Asset Type"], r["Host Name"],
                                       r["IP Address"], r["Environment"], r["Criticality"], r["OS"],
                                       r["Serial Number"], attrs)
                    created += 1
                else:
                    await update.fetch(asset_id, r["IP Address"], r["Environment"], r["Criticality"], r["OS"],
                                       r["Serial Number"], attrs)
                    updated += 1
        seconds = time.perf_counter() - started
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS bench_baseline CASCADE")
        await conn.close()
    return {"rows": len(rows), "created": created, "updated": updated, "seconds": round(seconds, 3),
            "rows_per_s": round(len(rows) / seconds), "statements": 2 * len(rows)}
