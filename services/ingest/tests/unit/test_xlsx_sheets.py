"""Which sheet of a multi-sheet workbook is imported.

RVTools exports a dozen sheets per workbook; only vInfo is the VM inventory. The sample
workbook from tributary_cli.vendor_samples puts vCPU and vMemory (both per-VM sheets
with a VM column, so plausible but wrong choices) before vInfo.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any, BinaryIO, cast

from ingest.parsers import ParsedFile, open_upload
from openpyxl import Workbook
from tributary_cli.vendor_samples import RVTOOLS_SHEETS, VINFO_HEADER, rvtools_rows, rvtools_xlsx_bytes


def parse(data: bytes, filename: str) -> ParsedFile:
    spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - the parser reads it lazily
    spooled.write(data)
    return open_upload(cast(BinaryIO, spooled), filename)


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, table in sheets.items():
        sheet = book.create_sheet(title)
        for values in table:
            sheet.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_rvtools_workbook_yields_the_vinfo_rows_only() -> None:
    assert RVTOOLS_SHEETS.index("vInfo") > 0  # the sample is only a test if vInfo isn't first
    parsed = parse(rvtools_xlsx_bytes(), "RVTools_export_all_2024-06-03_09.41.17.xlsx")
    assert parsed.file_format == "xlsx"
    assert parsed.header == list(VINFO_HEADER)
    rows = list(parsed.rows)
    expected = rvtools_rows()["vInfo"]
    assert [number for number, _ in rows] == list(range(1, len(expected) + 1))
    assert [record["VM"] for _, record in rows] == [row["VM"] for row in expected]
    first = rows[0][1]
    assert (first["Host"], first["Cluster"], first["CPUs"], first["Memory"]) == (
        "esx01.corp.local", "CL-PROD-01", "2", "4096")
    # a powered-off VM has no guest data: empty cells come through as None
    legacy = next(record for _, record in rows if record["VM"] == "legacy-ftp")
    assert legacy["Primary IP Address"] is None and legacy["OS according to the VMware Tools"] is None
    # nothing from the other sheets leaks in
    assert all(set(record) == set(VINFO_HEADER) for _, record in rows)


def test_vinfo_is_found_by_name_whatever_its_case_position_and_size() -> None:
    data = workbook({
        "vMetaData": [["RVTools version", "Server"], ["4.6.1.1", "vcsa01"]],
        "vCPU": [["VM", "CPUs"], *[[f"vm{i}", 2] for i in range(5)]],
        " VINFO ": [["VM", "Powerstate"], ["vm1", "poweredOn"]],
        "vHost": [["Host", "# Cores"], ["esx01", 64]],
    })
    parsed = parse(data, "export.xlsx")
    assert parsed.header == ["VM", "Powerstate"]
    assert list(parsed.rows) == [(1, {"VM": "vm1", "Powerstate": "poweredOn"})]


def test_an_empty_vinfo_sheet_falls_back_to_the_first_sheet_with_a_header() -> None:
    data = workbook({"vSource": [], "vInfo": [], "vCPU": [["VM", "CPUs"], ["vm1", 2]]})
    parsed = parse(data, "export.xlsx")
    assert parsed.header == ["VM", "CPUs"]
    assert list(parsed.rows) == [(1, {"VM": "vm1", "CPUs": "2"})]
