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
