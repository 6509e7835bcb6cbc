"""Validation of the inventory policy a tenant PUTs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from enricher.api.policy import InventoryPolicyBody
from enricher.policy import InventoryPolicy


def test_empty_body_is_the_default_policy() -> None:
    assert InventoryPolicyBody.model_validate({}).to_policy() == InventoryPolicy()


def test_full_body_and_source_names_normalised() -> None:
    body = InventoryPolicyBody.model_validate({"source_priorities": {" ServiceNow ": 10, "rvtools": -1},
                                               "stale_after_days": 90, "empty_overwrites": True,
                                               "create_placeholders": True})
    assert body.to_policy() == InventoryPolicy(source_priorities={"servicenow": 10, "rvtools": -1},
                                               stale_after_days=90, empty_overwrites=True, create_placeholders=True)


@pytest.mark.parametrize("body", [
    {"stale_after_days": 0},
    {"stale_after_days": -3},
    {"stale_after_days": "30"},
    {"stale_after_days": 1.5},
    {"stale_after_days": 2**31},
    {"empty_overwrites": "yes"},
    {"empty_overwrites": 1},
    {"create_placeholders": None},
    {"source_priorities": {"servicenow": "high"}},
    {"source_priorities": {"servicenow": 1.5}},
    {"source_priorities": {"servicenow": True}},
    {"source_priorities": {" ": 1}},
    {"source_priorities": {"ServiceNow": 1, "servicenow": 2}},
    {"source_priorities": ["servicenow"]},
    {"stale_after_day": 30},
])
def test_bad_bodies_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InventoryPolicyBody.model_validate(body)
