"""Consumed offsets stored beside the effects they produced (the progress marker).

A consumer writes its effect and the next offset of each partition in one database
transaction; on assignment it seeks to what is stored here. Kafka-side commits are
only a hint for tooling. The row lock taken by ``advance`` (or ``claim``) fences a member
that still holds a batch after its partition moved to another member.
"""

from __future__ import annotations

import asyncpg

PLUMBING_DDL = """
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id    text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
CREATE TABLE IF NOT EXISTS applied_events (
    group_id   text NOT NULL,
    event_id   uuid NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, event_id)
);
"""


async def load(conn: asyncpg.Connection, group_id: str, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
        group_id, topic,
    )
    return {r["partition"]: r["next_offset"] for r in rows}


_LOCK_PROGRESS = ("SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3"
                  " FOR UPDATE")


async def claim(conn: asyncpg.Connection, group_id: str, topic: str, partition: int) -> int | None:
    """Lock this partition's progress row for the transaction; return the stored offset.

    The row exists after a partition's first transaction: one statement (every transaction of
    every consumer starts here). The first time it is created, then locked; two consumers racing
    to create it both insert-or-skip, and the second then waits on the first's lock.
    """
    stored = await conn.fetchval(_LOCK_PROGRESS, group_id, topic, partition)
    if stored is not None:
        return stored
    await conn.execute(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, 0)"
        " ON CONFLICT DO NOTHING",
        group_id, topic, partition,
    )
    return await conn.fetchval(_LOCK_PROGRESS, group_id, topic, partition)


# Locks the partition's progress row (the CTE runs once, before the update: a fenced member waits
# here as at ``claim``), moves it forward to $4 unless it is there already, and returns the offset
# stored before. Claiming and storing as two statements was one more round trip for every
# transaction of every consumer.
_ADVANCE = """
WITH progress AS (
    SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE
), advanced AS (
    UPDATE consumer_offsets c SET next_offset = $4, updated_at = now() FROM progress p
    WHERE c.group_id = $1 AND c.topic = $2 AND c.partition = $3 AND p.next_offset < $4
)
SELECT next_offset FROM progress
"""


async def advance(conn: asyncpg.Connection, group_id: str, topic: str, partition: int, next_offset: int) -> int:
    """``claim`` and ``store`` in one: lock this partition's progress row for the transaction, move
    it to ``next_offset`` if it is behind, and return the offset stored before.

    For a transaction that applies offsets from the returned one up to ``next_offset``: its
    effects and its progress still commit together, or roll back together.
    """
    stored = await conn.fetchval(_ADVANCE, group_id, topic, partition, next_offset)
    if stored is None:
        await claim(conn, group_id, topic, partition)  # the partition's first transaction
        stored = await conn.fetchval(_ADVANCE, group_id, topic, partition, next_offset)
    return stored


async def store(conn: asyncpg.Connection, group_id: str, topic: str, partition: int, next_offset: int) -> None:
    await conn.execute(
        "UPDATE consumer_offsets SET next_offset = $4, updated_at = now()"
        " WHERE group_id = $1 AND topic = $2 AND partition = $3",
        group_id, topic, partition, next_offset,
    )


async def reset(conn: asyncpg.Connection, group_id: str) -> None:
    await conn.execute("DELETE FROM consumer_offsets WHERE group_id = $1", group_id)


async def first_seen(conn: asyncpg.Connection, group_id: str, event_ids: list) -> set:
    """Record event ids as applied; return those not applied before (dedupe across producers)."""
    if not event_ids:
        return set()
    rows = await conn.fetch(
        "INSERT INTO applied_events (group_id, event_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        group_id, event_ids,
    )
    return {r["event_id"] for r in rows}
