"""inventory policy versions: an import is enriched under the policy in effect when it was validated;
the current policy is the latest version

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE inventory_policy_versions (
            client_account_id   uuid NOT NULL,
            engagement_id       uuid NOT NULL,
            effective_from      timestamptz NOT NULL,
            source_priorities   jsonb   NOT NULL DEFAULT '{}',
            stale_after_days    integer CHECK (stale_after_days > 0),
            empty_overwrites    boolean NOT NULL DEFAULT false,
            create_placeholders boolean NOT NULL DEFAULT false,
            PRIMARY KEY (client_account_id, engagement_id, effective_from)
        );
        -- A policy set before versions existed governed every import enriched so far.
        INSERT INTO inventory_policy_versions (client_account_id, engagement_id, effective_from, source_priorities,
                                               stale_after_days, empty_overwrites, create_placeholders)
        SELECT client_account_id, engagement_id, '-infinity', source_priorities, stale_after_days,
               empty_overwrites, create_placeholders
        FROM inventory_policies;
        -- The current policy is the latest version: kept once, not twice.
        DROP TABLE inventory_policies;
        """)


def downgrade() -> None:
    op.execute(
        """
        CREATE TABLE inventory_policies (
            client_account_id   uuid NOT NULL,
            engagement_id       uuid NOT NULL,
            source_priorities   jsonb   NOT NULL DEFAULT '{}',
            stale_after_days    integer CHECK (stale_after_days > 0),
            empty_overwrites    boolean NOT NULL DEFAULT false,
            create_placeholders boolean NOT NULL DEFAULT false,
            updated_at          timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (client_account_id, engagement_id)
        );
        INSERT INTO inventory_policies (client_account_id, engagement_id, source_priorities, stale_after_days,
                                        empty_overwrites, create_placeholders)
        SELECT DISTINCT ON (client_account_id, engagement_id) client_account_id, engagement_id, source_priorities,
               stale_after_days, empty_overwrites, create_placeholders
        FROM inventory_policy_versions ORDER BY client_account_id, engagement_id, effective_from DESC;
        DROP TABLE inventory_policy_versions;
        """)
