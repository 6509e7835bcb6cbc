from datetime import UTC, datetime

import pytest

from contracts import Category
from validator.rules import Finding, RowChecker, checker_for, mask

REFERENCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Brief = tuple[int | None, str | None, str, str, str | None]


def new() -> RowChecker:
    return checker_for(Category.SENSITIVE_DATA, reference_time=REFERENCE)


def brief(findings: list[Finding]) -> list[Brief]:
    return [(f.row_number, f.column, f.rule_id, f.severity, f.value) for f in findings]


def test_a_valid_row_is_normalised() -> None:
    out, findings = new().check(4, {
        "hostname": " DB01.Corp ", "data_store": "payroll", "classification": "public; Personal Data | PII / PCI",
        "regulation": "sarbanes-oxley, GDPR, PCI DSS", "data_owner": "HR", "record_count": "1,234,567",
        "retention": "7y",
    })
    assert findings == []
    assert out == {"hostname": "db01.corp", "data_store": "payroll", "classification": "PII,PCI,public",
                   "regulation": "GDPR,PCI-DSS,SOX", "data_owner": "HR", "record_count": "1234567",
                   "retention": "7y"}


def test_hostname_and_classification_are_required() -> None:
    out, findings = new().check(4, {"hostname": "", "classification": None, "regulation": " "})
    assert brief(findings) == [(4, "hostname", "required_value", "error", None),
                               (4, "classification", "required_value", "error", None)]
    assert out["regulation"] is None


def test_a_classification_of_separators_only_is_missing() -> None:
    _, findings = new().check(4, {"hostname": "h", "classification": " , ; "})
    assert brief(findings) == [(4, "classification", "required_value", "error", mask(", ;"))]


def test_an_unknown_classification_is_an_error_with_the_value_masked_everywhere() -> None:
    out, findings = new().check(4, {"hostname": "h", "classification": "PII, Top-Secret-Project-X"})
    assert brief(findings) == [(4, "classification", "unknown_classification", "error", "P******* (25 chars)")]
    assert findings[0].message == ("classification has 1 value not recognised: expected PII, PCI, PHI, confidential, "
                                   "internal, public (several may be given, separated by , ; / or |)")
    assert out["classification"] == "PII, Top-Secret-Project-X"


def test_an_unknown_regulation_is_a_warning_and_the_cell_is_kept_as_given() -> None:
    out, findings = new().check(4, {"hostname": "h", "classification": "PHI", "regulation": "HIPAA; Acme Policy 7; x"})
    assert brief(findings) == [(4, "regulation", "unknown_regulation", "warning", mask("HIPAA; Acme Policy 7; x"))]
    assert "2 values not recognised" in findings[0].message
    assert (out["classification"], out["regulation"]) == ("PHI", "HIPAA; Acme Policy 7; x")


@pytest.mark.parametrize("count", ["-5", "1.5", "12,34", "many", "1 234"])
def test_a_record_count_that_is_not_a_whole_non_negative_number_is_an_error(count: str) -> None:
    out, findings = new().check(4, {"hostname": "h", "classification": "internal", "record_count": count})
    assert brief(findings) == [(4, "record_count", "invalid_number", "error", mask(count))]
    assert out["record_count"] == count


def test_no_finding_of_this_category_carries_or_quotes_a_raw_value() -> None:
    secret = "Patient-Names-Of-Ward-9"
    checker = new()
    found: list[Finding] = []
    for number, row in enumerate([
        {"hostname": "h", "classification": secret, "regulation": secret, "record_count": secret},
        {"hostname": "h", "classification": f"PII/{secret}", "regulation": f"GDPR|{secret}"},
    ], start=2):
        found += checker.check(number, row)[1]
    found += checker.finish()
    assert [f.rule_id for f in found] == ["invalid_number", "unknown_classification", "unknown_regulation",
                                          "unknown_classification", "unknown_regulation"]
    for f in found:
        assert f.value is not None and secret not in f.value and "Patient" not in f.value
        assert secret not in f.message and "Patient" not in f.message
    assert found[0].value == "P******* (23 chars)"
