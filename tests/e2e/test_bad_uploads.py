"""Guarantee 5: a bad upload gets a precise answer and changes nothing.

Each rejected upload is answered 422 (413 when too large) with ``{"detail": {code, message,
row, column}}``, and nothing happens: the end offsets of ``imports.records.v1`` and
``imports.events.v1`` do not move, and the tenant has no receipt, no idempotency key and
no flow. What is *not* an upload error is shown too: a UTF-8 BOM is accepted, and a file
lacking a column its category requires is imported and fails in validation (docs/validation.md).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from openpyxl import Workbook
from openpyxl.styles import PatternFill

from contracts import Tenant, topics
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

pytestmark = pytest.mark.e2e

BOM = b"\xef\xbb\xbf"
GOOD_CSV = b"hostname,ip_address\nweb-1,10.0.0.1\nweb-2,10.0.0.2\n"
SMALL_LIMIT = 2048


async def _end_offsets(bootstrap: str) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata
        partitions = [TopicPartition(topic, p) for topic in (topics.RECORDS, topics.EVENTS)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert {tp.topic for tp in partitions} == {topics.RECORDS, topics.EVENTS}
        return {(tp.topic, tp.partition): offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


def end_offsets(bootstrap: str) -> dict[tuple[str, int], int]:
    return asyncio.run(_end_offsets(bootstrap))


def traces(database_url: str, tenant: Tenant) -> dict[str, int]:
    """What the tenant has left behind: upload receipts, idempotency keys, flows."""
    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(database_url)
        try:
            return {table: await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE client_account_id = $1 AND engagement_id = $2",
                tenant.client_account_id, tenant.engagement_id)
                for table in ("ingest.data_imports", "ingest.idempotency_keys", "flow_state.master_flows")}
        finally:
            await conn.close()

    return asyncio.run(count())


NOTHING = {"ingest.data_imports": 0, "ingest.idempotency_keys": 0, "flow_state.master_flows": 0}


def xlsx(sheets: dict[str, list[list[Any]]], *, decorate: str | None = None) -> bytes:
    """A workbook; ``decorate`` names a sheet given formatted but empty cells (what a template leaves)."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if title == decorate:
            for cell in ("A1", "B1", "C3"):
                sheet[cell].fill = PatternFill("solid", fgColor="FFFF00")
            sheet["B2"] = "   "
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rejection(code: str, message: str, row: int | None = None, column: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "row": row, "column": column}


BAD_UPLOADS = [
    pytest.param(b"", "hosts.csv", "cmdb_export", rejection("empty_file", "The file is empty."), id="empty-file"),
    pytest.param(b"  \r\n\r\n", "hosts.csv", "cmdb_export", rejection("empty_file", "The file is empty."),
                 id="blank-lines-only"),
    pytest.param(b"hostname,ip_address\r\n", "hosts.csv", "cmdb_export",
                 rejection("no_rows", "The file has a header but no data rows."), id="header-only"),
    pytest.param(b"hostname;ip_address;os\nweb-1,10.0.0.1,linux\nweb-2,10.0.0.2,linux\n", "hosts.csv", "cmdb_export",
                 rejection("mixed_delimiter", "Row 1 is separated by commas (,) but the header by semicolons (;); "
                                              "use the same delimiter throughout the file.", row=1),
                 id="wrong-delimiter"),
    pytest.param(b"hostname,ip_address\nweb-1,10.0.0.1\nweb-2;10.0.0.2\n", "hosts.csv", "cmdb_export",
                 rejection("mixed_delimiter", "Row 2 is separated by semicolons (;) but the header by commas (,); "
                                              "use the same delimiter throughout the file.", row=2),
                 id="mixed-delimiter"),
    pytest.param(b"hostname;ip_address\nweb-1;10.0.0.1\n\nweb-2;10.0.0.2;linux,x\n", "hosts.csv", "cmdb_export",
                 rejection("row_width", "Row 3 has 3 cells but the header has only 2 columns.", row=3),
                 id="mixed-delimiter-widens-a-row"),
    pytest.param(b"hostname,location\nweb-1,Bern\nweb-2,Z\xfcrich\n", "hosts.csv", "cmdb_export",
                 rejection("encoding", "The file is not valid UTF-8 at line 3 (byte 0xFC at position 8); "
                                       "save it as UTF-8 and upload it again.", row=2),
                 id="latin-1-in-a-row"),
    pytest.param(b"hostname,standort_f\xfcr\nweb-1,Bern\n", "hosts.csv", "cmdb_export",
                 rejection("encoding", "The file is not valid UTF-8 at line 1 (byte 0xFC at position 20); "
                                       "save it as UTF-8 and upload it again."),
                 id="latin-1-in-the-header"),
    pytest.param('[{"hostname": "web-1", "location": "Zürich"}]'.encode("latin-1"), "hosts.json", "cmdb_export",
                 rejection("encoding", "The file is not valid UTF-8 near element 1 of the array; "
                                       "save it as UTF-8 and upload it again.", row=1),
                 id="latin-1-json"),
    pytest.param(b"hostname,IP Address,ip address\nweb-1,10.0.0.1,10.0.0.2\n", "hosts.csv", "cmdb_export",
                 rejection("duplicate_column", "The header contains the column 'ip address' more than once "
                                               "(also as 'IP Address').", column="ip address"),
                 id="duplicate-header"),
    pytest.param(b"hostname,,ip_address\nweb-1,x,10.0.0.1\n", "hosts.csv", "cmdb_export",
                 rejection("blank_column", "Column 2 of the header has no name.", column="#2"),
                 id="unnamed-header"),
    pytest.param(xlsx({"Hosts": [["hostname", "ip_address", "hostname"], ["web-1", "10.0.0.1", "web-1"]]}),
                 "hosts.xlsx", "cmdb_export",
                 rejection("duplicate_column", "The header contains the column 'hostname' more than once "
                                               "(also as 'hostname').", column="hostname"),
                 id="duplicate-header-xlsx"),
    pytest.param(b'{"hostname": "web-1", "ip_address": "10.0.0.1"}', "hosts.json", "cmdb_export",
                 rejection("json_not_array", "The JSON file must contain an array of objects at the top level, "
                                             "but it contains an object."),
                 id="json-object-not-array"),
    pytest.param(b'{\n  "hosts": [{"hostname": "web-1"}]\n}\n', "export", "cmdb_export",
                 rejection("json_not_array", "The JSON file must contain an array of objects at the top level, "
                                             "but it contains an object."),
                 id="json-object-no-extension"),
    pytest.param(xlsx({"Summary": [], "Hosts": []}, decorate="Hosts"), "hosts.xlsx", "cmdb_export",
                 rejection("no_table", "The workbook has no sheet with a header row; every sheet is empty."),
                 id="xlsx-without-a-table"),
    pytest.param(GOOD_CSV, "hosts.csv", "mainframes",
                 rejection("unknown_category", "category 'mainframes' is not one of: cmdb_export, app_discovery, "
                                               "infrastructure, sensitive_data"),
                 id="unknown-category"),
]


@pytest.mark.parametrize(("content", "filename", "category", "expected"), BAD_UPLOADS)
def test_a_bad_upload_is_named_precisely_and_publishes_nothing(
        client: TributaryClient, stack_env: dict[str, str], database_url: str, tenant: Tenant,
        content: bytes, filename: str, category: str, expected: dict[str, Any]) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    before = end_offsets(bootstrap)
    response = client.upload_bytes(content, filename, category, idempotency_key="nightly-42")
    after = end_offsets(bootstrap)

    assert response.status_code == 422, response.text
    assert response.json() == {"detail": expected}
    assert after == before, "a rejected upload published events"
    assert traces(database_url, tenant) == NOTHING
    assert client.list_flows().json()["total"] == 0


def test_a_rejected_upload_can_be_retried_with_the_same_key(client: TributaryClient, database_url: str,
                                                             tenant: Tenant) -> None:
    bad = client.upload_bytes(b"hostname;ip_address\nweb-1,10.0.0.1\n", "hosts.csv", "cmdb_export",
                              idempotency_key="nightly-43")
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "mixed_delimiter"
    assert traces(database_url, tenant)["ingest.idempotency_keys"] == 0  # the key was not spent on it

    fixed = client.upload_bytes(b"hostname;ip_address\nweb-1;10.0.0.1\n", "hosts.csv", "cmdb_export",
                                idempotency_key="nightly-43")
    assert fixed.status_code == 202, fixed.text
    assert client.wait_for_flow(fixed.json()["flow_id"])["master"]["status"] == "completed"
    again = client.upload_bytes(b"hostname;ip_address\nweb-1;10.0.0.1\n", "hosts.csv", "cmdb_export",
                                idempotency_key="nightly-43")
    assert again.status_code == 200 and again.json()["import_id"] == fixed.json()["import_id"]


@pytest.fixture
def small_upload_limit(pipeline: dict[str, ServiceProcess]) -> Iterator[int]:
    """The ingest process restarted with TRIBUTARY_MAX_UPLOAD_BYTES=2048; restored afterwards."""
    ingest = pipeline["ingest"]
    original = ingest.env
    ingest.stop()
    ingest.env = original | {"TRIBUTARY_MAX_UPLOAD_BYTES": str(SMALL_LIMIT)}
    try:
        ingest.start()
        ingest.wait_healthy()
        yield SMALL_LIMIT
    finally:
        ingest.stop()
        ingest.env = original
        ingest.start()
        ingest.wait_healthy()


def csv_of_size(size: int) -> bytes:
    head = b"hostname,notes\nweb-1,"
    return head + b"x" * (size - len(head) - 1) + b"\n"


def test_a_file_over_the_size_limit_is_413_and_publishes_nothing(
        small_upload_limit: int, client: TributaryClient, stack_env: dict[str, str], database_url: str,
        tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    before = end_offsets(bootstrap)
    response = client.upload_bytes(csv_of_size(small_upload_limit + 1), "big.csv", "cmdb_export",
                                   idempotency_key="big-1")
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": rejection(
        "too_large", f"The file is larger than the limit of {small_upload_limit} bytes.")}
    assert end_offsets(bootstrap) == before
    assert traces(database_url, tenant) == NOTHING

    # The limit is the only thing wrong with it: at exactly the limit the same file goes through.
    at_limit = client.upload_bytes(csv_of_size(small_upload_limit), "big.csv", "cmdb_export")
    assert at_limit.status_code == 202, at_limit.text
    assert at_limit.json()["size_bytes"] == small_upload_limit
    assert client.wait_for_flow(at_limit.json()["flow_id"])["master"]["status"] == "completed"


@pytest.mark.parametrize(("content", "filename", "file_format"), [
    pytest.param(BOM + b"Hostname;IP Address\r\nweb-1;10.0.0.1\r\nweb-2;10.0.0.2\r\n", "excel-export.csv", "csv",
                 id="csv-utf8-from-excel"),
    pytest.param(BOM + json.dumps([{"Hostname": "web-1", "IP Address": "10.0.0.1"},
                                   {"Hostname": "web-2", "IP Address": "10.0.0.2"}]).encode(), "hosts.json", "json",
                 id="json"),
    pytest.param(BOM + b'{"Hostname": "web-1", "IP Address": "10.0.0.1"}\n'
                       b'{"Hostname": "web-2", "IP Address": "10.0.0.2"}\n', "hosts.ndjson", "ndjson", id="ndjson"),
])
def test_a_utf8_bom_is_accepted(client: TributaryClient, content: bytes, filename: str, file_format: str) -> None:
    response = client.upload_bytes(content, filename, "cmdb_export")
    assert response.status_code == 202, response.text
    assert (response.json()["file_format"], response.json()["record_count"]) == (file_format, 2)
    flow = client.wait_for_flow(response.json()["flow_id"])
    assert (flow["master"]["status"], flow["child"]["status"]) == ("completed", "completed")
    # The BOM is not part of the first column's name: it maps like any other "Hostname".
    assert flow["child"]["phase_state"]["validation"]["field_mapping"] == {
        "Hostname": "hostname", "IP Address": "ip_address"}
    assert flow["child"]["phase_state"]["enrichment"]["assets_created"] == 2


def test_a_missing_required_column_is_a_validation_failure_not_an_upload_error(
        client: TributaryClient, stack_env: dict[str, str], database_url: str, tenant: Tenant) -> None:
    """The file itself is fine, so it is imported; validation then fails it, naming the column."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    before = end_offsets(bootstrap)
    content = json.dumps([{"source": "crm", "port": 443}, {"source": "billing", "port": 5432}]).encode()
    response = client.upload_bytes(content, "deps.json", "app_discovery")
    assert response.status_code == 202, response.text
    after = end_offsets(bootstrap)
    published = {topic: sum(after[k] - before[k] for k in after if k[0] == topic)
                 for topic in (topics.RECORDS, topics.EVENTS)}
    assert published[topics.RECORDS] >= 1 and published[topics.EVENTS] >= 1

    flow = client.wait_for_flow(response.json()["flow_id"])
    assert (flow["master"]["status"], flow["child"]["current_phase"]) == ("failed", "validation")
    assert flow["child"]["error_message"] == "required column(s) missing: target"
    assert flow["child"]["phase_state"]["validation"]["code"] == "required_column"
    assert flow["child"]["phase_state"]["validation"]["details"]["missing_columns"] == ["target"]
    assert client.get_import(response.json()["import_id"]).json()["status"] == "uploaded"
    assert traces(database_url, tenant) == {"ingest.data_imports": 1, "ingest.idempotency_keys": 0,
                                            "flow_state.master_flows": 1}
