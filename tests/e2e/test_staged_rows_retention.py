"""The validator and the enricher delete a finished import's staged rows once the retention has
passed, against the real processes: the failed-rows download still works from what is kept. An
operator deletes them at once with ``tributary purge-staged-rows``."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator

import pytest

from typer.testing import CliRunner

from tributary_cli.client import TributaryClient
from tributary_cli.main import app
from tributary_cli.processes import ServiceProcess
from tributary_cli.testing import sql, wait_until

pytestmark = pytest.mark.e2e

# Rows 2 and 4 have errors.
CMDB = (
    "Host Name,IP Address,Type\n"
    "ret-web-01,10.7.0.1,server\n"
    "ret-web-02,10.7.0.999,server\n"
    "ret-db-01,10.7.0.3,database\n"
    "ret-app-01,10.7.0.4,mainframe-ish\n"
    "ret-lb-01,10.7.0.6,load balancer\n"
).encode()
# The same shape: rows 2 and 4 have errors.
CMDB_NOW = CMDB.replace(b"ret-", b"now-").replace(b"10.7.", b"10.8.")
RETENTION = {"TRIBUTARY_STAGED_ROWS_RETENTION_DAYS": "0", "TRIBUTARY_STAGED_ROWS_PURGE_INTERVAL_S": "0.5"}


@pytest.fixture
def purging(pipeline: dict[str, ServiceProcess]) -> Iterator[None]:
    """The validator and the enricher restarted to purge every finished set within half a second."""
    services = [pipeline["validator"], pipeline["enricher"]]
    originals = [s.env for s in services]
    for service, env in zip(services, originals, strict=True):
        service.stop()
        service.env = env | RETENTION
        service.start()
    for service in services:
        service.wait_healthy()
    yield
    for service, env in zip(services, originals, strict=True):
        service.stop()
        service.env = env
        service.start()
    for service in services:
        service.wait_healthy()


def staged(database_url: str, schema: str, import_id: uuid.UUID) -> tuple[list[int], int, bool]:
    """(staged row numbers, staged batches, rows purged) of one import in one service's schema."""
    rows = sql(database_url, f"SELECT row_number FROM {schema}.staged_rows WHERE import_id = $1 ORDER BY 1",
               import_id)
    batches = sql(database_url, f"SELECT count(*) AS n FROM {schema}.staged_batches WHERE import_id = $1",
                  import_id)[0]["n"]
    purged = sql(database_url, f"SELECT rows_purged_at IS NOT NULL AS p FROM {schema}.staged_imports"
                 " WHERE import_id = $1", import_id)
    return [r["row_number"] for r in rows], batches, bool(purged and purged[0]["p"])


def test_a_finished_imports_rows_go_but_the_failed_rows_download_stays(purging: None, client: TributaryClient,
                                                                        database_url: str) -> None:
    response = client.upload_bytes(CMDB, "inventory.csv", "cmdb_export")
    assert response.status_code == 202, response.text
    receipt = response.json()
    flow = client.wait_for_flow(receipt["flow_id"])
    assert flow["child"]["phase_state"]["enrichment"]["assets_created"] == 3
    import_id = uuid.UUID(receipt["import_id"])

    wait_until("both services to purge the import's staged rows",
               lambda: staged(database_url, "validator", import_id)[2] and staged(database_url, "enricher",
                                                                                   import_id)[2], timeout=30)
    # The validator keeps the rows with errors; the enricher keeps none. Both keep the batches.
    assert staged(database_url, "validator", import_id) == ([2, 4], 1, True)
    assert staged(database_url, "enricher", import_id) == ([], 1, True)

    download = client.download_failed_rows(receipt["import_id"])
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["Host Name", "IP Address", "Type", "tributary_errors"]
    assert rows[1][:3] == ["ret-web-02", "10.7.0.999", "server"] and rows[1][3].startswith("row 2: IP Address: ")
    assert rows[2][:3] == ["ret-app-01", "10.7.0.4", "mainframe-ish"] and rows[2][3].startswith("row 4: Type: ")
    assert len(rows) == 3


def test_purge_staged_rows_deletes_a_finished_imports_rows_now(client: TributaryClient, database_url: str,
                                                               stack_env: dict[str, str],
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    response = client.upload_bytes(CMDB_NOW, "inventory.csv", "cmdb_export")
    assert response.status_code == 202, response.text
    receipt = response.json()
    client.wait_for_flow(receipt["flow_id"])
    import_id = uuid.UUID(receipt["import_id"])
    # The services' own pass (hourly, 30 days) has not touched it.
    assert staged(database_url, "validator", import_id) == ([1, 2, 3, 4, 5], 1, False)

    capfd.readouterr()
    result = CliRunner().invoke(app, ["purge-staged-rows", "--older-than-days", "0", "--json"],
                                env={k: stack_env[k] for k in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    assert result.exit_code == 0, result.output
    # One report per service, printed by its own module.
    reports = {r["service"]: r for r in map(json.loads, capfd.readouterr().out.splitlines())}
    assert set(reports) == {"validator", "enricher"}
    assert all(str(import_id) in r["import_ids"] and r["older_than_days"] == 0 for r in reports.values())
    assert staged(database_url, "validator", import_id) == ([2, 4], 1, True)
    assert staged(database_url, "enricher", import_id) == ([], 1, True)
    assert client.download_failed_rows(receipt["import_id"]).text.count("\n") == 3  # header and rows 2, 4

    unknown = CliRunner().invoke(app, ["purge-staged-rows", "--service", "ingest"])
    assert unknown.exit_code != 0 and "No staging service named ingest" in unknown.output
