"""``python -m bench.apply_statements --rows 100k``: every statement of one enricher apply, timed.

The figures of "Quiet-machine measurements and fixes" in docs/performance.md that are
"measured alone" come from here: a scratch database (created on the bench's PostgreSQL server,
migrated, dropped afterwards), N CMDB rows staged as the enricher stages validated batches
(1,000 per batch, COPY), then ``inventory.apply_import`` for a new tenant in one transaction
with every statement timed, slowest first. ``--reps`` applies further imports of new tenants
to the same database (the inventory grows), ``--explain`` prints the materialising statement's
plan (EXPLAIN ANALYZE) instead of running the apply to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from contracts import Category
from enricher import SCHEMA, inventory, planner_statistics, reconciliation
from enricher.policy import InventoryPolicy
from tributary_cli import devstack, processes, testing
from tributary_runtime import staging
from tributary_runtime.db import Database

from .__main__ import parse_size
from .stack import postgres_server

COLUMNS = ["hostname", "ip_address", "asset_type", "environment", "criticality", "operating_system",
           "serial_number", "owner", "location"]


def row(i: int) -> list[str]:
    return [f"host-{i:07d}.corp.example", f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "server",
            "production", "high", "Linux", f"SN{i:08d}", "team-a", f"DC{i % 5}"]


async def stage(conn: asyncpg.Connection, import_id: uuid.UUID, rows: int) -> None:
    for start in range(0, rows, 1000):
        values = [row(i) for i in range(start + 1, min(rows, start + 1000) + 1)]
        seq = start // 1000 + 1
        await staging.stage_rows(conn, import_id, seq, COLUMNS, list(range(start + 1, start + len(values) + 1)),
                                 values, trim_cells=inventory.TRIM_CELLS)


async def apply_once(db: Database, rows: int, explain: bool) -> None:
    import_id, tenant, engagement = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    started = time.perf_counter()
    async with db.transaction() as conn:
        await stage(conn, import_id, rows)
    staged = time.perf_counter()
    a = inventory.Apply(import_id, tenant, engagement, datetime.now(UTC), Category.CMDB_EXPORT, "upload",
                        InventoryPolicy(), rows)
    async with db.transaction() as conn:
        timed = testing.CountingConnection(conn)
        if explain:
            original = reconciliation._DECIDE  # noqa: SLF001 - the statement whose plan is wanted

            async def explained(*args: Any) -> Any:
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + original, *args[1:])
                print("\n".join(r[0] for r in plan))
                raise SystemExit(0)

            timed.fetchrow = explained  # type: ignore[method-assign]
        # As ``enricher.handlers.enrich`` plans it: on statistics that count the import's staged rows.
        await staging.refresh_statistics(timed, import_id, rows, -(-rows // 1000))  # type: ignore[arg-type]
        await planner_statistics.refresh_if_stale(timed, rows, dependencies=False)
        counts = await inventory.apply_import(timed, a)  # type: ignore[arg-type]
    applied = time.perf_counter()
    print(f"staged {rows:,} rows in {staged - started:.2f}s; applied in {applied - staged:.2f}s: {counts}")
    for seconds, what in sorted(timed.timings, reverse=True)[:15]:
        print(f"  {seconds:8.3f}s  {what[:150]}")


async def run(url: str, rows: int, reps: int, explain: bool) -> None:
    db = await Database.connect(url, SCHEMA, min_size=1, max_size=2)
    try:
        for _ in range(reps):
            await apply_once(db, rows, explain)
    finally:
        await db.close()


def main(args: argparse.Namespace) -> None:
    # The fixtures' database helpers run their own event loops: set up and tear down outside ours.
    server, pgdata = postgres_server(Path(args.workdir))
    name = f"bench_apply_{uuid.uuid4().hex[:8]}"
    testing._create_database(server, name)  # noqa: SLF001
    url = testing._with_database(server, name)  # noqa: SLF001
    try:
        # Migrations only: no broker is contacted.
        processes.migrate({"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
        asyncio.run(run(url, parse_size(args.rows), args.reps, args.explain))
    finally:
        testing._drop_database(server, name)  # noqa: SLF001
        if pgdata is not None:
            devstack.stop_postgres(pgdata)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100k", help="CMDB rows to stage and apply (10k, 100k, 1m, …)")
    parser.add_argument("--reps", type=int, default=1, help="imports applied one after another, new tenants")
    parser.add_argument("--explain", action="store_true", help="print the materialising statement's plan")
    parser.add_argument("--workdir", default=os.environ.get("BENCH_WORKDIR", ".tributary/bench"))
    main(parser.parse_args())
