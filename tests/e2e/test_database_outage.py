"""The database drops every service connection for a few seconds (as a restart does) while the
validator, and later the enricher, is halfway through its phase's transaction: consumers retry with
backoff, and the import ends exactly as it would have."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.testing import cmdb_file, phase_held_at

pytestmark = pytest.mark.e2e

ROWS = 20_000
INVALID_EVERY = 100
OUTAGE_S = 4.0


async def drop_connections(admin: asyncpg.Connection, seconds: float) -> list[tuple[str, str | None]]:
    """Terminate every service connection, again and again, for ``seconds``.

    Returns the (application_name, wait_event_type) of each connection it terminated.
    """
    dropped: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await admin.execute("SELECT pg_stat_clear_snapshot()")  # see sessions_waiting_on_a_lock
        rows = await admin.fetch(
            "SELECT application_name, wait_event_type FROM pg_stat_activity, pg_terminate_backend(pid) AS t"
            " WHERE datname = current_database() AND application_name LIKE 'tributary-%' AND t")
        dropped += [(r["application_name"], r["wait_event_type"]) for r in rows]
        await asyncio.sleep(0.1)
    return dropped


async def outage_during(database_url: str, table: str, service: str) -> list[tuple[str, str | None]]:
    async with phase_held_at(database_url, table, service) as admin:
        return await drop_connections(admin, OUTAGE_S)


async def inventory(database_url: str, tenant: Tenant) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        assets = await conn.fetchval("SELECT count(*) FROM enricher.assets WHERE client_account_id = $1",
                                     tenant.client_account_id)
        issues = await conn.fetchval(
            "SELECT count(*) FROM validator.row_issues i JOIN validator.validation_runs r USING (import_id)"
            " WHERE r.client_account_id = $1", tenant.client_account_id)
        return assets, issues
    finally:
        await conn.close()


def test_an_outage_mid_phase_loses_and_repeats_nothing(client: TributaryClient, database_url: str,
                                                       tenant: Tenant) -> None:
    receipt = client.upload_bytes(cmdb_file("outage", ROWS, INVALID_EVERY), "outage.csv", "cmdb_export")
    assert receipt.status_code == 202, receipt.text

    # The validation is blocked writing its findings, inside the transaction that began it.
    dropped = asyncio.run(outage_during(database_url, "validator.row_issues", "validator"))
    assert ("tributary-validator", "Lock") in dropped
    # Then the enrichment, blocked writing the inventory.
    dropped = asyncio.run(outage_during(database_url, "enricher.assets", "enricher"))
    assert ("tributary-enricher", "Lock") in dropped

    flow = client.wait_for_flow(receipt.json()["flow_id"], timeout=240)
    child = flow["child"]
    assert flow["master"]["status"] == "completed", child["error_message"]
    invalid = ROWS // INVALID_EVERY
    validation, enrichment = child["phase_state"]["validation"], child["phase_state"]["enrichment"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (
        ROWS, ROWS - invalid, invalid)
    assert (enrichment["assets_created"], enrichment["assets_updated"]) == (ROWS - invalid, 0)
    assert asyncio.run(inventory(database_url, tenant)) == (ROWS - invalid, invalid)
    events = [e["event_type"] for e in flow["timeline"]]
    assert events.count("ValidationCompleted") == 1 and events.count("EnrichmentCompleted") == 1
    assert "ImportFailed" not in events
