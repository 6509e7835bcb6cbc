"""API keys: the record every service learns keys from, and how a key is written and hashed.

A key is ``trb_<key id>_<secret>``. Only its SHA-256 travels or is stored; the key itself
is shown once, when created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

PREFIX = "trb"


class ApiKeyRecord(BaseModel):
    """The state of one key on ``access.api-keys.v1`` (the latest record per key id wins)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    client_account_id: uuid.UUID
    engagement_id: uuid.UUID
    key_hash: str
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def matches(key: str, record: ApiKeyRecord) -> bool:
    return hmac.compare_digest(hash_key(key), record.key_hash)
