"""SIGTERM lands while the validator, then the enricher, is inside its phase's transaction: each
process rolls the batch back and exits with code 0 within 10 s; once restarted, the import
completes with exact counts and nothing twice.

SIGTERM also lands while ingest checks a large upload (in a thread, which cancelling the
request cannot stop): ingest exits within 10 s, the upload is refused, and nothing of it was
written or published."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import threading
import time

import asyncpg
import httpx
import pytest
from openpyxl import Workbook

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.testing import cmdb_file, phase_held_at, sessions_waiting_on_a_lock
from tributary_cli.processes import ServiceProcess

pytestmark = pytest.mark.e2e

ROWS = 20_000
INVALID_EVERY = 100
# The requirement: a service exits within 10 s of SIGTERM.
EXIT_WITHIN_S = 10.0


def sigterm_and_wait(process: ServiceProcess) -> tuple[int | None, float]:
    """SIGTERM, then wait at most EXIT_WITHIN_S for the exit: (exit code or None, seconds taken)."""
    assert process.process is not None
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    try:
        code = process.process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


async def stop_mid_phase(database_url: str, table: str, process: ServiceProcess) -> tuple[int | None, float, bool]:
    """SIGTERM ``process`` while its phase waits on ``table``; (exit code, seconds, transaction rolled back)."""
    async with phase_held_at(database_url, table, process.name) as admin:
        code, took = await asyncio.to_thread(sigterm_and_wait, process)
        # Its backend is gone or idle, not still inside the transaction holding the phase's work.
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        in_transaction = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"
            " AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')",
            f"tributary-{process.name}")
    return code, took, in_transaction == 0


async def outcome(database_url: str, tenant: Tenant) -> tuple[int, int, int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        assets = await conn.fetchval("SELECT count(*) FROM enricher.assets WHERE client_account_id = $1",
                                     tenant.client_account_id)
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT hostname) FROM enricher.assets WHERE client_account_id = $1",
            tenant.client_account_id)
        issues = await conn.fetchval(
            "SELECT count(*) FROM validator.row_issues i JOIN validator.validation_runs r USING (import_id)"
            " WHERE r.client_account_id = $1", tenant.client_account_id)
        runs = await conn.fetchval("SELECT count(*) FROM enricher.enrichment_runs WHERE client_account_id = $1",
                                   tenant.client_account_id)
        return assets, distinct, issues, runs
    finally:
        await conn.close()


@pytest.mark.timeout(900)
def test_sigterm_mid_phase_exits_cleanly_and_loses_nothing(client: TributaryClient, database_url: str,
                                                           tenant: Tenant,
                                                           pipeline: dict[str, ServiceProcess]) -> None:
    receipt = client.upload_bytes(cmdb_file("sigterm", ROWS, INVALID_EVERY), "sigterm.csv", "cmdb_export")
    assert receipt.status_code == 202, receipt.text

    results = {}
    for name, table in (("validator", "validator.row_issues"), ("enricher", "enricher.assets")):
        process = pipeline[name]
        log_size = (process.log_dir / process.log_name).stat().st_size
        code, took, rolled_back = asyncio.run(stop_mid_phase(database_url, table, process))
        results[name] = (code, round(took, 1))
        print(f"{name}: SIGTERM mid-phase, exit code {code} after {took:.1f}s")
        assert code == 0, f"{name} did not exit with 0 within {EXIT_WITHIN_S}s of SIGTERM (code {code})"
        assert rolled_back, f"{name} left its transaction open"
        said = (process.log_dir / process.log_name).read_bytes()[log_size:].decode(errors="replace")
        assert "abandoning the batch in hand" in said, said[-3000:]
        process.start()
        process.wait_healthy()

    flow = client.wait_for_flow(receipt.json()["flow_id"], timeout=300)
    child = flow["child"]
    assert flow["master"]["status"] == "completed", child["error_message"]
    invalid = ROWS // INVALID_EVERY
    validation, enrichment = child["phase_state"]["validation"], child["phase_state"]["enrichment"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (
        ROWS, ROWS - invalid, invalid)
    assert (enrichment["assets_created"], enrichment["assets_updated"], enrichment["rows_applied"]) == (
        ROWS - invalid, 0, ROWS - invalid)
    assert asyncio.run(outcome(database_url, tenant)) == (ROWS - invalid, ROWS - invalid, invalid, 1)
    events = [e["event_type"] for e in flow["timeline"]]
    assert events.count("ValidationCompleted") == 1 and events.count("EnrichmentCompleted") == 1
    assert "ImportFailed" not in events


# A workbook checked at about 50 µs a row: some 15 s of checking, longer than the exit may take.
LARGE_XLSX_ROWS = 300_000


def large_workbook(rows: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("hosts")
    sheet.append(["hostname", "ip_address", "environment"])
    for i in range(1, rows + 1):
        sheet.append([f"large-{i:06d}.corp.example", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "production"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload_in_background(client: TributaryClient, content: bytes, filename: str, idempotency_key: str
                         ) -> tuple[threading.Thread, list[httpx.Response | Exception]]:
    """A CMDB upload on a thread of its own; its answer (or the error if the connection drops) lands in the list."""
    answer: list[httpx.Response | Exception] = []

    def upload() -> None:
        try:
            answer.append(client.upload_bytes(content, filename, "cmdb_export", idempotency_key=idempotency_key))
        except httpx.HTTPError as exc:
            answer.append(exc)

    uploading = threading.Thread(target=upload)
    uploading.start()
    return uploading, answer


def wait_for_line(process: ServiceProcess, offset: int, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = (process.log_dir / process.log_name).read_bytes()[offset:].decode(errors="replace")
        if text in said:
            return said
        time.sleep(0.05)
    raise TimeoutError(f"{process.name} never logged {text!r}")


@pytest.mark.timeout(600)
def test_sigterm_while_an_upload_is_checked_exits_within_10s_and_publishes_nothing(
        client: TributaryClient, database_url: str, tenant: Tenant, pipeline: dict[str, ServiceProcess]) -> None:
    ingest = pipeline["ingest"]
    workbook = large_workbook(LARGE_XLSX_ROWS)
    log_size = (ingest.log_dir / ingest.log_name).stat().st_size
    uploading, answer = upload_in_background(client, workbook, "large.xlsx", "large-1")
    wait_for_line(ingest, log_size, "checking upload large.xlsx", timeout=120)
    code, took = sigterm_and_wait(ingest)
    uploading.join(timeout=30)
    print(f"ingest: SIGTERM while checking, exit code {code} after {took:.1f}s")
    assert code == 0, f"ingest did not exit with 0 within {EXIT_WITHIN_S}s of SIGTERM (code {code})"
    said = (ingest.log_dir / ingest.log_name).read_bytes()[log_size:].decode(errors="replace")
    assert "upload abandoned while being checked" in said, said[-3000:]
    assert len(answer) == 1
    assert isinstance(answer[0], httpx.Response) and answer[0].status_code == 503, answer[0]

    async def written() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        try:
            receipts = await conn.fetchval("SELECT count(*) FROM ingest.data_imports WHERE client_account_id = $1",
                                           tenant.client_account_id)
            keys = await conn.fetchval("SELECT count(*) FROM ingest.idempotency_keys WHERE client_account_id = $1",
                                       tenant.client_account_id)
            return receipts, keys
        finally:
            await conn.close()

    assert asyncio.run(written()) == (0, 0), "an abandoned upload left a receipt or a bound idempotency key"
    ingest.start()
    ingest.wait_healthy()
    # The restarted ingest takes uploads again, the same idempotency key included.
    receipt = client.upload_bytes(cmdb_file("after-sigterm", 50, 100), "hosts.csv", "cmdb_export",
                                  idempotency_key="large-1")
    assert receipt.status_code == 202, receipt.text
    flow = client.wait_for_flow(receipt.json()["flow_id"], timeout=120)
    assert flow["master"]["status"] == "completed"
    assert flow["child"]["phase_state"]["validation"]["record_count"] == 50


PUBLISHED_ROWS = 100_000


async def receipt_status(database_url: str, tenant: Tenant, filename: str) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT status FROM ingest.data_imports WHERE client_account_id = $1"
                                   " AND filename = $2", tenant.client_account_id, filename)
    finally:
        await conn.close()


async def sigterm_before_receipt_is_marked(database_url: str, tenant: Tenant, process: ServiceProcess
                                           ) -> tuple[int | None, float]:
    """Once the upload is publishing, hold its receipt's final update; SIGTERM while it waits there."""
    deadline = time.monotonic() + 120
    while await receipt_status(database_url, tenant, "published.csv") != "receiving":
        assert time.monotonic() < deadline, "the upload never started publishing"
        await asyncio.sleep(0.02)
    admin = await asyncpg.connect(database_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE ingest.data_imports IN EXCLUSIVE MODE")
            while not await sessions_waiting_on_a_lock(admin, "tributary-ingest"):
                assert time.monotonic() < deadline, "the upload never reached its receipt's final update"
                await asyncio.sleep(0.02)
            return await asyncio.to_thread(sigterm_and_wait, process)
    finally:
        await admin.close()


@pytest.mark.timeout(900)
def test_sigterm_while_an_upload_is_published_exits_within_10s_and_the_retry_completes_it_exactly(
        client: TributaryClient, database_url: str, tenant: Tenant, pipeline: dict[str, ServiceProcess]) -> None:
    # The signal lands after every batch is out but before the receipt says so: the request
    # outlives its 3 s and is abandoned, the client is not told the upload was accepted. The
    # retry with the idempotency key publishes it again under the same ids: every batch out
    # twice, each counted once.
    ingest = pipeline["ingest"]
    content = cmdb_file("published", PUBLISHED_ROWS, INVALID_EVERY)
    uploading, answer = upload_in_background(client, content, "published.csv", "pub-1")
    code, took = asyncio.run(sigterm_before_receipt_is_marked(database_url, tenant, ingest))
    uploading.join(timeout=30)
    print(f"ingest: SIGTERM while publishing, exit code {code} after {took:.1f}s; answer {answer[0]!r}")
    assert code == 0, f"ingest did not exit with 0 within {EXIT_WITHIN_S}s of SIGTERM (code {code})"
    assert len(answer) == 1
    assert isinstance(answer[0], httpx.Response) and answer[0].status_code == 503, answer[0]
    assert answer[0].json()["detail"]["code"] == "shutting_down"
    assert asyncio.run(receipt_status(database_url, tenant, "published.csv")) == "receiving"
    ingest.start()
    ingest.wait_healthy()

    retried = client.upload_bytes(content, "published.csv", "cmdb_export", idempotency_key="pub-1")
    assert retried.status_code == 202, retried.text
    flow = client.wait_for_flow(retried.json()["flow_id"], timeout=600)
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    invalid = PUBLISHED_ROWS // INVALID_EVERY
    validation, enrichment = flow["child"]["phase_state"]["validation"], flow["child"]["phase_state"]["enrichment"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (
        PUBLISHED_ROWS, PUBLISHED_ROWS - invalid, invalid)
    assert (enrichment["assets_created"], enrichment["rows_applied"]) == (PUBLISHED_ROWS - invalid,
                                                                          PUBLISHED_ROWS - invalid)
    assert asyncio.run(outcome(database_url, tenant)) == (PUBLISHED_ROWS - invalid, PUBLISHED_ROWS - invalid,
                                                          invalid, 1)
    assert asyncio.run(receipt_status(database_url, tenant, "published.csv")) == "uploaded"
    events = [e["event_type"] for e in flow["timeline"]]
    assert events.count("ValidationCompleted") == 1 and events.count("EnrichmentCompleted") == 1
