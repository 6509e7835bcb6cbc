"""processing steps of each flow

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
        CREATE TABLE processing_steps (
            flow_id           uuid    NOT NULL REFERENCES master_flows (flow_id) ON DELETE CASCADE,
            step_name         text    NOT NULL,
            step_order        integer NOT NULL,
            status            text    NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'skipped')),
            description       text    NOT NULL,
            records_processed integer NOT NULL DEFAULT 0,
            output            jsonb   NOT NULL DEFAULT '{}',
            error_message     text,
            started_at        timestamptz,
            completed_at      timestamptz,
            PRIMARY KEY (flow_id, step_name)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE processing_steps")
