"""Shared plumbing for Tributary services. Services import this, never each other."""
