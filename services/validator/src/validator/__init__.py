"""Tributary validator service: validation agents per import category."""

from pathlib import Path

SCHEMA = "validator"
MIGRATIONS = Path(__file__).parent / "migrations"
