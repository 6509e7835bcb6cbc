"""staging, findings, validation runs, offset store

Revision ID: 0001
"""

from alembic import op

from tributary_runtime.offsets import PLUMBING_DDL
from tributary_runtime.staging import STAGING_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(PLUMBING_DDL)
    op.execute(STAGING_DDL)
    op.execute(
        """
        CREATE TABLE row_issues (
            import_id   uuid    NOT NULL,
            row_number  integer NOT NULL,
            column_name text,
            rule_id     text    NOT NULL,
            severity    text    NOT NULL CHECK (severity IN ('error', 'warning')),
            message     text    NOT NULL,
            value       text
        );
        CREATE INDEX row_issues_import ON row_issues (import_id, row_number);

        CREATE TABLE validation_runs (
            import_id         uuid PRIMARY KEY,
            client_account_id uuid NOT NULL,
            engagement_id     uuid NOT NULL,
            category          text NOT NULL,
            verdict           text NOT NULL,
            record_count      integer NOT NULL,
            valid_count       integer NOT NULL,
            invalid_count     integer NOT NULL,
            error_count       integer NOT NULL,
            warning_count     integer NOT NULL,
            field_mapping     jsonb NOT NULL,
            failure_code      text,
            failure_reason    text,
            finished_at       timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE validation_runs; DROP TABLE row_issues;")
