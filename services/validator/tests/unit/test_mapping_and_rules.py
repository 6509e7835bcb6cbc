from contracts import Category
from validator.field_mapping import map_header, missing_required, normalise
from validator.rules import findings_for


def test_headers_map_case_space_and_punctuation_insensitively() -> None:
    mapping = map_header(Category.CMDB_EXPORT, ["Host Name", "IP-Address", "serial_no", "Rack Unit"])
    assert mapping == {"Host Name": "hostname", "IP-Address": "ip_address", "serial_no": "serial_number",
                       "Rack Unit": "rack_unit"}
    assert normalise("  Server__Name ") == "server_name"


def test_missing_required_columns_are_named() -> None:
    assert missing_required(Category.APP_DISCOVERY, map_header(Category.APP_DISCOVERY, ["From", "Port"])) == [
        "target"]
    assert missing_required(Category.SENSITIVE_DATA, {"h": "hostname", "c": "classification"}) == []


def test_an_empty_required_value_is_an_error_with_row_and_column() -> None:
    findings = findings_for(Category.SENSITIVE_DATA, 7, {"hostname": "db-1", "classification": "  "})
    assert [(f.row_number, f.column, f.rule_id, f.severity) for f in findings] == [
        (7, "classification", "required_value", "error")]
    assert findings_for(Category.SENSITIVE_DATA, 8, {"hostname": "db-1", "classification": "PII"}) == []
