"""import-level findings, agent results, verdict policies per tenant and category, llm_usage

Revision ID: 0002
"""

from alembic import op

from validator.llm_usage import LLM_USAGE_DDL

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE row_issues ALTER COLUMN row_number DROP NOT NULL;
        ALTER TABLE row_issues ADD COLUMN agent text NOT NULL DEFAULT 'schema';
        CREATE INDEX row_issues_import_rule ON row_issues (import_id, severity, rule_id);

        ALTER TABLE validation_runs
            ADD COLUMN validate_only    boolean NOT NULL DEFAULT false,
            ADD COLUMN mapping          jsonb NOT NULL DEFAULT '{}',
            ADD COLUMN agent_results    jsonb NOT NULL DEFAULT '[]',
            ADD COLUMN findings_by_rule jsonb NOT NULL DEFAULT '{}',
            ADD COLUMN max_error_rate   double precision,
            ADD COLUMN started_at       timestamptz;

        CREATE TABLE validation_policies (
            client_account_id uuid   NOT NULL,
            engagement_id     uuid   NOT NULL,
            category          text   NOT NULL,
            max_error_rate    double precision NOT NULL CHECK (max_error_rate BETWEEN 0 AND 1),
            blocking_rules    text[] NOT NULL DEFAULT '{}',
            updated_at        timestamptz NOT NULL DEFAULT now(),
            updated_by        text,
            PRIMARY KEY (client_account_id, engagement_id, category)
        );
        """
    )
    op.execute(LLM_USAGE_DDL)


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE llm_usage;
        DROP TABLE validation_policies;
        ALTER TABLE validation_runs DROP COLUMN validate_only, DROP COLUMN mapping, DROP COLUMN agent_results,
            DROP COLUMN findings_by_rule, DROP COLUMN max_error_rate, DROP COLUMN started_at;
        DROP INDEX row_issues_import_rule;
        ALTER TABLE row_issues DROP COLUMN agent;
        """
    )
