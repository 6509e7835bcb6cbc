"""Staged rows of finished phases, deleted once they are older than the retention period.

A stage keeps an import's rows (``staging``) until its phase has run, and a failed phase is
retried from them. Once the phase is over for good, nothing reads them again, yet they are
most of each service's database: a 1M-row import leaves a million staged rows in the
validator and another million in the enricher, and every later ANALYZE of the staging tables
samples them. So each service that stages deletes the rows of sets that finished longer ago
than ``staged_rows_retention_days``, looking every ``staged_rows_purge_interval_s``.

What stays:
- the set itself (``staged_imports``: its marker, status and checksum) and its batches
  (``staged_batches``: columns, row count, digest). A batch delivered again later is still
  recognised as staged (its digest row is there) and ignored, not staged anew;
- sets whose phase may still run: waiting for batches (``staging``), held by a pause, or
  ``failed`` (a retry starts from their rows);
- rows a service names with ``keep`` (the validator keeps every row with an error, which its
  failed-rows download returns for as long as the findings exist).

Each import's rows go in a transaction of their own, oldest first, so a large import does not
hold back the rest and a stop between two imports loses nothing: the next pass goes on.

``python -m validator.purge`` and ``python -m enricher.purge`` (``tributary purge-staged-rows``)
run one pass now, with a retention of their own if given (``command``): space back after a large
trial import without waiting for the hour, or for the days.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from . import metrics
from .db import Database
from .resources import Resources
from .service import Task
from .settings import ServiceSettings

log = logging.getLogger(__name__)

# Added by a later migration of each service that stages (the validator's 0006, the enricher's 0013).
RETENTION_DDL = """
ALTER TABLE staged_imports ADD COLUMN IF NOT EXISTS rows_purged_at timestamptz;
CREATE INDEX IF NOT EXISTS staged_imports_rows_due ON staged_imports (finished_at)
    WHERE rows_purged_at IS NULL AND status NOT IN ('staging', 'held', 'failed');
"""
RETENTION_DOWNGRADE = ("DROP INDEX IF EXISTS staged_imports_rows_due;"
                       " ALTER TABLE staged_imports DROP COLUMN IF EXISTS rows_purged_at")

# The oldest set whose phase is over for good and whose rows are still here. The predicate is the
# partial index's; SKIP LOCKED: two members of a service's group purge side by side, never the same set.
_NEXT_DUE = """
SELECT import_id FROM staged_imports
WHERE rows_purged_at IS NULL AND status NOT IN ('staging', 'held', 'failed') AND finished_at < $1
ORDER BY finished_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class Purged:
    import_id: uuid.UUID
    rows: int


async def purge_next(db: Database, finished_before: datetime, keep: str | None = None) -> Purged | None:
    """Delete the staged rows of the oldest set finished before ``finished_before``; None if none is due.

    ``keep``: an SQL condition on the row ``r`` (of ``staged_rows``) for rows that stay.
    """
    async with db.transaction() as conn:
        import_id = await conn.fetchval(_NEXT_DUE, finished_before)
        if import_id is None:
            return None
        status = await conn.execute(
            "DELETE FROM staged_rows r WHERE r.import_id = $1" + (f" AND NOT ({keep})" if keep else ""), import_id)
        await conn.execute("UPDATE staged_imports SET rows_purged_at = now() WHERE import_id = $1", import_id)
    purged = Purged(import_id, int(status.split()[-1]))
    metrics.STAGED_ROWS_PURGED.inc(purged.rows)
    return purged


async def purge_due(db: Database, finished_before: datetime, keep: str | None = None,
                    stop: asyncio.Event | None = None) -> list[Purged]:
    """Delete the staged rows of every set finished before ``finished_before`` (``keep`` as
    ``purge_next``), oldest first, until none is due or ``stop`` is set."""
    purged: list[Purged] = []
    while stop is None or not stop.is_set():
        done = await purge_next(db, finished_before, keep)
        if done is None:
            break
        purged.append(done)
        log.info("staged rows of import %s purged: %d rows (retention passed)", done.import_id, done.rows)
    return purged


def purger(keep: str | None = None) -> Callable[[Resources], Task]:
    """The background task of a service that stages: ``purge_due`` every
    ``staged_rows_purge_interval_s`` (off at 0), for sets finished ``staged_rows_retention_days`` ago."""
    def build(res: Resources) -> Task:
        async def run(stop: asyncio.Event) -> None:
            settings: ServiceSettings = res.settings
            interval = settings.staged_rows_purge_interval_s
            while interval > 0 and not stop.is_set():
                with contextlib.suppress(TimeoutError):  # the first pass waits too: start-up stays light
                    await asyncio.wait_for(stop.wait(), interval)
                if stop.is_set():
                    break
                try:
                    cutoff = await _server_now(res.db) - timedelta(days=settings.staged_rows_retention_days)
                    await purge_due(res.db, cutoff, keep, stop)
                except Exception:  # the database away, say: the rows wait for the next pass, the service goes on
                    log.exception("purging staged rows failed; trying again in %.0fs", interval)
            await stop.wait()

        return run

    return build


async def _server_now(db: Database) -> datetime:
    # finished_at is the server's now() at the phase's commit: the cut-off is measured on the same clock.
    async with db.connection() as conn:
        return await conn.fetchval("SELECT now()")


async def purge_now(settings: ServiceSettings, schema: str, older_than_days: float,
                    keep: str | None = None) -> list[Purged]:
    """One pass over ``schema`` now: the staged rows of every set finished more than
    ``older_than_days`` ago (``keep`` as ``purge_next``)."""
    db = await Database.connect(settings.asyncpg_dsn, schema, min_size=1, max_size=1)
    try:
        cutoff = await _server_now(db) - timedelta(days=older_than_days)
        return await purge_due(db, cutoff, keep)
    finally:
        await db.close()


def command(service: str, schema: str, keep: str | None = None, argv: list[str] | None = None) -> None:
    """``python -m <service>.purge``: ``purge_now`` with the service's settings (its database from
    ``DATABASE_URL``), printing what it deleted."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {service}.purge",
        description=f"Delete the staged rows of the {service}'s finished imports now (docs/operations.md).")
    parser.add_argument("--older-than-days", type=float, default=None, metavar="DAYS",
                        help="imports finished more than DAYS ago (0: every finished one; default: "
                             "TRIBUTARY_STAGED_ROWS_RETENTION_DAYS)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    days = settings.staged_rows_retention_days if args.older_than_days is None else args.older_than_days
    if days < 0:
        parser.error(f"--older-than-days must be 0 or more, not {days:g}")
    try:
        purged = asyncio.run(purge_now(settings, schema, days, keep))
    except (OSError, asyncpg.PostgresError) as exc:  # the database away or refusing: one line, not a traceback
        parser.exit(1, f"{service}: staged rows not purged: {type(exc).__name__}: {exc}\n")
    report = {"service": service, "older_than_days": days, "imports": len(purged),
              "rows": sum(p.rows for p in purged), "import_ids": [str(p.import_id) for p in purged]}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{service}: deleted {report['rows']} staged rows of {report['imports']} import(s) finished more"
              f" than {days:g} day(s) ago")
