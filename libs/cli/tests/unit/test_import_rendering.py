"""What ``tributary import`` prints, from fake flow-API answers (no services): phase lines,
summary table, findings table, failure, and the command's use of them end to end."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from contracts import Tenant
from tributary_cli import import_command
from tributary_cli import import_view as view
from tributary_cli.client import TributaryClient
from tributary_cli.connection import Connection
from tributary_cli.errors import CliError

IMPORT_ID, FLOW_ID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def flow(status: str = "running", child_status: str | None = None, completed_at: str | None = None,
         **phase_state: dict[str, Any]) -> dict[str, Any]:
    return {"master": {"status": status, "current_phase": "validation", "created_at": "2025-01-01T10:00:00+00:00",
                       "completed_at": completed_at},
            "child": {"status": child_status or status, "phase_state": phase_state, "error_message": None},
            "steps": [], "timeline": []}


UPLOADED = {"status": "completed", "record_count": 12}
VALIDATING = {"status": "running", "rows_done": 5, "rows_total": 12}
VALIDATED = {"status": "completed", "record_count": 12, "valid_count": 9, "invalid_count": 3, "error_count": 3,
             "warning_count": 1, "verdict": "completed_with_errors", "validate_only": False}
ENRICHED = {"status": "completed", "rows_applied": 9, "assets_created": 7, "assets_updated": 1,
            "assets_unchanged": 1, "dependencies_created": 2, "dependencies_updated": 1,
            "dependencies_unchanged": 0, "parked_edges": 1}
DONE = flow("completed", "completed_with_errors", "2025-01-01T10:01:05.400000+00:00", upload=UPLOADED,
            validation=VALIDATED, enrichment=ENRICHED, complete={"status": "completed"})


def issue(row: int | None, column: str | None, rule: str = "invalid_ip_address", severity: str = "error",
          message: str = "not an IP address") -> dict[str, Any]:
    return {"row_number": row, "column": column, "rule_id": rule, "agent": "format", "severity": severity,
            "message": message, "value": None}


def rendered(*renderables: Any) -> list[str]:
    console = Console(file=io.StringIO(), width=1000)
    for r in renderables:
        console.print(r)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# ------------------------------------------------------------------------------------ phases and lines


def test_phases_read_each_phase_from_the_flow() -> None:
    assert view.phases(flow(upload=UPLOADED, validation=VALIDATING)) == [
        view.PhaseView("upload", "completed", 12, 12, "12 rows"),
        view.PhaseView("validation", "running", 5, 12, ""),
        view.PhaseView("enrichment", "pending"),
    ]
    assert view.phases(DONE)[2] == view.PhaseView(
        "enrichment", "completed", 9, 9, "assets 7 created, 1 updated, 1 unchanged; 3 dependencies, 1 parked")


def test_a_validate_only_import_skips_enrichment() -> None:
    only = flow("completed", upload=UPLOADED, validation=VALIDATED | {"validate_only": True})
    assert view.phases(only)[2] == view.PhaseView("enrichment", "skipped")
    assert view.PhaseLog().update(view.phases(only))[-1] == "enrichment: skipped"


EXPECTED_LINES = [
    "upload: started (hosts.csv, 100 bytes, cmdb_export)",
    "upload: completed (12 rows)",
    "validation: started",
    "validation: completed (9 valid, 3 invalid, 3 errors, 1 warnings)",
    "enrichment: started",
    "enrichment: completed (assets 7 created, 1 updated, 1 unchanged; 3 dependencies, 1 parked)",
]


@pytest.mark.parametrize("seen", [
    pytest.param([flow(upload=UPLOADED, validation=VALIDATING), flow(upload=UPLOADED, validation=VALIDATING),
                  flow(upload=UPLOADED, validation=VALIDATED, enrichment={"status": "running"}), DONE],
                 id="every-state-seen"),
    pytest.param([DONE], id="only-the-end-seen"),
])
def test_the_line_log_is_the_same_however_often_it_polled(seen: list[dict[str, Any]]) -> None:
    # Polling sees more or fewer states depending on timing; the log must not.
    log = view.PhaseLog()
    lines = log.start("upload", "hosts.csv, 100 bytes, cmdb_export")
    for f in seen:
        lines += log.update(view.phases(f))
    assert lines == EXPECTED_LINES


def test_a_pause_and_resume_are_logged() -> None:
    log = view.PhaseLog()
    paused = flow("paused", upload=UPLOADED, validation={"status": "paused"})
    running = flow(upload=UPLOADED, validation=VALIDATING)
    assert [line for f in (paused, paused, running) for line in log.update(view.phases(f))] == [
        "upload: started", "upload: completed (12 rows)", "validation: started", "validation: paused",
        "validation: running"]


def test_a_failed_phase_is_logged_with_its_code_and_reason() -> None:
    failed = flow("failed", upload=UPLOADED, validation={"status": "failed", "code": "error_threshold",
                                                         "reason": "40% of rows have errors, over the 10% allowed"})
    assert view.PhaseLog().update(view.phases(failed))[-1] == (
        "validation: failed (error_threshold: 40% of rows have errors, over the 10% allowed)")
    assert view.failure(failed) == ("validation", "40% of rows have errors, over the 10% allowed (error_threshold)")
    assert view.failure(DONE) is None


# ------------------------------------------------------------------------------------ tables


def test_summary_table() -> None:
    lines = rendered(view.summary_table(view.summary(DONE)))
    assert lines[0] == "Summary"
    rows = [cells(line) for line in lines[2:] if line.strip()]
    assert rows == [["status", "completed (completed_with_errors)"], ["rows", "12"], ["valid", "9"],
                    ["invalid", "3"], ["assets created", "7"], ["assets updated", "1"], ["assets unchanged", "1"],
                    ["dependencies", "3"], ["parked dependencies", "1"], ["duration", "1 min 5 s"]]


def test_summary_of_a_flow_that_failed_in_validation_shows_dashes_for_what_did_not_run() -> None:
    failed = flow("failed", completed_at="2025-01-01T10:00:02.340000+00:00", upload=UPLOADED,
                  validation={"status": "failed"})
    numbers = view.summary(failed)
    assert numbers == {"status": "failed", "verdict": "failed", "rows": 12, "valid": None, "invalid": None,
                       "assets_created": None, "assets_updated": None, "assets_unchanged": None,
                       "dependencies": None, "parked": None, "duration_seconds": 2.34}
    rows = dict(cells(line) for line in rendered(view.summary_table(numbers))[2:] if line.strip())
    assert rows["valid"] == "-" and rows["assets created"] == "-" and rows["duration"] == "2.3 s"
    assert rows["status"] == "failed"


def test_findings_table_says_how_many_are_not_shown() -> None:
    page = {"items": [issue(None, None, "missing_required_column", message="no hostname column"),
                      issue(3, "ip_address")], "total": 25}
    lines = rendered(view.findings_table(page))
    assert lines[0] == "Findings (first 2 of 25)"
    assert cells(lines[2]) == ["row", "column", "rule", "severity", "message"]
    assert [cells(line) for line in lines[4:] if line.strip()] == [
        ["-", "-", "missing_required_column", "error", "no hostname column"],
        ["3", "ip_address", "invalid_ip_address", "error", "not an IP address"]]
    assert rendered(view.findings_table({"items": [issue(3, "ip_address")], "total": 1}))[0] == "Findings (1)"


# ------------------------------------------------------------------------------------ the command, with fakes


class FakeClient(TributaryClient):
    """Answers like the services would, one flow state per poll."""

    def __init__(self, flows: list[httpx.Response], upload: httpx.Response, issues: dict[str, Any]) -> None:
        super().__init__("http://ingest", "http://flow", Tenant(client_account_id=uuid.uuid4(),
                                                                  engagement_id=uuid.uuid4()),
                         validator_url="http://validator", api_key="k")
        self.flows, self.upload_answer, self.issues = iter(flows), upload, issues
        self.uploaded: dict[str, Any] = {}
        self.issue_params: dict[str, Any] = {}

    def upload(self, path: Path, category: str, **kw: Any) -> httpx.Response:
        self.uploaded = {"path": path, "category": category, **kw}
        return self.upload_answer

    def get_flow(self, flow_id: uuid.UUID | str) -> httpx.Response:
        return next(self.flows)

    def list_issues(self, import_id: uuid.UUID | str, **params: Any) -> httpx.Response:
        self.issue_params = params
        return httpx.Response(200, json=self.issues)


RECEIPT = httpx.Response(202, json={"import_id": IMPORT_ID, "flow_id": FLOW_ID, "record_count": 12})


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_command, "POLL_SECONDS", 0)


@pytest.fixture
def csv_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hosts.csv"
    path.write_bytes(b"x" * 100)
    yield path


def run(client: FakeClient, path: Path, **kw: Any) -> list[str]:
    out = Console(file=io.StringIO(), width=1000)
    options = {"validate_only": False, "source_system": None, "idempotency_key": None, "wait": True,
               "as_json": False, "timeout": 60.0} | kw
    import_command.run_import(Connection(client), out, path, "cmdb_export", **options)
    return [line.rstrip() for line in out.file.getvalue().splitlines()]  # type: ignore[attr-defined]


def test_import_prints_phase_lines_then_summary_then_findings(csv_file: Path) -> None:
    client = FakeClient([httpx.Response(404, json={"detail": "flow not found"}),
                         httpx.Response(200, json=flow(upload=UPLOADED, validation=VALIDATING)),
                         httpx.Response(200, json=DONE)],
                        RECEIPT, {"items": [issue(3, "ip_address")], "total": 1})
    lines = run(client, csv_file, source_system="servicenow", idempotency_key="nightly")
    assert client.uploaded == {"path": csv_file, "category": "cmdb_export", "idempotency_key": "nightly",
                               "validate_only": False, "source_system": "servicenow"}
    assert client.issue_params == {"page": 1, "page_size": 10}
    assert lines[:7] == [*EXPECTED_LINES, f"import {IMPORT_ID}  flow {FLOW_ID}"]
    assert lines[7] == "Summary"
    assert cells([line for line in lines if line][-1]) == ["3", "ip_address", "invalid_ip_address", "error", "not an IP address"]


def test_a_failed_import_prints_the_summary_then_fails_with_the_reason(csv_file: Path) -> None:
    failed = flow("failed", upload=UPLOADED, validation={"status": "failed", "code": "error_threshold",
                                                         "reason": "too many errors"})
    client = FakeClient([httpx.Response(200, json=failed)], RECEIPT, {"items": [], "total": 0})
    with pytest.raises(CliError) as raised:
        run(client, csv_file)
    assert raised.value.exit_code == 1
    assert raised.value.message == "The import failed in validation: too many errors (error_threshold)"
    assert raised.value.hint == (f"fix the cause, then `tributary flows retry {FLOW_ID}`, or upload a corrected "
                                 "file")


def test_no_wait_prints_the_ids_only(csv_file: Path) -> None:
    client = FakeClient([], RECEIPT, {})
    assert run(client, csv_file, wait=False)[1:] == [
        f"import {IMPORT_ID} submitted, flow {FLOW_ID}", f"follow it with `tributary flows show {FLOW_ID}`"]


def test_json_prints_one_object_and_no_phase_lines(csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    client = FakeClient([httpx.Response(200, json=DONE)], RECEIPT, {"items": [issue(3, "ip_address")], "total": 1})
    assert run(client, csv_file, as_json=True) == []
    body = json.loads(capsys.readouterr().out)
    assert body == {"import_id": IMPORT_ID, "flow_id": FLOW_ID, "status": "completed",
                    "verdict": "completed_with_errors", "rows": 12, "valid": 9, "invalid": 3, "assets_created": 7,
                    "assets_updated": 1, "assets_unchanged": 1, "dependencies": 3, "parked": 1,
                    "duration_seconds": 65.4, "failed": None,
                    "findings": {"total": 1, "items": [issue(3, "ip_address")]}}


def test_a_rejected_upload_shows_the_server_s_code_message_row_and_column(csv_file: Path) -> None:
    rejected = httpx.Response(422, json={"detail": {"code": "duplicate_column", "message": "The header contains "
                                                    "the column 'IP' more than once (also as 'ip').", "row": None,
                                                    "column": "IP"}})
    with pytest.raises(CliError) as raised:
        run(FakeClient([], rejected, {}), csv_file)
    assert raised.value.exit_code == 1
    assert raised.value.lines() == [
        "The upload was rejected (duplicate_column, column IP): The header contains the column 'IP' more than once "
        "(also as 'ip').", "hint: fix the file and upload it again; nothing was imported"]


def test_on_a_terminal_the_phases_are_bars_not_lines(csv_file: Path) -> None:
    client = FakeClient([httpx.Response(200, json=flow(upload=UPLOADED, validation=VALIDATING)),
                         httpx.Response(200, json=DONE)], RECEIPT, {"items": [], "total": 0})
    out = Console(file=io.StringIO(), force_terminal=True, width=200)
    import_command.run_import(Connection(client), out, csv_file, "cmdb_export", validate_only=False,
                              source_system=None, idempotency_key=None, wait=True, as_json=False, timeout=60.0)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "validation: started" not in text  # no log lines: the bars show it
    assert "12/12" in text and "9/9" in text  # each phase's bar, full at the end
    assert "Summary" in text
