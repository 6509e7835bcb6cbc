"""The rule engine: per-category validation agents that check, normalise and report on rows.

``checker_for`` gives a fresh, stateful checker for one import; ``RULES`` and
``AGENTS`` list every rule id and agent of each category (the registry that findings,
reports and ``rules_applied`` refer to). Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts import Category

from . import app_discovery, cmdb, infrastructure, sensitive_data
from .app_discovery import AppDiscoveryChecker
from .cmdb import CmdbChecker
from .infrastructure import InfrastructureChecker
from .model import Finding, Rule, RowChecker, mask
from .sensitive_data import SensitiveDataChecker

__all__ = ["AGENTS", "RULES", "Finding", "Rule", "RowChecker", "checker_for", "mask"]

RULES: dict[Category, tuple[Rule, ...]] = {
    Category.CMDB_EXPORT: cmdb.RULES,
    Category.APP_DISCOVERY: app_discovery.RULES,
    Category.INFRASTRUCTURE: infrastructure.RULES,
    Category.SENSITIVE_DATA: sensitive_data.RULES,
}

AGENTS: dict[Category, tuple[str, ...]] = {
    Category.CMDB_EXPORT: cmdb.AGENTS,
    Category.APP_DISCOVERY: app_discovery.AGENTS,
    Category.INFRASTRUCTURE: infrastructure.AGENTS,
    Category.SENSITIVE_DATA: sensitive_data.AGENTS,
}


def checker_for(category: Category, *, reference_time: datetime,
                units: Mapping[str, str] | None = None) -> RowChecker:
    """A new checker for one import of ``category``.

    ``reference_time`` bounds timestamps from above (the import's upload time, say);
    ``units`` gives the unit of bare numbers per column, e.g. ``{"memory_gb": "MB"}``.
    An unknown unit name raises ValueError.
    """
    category = Category(category)
    if category is Category.CMDB_EXPORT:
        return CmdbChecker(units)
    if category is Category.APP_DISCOVERY:
        return AppDiscoveryChecker()
    if category is Category.INFRASTRUCTURE:
        return InfrastructureChecker(reference_time=reference_time, units=units)
    return SensitiveDataChecker()
