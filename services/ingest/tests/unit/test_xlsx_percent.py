import io

from openpyxl import Workbook

from ingest.parsers.xlsx_file import open_xlsx


def test_percent_formatted_numbers_come_out_as_shown() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["hostname", "cpu_avg_pct", "cpu_peak_pct", "cores"])
    sheet.append(["web-01", 0.45, 0.9125, 4])
    sheet["B2"].number_format = "0%"
    sheet["C2"].number_format = "0.00%"
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    header, rows = open_xlsx(buffer)
    assert header == ["hostname", "cpu_avg_pct", "cpu_peak_pct", "cores"]
    assert [record for _, record in rows] == [
        {"hostname": "web-01", "cpu_avg_pct": "45%", "cpu_peak_pct": "91.25%", "cores": "4"}]
