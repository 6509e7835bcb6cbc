"""upload receipts, idempotency keys, offset store

Revision ID: 0001
"""

from alembic import op

from tributary_runtime.offsets import PLUMBING_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(PLUMBING_DDL)
    op.execute(
        """
        CREATE TABLE data_imports (
            import_id         uuid PRIMARY KEY,
            flow_id           uuid NOT NULL,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            user_id           text NOT NULL,
            category          text NOT NULL,
            filename          text NOT NULL,
            file_format       text,
            content_type      text,
            size_bytes        bigint NOT NULL DEFAULT 0,
            sha256            text,
            record_count      integer,
            batch_count       integer,
            checksum          text,
            source            text NOT NULL DEFAULT 'http',
            validate_only     boolean NOT NULL DEFAULT false,
            status            text NOT NULL,
            idempotency_key   text,
            created_at        timestamptz NOT NULL DEFAULT now(),
            uploaded_at       timestamptz
        );
        CREATE INDEX data_imports_tenant ON data_imports (client_account_id, engagement_id, created_at DESC);

        CREATE TABLE idempotency_keys (
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            key               text NOT NULL,
            import_id         uuid NOT NULL,
            created_at        timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (client_account_id, engagement_id, key)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys; DROP TABLE data_imports;")
