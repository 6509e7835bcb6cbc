"""Tributary enricher service: the per-tenant asset inventory."""

from pathlib import Path

SCHEMA = "enricher"
MIGRATIONS = Path(__file__).parent / "migrations"
