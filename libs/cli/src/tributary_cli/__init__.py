"""Tributary command line tools."""
