"""Settings every service shares, read from the environment (pydantic-settings).

``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` keep their conventional names; every
other variable is ``TRIBUTARY_<FIELD>``.

The ``kafka_*`` connection-security fields are turned into client options by
``tributary_runtime.broker.kafka_client_options``, which every Kafka client uses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
# What aiokafka authenticates with from a user name and password alone. OAUTHBEARER needs a
# token-provider object (code per identity provider), GSSAPI a Kerberos setup; AWS_MSK_IAM is
# not implemented by aiokafka at all.
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


class ServiceSettings(BaseSettings):
    # hide_input_in_errors: a rejected combination must not print the SASL password it was given.
    model_config = SettingsConfigDict(env_prefix="TRIBUTARY_", extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/tributary",
        validation_alias=AliasChoices("DATABASE_URL", "TRIBUTARY_DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS"),
    )
    # Connection security of every Kafka client (docs/deployment.md#brokers).
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # TLS: CA bundle (PEM) to verify the brokers with; unset, the system's trusted CAs.
    kafka_ssl_cafile: str | None = None
    # TLS client authentication (mutual TLS): certificate and unencrypted private key (PEM). The
    # key may also be in the certificate file.
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    # Whether the broker's certificate must name the host connected to. The certificate is
    # verified against the CAs either way.
    kafka_ssl_check_hostname: bool = True
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
    # Replicas of each topic when this service creates it: 1 for a one-broker development
    # setup; 3 on a production cluster.
    topic_replication_factor: int = Field(default=1, ge=1)
    # min.insync.replicas of each topic this service creates; unset, the broker's default.
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    # Consumer tuning. How long the broker may hold a fetch that finds no data: while messages
    # flow (latency first, not the 500 ms default), and once a consumer has found nothing for a
    # while (tributary_runtime.broker.FetchPacing). tansu, the development broker, holds every
    # such fetch for the whole wait even when data arrives meanwhile, so a short wait means a
    # fetch round trip every few ms in each consumer: measured, about a fifth of a 100k-row
    # import's time on two cores went to idle consumers polling. A consumer quiet for longer
    # (``fetch_dormant_after_s``) waits longer still: eight consumers polling every 50 ms kept
    # the idle stack at a tenth of the machine and slowed a replay beside it by a fifth. Apache
    # Kafka answers a held fetch as soon as data arrives: set all three to 500 there
    # (docs/deployment.md). While messages flow, most fetches still find nothing new: with 10
    # small imports in flight, 20 ms instead of 5 ms took about a tenth less CPU per import across
    # the processes (tansu and the consumers a fifth less) and lowered p50 in three runs of four.
    fetch_max_wait_ms: int = Field(default=20, ge=0)
    fetch_idle_wait_ms: int = Field(default=50, ge=0)
    fetch_dormant_wait_ms: int = Field(default=200, ge=0)
    fetch_dormant_after_s: float = Field(default=10.0, ge=0)
    max_poll_records: int = 500
    # Messages fetched together are applied in transactions of at most this many bytes (and at
    # least one message): a poll of 500 bulk batches (1,000 rows each) decoded at once held
    # 584 MB in the enricher during a 1M-row import.
    max_transaction_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    # Staged rows of an import whose phase is over for good (not waiting, held or failed) are
    # deleted this many days after it finished (tributary_runtime.retention); the validator keeps
    # the rows with errors. Each service that stages looks every ``staged_rows_purge_interval_s``
    # seconds; 0 never looks, and keeps every staged row for as long as the database.
    staged_rows_retention_days: float = Field(default=30.0, ge=0)
    staged_rows_purge_interval_s: float = Field(default=3600.0, ge=0)
    # A message whose handler keeps failing goes to the DLQ after this many attempts.
    handler_max_attempts: int = 3
    handler_retry_backoff_s: float = 0.2
    db_pool_size: int = 5
    # Development only: accept X-Client-Account-Id/X-Engagement-Id without an API key.
    allow_tenant_headers: bool = False

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_sasl_username", "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile",
                     "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An empty variable (KEY= in an env file, "" in a ConfigMap) means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_sasl_password", mode="before")
    @classmethod
    def _empty_password_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value == "" else value

    @model_validator(mode="after")
    def _kafka_security_combination(self) -> ServiceSettings:
        protocol = self.kafka_security_protocol
        var = "TRIBUTARY_KAFKA_"
        if protocol in SASL_PROTOCOLS:
            missing = [var + name.upper() for name, value in (
                ("sasl_mechanism", self.kafka_sasl_mechanism), ("sasl_username", self.kafka_sasl_username),
                ("sasl_password", self.kafka_sasl_password)) if value is None]
            if missing:
                raise ValueError(f"{var}SECURITY_PROTOCOL={protocol} needs {', '.join(missing)} "
                                 "(mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
        else:
            given = [var + name.upper() for name, value in (
                ("sasl_mechanism", self.kafka_sasl_mechanism), ("sasl_username", self.kafka_sasl_username),
                ("sasl_password", self.kafka_sasl_password)) if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)} set, but {var}SECURITY_PROTOCOL is {protocol}: "
                                 "SASL needs SASL_SSL (or SASL_PLAINTEXT)")
        if protocol not in TLS_PROTOCOLS:
            given = [var + name.upper() for name, value in (
                ("ssl_cafile", self.kafka_ssl_cafile), ("ssl_certfile", self.kafka_ssl_certfile),
                ("ssl_keyfile", self.kafka_ssl_keyfile)) if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)} set, but {var}SECURITY_PROTOCOL is {protocol}: "
                                 "TLS needs SSL or SASL_SSL")
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError(f"{var}SSL_KEYFILE needs {var}SSL_CERTFILE (the client certificate)")
        if self.topic_min_insync_replicas is not None and \
                self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(f"TRIBUTARY_TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync_replicas} exceeds "
                             f"TRIBUTARY_TOPIC_REPLICATION_FACTOR={self.topic_replication_factor}: "
                             "no write with acks=all could succeed")
        return self

    @property
    def asyncpg_dsn(self) -> str:
        return plain_dsn(self.database_url)

    @property
    def migration_url(self) -> str:
        return "postgresql+psycopg://" + self.asyncpg_dsn.split("://", 1)[1]


def plain_dsn(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url
