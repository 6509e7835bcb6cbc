"""The enricher is SIGKILLed mid-import and restarted: the inventory and counts stay exact."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

pytestmark = pytest.mark.e2e

ROWS = 20_000


def write_cmdb(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("hostname,ip_address,asset_type,environment\n")
        for i in range(rows):
            fh.write(f"crash-{i:06d}.corp.example,10.{i // 65536}.{i // 256 % 256}.{i % 256},server,production\n")


async def inventory(database_url: str, tenant_id: uuid.UUID) -> tuple[int, int, dict]:
    conn = await asyncpg.connect(database_url)
    try:
        assets = await conn.fetchval(
            "SELECT count(*) FROM enricher.assets WHERE client_account_id = $1", tenant_id)
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT asset_id) FROM enricher.assets WHERE client_account_id = $1", tenant_id)
        runs = await conn.fetch(
            "SELECT counts::text FROM enricher.enrichment_runs WHERE client_account_id = $1", tenant_id)
        return assets, distinct, {"runs": len(runs)}
    finally:
        await conn.close()


def test_enricher_killed_mid_import(client: TributaryClient, pipeline: dict[str, ServiceProcess],
                                    database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "cmdb-20k.csv"
    write_cmdb(source, ROWS)
    enricher = pipeline["enricher"]

    response = client.upload(source, "cmdb_export")
    assert response.status_code == 202, response.text
    flow_id = response.json()["flow_id"]

    kills = 0
    for phase_wanted in ("validation", "enrichment"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = client.get_flow(flow_id)
            flow = found.json() if found.status_code == 200 else {"master": {"current_phase": "upload",
                                                                             "status": "running"}}
            if flow["master"]["current_phase"] == phase_wanted or flow["master"]["status"] != "running":
                break
            time.sleep(0.02)
        if flow["master"]["status"] == "running":
            enricher.kill()
            kills += 1
            enricher.start()
            enricher.wait_healthy()
    assert kills >= 1, "the import finished before the enricher could be killed"

    flow = client.wait_for_flow(flow_id, timeout=180)
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    enrichment = flow["child"]["phase_state"]["enrichment"]
    assert (enrichment["assets_created"], enrichment["assets_updated"], enrichment["assets_unchanged"]) == (ROWS, 0, 0)
    assert enrichment["rows_applied"] == ROWS
    assets, distinct, runs = asyncio.run(inventory(database_url, client.tenant.client_account_id))
    assert assets == distinct == ROWS
    assert runs == {"runs": 1}
    assert [e["event_type"] for e in flow["timeline"]].count("EnrichmentCompleted") == 1
