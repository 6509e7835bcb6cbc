"""How fast flow-state rebuilds its tables from the log, measured against the real broker and database.

``rebuild_speed()`` publishes the lifecycles of many imports to a topic of their own, replays
that topic into a fresh schema with the rebuild's reader and the live projector (exactly what
``python -m flow_state.rebuild`` runs), and returns events per second of the replay alone
(publishing and the schema's migrations are not timed). The live ``imports.events.v1`` and the
live schema are not touched, so it can run beside a running stack; everything it creates is
dropped afterwards unless ``keep=True``.

    python -m flow_state.speed --imports 5000        # DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS

The lifecycles are deterministic (ids from ``seed``, timestamps from a fixed origin) and cover
what the projection branches on: progress, verdicts with errors, validate-only imports, a pause
held at a phase boundary and resumed, a failed phase retried, reverts, and duplicates of events
(a producer's retry), interleaved across imports as they are on the real topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic

from contracts import (
    AgentResult,
    EnrichmentCompleted,
    Envelope,
    ErrorInfo,
    FlowPaused,
    FlowResumed,
    ImportFailed,
    ImportRevertCompleted,
    ImportReverted,
    ImportUploaded,
    PhaseProgress,
    PhaseRetryRequested,
    Tenant,
    ValidationCompleted,
)
from tributary_runtime.broker import MAX_MESSAGE_BYTES, kafka_client_options, make_admin
from tributary_runtime.checksums import ident
from tributary_runtime.db import Database
from tributary_runtime.migrations import upgrade
from tributary_runtime.rebuild import ParallelReaders, RebuildSpec, Replayer, connect, default_readers

from . import MIGRATIONS
from .rebuild import SPEC
from .settings import FlowStateSettings

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CATEGORIES = ("cmdb_export", "app_discovery", "infrastructure", "sensitive_data")


def lifecycles(imports: int, *, seed: int = 0, tenants: int = 50) -> list[Envelope[Any]]:
    """The lifecycle events of ``imports`` imports, in the order they would reach the topic."""
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"tributary:flow-state:speed:{seed}")
    tenant_of = [Tenant(client_account_id=uuid.uuid5(ns, f"account:{t}"), engagement_id=uuid.uuid5(ns, f"eng:{t}"))
                 for t in range(max(1, tenants))]
    out: list[tuple[datetime, int, Envelope[Any]]] = []
    for i in range(imports):
        import_id, flow_id = uuid.uuid5(ns, f"import:{i}"), uuid.uuid5(ns, f"flow:{i}")
        tenant = tenant_of[i % len(tenant_of)]
        category = CATEGORIES[i % len(CATEGORIES)]
        start = T0 + timedelta(milliseconds=137 * i)  # imports overlap: their events interleave on the topic
        step = 0

        def event(payload: Any, producer: str, stage_key: str, seconds: float) -> None:
            nonlocal step
            step += 1
            envelope = Envelope.wrap(payload, tenant=tenant, import_id=import_id, flow_id=flow_id, user_id="speed",
                                     producer=producer, stage_key=stage_key,
                                     occurred_at=start + timedelta(seconds=seconds))
            out.append((envelope.occurred_at, len(out), envelope))

        rows = 20 + i % 480
        invalid = i % 7
        validate_only = i % 31 == 11
        uploaded = ImportUploaded(category=category, filename=f"import-{i}.csv", file_format="csv",
                                  size_bytes=rows * 64, record_count=rows, batch_count=1 + rows // 200,
                                  checksum=f"sha256:{i:064x}", columns=["hostname", "ip_address"],
                                  validate_only=validate_only, started_at=start)
        event(uploaded, "ingest", "uploaded", 0.0)
        if i % 20 == 5:  # ingest published twice (a crash after the send): the same id again
            out.append((out[-1][0], len(out), out[-1][2]))
        event(PhaseProgress(phase="validation", rows_done=rows // 2, rows_total=rows), "validator", "p1", 0.5)
        paused = i % 10 == 3
        if paused:
            event(FlowPaused(reason="change window"), "flow-state-api", "pause:1", 0.7)
        event(PhaseProgress(phase="validation", rows_done=rows, rows_total=rows), "validator", "p2", 0.9)
        validated = ValidationCompleted(
            category=category, verdict="completed_with_errors" if invalid else "completed", record_count=rows,
            valid_count=rows - invalid, invalid_count=invalid, error_count=invalid, warning_count=i % 3,
            batch_count=1 + rows // 200, checksum=f"sha256:{i + 1:064x}", validate_only=validate_only,
            field_mapping={"Host": "hostname"} if i % 2 else {}, rules_applied=["required", "ip_format"],
            agent_results=[AgentResult(agent="format", status="errors" if invalid else "passed",
                                       error_count=invalid, rules=["ip_format"])],
            findings_by_rule={"ip_format": invalid} if invalid else {}, started_at=start + timedelta(seconds=0.1))
        event(validated, "validator", "validated", 1.0)
        if paused:
            event(FlowResumed(), "flow-state-api", "resume:2", 1.5)
        if validate_only:
            continue
        event(PhaseProgress(phase="enrichment", rows_done=(rows - invalid) // 2, rows_total=rows - invalid),
              "enricher", "p3", 1.8)
        if i % 10 == 7:  # the enricher failed; an operator retried the phase; the retry completed
            event(ImportFailed(phase="enrichment", error=ErrorInfo(code="handler_failed", reason="database went away",
                                                                   details={"attempts": 3})),
                  "enricher", "failed", 2.0)
            event(PhaseRetryRequested(phase="enrichment"), "flow-state-api", "retry:1", 3.0)
            enriched_key = "enriched#2"
        else:
            enriched_key = "enriched"
        enriched = EnrichmentCompleted(category=category, rows_applied=rows - invalid,
                                       assets_created=(rows - invalid) // 2, assets_updated=(rows - invalid) // 4,
                                       assets_unchanged=rows - invalid - (rows - invalid) // 2 - (rows - invalid) // 4,
                                       started_at=start + timedelta(seconds=1.7))
        event(enriched, "enricher", enriched_key, 4.0)
        if i % 25 == 9:
            event(ImportReverted(reason="wrong file"), "enricher-api", "revert", 9.0)
            event(ImportRevertCompleted(applied=True, assets_removed=(rows - invalid) // 2), "enricher", "reverted",
                  9.5)
    out.sort(key=lambda t: (t[0], t[1]))
    return [e for *_, e in out]


async def create_topic(settings: FlowStateSettings, topic: str, partitions: int) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                           replication_factor=settings.topic_replication_factor)])
    finally:
        await admin.close()


async def delete_topic(settings: FlowStateSettings, topic: str) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def publish(settings: FlowStateSettings, topic: str, envelopes: list[Envelope[Any]]) -> int:
    """Keyed by import, as the services publish: one import's events stay in one partition, in order."""
    producer = AIOKafkaProducer(**kafka_client_options(settings), acks="all", linger_ms=5,
                                max_batch_size=1024 * 1024, max_request_size=MAX_MESSAGE_BYTES)
    await producer.start()
    try:
        sends = [await producer.send(topic, key=e.key, value=e.encode(), headers=e.headers()) for e in envelopes]
        await asyncio.gather(*sends)
        return len(sends)
    finally:
        await producer.stop()


def spec_for(topic: str) -> RebuildSpec:
    """flow-state's rebuild, reading ``topic`` instead of imports.events.v1."""
    return replace(SPEC, topics=(topic,))


@dataclass
class Replayed:
    schema: str
    events: int
    seconds: float
    transactions: int
    # This process's CPU time during the replay: how much of ``seconds`` was Python (decode, fold, encode)
    # rather than waiting on the database and the broker (with parallel readers, only the waiting parent's).
    cpu_seconds: float = 0.0
    readers: int = 1

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.seconds, 1) if self.seconds > 0 else float("inf")


async def replay_into(settings: FlowStateSettings, topic: str, schema: str, *, batch: int,
                      readers: int = 1) -> Replayed:
    """Replay all of ``topic`` into a fresh ``schema`` (flow-state's migrations) with the rebuild's reader.

    ``readers`` > 1 replays as the rebuild's bulk does by default: that many processes side by side,
    each partition by one of them (their start-up overlaps the migrations, as in the rebuild).
    """
    spec = spec_for(topic)
    group = f"{spec.group_id}@{schema}"
    parallel = ParallelReaders(spec, settings, schema, group, batch, readers) if readers > 1 else None
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, schema, settings)
        db = await Database.connect(settings.asyncpg_dsn, schema, max_size=2)
        replayer = Replayer(spec, settings, db, group, batch)
        try:
            await replayer.start()
            if parallel is not None:
                await parallel.start()
            end = await replayer.end_offsets()
            started, cpu = time.perf_counter(), time.process_time()
            events = await replayer.run_bulk(end, parallel)
            seconds = time.perf_counter() - started
            return Replayed(schema, events, seconds, replayer.stats.transactions, time.process_time() - cpu,
                            readers)
        finally:
            await replayer.stop()
            await db.close()
    finally:
        if parallel is not None:
            await parallel.close()


async def drop_schema(settings: FlowStateSettings, schema: str) -> None:
    conn = await connect(settings, "tributary-speed")
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE")
    finally:
        await conn.close()


async def rebuild_speed(settings: FlowStateSettings | None = None, *, imports: int = 5000, batch: int = 5000,
                        partitions: int | None = None, readers: int | None = None,
                        keep: bool = False) -> dict[str, Any]:
    """Events per second of a flow-state rebuild of ``imports`` imports (the replay alone is timed).

    ``readers`` defaults to what the rebuild's bulk uses (``default_readers``: one per core).
    """
    settings = settings or FlowStateSettings()
    readers = readers or default_readers(SPEC)
    run = uuid.uuid4().hex[:10]
    topic, schema = f"flow-state.speed.{run}", f"flow_state_speed_{run}"
    envelopes = lifecycles(imports)
    await create_topic(settings, topic, partitions or settings.topic_partitions)
    try:
        await publish(settings, topic, envelopes)
        replayed = await replay_into(settings, topic, schema, batch=batch, readers=readers)
    finally:
        if not keep:
            await drop_schema(settings, schema)
            await delete_topic(settings, topic)
    return {"imports": imports, "events": replayed.events, "seconds": round(replayed.seconds, 3),
            "events_per_s": replayed.events_per_s, "cpu_seconds": round(replayed.cpu_seconds, 3),
            "transactions": replayed.transactions, "batch": batch, "readers": readers,
            "topic": topic, "schema": schema, "kept": keep}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flow_state.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=5000, help="messages per fetch and transaction")
    parser.add_argument("--readers", type=int, default=None,
                        help=f"reader processes (default {default_readers(SPEC)}, as the rebuild)")
    parser.add_argument("--keep", action="store_true", help="keep the topic and the schema")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(rebuild_speed(imports=args.imports, batch=args.batch, readers=args.readers,
                                               keep=args.keep))))


if __name__ == "__main__":
    main()


__all__ = ["Replayed", "lifecycles", "publish", "rebuild_speed", "replay_into", "spec_for"]
