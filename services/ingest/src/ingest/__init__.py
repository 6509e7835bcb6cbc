"""Tributary ingest service: accepts uploads and publishes them as events."""

from pathlib import Path

SCHEMA = "ingest"
MIGRATIONS = Path(__file__).parent / "migrations"
