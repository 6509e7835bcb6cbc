"""Sequenced dead letters: an import's events queue up behind its dead-lettered event.

When a consumer gives up on an event of an import (it goes to ``<topic>.dlq``), applying that
import's *later* events would apply them out of order: a batch staged after the one that
failed, a marker recorded before a batch it announces. So the consumer records the failed
event as the *head* of the import's sequence, and every later event of that import it
consumes is *parked* behind the head, in consumption order, instead of applied (as Axon's
sequenced dead-letter queue does). Other imports keep flowing on the same partitions: the
partition's offset moves past a parked event like past any other.

A ``PhaseRetryRequested`` of the import releases the sequence in the same transaction: the
head is applied again, then each parked event, then the retry request itself. If the head
still fails, the whole transaction rolls back, the sequence stays as it was, and the retry
request is dead-lettered (the flow fails again with that reason).

Only decodable events with an import id take part: an undecodable message names no import,
and applying it again could never succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

# Added to each sequenced consumer's schema by a migration of its service (the validator's 0005,
# the enricher's 0004). One row per event: the head and the events parked behind it.
SEQUENCED_DEAD_LETTERS_DDL = """
CREATE TABLE IF NOT EXISTS dead_letter_sequences (
    group_id      text    NOT NULL,
    import_id     uuid    NOT NULL,
    position      bigint  GENERATED ALWAYS AS IDENTITY,
    head          boolean NOT NULL,
    topic         text    NOT NULL,
    partition     integer NOT NULL,
    "offset"      bigint  NOT NULL,
    event_id      uuid    NOT NULL,
    event_type    text    NOT NULL,
    key           bytea,
    value         bytea   NOT NULL,
    header_names  text[]  NOT NULL,
    header_values bytea[] NOT NULL,
    reason        text    NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS dead_letter_sequences_import ON dead_letter_sequences (group_id, import_id, position);
"""

# The events that release an import's sequence (and are applied after it).
RELEASED_BY = frozenset({"PhaseRetryRequested"})


@dataclass(frozen=True)
class Queued:
    """One event of a sequence, as consumed (bytes and headers untouched)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    head: bool


async def blocked(conn: asyncpg.Connection, group_id: str, import_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The imports among ``import_ids`` that have an event dead-lettered and not released."""
    if not import_ids:
        return set()
    rows = await conn.fetch(
        "SELECT DISTINCT import_id FROM dead_letter_sequences WHERE group_id = $1 AND import_id = ANY($2::uuid[])",
        group_id, list(import_ids))
    return {r["import_id"] for r in rows}


async def record(conn: asyncpg.Connection, group_id: str, message: Any, envelope: Any, *, head: bool,
                 reason: str) -> None:
    """Queue one consumed message in its import's sequence (once, whatever the redeliveries)."""
    headers = list(message.headers or ())
    await conn.execute(
        "INSERT INTO dead_letter_sequences (group_id, import_id, head, topic, partition, \"offset\", event_id,"
        " event_type, key, value, header_names, header_values, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
        group_id, envelope.import_id, head, message.topic, message.partition, message.offset, envelope.event_id,
        envelope.event_type, message.key, message.value, [k for k, _ in headers], [v for _, v in headers], reason)


async def head_of(conn: asyncpg.Connection, group_id: str, import_id: uuid.UUID) -> str | None:
    """``topic:partition@offset`` of the event an import's sequence is blocked behind."""
    row = await conn.fetchrow(
        "SELECT topic, partition, \"offset\" FROM dead_letter_sequences WHERE group_id = $1 AND import_id = $2"
        " AND head", group_id, import_id)
    return None if row is None else f"{row['topic']}:{row['partition']}@{row['offset']}"


async def release(conn: asyncpg.Connection, group_id: str, import_id: uuid.UUID) -> Sequence[Queued]:
    """Remove the import's sequence and return it, head first, then in the order it was parked."""
    rows = await conn.fetch(
        "DELETE FROM dead_letter_sequences WHERE group_id = $1 AND import_id = $2"
        " RETURNING position, head, topic, partition, \"offset\", key, value, header_names, header_values",
        group_id, import_id)
    rows = sorted(rows, key=lambda r: (not r["head"], r["position"]))
    return [Queued(r["topic"], r["partition"], r["offset"], r["key"], r["value"],
                   list(zip(r["header_names"], r["header_values"], strict=True)), r["head"]) for r in rows]
