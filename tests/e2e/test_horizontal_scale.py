"""Three instances of every service in the same consumer groups, one added and one removed
mid-import: every import still ends exactly as it would on one instance."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import asyncpg
import pytest

from contracts import Tenant
from tributary_cli import devstack
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess, stop_all

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

IMPORTS = 4
ROWS = 1000
INVALID_EVERY = 50  # every 50th row has a bad address: 20 invalid rows per import


def cmdb_file(seed: int) -> bytes:
    rnd = random.Random(seed)
    lines = ["hostname,ip_address,environment,criticality"]
    for i in range(1, ROWS + 1):
        ip = "10.0.0.300" if i % INVALID_EVERY == 0 else f"10.{seed}.{i // 256}.{i % 256}"
        lines.append(f"scale-{seed}-{i:05d}.corp.example,{ip},{rnd.choice(['prod', 'dev', 'qa'])},"
                     f"{rnd.choice(['high', 'low'])}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def extra_instances(pipeline: dict[str, ServiceProcess], stack_env: dict[str, str]
                    ) -> Iterator[dict[str, list[ServiceProcess]]]:
    """Two more instances of every service (three in all), stopped afterwards."""
    extra: dict[str, list[ServiceProcess]] = {}
    for name, first in pipeline.items():
        extra[name] = [ServiceProcess(name, devstack.free_port(), first.env, first.log_dir, instance=i)
                       for i in (1, 2)]
    started = [p for group in extra.values() for p in group]
    try:
        for process in started:
            process.start()
        for process in started:
            process.wait_healthy()
        yield extra
    finally:
        stop_all([p for group in extra.values() for p in group])


async def inventory(database_url: str, tenant: Tenant) -> tuple[int, int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        assets = await conn.fetchval("SELECT count(*) FROM enricher.assets WHERE client_account_id = $1",
                                     tenant.client_account_id)
        claims = await conn.fetchval(
            "SELECT count(*) FROM enricher.asset_claims c JOIN enricher.assets a USING (asset_id)"
            " WHERE a.client_account_id = $1", tenant.client_account_id)
        issues = await conn.fetchval(
            "SELECT count(*) FROM validator.row_issues i JOIN validator.validation_runs r USING (import_id)"
            " WHERE r.client_account_id = $1", tenant.client_account_id)
        return assets, claims, issues
    finally:
        await conn.close()


def test_three_instances_with_one_added_and_one_removed_mid_import(
        pipeline: dict[str, ServiceProcess], extra_instances: dict[str, list[ServiceProcess]],
        client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    ingests = [pipeline["ingest"], *extra_instances["ingest"]]
    receipts = []
    for n in range(IMPORTS):
        # Spread the uploads over the three ingest instances.
        via = TributaryClient(ingests[n % 3].url, client.flow_url, tenant, user_id="pytest",
                              api_key=client.api_key)
        response = via.upload_bytes(cmdb_file(n + 1), f"scale-{n}.csv", "cmdb_export")
        assert response.status_code == 202, response.text
        receipts.append(response.json())
        if n == 1:
            # Mid-import: a fourth validator and enricher join their groups ...
            for name in ("validator", "enricher"):
                joiner = ServiceProcess(name, devstack.free_port(), pipeline[name].env, pipeline[name].log_dir,
                                        instance=3)
                joiner.start()
                extra_instances[name].append(joiner)
        if n == 3:
            # ... and one instance of each consuming service leaves, gracefully or not.
            extra_instances["validator"][0].stop()
            extra_instances["enricher"][0].kill()
            extra_instances["flow-state"][0].stop()

    flows = [client.wait_for_flow(r["flow_id"], timeout=180) for r in receipts]
    valid = ROWS - ROWS // INVALID_EVERY
    for flow in flows:
        child = flow["child"]
        assert flow["master"]["status"] == "completed", child["error_message"]
        validation, enrichment = child["phase_state"]["validation"], child["phase_state"]["enrichment"]
        assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (
            ROWS, valid, ROWS // INVALID_EVERY)
        assert (enrichment["assets_created"], enrichment["assets_updated"], enrichment["assets_unchanged"]) == (
            valid, 0, 0)
        assert [e["event_type"] for e in flow["timeline"]].count("EnrichmentCompleted") == 1
    # Exactly once: one asset and one claim per valid row, one finding per invalid row.
    assert asyncio.run(inventory(database_url, tenant)) == (
        IMPORTS * valid, IMPORTS * valid, IMPORTS * (ROWS // INVALID_EVERY))
    assert client.list_flows(status="completed").json()["total"] == IMPORTS
