"""Pause, resume and retry at a service's phase boundary.

A service that runs a phase when an import's staged set completes (the validator on
the upload marker, the enricher on the ValidationCompleted marker) also consumes the
flow operations of ``imports.events.v1`` and hands them to :func:`apply`, in the same
consumer transaction as everything else:

- ``FlowPaused`` records the pause for the import (table ``flow_control``). A set that
  completes while paused is held (``staging.ready``) instead of run; a phase already
  running is one transaction and finishes.
- ``FlowResumed`` clears it and releases a held set: the phase runs now, through the same
  code path as an undisturbed run.
- ``PhaseRetryRequested`` for this service's phase stages a failed set again with the next
  attempt and runs it (a retry is also a resume). When there is nothing to retry, the
  import fails again, saying why, rather than leaving the flow running with nothing to
  run.

Each operation is applied once per event id (the ``applied_events`` ledger), so a request
published twice is not a second pause or a second retry.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from contracts import Envelope, ErrorInfo, ImportFailed, Payload, Phase, topics

from . import offsets, staging
from .consumer import Unit

EVENT_TYPES = ("FlowPaused", "FlowResumed", "PhaseRetryRequested")


async def apply(unit: Unit, envelope: Envelope[Any], *, phase: Phase, marker_type: type[Payload],
                producer: str) -> Envelope[Any] | None:
    """Apply one flow operation; return the staged marker when this service's phase is to run now."""
    conn = unit.conn
    unit.bind(envelope)  # this event's import names the log lines of its handling (and its phase)
    if not await offsets.first_seen(conn, unit.group_id, [envelope.event_id]):
        return None
    await staging.lock_import(conn, envelope.import_id)
    if envelope.event_type == "FlowPaused":
        await _set_paused(conn, envelope, paused=True, reason=envelope.payload.reason)
        return None
    if envelope.event_type == "FlowResumed":
        await _set_paused(conn, envelope, paused=False)
        released = await conn.fetchval(
            "UPDATE staged_imports SET status = 'staging' WHERE import_id = $1 AND status = $2 RETURNING true",
            envelope.import_id, staging.HELD)
        if not released:
            return None
    elif envelope.event_type == "PhaseRetryRequested":
        if envelope.payload.phase != phase:
            return None
        await _set_paused(conn, envelope, paused=False)
        if envelope.import_id in unit.released and await conn.fetchval(
                "SELECT finished_at = now() FROM staged_imports WHERE import_id = $1", envelope.import_id):
            # This request released the events parked behind a dead letter, and they completed the
            # set and ran the phase in this very transaction (now() is its start): that run was the retry.
            return None
        attempt = await conn.fetchval(
            "UPDATE staged_imports SET status = 'staging', attempt = attempt + 1, finished_at = NULL"
            " WHERE import_id = $1 AND status = $2 RETURNING attempt", envelope.import_id, staging.FAILED)
        if attempt is None:
            await _cannot_retry(unit, envelope, phase, producer)
            return None
        marker = await staging.ready(unit, envelope.import_id, marker_type=marker_type, phase=phase,
                                     producer=producer)
        if marker is None and await _status(conn, envelope) == "staging":
            # Batches are missing (one was dead-lettered before it could be staged): not runnable.
            await _cannot_retry(unit, envelope, phase, producer)
            await staging.finish(conn, envelope.import_id, staging.FAILED)
        return marker
    else:
        return None
    return await staging.ready(unit, envelope.import_id, marker_type=marker_type, phase=phase, producer=producer)


async def _status(conn: asyncpg.Connection, envelope: Envelope[Any]) -> str | None:
    return await conn.fetchval("SELECT status FROM staged_imports WHERE import_id = $1", envelope.import_id)


async def _set_paused(conn: asyncpg.Connection, envelope: Envelope[Any], *, paused: bool,
                      reason: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO flow_control (import_id, client_account_id, engagement_id, paused, reason, event_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (import_id) DO UPDATE SET paused = EXCLUDED.paused,"
        " reason = EXCLUDED.reason, event_id = EXCLUDED.event_id, updated_at = now()",
        envelope.import_id, envelope.tenant.client_account_id, envelope.tenant.engagement_id, paused, reason,
        envelope.event_id)


async def _cannot_retry(unit: Unit, request: Envelope[Any], phase: Phase, producer: str) -> None:
    row = await unit.conn.fetchrow(
        "SELECT status, expected_batches, (SELECT count(*) FROM staged_batches b WHERE b.import_id = s.import_id)"
        " AS batches FROM staged_imports s WHERE import_id = $1", request.import_id)
    if row is None:
        reason = f"nothing to retry: the {phase.value} phase never received this import's completion marker"
    elif row["status"] == "staging":
        reason = (f"nothing to retry yet: the {phase.value} phase is waiting for "
                  f"{row['expected_batches'] - row['batches']} more of {row['expected_batches']} batches")
    else:
        reason = f"nothing to retry: the {phase.value} phase is {row['status']}, not failed"
    failed = ImportFailed(phase=phase, error=ErrorInfo(code="retry_not_possible", reason=reason))
    await unit.publish(topics.EVENTS, request.follow(failed, producer=producer, stage_key=f"retry:{request.event_id}"))
