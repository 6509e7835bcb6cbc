from pathlib import Path

from validator.rule_catalog import render

DOCS = Path(__file__).resolve().parents[4] / "docs" / "validation-rules.md"


def test_the_committed_rule_catalogue_is_current() -> None:
    assert DOCS.read_text() == render(), "run `make docs` and commit docs/validation-rules.md"
