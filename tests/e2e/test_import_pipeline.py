"""Upload → validation → enrichment → flow completed, per category, against real processes."""

from __future__ import annotations

from importlib import resources

import pytest

from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e

SAMPLES = resources.files("tributary_cli") / "samples"


def upload_sample(client: TributaryClient, category: str) -> dict:
    with resources.as_file(SAMPLES / f"{category}.csv") as path:
        response = client.upload(path, category)
    assert response.status_code == 202, response.text
    return response.json()


def test_cmdb_export_end_to_end(client: TributaryClient) -> None:
    receipt = upload_sample(client, "cmdb_export")
    assert receipt["record_count"] == 5
    flow = client.wait_for_flow(receipt["flow_id"])
    master, child = flow["master"], flow["child"]
    assert master["status"] == "completed"
    assert master["flow_type"] == "data_import"
    assert master["import_category"] == "cmdb_export"
    assert child["status"] == "completed"
    assert child["current_phase"] == "complete"
    assert child["progress_percentage"] == 100.0
    assert child["data_import_id"] == receipt["import_id"]
    assert child["data_import_completed"] and child["data_validation_completed"]
    assert child["field_mapping_completed"] and child["asset_enrichment_completed"]
    assert child["error_message"] is None
    validation = child["phase_state"]["validation"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (5, 5, 0)
    enrichment = child["phase_state"]["enrichment"]
    assert enrichment["assets_created"] == 5
    assert enrichment["assets_updated"] == 0
    assert [e["event_type"] for e in flow["timeline"]][:1] == ["ImportUploaded"]
    assert flow["timeline"][-1]["event_type"] == "EnrichmentCompleted"


def test_all_four_categories_build_one_inventory(client: TributaryClient, database_url: str) -> None:
    flows = {}
    for category in ("cmdb_export", "app_discovery", "infrastructure", "sensitive_data"):
        receipt = upload_sample(client, category)
        flows[category] = client.wait_for_flow(receipt["flow_id"])
    for category, flow in flows.items():
        assert flow["master"]["status"] == "completed", (category, flow["child"]["error_message"])
        assert flow["child"]["current_phase"] == "complete"

    deps = flows["app_discovery"]["child"]["phase_state"]["enrichment"]
    # 6 distinct applications across 5 edges, none known before; every edge is new.
    assert (deps["assets_created"], deps["dependencies_created"], deps["dependencies_updated"]) == (6, 5, 0)

    perf = flows["infrastructure"]["child"]["phase_state"]["enrichment"]
    assert (perf["assets_updated"], perf["unmatched_rows"]) == (3, 0)

    sensitive = flows["sensitive_data"]["child"]["phase_state"]["enrichment"]
    # db-01 appears twice (the last row wins), app-01 once: two hosts, both known.
    assert (sensitive["assets_updated"], sensitive["unmatched_rows"]) == (2, 0)

    listed = client.list_flows(status="completed").json()
    assert listed["total"] == 4
    assert {f["category"] for f in listed["items"]} == set(flows)
    page = client.list_flows(category="app_discovery", page_size=1).json()
    assert page["total"] == 1 and len(page["items"]) == 1
    assert page["items"][0]["flow_id"] == flows["app_discovery"]["master"]["flow_id"]


def test_reimporting_the_same_file_creates_nothing(client: TributaryClient) -> None:
    first = client.wait_for_flow(upload_sample(client, "cmdb_export")["flow_id"])
    second = client.wait_for_flow(upload_sample(client, "cmdb_export")["flow_id"])
    assert first["child"]["phase_state"]["enrichment"]["assets_created"] == 5
    again = second["child"]["phase_state"]["enrichment"]
    assert (again["assets_created"], again["assets_updated"], again["assets_unchanged"]) == (0, 0, 5)


def test_partly_invalid_file_completes_with_errors(client: TributaryClient) -> None:
    content = b"hostname,ip_address\nok-1,10.0.0.1\nbad-1,10.0.0.999\nok-2,10.0.0.3\n"
    response = client.upload_bytes(content, "partial.csv", "cmdb_export")
    assert response.status_code == 202, response.text
    flow = client.wait_for_flow(response.json()["flow_id"])
    assert flow["master"]["status"] == "completed"
    assert flow["child"]["status"] == "completed_with_errors"
    validation = flow["child"]["phase_state"]["validation"]
    assert (validation["valid_count"], validation["invalid_count"], validation["error_count"]) == (2, 1, 1)
    assert flow["child"]["phase_state"]["enrichment"]["assets_created"] == 2


def test_missing_required_column_fails_the_flow_with_the_reason(client: TributaryClient) -> None:
    response = client.upload_bytes(b"os,ram\nlinux,16\n", "noid.csv", "cmdb_export")
    assert response.status_code == 202
    flow = client.wait_for_flow(response.json()["flow_id"])
    assert flow["master"]["status"] == "failed"
    assert flow["child"]["status"] == "failed"
    assert flow["child"]["error_message"] == (
        "required column(s) missing: one of external_id, hostname, fqdn, name, ip_address, mac_address, serial_number")
    assert flow["child"]["phase_state"]["validation"]["code"] == "required_column"
    assert flow["timeline"][-1]["event_type"] == "ImportFailed"


def test_idempotency_key_returns_the_first_import(client: TributaryClient) -> None:
    with resources.as_file(SAMPLES / "cmdb_export.csv") as path:
        first = client.upload(path, "cmdb_export", idempotency_key="upload-42")
        second = client.upload(path, "cmdb_export", idempotency_key="upload-42")
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["import_id"] == second.json()["import_id"]
    assert first.json()["flow_id"] == second.json()["flow_id"]
    client.wait_for_flow(first.json()["flow_id"])
    assert client.list_flows().json()["total"] == 1
    receipt = client.get_import(first.json()["import_id"])
    assert receipt.status_code == 200 and receipt.json()["status"] == "uploaded"


def test_another_tenant_sees_nothing(client: TributaryClient, client_for) -> None:
    import uuid

    from contracts import Tenant

    receipt = upload_sample(client, "sensitive_data")
    client.wait_for_flow(receipt["flow_id"])
    other = client_for(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    assert other.get_flow(receipt["flow_id"]).status_code == 404
    assert other.get_import(receipt["import_id"]).status_code == 404
    assert other.list_flows().json()["total"] == 0


def test_rejected_upload_names_row_and_column(client: TributaryClient) -> None:
    response = client.upload_bytes(b"hostname,ip\nweb-1,10.0.0.1,extra\n", "wide.csv", "cmdb_export")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "row_width" and detail["row"] == 1
    unknown = client.upload_bytes(b"hostname\nweb-1\n", "x.csv", "mainframes")
    assert unknown.status_code == 422 and unknown.json()["detail"]["code"] == "unknown_category"
    assert client.list_flows().json()["total"] == 0


def _xlsx(rows: list[list[str]]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("filename", ["hosts.json", "hosts.ndjson", "hosts.xlsx"])
def test_json_ndjson_and_xlsx_uploads(client: TributaryClient, filename: str) -> None:
    import json

    records = [{"Host Name": "j-1", "IP Address": "10.1.0.1"}, {"Host Name": "j-2", "IP Address": "10.1.0.2"}]
    content = {
        "hosts.json": json.dumps(records).encode(),
        "hosts.ndjson": "\n".join(json.dumps(r) for r in records).encode(),
        "hosts.xlsx": _xlsx([list(records[0])] + [list(r.values()) for r in records]),
    }[filename]
    response = client.upload_bytes(content, filename, "cmdb_export")
    assert response.status_code == 202, response.text
    assert response.json()["file_format"] == filename.rsplit(".", 1)[1]
    flow = client.wait_for_flow(response.json()["flow_id"])
    assert flow["master"]["status"] == "completed"
    assert flow["child"]["phase_state"]["validation"]["field_mapping"] == {
        "Host Name": "hostname", "IP Address": "ip_address"}
    assert flow["child"]["phase_state"]["enrichment"]["assets_created"] == 2
