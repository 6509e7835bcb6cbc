"""What a staged row claims (``inventory.row_claims``): trimmed non-blank cells, blanks as null when
empty values overwrite, a category's columns alone when it names them; cells keep their columns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import Category
from enricher import inventory
from enricher.policy import InventoryPolicy
from tributary_runtime import staging
from tributary_runtime.db import PARALLEL_AT_ANY_COST, Database

COLUMNS = ["hostname", "environment", "owner", "cpu_avg_pct", "regulation"]
ROWS = [
    ["  web-01.corp.example ", "production", "", "12.5", None],
    ["db-01", "   ", None, " 40 ", "PCI,SOX"],
    [None, None, None, None, None],
]


async def _claims(db: Database, policy: InventoryPolicy, only: tuple[str, ...] | None) -> list[dict[str, Any]]:
    import_id = uuid.uuid4()
    a = inventory.Apply(import_id, uuid.uuid4(), uuid.uuid4(), datetime(2026, 3, 1, tzinfo=UTC),
                        Category.CMDB_EXPORT, "upload", policy)
    async with db.transaction() as conn:
        # Two batches with their columns in different orders: a cell goes with its own batch's column.
        await staging.stage_rows(conn, import_id, 1, COLUMNS, [1, 2, 3], ROWS, trim_cells=inventory.TRIM_CELLS)
        await staging.stage_rows(conn, import_id, 2, COLUMNS[::-1], [4], [ROWS[0][::-1]],
                                 trim_cells=inventory.TRIM_CELLS)
        rows = await conn.fetch(f"SELECT c.row_number, c.claims"
                                f" {inventory.staged_cells(inventory.IDENTIFIER_CELLS, inventory.row_claims(a, only))}"
                                f" ORDER BY c.row_number", import_id)
    return [r["claims"] for r in rows]


@pytest.mark.parametrize("empty_overwrites", [False, True])
async def test_a_row_claims_its_trimmed_cells_and_its_blanks_only_when_they_overwrite(
        db: Database, empty_overwrites: bool) -> None:
    claims = await _claims(db, InventoryPolicy(empty_overwrites=empty_overwrites), None)
    first = {"hostname": "web-01.corp.example", "environment": "production", "cpu_avg_pct": "12.5"}
    second = {"hostname": "db-01", "cpu_avg_pct": "40", "regulation": "PCI,SOX"}
    if empty_overwrites:
        first |= {"owner": None, "regulation": None}
        second |= {"environment": None, "owner": None}
        assert claims == [first, second, dict.fromkeys(COLUMNS), first]
    else:
        assert claims == [first, second, {}, first]


async def test_a_category_that_names_its_columns_claims_those_alone(db: Database) -> None:
    claims = await _claims(db, InventoryPolicy(), ("cpu_avg_pct", "regulation", "disk_total"))
    assert claims == [{"cpu_avg_pct": "12.5"}, {"cpu_avg_pct": "40", "regulation": "PCI,SOX"}, {},
                      {"cpu_avg_pct": "12.5"}]


async def test_a_large_import_fills_incoming_as_a_small_one_does(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # From INCOMING_IN_PARALLEL_FROM rows ``incoming`` is made by CREATE TABLE AS (its SELECT may
    # run on parallel workers): the same rows, and a table the next small import fills as before.
    columns = ["hostname", "ip_address", "external_id", "source", "serial_number", "name", "mac_address", "owner"]
    rows = [["Web-01.Corp.Example", "10.0.0.1", "CI-1", "ServiceNow", "sn-1", "Web One", "AA:BB", "team-a"],
            ["db-01", None, "", None, None, None, None, None]]
    definition = ("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a"
                  " WHERE a.attrelid = 'pg_temp.incoming'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
                  " ORDER BY a.attnum")
    key = ("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'pg_temp.incoming'::regclass"
           " AND indisprimary")
    settings = ("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name",
                list(PARALLEL_AT_ANY_COST))
    filled = {}
    async with db.transaction() as conn:
        before = [tuple(r) for r in await conn.fetch(*settings)]
        import_id = uuid.uuid4()
        await staging.stage_rows(conn, import_id, 1, columns, [1, 2], rows, trim_cells=inventory.TRIM_CELLS)
        for way, large_from in (("insert", 10**9), ("create-as", 0), ("insert-after", 10**9)):
            monkeypatch.setattr(inventory, "INCOMING_IN_PARALLEL_FROM", large_from)
            a = inventory.Apply(import_id, uuid.uuid4(), uuid.uuid4(), datetime(2026, 3, 1, tzinfo=UTC),
                                Category.CMDB_EXPORT, "upload", InventoryPolicy(), rows=len(rows))
            count = await inventory._fill_incoming(conn, a, inventory.row_claims(a), source_column=True)  # noqa: SLF001
            filled[way] = (count, [dict(r) for r in await conn.fetch("SELECT * FROM incoming ORDER BY row_number")],
                           [tuple(r) for r in await conn.fetch(definition)], await conn.fetchval(key))
        after = [tuple(r) for r in await conn.fetch(*settings)]
    assert filled["create-as"] == filled["insert"] == filled["insert-after"]
    count, incoming, _, index = filled["insert"]
    assert count == 2 and "(row_number)" in index
    assert incoming[0]["source_key"] == "servicenow|ci-1" and incoming[0]["fqdn"] == "web-01.corp.example"
    assert incoming[1]["claims"] == {"hostname": "db-01"}
    assert after == before and len(before) == len(PARALLEL_AT_ANY_COST)  # as they were
