"""Headers seen in real performance exports that must map (found by the messy-file e2e tests)."""

from __future__ import annotations

import pytest

from contracts import Category
from validator.field_mapping import map_columns

INFRA = Category.INFRASTRUCTURE


@pytest.mark.parametrize("header", ["Memory Used %", "Memory Used (%)", "Mem Used %", "RAM Used %",
                                    "memory_used_pct", "Memory Used Percent"])
def test_memory_used_percent_is_the_average_memory_utilisation(header: str) -> None:
    # Like "Disk Used %" (disk_avg_pct): without this the column became an extra and an
    # infrastructure import silently lost its memory utilisation.
    mapping = map_columns(INFRA, ["Server", header])
    assert mapping.columns == {"Server": "hostname", header: "memory_avg_pct"}
    assert mapping.extras == ()


@pytest.mark.parametrize("header", ["Memory Used", "Memory Used (GB)", "Memory Used MB"])
def test_memory_used_without_a_percent_sign_stays_an_extra(header: str) -> None:
    # An amount, not a share: mapping it to a percentage column would reject every row.
    assert map_columns(INFRA, [header]).extras == (header,)


def test_disk_used_percent_still_maps() -> None:
    assert map_columns(INFRA, ["Disk Used %"]).columns == {"Disk Used %": "disk_avg_pct"}
