"""``tributary import`` run as a user runs it: the installed command in a subprocess, against the
four services, the real broker and database. Its output is not a terminal, so it prints one
line per phase change instead of bars; every line is asserted exactly (except the duration's
value, which is the flow's own timing).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

# The first test of a session also waits for the session's stack (migrations, four services), which
# takes minutes on a loaded machine; the default 300 s covers the test, not that.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TRIBUTARY = str(Path(sys.executable).parent / "tributary")
HEADER = "hostname,ip_address,asset_type,environment"
ROWS, INVALID = 12, (3, 7, 11)  # rows whose address is no address


def cmdb_csv(prefix: str) -> str:
    lines = [HEADER]
    for i in range(1, ROWS + 1):
        ip = f"10.0.0.{300 + i}" if i in INVALID else f"10.8.0.{i}"
        lines.append(f"{prefix}-{i:02d},{ip},server,production")
    return "\n".join(lines) + "\n"


def tributary(pipeline: dict[str, ServiceProcess], api_key: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The URLs and key come from the environment, as on an operator's machine; stdout is a pipe.
    env = os.environ | {"TRIBUTARY_INGEST_URL": pipeline["ingest"].url,
                        "TRIBUTARY_VALIDATOR_URL": pipeline["validator"].url,
                        "TRIBUTARY_ENRICHER_URL": pipeline["enricher"].url,
                        "TRIBUTARY_FLOW_URL": pipeline["flow-state"].url, "TRIBUTARY_API_KEY": api_key}
    env.pop("TRIBUTARY_DEBUG", None)
    done = subprocess.run([TRIBUTARY, *args], env=env, capture_output=True, text=True, timeout=240)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def cells(line: str) -> list[str]:
    """The cells of a row of a borderless rich table (separated by two spaces or more)."""
    return re.split(r"\s{2,}", line.strip())


def summary_rows(lines: list[str]) -> dict[str, str]:
    start = lines.index("Summary") + 1
    rows = [cells(line) for line in lines[start:] if line.strip()]
    summary = {}
    for row in rows:
        if len(row) != 2:
            break
        summary[row[0]] = row[1]
    return summary


def findings_rows(lines: list[str]) -> list[list[str]]:
    start = next(i for i, line in enumerate(lines) if line.startswith("Findings"))
    # title, blank line, header, rule; then one line per finding until the blank line that closes the table
    body = lines[start + 4:]
    return [cells(line) for line in body[:next((i for i, line in enumerate(body) if not line.strip()), len(body))]]


def bad_ip(row: int) -> list[str]:
    return [str(row), "ip_address", "invalid_ip_address", "error",
            f"ip_address '10.0.0.{300 + row}' is not an IP address: expected IPv4 (10.0.0.5, no leading zeros) "
            "or IPv6 (2001:db8::5)"]


def test_import_prints_phases_summary_and_findings(client: TributaryClient, pipeline: dict[str, ServiceProcess],
                                                   tmp_path: Path) -> None:
    path = tmp_path / "cmdb.csv"
    path.write_text(cmdb_csv("cli-imp"))
    done = tributary(pipeline, client.api_key or "", "import", str(path), "--category", "cmdb_export")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    size = path.stat().st_size
    assert lines[:6] == [
        f"upload: started (cmdb.csv, {size} bytes, cmdb_export)",
        "upload: completed (12 rows)",
        "validation: started",
        "validation: completed (9 valid, 3 invalid, 3 errors, 0 warnings)",
        "enrichment: started",
        "enrichment: completed (assets 9 created, 0 updated, 0 unchanged; 0 dependencies, 0 parked)",
    ]
    _, import_id, _, flow_id = lines[6].split()
    assert client.get_import(import_id).json()["flow_id"] == flow_id
    summary = summary_rows(lines)
    assert re.fullmatch(r"\d+\.\d s|\d+ min \d+ s", summary.pop("duration")), lines
    assert summary == {"status": "completed (completed_with_errors)", "rows": "12", "valid": "9", "invalid": "3",
                       "assets created": "9", "assets updated": "0", "assets unchanged": "0", "dependencies": "0",
                       "parked dependencies": "0"}
    assert [line for line in lines if line.startswith("Findings")] == ["Findings (3)"]
    assert findings_rows(lines) == [bad_ip(row) for row in INVALID]

    # The inventory it made, through `assets list` and `assets show`.
    done = tributary(pipeline, client.api_key or "", "assets", "list", "--import-id", import_id)
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    valid = [i for i in range(1, ROWS + 1) if i not in INVALID]
    assert lines[0] == "9 asset(s)"
    assert cells(lines[2]) == ["asset", "name", "type", "environment", "criticality", "ip address", "flags"]
    listed = [cells(line) for line in lines[4:] if line]
    assert [row[1:] for row in listed] == [[f"cli-imp-{i:02d}", "server", "production", "-", f"10.8.0.{i}"]
                                           for i in valid]
    ids = {row[1]: row[0] for row in listed}
    assert set(ids.values()) == {a["asset_id"] for a in client.list_assets(import_id=import_id).json()["items"]}

    # The same hosts again, the first two moved to staging: --json prints one object and nothing else.
    path.write_text(cmdb_csv("cli-imp").replace("production", "staging", 2))
    done = tributary(pipeline, client.api_key or "", "import", str(path), "--category", "cmdb_export", "--json")
    assert (done.returncode, done.stderr, len(done.stdout.splitlines())) == (0, "", 1), done.stdout + done.stderr
    second = json.loads(done.stdout)
    assert isinstance(second.pop("duration_seconds"), float)
    second_import = second.pop("import_id")
    assert client.get_import(second_import).json()["flow_id"] == second.pop("flow_id")
    assert second == {"status": "completed", "verdict": "completed_with_errors", "rows": 12, "valid": 9,
                      "invalid": 3, "assets_created": 0, "assets_updated": 2, "assets_unchanged": 7,
                      "dependencies": 0, "parked": 0, "failed": None,
                      "findings": {"total": 3, "items": [
                          {"row_number": row, "column": "ip_address", "rule_id": "invalid_ip_address",
                           "agent": "format", "severity": "error", "message": bad_ip(row)[4],
                           "value": f"10.0.0.{300 + row}"} for row in INVALID]}}

    # One moved host: each value with the import that last asserted it (the second one re-asserted them all).
    done = tributary(pipeline, client.api_key or "", "assets", "show", ids["cli-imp-01"])
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    assert lines[0] == f"asset {ids['cli-imp-01']}"
    values = [cells(line) for line in lines[4:lines.index("depends on (0)")] if line]
    assert [row[:4] for row in values] == [
        ["name", "cli-imp-01", "-", "-"],
        ["asset_type", "server", second_import, "upload"], ["hostname", "cli-imp-01", second_import, "upload"],
        ["ip_address", "10.8.0.1", second_import, "upload"], ["environment", "staging", second_import, "upload"]]
    assert "depended on by (0)" in lines


def test_a_rejected_file_exits_1_with_the_server_s_reason(client: TributaryClient,
                                                          pipeline: dict[str, ServiceProcess],
                                                          tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(f"{HEADER}\nweb-1,10.8.0.1,server,production\nweb-2,10.8.0.2,server,production,extra\n")
    done = tributary(pipeline, client.api_key or "", "import", str(path), "--category", "cmdb_export")
    assert done.returncode == 1
    assert done.stdout == f"upload: started (ragged.csv, {path.stat().st_size} bytes, cmdb_export)\n"
    # The ingest's own code, message and row (the second data row), then what to do.
    assert done.stderr.splitlines() == [
        "The upload was rejected (row_width, row 2): Row 2 has 5 cells but the header has only 4 columns.",
        "hint: fix the file and upload it again; nothing was imported"]
    assert client.list_flows().json()["total"] == 0


def test_a_wrong_key_is_one_sentence_and_a_hint(pipeline: dict[str, ServiceProcess], tmp_path: Path) -> None:
    path = tmp_path / "cmdb.csv"
    path.write_text(cmdb_csv("cli-key"))
    done = tributary(pipeline, "trb_nope_" + "x" * 43, "import", str(path), "--category", "cmdb_export")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Not allowed: the API key is not valid (unknown, revoked or mistyped).",
        "hint: create a key with `tributary keys create` and set TRIBUTARY_API_KEY or --api-key"]
