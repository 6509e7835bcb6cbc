"""Tributary benchmark harness: ``make bench`` / ``python -m bench`` (see docs/performance.md)."""
