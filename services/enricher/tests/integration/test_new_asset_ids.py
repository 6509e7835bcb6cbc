"""A new asset's id derives from its row's strongest identifier, the first it has in priority order."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from contracts import Category, Tenant
from enricher import inventory, planner_statistics
from enricher.policy import InventoryPolicy
from tributary_runtime.db import Database

from .conftest import T0
from .test_set_based import stage_rows

COLUMNS = ["external_id", "hostname", "fqdn", "ip_address", "mac_address", "serial_number", "name", "asset_type"]
# Each row, and the (kind, value) its asset id must come from; None: the row has no identifier.
ROWS = [
    (["EXT-1", "web01.corp.example", "", "10.0.0.1", "", "SN1", "", "server"], ("source_key", "upload|ext-1")),
    (["", "Web02.Corp.Example", "", "10.0.0.2", "", "", "", "server"], ("fqdn", "web02.corp.example")),
    (["", "db03", "db03.corp.example", "", "", "", "", "server"], ("fqdn", "db03.corp.example")),
    (["", "DB04", "", "10.0.0.4", "", "sn4", "", "server"], ("host", "db04")),
    (["", "", "", "10.0.0.5", "AA:BB:CC:DD:EE:05", "sn5", "", "server"], ("ip", "10.0.0.5")),
    (["", "", "", "", "AA:BB:CC:DD:EE:06", "sn6", "Six", "server"], ("mac", "aa:bb:cc:dd:ee:06")),
    (["", "", "", "", "", "sn7", "Seven", "server"], ("serial", "SN7")),
    (["", "", "", "", "", "", "Printer Eight", "printer"], ("name", "printer eight")),
    (["", "", "", "", "", "", "", "server"], None),
]


def derived(tenant: Tenant, kind: str, value: str) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"{tenant.client_account_id}/{tenant.engagement_id}/{kind}:{value}".encode())
                     .hexdigest())


@pytest.mark.parametrize("path", ["probed", "joined"])
async def test_each_new_asset_takes_the_id_of_its_rows_strongest_identifier(
        db: Database, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    if path == "joined":  # as a large import is identified, whatever this one's size
        monkeypatch.setattr(planner_statistics, "MIN_ROWS", 0)
    tenant, import_id = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()), uuid.uuid4()
    async with db.transaction() as conn:
        await stage_rows(conn, import_id, COLUMNS, [cells for cells, _ in ROWS])
        counts = await inventory.apply_import(conn, inventory.Apply(
            import_id, tenant.client_account_id, tenant.engagement_id, T0, Category.CMDB_EXPORT, "upload",
            InventoryPolicy()))
        created = await conn.fetch("SELECT asset_id, name FROM assets WHERE client_account_id = $1",
                                   tenant.client_account_id)
    expected = {derived(tenant, *strongest) for _, strongest in ROWS if strongest is not None}
    assert {r["asset_id"] for r in created} == expected
    assert counts["assets_created"] == len(expected) == 8
    assert counts["unmatched_rows"] == 1


@pytest.mark.parametrize("path", ["probed", "joined"])
async def test_a_row_whose_stronger_identifier_the_matched_asset_contradicts_is_a_conflict(
        db: Database, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    if path == "joined":
        monkeypatch.setattr(planner_statistics, "MIN_ROWS", 0)
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())

    async def apply(source: str, *rows: list[str]) -> dict[str, int]:
        import_id = uuid.uuid4()
        async with db.transaction() as conn:
            await stage_rows(conn, import_id, COLUMNS, list(rows))
            return await inventory.apply_import(conn, inventory.Apply(
                import_id, tenant.client_account_id, tenant.engagement_id, T0, Category.CMDB_EXPORT, source,
                InventoryPolicy()))

    await apply("upload", ["EXT-1", "web01.corp.example", "", "10.0.0.1", "", "", "", "server"])
    counts = await apply("upload",
                         # its FQDN names the asset, but its key of the same source is another
                         ["EXT-2", "web01.corp.example", "", "", "", "", "", "server"],
                         # its address names the asset, but its FQDN is another
                         ["", "web09.corp.example", "", "10.0.0.1", "", "", "", "server"])
    assert (counts["duplicate_candidates"], counts["assets_updated"], counts["assets_created"]) == (2, 0, 0)
    # Another source's key says nothing against the asset's key of the upload: the row is about it.
    counts = await apply("tanium", ["T-3", "web01.corp.example", "", "", "", "", "", "server"])
    assert (counts["duplicate_candidates"], counts["assets_created"]) == (0, 0)
    assert counts["assets_updated"] + counts["assets_unchanged"] == 1
