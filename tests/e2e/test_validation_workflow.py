"""What a user does around validation: dry runs, findings, downloads, fixing and re-uploading,
tenant policies, and the LLM review agent — against the real processes."""

from __future__ import annotations

import csv
import io
import json
import uuid

import asyncpg
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

pytestmark = pytest.mark.e2e

# Rows 2 and 4 have errors; row 5 has a formula where a hostname should be.
CMDB = (
    "Host Name,IP Address,Type,Notes\n"
    "web-01,10.1.0.1,server,primary\n"
    "web-02,10.1.0.999,server,=HYPERLINK(\"http://evil\")\n"
    "db-01,10.1.0.3,database,\n"
    "app-01,10.1.0.4,mainframe-ish,@risky\n"
    "=cmd|' /C calc'!A0,10.1.0.5,server,-2+3\n"
    "lb-01,10.1.0.6,load balancer,\n"
    "nas-01,10.1.0.7,NAS,\n"
    "vm-01,10.1.0.8,VM,\n"
).encode()


async def _fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def _assets(database_url: str, tenant: Tenant) -> list[str]:
    import asyncio

    rows = asyncio.run(_fetch(database_url, "SELECT lower(hostname) AS host FROM enricher.assets"
                              " WHERE client_account_id = $1 AND engagement_id = $2 ORDER BY 1",
                              tenant.client_account_id, tenant.engagement_id))
    return [r["host"] for r in rows]


def _submit(client: TributaryClient, content: bytes, category: str = "cmdb_export", **kw: object) -> dict:
    response = client.upload_bytes(content, "inventory.csv", category, **kw)
    assert response.status_code == 202, response.text
    receipt = response.json()
    return receipt | {"flow": client.wait_for_flow(receipt["flow_id"])}


def test_validate_only_reports_everything_and_changes_no_inventory(client: TributaryClient, database_url: str,
                                                                    tenant: Tenant) -> None:
    run = _submit(client, CMDB, validate_only=True)
    flow = run["flow"]
    assert flow["master"]["status"] == "completed"
    assert flow["child"]["status"] == "completed_with_errors"
    assert flow["child"]["field_mapping_completed"] is True
    assert flow["child"]["asset_enrichment_completed"] is False
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["validate_only"] is True
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (8, 5, 3)
    assert validation["field_mapping"] == {"Host Name": "hostname", "IP Address": "ip_address",
                                           "Type": "asset_type", "Notes": "notes"}
    assert [s["step_name"] for s in flow["steps"]] == ["upload", "validation"]
    assert "EnrichmentCompleted" not in [e["event_type"] for e in flow["timeline"]]

    issues = client.all_issues(run["import_id"])
    assert sorted((i["row_number"], i["column"], i["rule_id"], i["severity"]) for i in issues) == [
        (2, "IP Address", "invalid_ip_address", "error"),
        (4, "Type", "unknown_asset_type", "error"),
        (5, "Host Name", "invalid_hostname", "error"),
    ]
    report = client.get_validation(run["import_id"]).json()
    assert report["verdict"] == "completed_with_errors" and report["validate_only"] is True
    assert report["mapping"]["extras"] == ["Notes"]
    assert _assets(database_url, tenant) == []


def test_findings_page_filter_and_download_as_csv(client: TributaryClient) -> None:
    run = _submit(client, CMDB)
    import_id = run["import_id"]
    page = client.list_issues(import_id, page_size=2).json()
    assert (page["total"], len(page["items"]), page["page"]) == (3, 2, 1)
    assert [i["row_number"] for i in page["items"]] == [2, 4]
    assert client.list_issues(import_id, page=2, page_size=2).json()["items"][0]["row_number"] == 5
    only_type = client.all_issues(import_id, column="Type")
    assert [(i["row_number"], i["rule_id"], i["value"]) for i in only_type] == [
        (4, "unknown_asset_type", "mainframe-ish")]
    assert client.all_issues(import_id, rule="invalid_ip_address")[0]["value"] == "10.1.0.999"
    assert client.all_issues(import_id, severity="warning") == []

    download = client.download_issues(import_id)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["row_number", "column", "rule_id", "agent", "severity", "message", "value"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("2", "invalid_ip_address"), ("4", "unknown_asset_type"),
                                                ("5", "invalid_hostname")]
    # The hostname finding's value is a formula: neutralised in the download.
    assert rows[3][6] == "'=cmd|' /C calc'!A0"


def test_failed_rows_download_fixes_and_reimports(client: TributaryClient, database_url: str,
                                                  tenant: Tenant) -> None:
    run = _submit(client, CMDB)
    assert run["flow"]["child"]["phase_state"]["enrichment"]["assets_created"] == 5
    download = client.download_failed_rows(run["import_id"])
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["Host Name", "IP Address", "Type", "Notes", "tributary_errors"]
    # Exactly as uploaded, formulas neutralised, plus what to fix.
    assert rows[1][:4] == ["web-02", "10.1.0.999", "server", "'=HYPERLINK(\"http://evil\")"]
    assert rows[1][4].startswith("row 2: IP Address: ")
    assert rows[2][:4] == ["app-01", "10.1.0.4", "mainframe-ish", "'@risky"]
    assert rows[2][4].startswith("row 4: Type: ")
    assert rows[3][0] == "'=cmd|' /C calc'!A0" and rows[3][4].startswith("row 5: Host Name: ")
    assert len(rows) == 4

    # The user corrects the cells in the downloaded file and submits it again as it is.
    rows[1][1], rows[2][2], rows[3][0] = "10.1.0.2", "server", "batch-01"
    rows[1][3], rows[2][3], rows[3][3] = "", "", ""
    fixed = io.StringIO()
    csv.writer(fixed).writerows(rows)
    again = _submit(client, fixed.getvalue().encode())
    child = again["flow"]["child"]
    assert child["status"] == "completed", client.all_issues(again["import_id"])
    assert child["phase_state"]["validation"]["field_mapping"] == {
        "Host Name": "hostname", "IP Address": "ip_address", "Type": "asset_type", "Notes": "notes"}
    assert child["phase_state"]["enrichment"]["assets_created"] == 3
    assert _assets(database_url, tenant) == ["app-01", "batch-01", "db-01", "lb-01", "nas-01", "vm-01", "web-01",
                                             "web-02"]


def test_a_tenant_threshold_and_blocking_rule_decide_the_verdict(client: TributaryClient) -> None:
    response = client.put_policy("cmdb_export", 0.2)
    assert response.status_code == 200, response.text
    failed = _submit(client, CMDB)["flow"]
    assert failed["master"]["status"] == "failed"
    validation = failed["child"]["phase_state"]["validation"]
    assert validation["code"] == "error_threshold"
    assert failed["child"]["error_message"] == "3 of 8 rows are invalid (37.5%), above the 20.0% threshold"
    assert validation["details"]["invalid_count"] == 3
    assert validation["details"]["findings_by_rule"] == {"invalid_hostname": 1, "invalid_ip_address": 1,
                                                         "unknown_asset_type": 1}
    steps = {s["step_name"]: s for s in failed["steps"]}
    assert steps["validation"]["status"] == "failed"

    assert client.put_policy("cmdb_export", 0.9, ["unknown_asset_type"]).status_code == 200
    blocked = _submit(client, CMDB)["flow"]
    assert blocked["child"]["phase_state"]["validation"]["code"] == "blocking_rule"
    assert blocked["child"]["error_message"] == "blocking rule(s) failed: unknown_asset_type (1)"

    assert client.put_policy("cmdb_export", 0.9, ["no_such_rule"]).status_code == 422
    # Other categories keep the default.
    assert _submit(client, b"source,target\na,b\n", "app_discovery")["flow"]["master"]["status"] == "completed"


def test_another_tenant_cannot_see_the_findings(client: TributaryClient, client_for) -> None:
    run = _submit(client, CMDB)
    other = client_for(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    for response in (other.list_issues(run["import_id"]), other.get_validation(run["import_id"]),
                     other.download_issues(run["import_id"]), other.download_failed_rows(run["import_id"])):
        assert response.status_code == 404
    assert client.list_issues(uuid.uuid4()).status_code == 404


def test_agent_results_and_processing_steps_are_in_the_flow(client: TributaryClient) -> None:
    flow = _submit(client, CMDB)["flow"]
    agents = {a["agent"]: a for a in flow["child"]["agent_state"]["validation"]["agent_results"]}
    assert list(agents) == ["schema", "format", "vocabulary", "range", "duplicate_detection"]
    assert (agents["format"]["status"], agents["format"]["error_count"]) == ("errors", 2)
    assert (agents["vocabulary"]["status"], agents["vocabulary"]["error_count"]) == ("errors", 1)
    assert agents["range"]["status"] == "passed"
    steps = flow["steps"]
    assert [(s["step_order"], s["step_name"], s["status"], s["records_processed"]) for s in steps] == [
        (1, "upload", "completed", 8), (2, "validation", "completed", 8), (3, "enrichment", "completed", 5)]
    validation = steps[1]
    assert validation["description"].startswith("Ran 5 validation agents for cmdb_export")
    assert validation["started_at"] <= validation["completed_at"]
    assert validation["output"]["verdict"] == "completed_with_errors"


LLM_ANSWER = json.dumps({"findings": [
    {"row_number": 1, "column": "asset_type", "message": "a web server typed as a generic server; consider 'virtual_machine'"},
    {"row_number": 99, "column": None, "message": "not a sampled row: dropped"},
]})


@pytest.fixture
def reviewing_validator(pipeline: dict[str, ServiceProcess]) -> ServiceProcess:
    """The validator restarted with an LLM model configured (answers from litellm's mock_response)."""
    validator = pipeline["validator"]
    original = validator.env
    validator.stop()
    validator.env = original | {"TRIBUTARY_LLM_MODEL": "gpt-4o-mini", "TRIBUTARY_LLM_MOCK_RESPONSE": LLM_ANSWER,
                                "TRIBUTARY_LLM_SAMPLE_ROWS": "3"}
    validator.start()
    validator.wait_healthy()
    yield validator
    validator.stop()
    validator.env = original
    validator.start()
    validator.wait_healthy()


def test_llm_review_adds_warnings_and_records_usage(reviewing_validator: ServiceProcess, client: TributaryClient,
                                                    database_url: str) -> None:
    run = _submit(client, CMDB)
    import asyncio

    review = client.all_issues(run["import_id"], rule="llm_review")
    assert [(i["row_number"], i["column"], i["agent"], i["severity"]) for i in review] == [
        (1, "Type", "llm_review", "warning")]
    agents = {a["agent"]: a for a in run["flow"]["child"]["agent_state"]["validation"]["agent_results"]}
    assert (agents["llm_review"]["status"], agents["llm_review"]["warning_count"]) == ("warnings", 1)
    usage = asyncio.run(_fetch(database_url, "SELECT model, outcome, prompt_tokens, completion_tokens, cost_usd"
                               " FROM validator.llm_usage WHERE import_id = $1", uuid.UUID(run["import_id"])))
    assert [(u["model"], u["outcome"]) for u in usage] == [("gpt-4o-mini", "ok")]
    assert usage[0]["prompt_tokens"] > 0 and usage[0]["cost_usd"] > 0

    # Sensitive data is never sent to the model.
    sensitive = _submit(client, b"hostname,classification\ndb-01,PII\n", "sensitive_data")
    assert client.all_issues(sensitive["import_id"], rule="llm_review") == []
    assert asyncio.run(_fetch(database_url, "SELECT 1 FROM validator.llm_usage WHERE import_id = $1",
                              uuid.UUID(sensitive["import_id"]))) == []
