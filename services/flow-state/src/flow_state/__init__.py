"""Tributary flow-state service: master and child flows projected from the event log."""

from pathlib import Path

SCHEMA = "flow_state"
MIGRATIONS = Path(__file__).parent / "migrations"
