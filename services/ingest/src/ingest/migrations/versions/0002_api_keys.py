"""API keys (hashed)

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            key_id            text PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            key_hash          text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
            label             text,
            created_at        timestamptz NOT NULL DEFAULT now(),
            revoked_at        timestamptz
        );
        CREATE INDEX api_keys_tenant ON api_keys (client_account_id, engagement_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
