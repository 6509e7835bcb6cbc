"""Settings every service shares, read from the environment (pydantic-settings).

``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` keep their conventional names; every
other variable is ``TRIBUTARY_<FIELD>``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", extra="ignore")

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/tributary",
        validation_alias=AliasChoices("DATABASE_URL", "TRIBUTARY_DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS"),
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    # One JSON object per line (docs/observability.md); "text" for reading in a terminal.
    log_format: Literal["json", "text"] = "json"
    # On SIGTERM, how long the batch in hand may take to finish before it is abandoned (rolled
    # back, to be redone after the restart). With the bounded closing steps after it, a process
    # exits within 10 s of the signal.
    shutdown_grace_s: float = 3.0
    # Partitions of each topic when this service creates it; cross-import parallelism.
    topic_partitions: int = 6
    # Consumer tuning: latency first (a few ms of fetch wait, not the 500 ms default).
    fetch_max_wait_ms: int = 5
    max_poll_records: int = 500
    # A message whose handler keeps failing goes to the DLQ after this many attempts.
    handler_max_attempts: int = 3
    handler_retry_backoff_s: float = 0.2
    db_pool_size: int = 5
    # Development only: accept X-Client-Account-Id/X-Engagement-Id without an API key.
    allow_tenant_headers: bool = False

    @property
    def asyncpg_dsn(self) -> str:
        return plain_dsn(self.database_url)

    @property
    def migration_url(self) -> str:
        return "postgresql+psycopg://" + self.asyncpg_dsn.split("://", 1)[1]


def plain_dsn(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url
