"""The durable join of a stage's batches and its completion marker.

A stage publishes its batches, then a marker with ``batch_count`` and ``checksum``.
Batches and marker may arrive in any order (different topics, redelivery), so the
consumer stages them in its own schema and acts once the set is complete. Every call
for an import runs under that import's advisory lock, so two members of a group
cannot both miss (or both see) the moment of completion.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import Envelope, ErrorInfo, ImportFailed, Payload, Phase, batch_digest, import_checksum, topics

from .consumer import Unit

STAGING_DDL = """
CREATE TABLE IF NOT EXISTS staged_imports (
    import_id         uuid PRIMARY KEY,
    client_account_id uuid NOT NULL,
    engagement_id     uuid NOT NULL,
    flow_id           uuid,
    marker            jsonb NOT NULL,
    expected_batches  integer NOT NULL,
    checksum          text NOT NULL,
    status            text NOT NULL DEFAULT 'staging',
    created_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE TABLE IF NOT EXISTS staged_batches (
    import_id  uuid    NOT NULL,
    batch_seq  integer NOT NULL,
    columns    text[]  NOT NULL,
    row_count  integer NOT NULL,
    digest     text    NOT NULL,
    PRIMARY KEY (import_id, batch_seq)
);
CREATE TABLE IF NOT EXISTS staged_rows (
    import_id  uuid    NOT NULL,
    row_number integer NOT NULL,
    batch_seq  integer NOT NULL,
    cells      text[]  NOT NULL,
    PRIMARY KEY (import_id, row_number)
);
"""


class ChecksumMismatch(Exception):
    pass


@dataclass(frozen=True)
class StagedImport:
    import_id: uuid.UUID
    marker: dict[str, Any]
    expected_batches: int
    status: str


async def lock_import(conn: asyncpg.Connection, import_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", str(import_id))


def _cell(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def stage_batch(conn: asyncpg.Connection, envelope: Envelope[Any]) -> bool:
    """Stage one batch; False when it was staged before (a duplicate)."""
    batch = envelope.payload
    digest = batch_digest(batch.batch_seq, batch.row_numbers, batch.rows)
    inserted = await conn.fetchval(
        "INSERT INTO staged_batches (import_id, batch_seq, columns, row_count, digest) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING RETURNING true",
        envelope.import_id, batch.batch_seq, batch.columns, len(batch.rows), digest,
    )
    if not inserted:
        return False
    await conn.copy_records_to_table(
        "staged_rows",
        columns=("import_id", "row_number", "batch_seq", "cells"),
        records=[(envelope.import_id, n, batch.batch_seq, [_cell(v) for v in row])
                 for n, row in zip(batch.row_numbers, batch.rows, strict=True)],
    )
    return True


async def record_marker(conn: asyncpg.Connection, envelope: Envelope[Any], *, expected_batches: int,
                        checksum: str) -> bool:
    """Record the completion marker; False when it was recorded before."""
    return bool(await conn.fetchval(
        "INSERT INTO staged_imports (import_id, client_account_id, engagement_id, flow_id, marker,"
        " expected_batches, checksum) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
        envelope.import_id, envelope.tenant.client_account_id, envelope.tenant.engagement_id, envelope.flow_id,
        envelope.model_dump(mode="json"),
        expected_batches, checksum,
    ))


async def complete(conn: asyncpg.Connection, import_id: uuid.UUID) -> StagedImport | None:
    """The staged import when its marker and every batch are in and it is not finished yet.

    Raises ChecksumMismatch when the batches are all in but are not the ones announced.
    """
    row = await conn.fetchrow(
        "SELECT import_id, marker, expected_batches, checksum, status FROM staged_imports WHERE import_id = $1",
        import_id,
    )
    if row is None or row["status"] != "staging":
        return None
    digests = await conn.fetch("SELECT batch_seq, digest FROM staged_batches WHERE import_id = $1", import_id)
    if len(digests) < row["expected_batches"]:
        return None
    actual = import_checksum((d["batch_seq"], d["digest"]) for d in digests)
    if len(digests) != row["expected_batches"] or actual != row["checksum"]:
        raise ChecksumMismatch(
            f"received {len(digests)} batches with checksum {actual[:12]}…, marker announced "
            f"{row['expected_batches']} with {row['checksum'][:12]}…"
        )
    return StagedImport(row["import_id"], row["marker"], row["expected_batches"], row["status"])


async def finish(conn: asyncpg.Connection, import_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        "UPDATE staged_imports SET status = $2, finished_at = now() WHERE import_id = $1", import_id, status)


async def iter_rows(conn: asyncpg.Connection, import_id: uuid.UUID,
                    chunk_rows: int) -> AsyncIterator[list[tuple[int, dict[str, str | None]]]]:
    """Staged rows in row order, as (row_number, {column: cell}) chunks (a server-side cursor)."""
    columns = {r["batch_seq"]: r["columns"] for r in await conn.fetch(
        "SELECT batch_seq, columns FROM staged_batches WHERE import_id = $1", import_id)}
    chunk: list[tuple[int, dict[str, str | None]]] = []
    async for r in conn.cursor(
        "SELECT row_number, batch_seq, cells FROM staged_rows WHERE import_id = $1 ORDER BY row_number",
        import_id, prefetch=chunk_rows,
    ):
        chunk.append((r["row_number"], dict(zip(columns[r["batch_seq"]], r["cells"], strict=True))))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def join(unit: Unit, envelope: Envelope[Any], *, marker_type: type[Payload], phase: Phase,
               producer: str) -> Envelope[Any] | None:
    """Stage a batch or record the marker; return the marker the one time the set becomes complete.

    A set whose batches do not match the marker's checksum fails the import instead.
    """
    conn = unit.conn
    await lock_import(conn, envelope.import_id)
    if envelope.event_type == marker_type.EVENT_TYPE:
        new = await record_marker(conn, envelope, expected_batches=envelope.payload.batch_count,
                                  checksum=envelope.payload.checksum)
    else:
        new = await stage_batch(conn, envelope)
    if not new:
        return None
    try:
        staged = await complete(conn, envelope.import_id)
    except ChecksumMismatch as exc:
        row = await conn.fetchval("SELECT marker FROM staged_imports WHERE import_id = $1", envelope.import_id)
        marker = Envelope[marker_type].model_validate(row)  # type: ignore[valid-type]
        failed = ImportFailed(phase=phase, error=ErrorInfo(code="checksum_mismatch", reason=str(exc)))
        await unit.publish(topics.EVENTS, marker.follow(failed, producer=producer, stage_key=phase.value))
        await finish(conn, envelope.import_id, "failed")
        return None
    if staged is None:
        return None
    return Envelope[marker_type].model_validate(staged.marker)  # type: ignore[valid-type]
